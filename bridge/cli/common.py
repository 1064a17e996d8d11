"""What every subcommand shares: its `-c/--config` option, the config and the store."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from bridge.cli.output import CommandError, mask_url, paragraph
from bridge.config import Config, load_config
from bridge.errors import StorageError

if TYPE_CHECKING:
    from bridge.store import Store

    Subcommands = argparse._SubParsersAction[argparse.ArgumentParser]

Handler = Callable[[argparse.Namespace], int]


def add_command(
    parent: Subcommands, name: str, func: Handler, help_text: str
) -> argparse.ArgumentParser:
    """A subcommand that takes `-c/--config FILE` after its name (DESIGN.md §6)."""
    cmd = parent.add_parser(name, help=help_text, description=help_text)
    cmd.add_argument(
        "-c",
        "--config",
        metavar="FILE",
        help=(
            "configuration file (default: $FAXBRIDGE_CONFIG, else ./config.yaml, else "
            "./config.example.yaml)"
        ),
    )
    cmd.set_defaults(func=func)
    return cmd


def add_group(parent: Subcommands, name: str, help_text: str) -> Subcommands:
    """A command with actions of its own (`jobs list`, `jobs show` …)."""
    group = parent.add_parser(name, help=help_text, description=help_text)
    return group.add_subparsers(dest="action", required=True, metavar="ACTION")


def add_list_options(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument(
        "--limit", type=positive_int, default=100, metavar="N", help="at most N rows (100)"
    )
    cmd.add_argument("--json", action="store_true", help="one JSON document on stdout")


def positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a positive whole number")
    return number


def iso_date(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{value!r} is not an ISO date (2026-11-22)") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def config_of(args: argparse.Namespace) -> Config:
    return load_config(args.config)


def open_store(config: Config) -> Store:
    """The store the config names, its tables created if it is new."""
    from bridge.store import Store

    try:
        store = Store.for_config(config.storage)
        store.create_schema()
    except StorageError as exc:
        raise CommandError(
            f"Cannot use the store {mask_url(config.storage.url)} (storage.url): "
            f"{_database_reason(exc)}"
        ) from exc
    except Exception as exc:  # a malformed URL, a missing driver …
        raise CommandError(
            f"Cannot open the store {mask_url(config.storage.url)} (storage.url): {exc}"
        ) from exc
    return store


def _database_reason(exc: StorageError) -> str:
    """The driver's own words, without SQLAlchemy's wrapping and links."""
    driver_error = getattr(exc.__cause__, "orig", None)  # the DB-API error SQLAlchemy wraps
    reason = str(driver_error) if driver_error is not None else str(exc)
    reason = reason.split("(Background on this error", 1)[0]
    return paragraph(reason.removeprefix("cannot prepare the database: "))


def not_found(what: str, ident: str, listing: str) -> CommandError:
    return CommandError(f"No {what} {ident}. `faxbridge {listing}` shows the ids.")


def refused(exc: Exception) -> CommandError:
    """A store's refusal ("fax job X is delivered; only …") as a sentence."""
    text = paragraph(str(exc))
    return CommandError(text[:1].upper() + text[1:])
