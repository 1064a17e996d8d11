"""The `faxbridge` command (DESIGN.md §6). Errors are one paragraph, never a traceback.

    faxbridge serve | check-config | healthcheck | preview   admin.py
    faxbridge smtplog list|show, jobs list|show|retry|cancel      records.py
    faxbridge inbound list|show, mail list|show|retry    mail.py
    faxbridge providers list|check|setup                providers.py
    faxbridge explain ID, hash-password                 diagnose.py
    faxbridge auth list|unlock USER                     auth.py

Every subcommand takes `-c/--config FILE` after its name; without it `$FAXBRIDGE_CONFIG`, else
`./config.yaml`, else `./config.example.yaml` (a fresh checkout, as `make run` serves).
Set `FAXBRIDGE_DEBUG=1` to see the traceback of an unexpected error.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from bridge import __version__
from bridge.cli import admin, auth, diagnose, mail, providers, records
from bridge.cli.output import CommandError, paragraph
from bridge.errors import BridgeError

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="faxbridge", description="Email-to-fax and fax-to-email SMTP bridge."
    )
    parser.add_argument("--version", action="version", version=f"faxbridge {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    admin.register(commands)
    records.register(commands)
    mail.register(commands)
    providers.register(commands)
    diagnose.register(commands)
    auth.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        result: int = args.func(args)
        sys.stdout.flush()  # a closed pipe shows up here, not after we returned
        return result
    except (BridgeError, CommandError) as exc:
        _error(str(exc))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`| head`); say nothing more on the closed pipe.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:
        if os.environ.get("FAXBRIDGE_DEBUG"):
            raise
        _error(
            f"unexpected {type(exc).__name__}: {paragraph(str(exc) or 'no details')} "
            "Run again with FAXBRIDGE_DEBUG=1 to see where it happened."
        )
    return 1


def _error(message: str) -> None:
    print(f"faxbridge: {paragraph(message)}", file=sys.stderr)
