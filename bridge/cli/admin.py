"""`faxbridge serve`, `check-config`, `healthcheck` and `preview`."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from bridge.cli.common import add_command, config_of
from bridge.cli.output import CommandError, mask_url, paragraph
from bridge.config import Config, parse_config, resolve_config_path

if TYPE_CHECKING:
    from bridge.cli.common import Subcommands


def serve(args: argparse.Namespace) -> int:
    from bridge.app import serve as run
    from bridge.logsetup import configure_logging

    config = config_of(args)
    _refuse_unusable_faxboxes(config)
    configure_logging(config, level=args.log_level)
    asyncio.run(run(config))
    return 0


def _refuse_unusable_faxboxes(config: Config) -> None:
    """Faxboxes without a usable provider, and addresses the bridge would mail itself."""
    from bridge.own_mail import own_mail_problems
    from bridge.providers.registry import faxbox_problems

    problems = faxbox_problems(config) + own_mail_problems(config)
    if problems:
        raise CommandError(paragraph("; ".join(problems) + "."))


def check_config(args: argparse.Namespace) -> int:
    from bridge.converters import converter_problems
    from bridge.providers.registry import provider_class

    config = config_of(args)
    for cfg in config.providers.values():
        provider_class(cfg.type)
    _refuse_unusable_faxboxes(config)
    from bridge.numbers import shared_calling_codes
    from bridge.own_mail import own_mail_warnings

    warnings = list(converter_problems(config.documents)) + own_mail_warnings(config)
    for faxbox in config.faxboxes:
        warnings += shared_calling_codes(faxbox)
    for problem in warnings:
        print(f"faxbridge: warning: {problem}", file=sys.stderr)
    print(
        f"configuration OK: {len(config.faxboxes)} faxbox(es), "
        f"{len(config.providers)} provider(s); SMTP {config.smtp.listen}, "
        f"HTTP {config.http.listen}, store {mask_url(config.storage.url)}"
    )
    return 0


def healthcheck(args: argparse.Namespace) -> int:
    """Exit 0 only when SMTP and HTTP answer on an address reachable from outside (health.py)."""
    from bridge.health import Unhealthy, check

    config = config_of(args)
    try:
        print(check(config, args.timeout))
    except Unhealthy as exc:
        raise CommandError(f"unhealthy: {exc}.") from exc
    return 0


def preview(args: argparse.Namespace) -> int:
    from bridge.preview import preview as render

    if args.config is None and not _default_config_exists():
        config = default_preview_config()
    else:
        config = config_of(args)
    try:
        raw = Path(args.message).read_bytes()
    except OSError as exc:
        raise CommandError(f"Cannot read {args.message}: {exc.strerror}.") from exc
    try:
        print(render(config, raw, Path(args.output), args.faxbox, args.fax_resolution))
    except ValueError as exc:
        raise CommandError(paragraph(str(exc))) from exc
    except OSError as exc:
        raise CommandError(f"Cannot write {args.output}: {exc.strerror}.") from exc
    return 0


def _default_config_exists() -> bool:
    return bool(os.environ.get("FAXBRIDGE_CONFIG")) or resolve_config_path(None).exists()


def default_preview_config() -> Config:
    return parse_config(
        {
            "providers": {"sim": {"type": "simulator"}},
            "faxboxes": [{"name": "main", "domains": ["fax.localhost"], "provider": "sim"}],
        }
    )


def register(commands: Subcommands) -> None:
    cmd = add_command(commands, "serve", serve, "run the SMTP and HTTP listeners and workers")
    cmd.add_argument(
        "--log-level",
        default=None,
        choices=["debug", "info", "warning"],
        help="overrides logging.level from the config",
    )
    add_command(commands, "check-config", check_config, "validate the configuration")
    cmd = add_command(
        commands,
        "healthcheck",
        healthcheck,
        "exit non-zero unless SMTP (220) and HTTP /healthz (200) answer from outside",
    )
    cmd.add_argument(
        "--timeout",
        type=float,
        default=3.0,
        metavar="SECONDS",
        help="how long each probe may take (3)",
    )
    cmd = add_command(commands, "preview", preview, "render a message as the fax it would be")
    cmd.add_argument("message", metavar="MESSAGE.eml")
    cmd.add_argument("-o", "--output", required=True, metavar="OUT.pdf")
    cmd.add_argument("--faxbox", metavar="NAME")
    cmd.add_argument(
        "--fax-resolution",
        action="store_true",
        help="write the pages as the receiving machine prints them (1-bit, 204x196 dpi)",
    )
