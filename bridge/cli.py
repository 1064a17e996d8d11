"""The `faxbridge` command (DESIGN.md §6). Errors are one paragraph, never a traceback."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import textwrap
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from bridge import __version__
from bridge.config import Config, load_config, parse_config
from bridge.errors import BridgeError

Handler = Callable[[argparse.Namespace], int]


class CommandError(Exception):
    """A one-paragraph message for the user; exit status 1."""


# -- output helpers ------------------------------------------------------------------------
def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def print_json(value: Any) -> None:
    json.dump(_jsonable(value), sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")


def _short_time(value: Any) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    return "" if value is None else str(value)


def print_table(rows: list[dict[str, Any]], columns: list[tuple[str, str]]) -> None:
    if not rows:
        print("(none)")
        return
    cells = [[_short_time(row.get(key)) for key, _ in columns] for row in rows]
    widths = [max(len(title), *(len(c[i]) for c in cells)) for i, (_, title) in enumerate(columns)]
    widths[-1] = len(columns[-1][1])  # the last column is free-running
    print("  ".join(t.ljust(w) for (_, t), w in zip(columns, widths, strict=True)).rstrip())
    for c in cells:
        print("  ".join(v.ljust(w) for v, w in zip(c, widths, strict=True)).rstrip())


def print_record(record: dict[str, Any]) -> None:
    width = max(len(k) for k in record)
    for key, value in record.items():
        if isinstance(value, list) and value and isinstance(value[0], dict):
            print(f"{key}:")
            for item in value:
                line = ", ".join(f"{k}={_short_time(v)}" for k, v in item.items())
                print(textwrap.indent(textwrap.fill(line, 96, subsequent_indent="    "), "  - "))
        elif isinstance(value, list):
            print(f"{key.ljust(width)}  {', '.join(str(v) for v in value)}")
        else:
            print(f"{key.ljust(width)}  {_short_time(value)}")


# -- store access --------------------------------------------------------------------------
def open_store(args: argparse.Namespace) -> Any:
    from bridge.store import Store

    config = load_config(args.config)
    store = Store(config.storage.url, config.storage.data_dir)
    store.create_schema()
    return store


def _since(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{value!r} is not an ISO date (2026-11-22)") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


# -- commands ------------------------------------------------------------------------------
def cmd_serve(args: argparse.Namespace) -> int:
    from bridge.app import serve

    config = load_config(args.config)
    logging.basicConfig(
        level=getattr(logging, args.log_level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    asyncio.run(serve(config))
    return 0


def cmd_check_config(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    from bridge.providers.registry import provider_class

    for cfg in config.providers.values():
        provider_class(cfg.type)
    print(
        f"configuration OK: {len(config.faxboxes)} faxbox(es), "
        f"{len(config.providers)} provider(s); SMTP {config.smtp.listen}, "
        f"HTTP {config.http.listen}, store {config.storage.url}"
    )
    return 0


SMTPLOG_COLUMNS = [
    ("id", "ID"),
    ("created", "CREATED (UTC)"),
    ("outcome", "OUTCOME"),
    ("faxbox", "FAXBOX"),
    ("from", "FROM"),
    ("pages", "PAGES"),
    ("reply", "REPLY"),
]


def cmd_smtplog_list(args: argparse.Namespace) -> int:
    store = open_store(args)
    rows = store.smtplog.recent(
        faxbox=args.faxbox, since=args.since, outcome=args.outcome, limit=args.limit
    )
    if args.json:
        print_json(rows)
    else:
        print_table(rows, SMTPLOG_COLUMNS)
    return 0


def cmd_smtplog_show(args: argparse.Namespace) -> int:
    store = open_store(args)
    record = store.smtplog.get(args.id)
    if record is None:
        raise CommandError(f"No smtplog record {args.id}. `faxbridge smtplog list` shows the ids.")
    if args.json:
        print_json(record)
    else:
        print_record(record)
    return 0


JOB_COLUMNS = [
    ("id", "ID"),
    ("created", "CREATED (UTC)"),
    ("status", "STATUS"),
    ("reason", "REASON"),
    ("to", "TO"),
    ("pages", "PAGES"),
    ("attempts", "TRIES"),
    ("faxbox", "FAXBOX"),
]


def cmd_jobs_list(args: argparse.Namespace) -> int:
    store = open_store(args)
    rows = store.jobs.recent(status=args.status, limit=args.limit)
    if args.json:
        print_json(rows)
    else:
        print_table(rows, JOB_COLUMNS)
    return 0


def cmd_jobs_show(args: argparse.Namespace) -> int:
    store = open_store(args)
    record = store.jobs.get(args.id)
    if record is None:
        raise CommandError(f"No fax job {args.id}. `faxbridge jobs list` shows the ids.")
    if args.json:
        print_json(record)
    else:
        print_record(record)
    return 0


def _job_action(action: str) -> Handler:
    def run(args: argparse.Namespace) -> int:
        store = open_store(args)
        try:
            print(getattr(store.jobs, action)(args.id))
        except (LookupError, ValueError) as exc:
            raise CommandError(f"{str(exc).rstrip('.')}.") from exc
        return 0

    return run


def cmd_preview(args: argparse.Namespace) -> int:
    from bridge.preview import preview

    if args.config is None and not _default_config_exists():
        config = default_preview_config()
    else:
        config = load_config(args.config)
    try:
        raw = Path(args.message).read_bytes()
    except OSError as exc:
        raise CommandError(f"Cannot read {args.message}: {exc.strerror}.") from exc
    try:
        print(preview(config, raw, Path(args.output), args.faxbox))
    except ValueError as exc:
        raise CommandError(f"{exc}.") from exc
    return 0


def _default_config_exists() -> bool:
    import os

    from bridge.config import DEFAULT_CONFIG_NAME

    return bool(os.environ.get("FAXBRIDGE_CONFIG")) or Path(DEFAULT_CONFIG_NAME).exists()


def default_preview_config() -> Config:
    return parse_config(
        {
            "providers": {"sim": {"type": "simulator"}},
            "faxboxes": [{"name": "main", "domains": ["fax.localhost"], "provider": "sim"}],
        }
    )


# -- parser --------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="faxbridge", description="Email-to-fax and fax-to-email SMTP bridge."
    )
    parser.add_argument("--version", action="version", version=f"faxbridge {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(sub: Any, name: str, func: Handler, help_text: str) -> argparse.ArgumentParser:
        cmd: argparse.ArgumentParser = sub.add_parser(name, help=help_text, description=help_text)
        cmd.add_argument("-c", "--config", metavar="FILE", help="configuration file")
        cmd.set_defaults(func=func)
        return cmd

    serve = command(commands, "serve", cmd_serve, "run the SMTP and HTTP listeners and workers")
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning"])
    command(commands, "check-config", cmd_check_config, "validate the configuration")

    smtplog = commands.add_parser("smtplog", help="read the SMTP attempt log")
    smtplog_sub = smtplog.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = command(smtplog_sub, "list", cmd_smtplog_list, "list attempts, newest first")
    listing.add_argument("--faxbox", metavar="NAME")
    listing.add_argument("--since", type=_since, metavar="ISO-DATE")
    listing.add_argument("--outcome", choices=["accepted", "rejected", "aborted"])
    listing.add_argument("--limit", type=int, default=100, metavar="N")
    listing.add_argument("--json", action="store_true")
    show = command(smtplog_sub, "show", cmd_smtplog_show, "show one attempt")
    show.add_argument("id")
    show.add_argument("--json", action="store_true")

    jobs = commands.add_parser("jobs", help="fax jobs")
    jobs_sub = jobs.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = command(jobs_sub, "list", cmd_jobs_list, "list fax jobs, newest first")
    listing.add_argument(
        "--status",
        choices=[
            "queued",
            "submitting",
            "submitted",
            "sending",
            "delivered",
            "failed",
            "cancelled",
        ],
    )
    listing.add_argument("--limit", type=int, default=100, metavar="N")
    listing.add_argument("--json", action="store_true")
    show = command(jobs_sub, "show", cmd_jobs_show, "show one fax job and its history")
    show.add_argument("id")
    show.add_argument("--json", action="store_true")
    command(jobs_sub, "retry", _job_action("retry"), "send a failed job again").add_argument("id")
    command(jobs_sub, "cancel", _job_action("cancel"), "cancel a queued job").add_argument("id")

    preview = command(commands, "preview", cmd_preview, "render a message as the fax it would be")
    preview.add_argument("message", metavar="MESSAGE.eml")
    preview.add_argument("-o", "--output", required=True, metavar="OUT.pdf")
    preview.add_argument("--faxbox", metavar="NAME")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result: int = args.func(args)
        return result
    except (BridgeError, CommandError) as exc:
        print(f"faxbridge: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
