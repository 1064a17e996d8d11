"""`faxbridge inbound …` and `faxbridge mail …`: received faxes and the mail outbox."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from bridge.cli.common import (
    add_command,
    add_group,
    add_list_options,
    config_of,
    not_found,
    open_store,
    refused,
)
from bridge.cli.output import Columns, show

if TYPE_CHECKING:
    from bridge.cli.common import Subcommands

INBOUND_COLUMNS: Columns = [
    ("id", "ID"),
    ("received", "RECEIVED (UTC)"),
    ("faxbox", "FAXBOX"),
    ("from", "FROM"),
    ("to", "TO"),
    ("pages", "PAGES"),
    ("emailed", "EMAILED"),
]

MAIL_COLUMNS: Columns = [
    ("id", "ID"),
    ("created", "CREATED (UTC)"),
    ("kind", "KIND"),
    ("status", "STATUS"),
    ("attempts", "TRIES"),
    ("to", "TO"),
    ("last_error", "LAST ERROR"),
]

MAIL_STATUSES = ["pending", "sent", "failed", "skipped"]


def inbound_list(args: argparse.Namespace) -> int:
    store = open_store(config_of(args))
    show(store.inbound.recent(limit=args.limit, faxbox=args.faxbox), args.json, INBOUND_COLUMNS)
    return 0


def inbound_show(args: argparse.Namespace) -> int:
    from bridge.store.inbound import inbound_record

    store = open_store(config_of(args))
    row = store.inbound.row(args.id)
    if row is None:
        raise not_found("inbound fax", args.id, "inbound list")
    record = inbound_record(row)
    document: str | None = row.document_path
    record["document"] = str(store.db.path(document)) if document else None
    show(record, args.json, INBOUND_COLUMNS)
    return 0


def mail_list(args: argparse.Namespace) -> int:
    store = open_store(config_of(args))
    show(store.outbox.recent(limit=args.limit, status=args.status), args.json, MAIL_COLUMNS)
    return 0


def mail_show(args: argparse.Namespace) -> int:
    store = open_store(config_of(args))
    record = store.outbox.get(args.id)
    if record is None:
        raise not_found("outbox mail", args.id, "mail list")
    show(record, args.json, MAIL_COLUMNS)
    return 0


def mail_retry(args: argparse.Namespace) -> int:
    store = open_store(config_of(args))
    try:
        print(store.outbox.retry(args.id))
    except LookupError as exc:
        raise not_found("outbox mail", args.id, "mail list") from exc
    except ValueError as exc:
        raise refused(exc) from exc
    return 0


def register(commands: Subcommands) -> None:
    inbound = add_group(commands, "inbound", "faxes received")
    cmd = add_command(inbound, "list", inbound_list, "list received faxes, newest first")
    cmd.add_argument("--faxbox", metavar="NAME")
    add_list_options(cmd)
    cmd = add_command(inbound, "show", inbound_show, "show one received fax")
    cmd.add_argument("id")
    cmd.add_argument("--json", action="store_true", help="one JSON document on stdout")

    mail = add_group(commands, "mail", "the outbox of reports and inbound-fax mails")
    cmd = add_command(mail, "list", mail_list, "list outbox mails, newest first")
    cmd.add_argument("--status", choices=MAIL_STATUSES)
    add_list_options(cmd)
    cmd = add_command(mail, "show", mail_show, "show one outbox mail")
    cmd.add_argument("id")
    cmd.add_argument("--json", action="store_true", help="one JSON document on stdout")
    cmd = add_command(mail, "retry", mail_retry, "send a failed (or pending) mail again now")
    cmd.add_argument("id")
