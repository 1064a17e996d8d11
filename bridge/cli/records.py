"""`faxbridge smtplog …` and `faxbridge jobs …`: the e-mail-to-fax side of the store."""

from __future__ import annotations

import argparse
import asyncio
from typing import TYPE_CHECKING

from bridge.cli.common import (
    add_command,
    add_group,
    add_list_options,
    config_of,
    iso_date,
    not_found,
    open_store,
    refused,
)
from bridge.cli.output import Columns, CommandError, paragraph, show
from bridge.config import Config
from bridge.models import JobStatus

if TYPE_CHECKING:
    from bridge.cli.common import Subcommands

SMTPLOG_COLUMNS: Columns = [
    ("id", "ID"),
    ("created", "CREATED (UTC)"),
    ("outcome", "OUTCOME"),
    ("faxbox", "FAXBOX"),
    ("from", "FROM"),
    ("pages", "PAGES"),
    ("reply", "REPLY"),
]

JOB_COLUMNS: Columns = [
    ("id", "ID"),
    ("created", "CREATED (UTC)"),
    ("status", "STATUS"),
    ("reason", "REASON"),
    ("to", "TO"),
    ("pages", "PAGES"),
    ("dials", "TRIES"),
    ("faxbox", "FAXBOX"),
]


def smtplog_list(args: argparse.Namespace) -> int:
    store = open_store(config_of(args))
    rows = store.smtplog.recent(
        faxbox=args.faxbox, since=args.since, outcome=args.outcome, limit=args.limit
    )
    show(rows, args.json, SMTPLOG_COLUMNS)
    return 0


def smtplog_show(args: argparse.Namespace) -> int:
    store = open_store(config_of(args))
    record = store.smtplog.get(args.id)
    if record is None:
        raise not_found("smtplog record", args.id, "smtplog list")
    show(record, args.json, SMTPLOG_COLUMNS)
    return 0


def jobs_list(args: argparse.Namespace) -> int:
    store = open_store(config_of(args))
    show(store.jobs.recent(status=args.status, limit=args.limit), args.json, JOB_COLUMNS)
    return 0


def jobs_show(args: argparse.Namespace) -> int:
    store = open_store(config_of(args))
    record = store.jobs.get(args.id)
    if record is None:
        raise not_found("fax job", args.id, "jobs list")
    show(record, args.json, JOB_COLUMNS)
    return 0


def jobs_retry(args: argparse.Namespace) -> int:
    return _job_action(args, "retry")


def jobs_cancel(args: argparse.Namespace) -> int:
    """A queued job is cancelled here; one at the provider is cancelled there first."""
    config = config_of(args)
    store = open_store(config)
    job = store.jobs.row(args.id)
    if job is None:
        raise not_found("fax job", args.id, "jobs list")
    if job.status not in (JobStatus.SUBMITTED.value, JobStatus.SENDING.value):
        return _job_action(args, "cancel")
    note = asyncio.run(_cancel_at_provider(config, job.provider, job.provider_fax_id))
    try:
        print(store.jobs.cancel(args.id, at_provider=note))
    except ValueError as exc:  # it ended while we asked
        raise refused(exc) from exc
    return 0


async def _cancel_at_provider(config: Config, provider_name: str, fax_id: str) -> str:
    import httpx

    from bridge.errors import ProviderError
    from bridge.providers.registry import build_providers

    async with httpx.AsyncClient() as client:
        adapters = build_providers(config, client)
        adapter = adapters.get(provider_name)
        if adapter is None:
            raise CommandError(f"The job's provider {provider_name!r} is no longer configured.")
        try:
            await adapter.cancel(fax_id)
        except ProviderError as exc:
            raise CommandError(
                paragraph(f"{provider_name} did not cancel fax {fax_id}: {exc.message}")
            ) from exc
        finally:
            await adapter.aclose()
    return f"cancelled at {provider_name} (fax {fax_id})"


CALLBACK_COLUMNS: Columns = [
    ("id", "ID"),
    ("received", "RECEIVED (UTC)"),
    ("provider", "PROVIDER"),
    ("event", "EVENT"),
    ("provider_fax_id", "FAX"),
    ("reason", "WHY IT WAS KEPT"),
]


def callbacks_list(args: argparse.Namespace) -> int:
    store = open_store(config_of(args))
    rows = store.callbacks.recent(provider=args.provider, job_id=args.job, limit=args.limit)
    if not args.json:
        rows = [{k: v for k, v in row.items() if k != "body"} for row in rows]
    show(rows, args.json, CALLBACK_COLUMNS)
    return 0


def _job_action(args: argparse.Namespace, action: str) -> int:
    store = open_store(config_of(args))
    act = store.jobs.retry if action == "retry" else store.jobs.cancel
    try:
        print(act(args.id))
    except LookupError as exc:
        raise not_found("fax job", args.id, "jobs list") from exc
    except ValueError as exc:
        raise refused(exc) from exc
    return 0


def register(commands: Subcommands) -> None:
    smtplog = add_group(commands, "smtplog", "read the SMTP attempt log")
    cmd = add_command(smtplog, "list", smtplog_list, "list attempts, newest first")
    cmd.add_argument("--faxbox", metavar="NAME")
    cmd.add_argument("--since", type=iso_date, metavar="ISO-DATE")
    cmd.add_argument("--outcome", choices=["accepted", "rejected", "aborted"])
    add_list_options(cmd)
    cmd = add_command(smtplog, "show", smtplog_show, "show one attempt")
    cmd.add_argument("id")
    cmd.add_argument("--json", action="store_true", help="one JSON document on stdout")

    jobs = add_group(commands, "jobs", "fax jobs")
    cmd = add_command(jobs, "list", jobs_list, "list fax jobs, newest first")
    cmd.add_argument("--status", choices=[s.value for s in JobStatus])
    add_list_options(cmd)
    cmd = add_command(jobs, "show", jobs_show, "show one fax job and its history")
    cmd.add_argument("id")
    cmd.add_argument("--json", action="store_true", help="one JSON document on stdout")
    add_command(jobs, "retry", jobs_retry, "send a failed or cancelled job again").add_argument(
        "id"
    )
    add_command(
        jobs, "cancel", jobs_cancel, "cancel a queued job, or one the provider has not sent yet"
    ).add_argument("id")

    callbacks = add_group(commands, "callbacks", "provider callbacks the bridge could not act on")
    cmd = add_command(callbacks, "list", callbacks_list, "list kept callbacks, newest first")
    cmd.add_argument("--provider", metavar="NAME")
    cmd.add_argument("--job", metavar="JOB-ID")
    add_list_options(cmd)
