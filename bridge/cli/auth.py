"""`faxbridge auth list|unlock`: who is throttled after failed logins, and lifting it."""

from __future__ import annotations

import argparse
from datetime import timedelta
from typing import TYPE_CHECKING

from bridge.cli.common import add_command, add_group, config_of, open_store
from bridge.cli.output import CommandError, print_json

if TYPE_CHECKING:
    from bridge.cli.common import Subcommands


def list_failures(args: argparse.Namespace) -> int:
    from bridge.store import utcnow

    config = config_of(args)
    limits = config.smtp.auth
    store = open_store(config)
    try:
        rows = store.login_failures.since(utcnow() - timedelta(seconds=limits.failure_window))
    finally:
        store.close()
    for row in rows:
        limit = limits.max_failures
        row["throttled"] = row["failures"] >= limit
        row["last"] = row["last"].isoformat()
    if args.json:
        print_json(rows)
        return 0
    if not rows:
        print(f"No failed logins in the last {limits.failure_window:g} s.")
        return 0
    for row in rows:
        who = row["username"] or "(console token)"
        state = "THROTTLED" if row["throttled"] else "ok"
        print(
            f"{state:9} {row['service']:7} {who:24} {row['address']:39} "
            f"{row['failures']:>3} failure(s), last {row['last']}"
        )
    return 0


def unlock(args: argparse.Namespace) -> int:
    if not args.user and not args.console:
        raise CommandError("Name the user to unlock, or give --console for the web console.")
    config = config_of(args)
    store = open_store(config)
    username = "" if args.console else args.user
    service = "console" if args.console else "smtp"
    try:
        gone = store.login_failures.clear(username, service=service, address=args.address)
    finally:
        store.close()
    where = f" from {args.address}" if args.address else ""
    who = "the console" if args.console else repr(username)
    if gone:
        print(f"Unlocked {who}{where}: {gone} failed login(s) forgotten.")
    else:
        print(f"{who[:1].upper()}{who[1:]} had no failed logins{where}; nothing to unlock.")
    return 0


def register(commands: Subcommands) -> None:
    group = add_group(commands, "auth", "failed logins: who is throttled, and lifting it")
    cmd = add_command(group, "list", list_failures, "failed logins within smtp.auth's window")
    cmd.add_argument("--json", action="store_true")
    cmd = add_command(group, "unlock", unlock, "forget a user's failed logins (lift a throttle)")
    cmd.add_argument("user", metavar="USER", nargs="?", default="")
    cmd.add_argument("--address", metavar="IP", help="only the failures from this address")
    cmd.add_argument("--console", action="store_true", help="the web console's sign-in instead")
