"""`faxbridge explain ID` and `faxbridge hash-password`: the admin's two helpers."""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import TYPE_CHECKING

from bridge.cli.common import add_command, config_of, not_found, open_store
from bridge.cli.output import CommandError, print_json

if TYPE_CHECKING:
    from bridge.cli.common import Subcommands


def explain(args: argparse.Namespace) -> int:
    from bridge.converters import running_converters
    from bridge.explain import explain as replay

    config = config_of(args)
    store = open_store(config)
    try:
        with running_converters(config) as converters:
            result = replay(config, store, args.id, converters)
    except LookupError as exc:
        raise not_found("smtplog record", args.id, "faxbridge smtplog list") from exc
    finally:
        store.close()
    if args.json:
        print_json(result.as_dict())
    else:
        print(result.render())
    return 0


def hash_password(args: argparse.Namespace) -> int:
    from bridge.smtp.auth import hash_password as make_hash

    if args.stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            raise CommandError("The two passwords differ; nothing was hashed.")
    if not password:
        raise CommandError("An empty password cannot be hashed.")
    print(make_hash(password))
    return 0


def register(commands: Subcommands) -> None:
    cmd = add_command(
        commands, "explain", explain, "replay a logged SMTP attempt and say what was decided"
    )
    cmd.add_argument("id", metavar="ID")
    cmd.add_argument("--json", action="store_true")
    cmd = commands.add_parser(
        "hash-password",
        help="make an argon2 hash for smtp.auth.users",
        description="Print an argon2 hash for smtp.auth.users[].password_hash.",
    )
    cmd.add_argument("--stdin", action="store_true", help="read the password from stdin")
    cmd.set_defaults(func=hash_password)
