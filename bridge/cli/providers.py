"""`faxbridge providers list|check|setup`: the configured providers and their accounts.

Adapters are built exactly as `serve` builds them (`build_providers` with one
`httpx.AsyncClient`), so a `check` that passes here means the bridge's own calls authenticate.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from ipaddress import ip_address
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from bridge.cli.common import add_command, add_group, config_of
from bridge.cli.output import Columns, CommandError, mask_url, paragraph, show
from bridge.config import Config, resolve_config_path

if TYPE_CHECKING:
    from bridge.cli.common import Subcommands
    from bridge.errors import ProviderError
    from bridge.providers.base import FaxProvider

T = TypeVar("T")

PROVIDER_COLUMNS: Columns = [
    ("name", "NAME"),
    ("type", "TYPE"),
    ("base_url", "BASE URL"),
    ("faxboxes", "FAXBOXES"),
    ("callback_url", "CALLBACK URL"),
]

# Keys every provider block has; the rest of a block is its account and credentials.
_COMMON_KEYS = {
    "type",
    "base_url",
    "status_poll_s",
    "timeout_s",
    "callback_token",
    "forgotten_grace_s",
}


async def _with_adapters(
    config: Config, run: Callable[[dict[str, FaxProvider[Any]]], Awaitable[T]]
) -> T:
    import httpx

    from bridge.providers.registry import build_providers

    async with httpx.AsyncClient(timeout=httpx.Timeout(30.0)) as client:
        adapters = build_providers(config, client)
        try:
            return await run(adapters)
        finally:
            for adapter in adapters.values():
                await adapter.aclose()


def _base_url(adapter: FaxProvider[Any]) -> str | None:
    value = getattr(adapter, "base_url", None)  # HTTP adapters only
    return str(value) if value else None


def _masked_callback_url(adapter: FaxProvider[Any]) -> str:
    return mask_url(adapter.callback_url())


def _describe(config: Config, adapter: FaxProvider[Any]) -> dict[str, Any]:
    return {
        "name": adapter.name,
        "type": adapter.type,
        "base_url": _base_url(adapter),
        "faxboxes": [box.name for box in config.faxboxes if box.provider == adapter.name],
        "callback_url": _masked_callback_url(adapter),
    }


def providers_list(args: argparse.Namespace) -> int:
    config = config_of(args)

    async def describe(adapters: dict[str, FaxProvider[Any]]) -> list[dict[str, Any]]:
        return [_describe(config, adapter) for adapter in adapters.values()]

    show(asyncio.run(_with_adapters(config, describe)), args.json, PROVIDER_COLUMNS)
    return 0


def _chosen(args: argparse.Namespace, config: Config) -> str:
    if args.name not in config.providers:
        known = ", ".join(sorted(config.providers)) or "none"
        raise CommandError(
            f"No provider {args.name!r} under providers: in {resolve_config_path(args.config)} "
            f"(configured: {known})."
        )
    name: str = args.name
    return name


def _label(adapter: FaxProvider[Any]) -> str:
    return adapter.name if adapter.name == adapter.type else f"{adapter.name} ({adapter.type})"


def _failure(
    args: argparse.Namespace, adapter: FaxProvider[Any], what: str, exc: ProviderError
) -> CommandError:
    """One paragraph: which provider, what the provider said, and what to look at."""
    said = exc.message.removeprefix(f"{adapter.name}: ")
    where = f"providers.{adapter.name} in {resolve_config_path(args.config)}"
    if exc.code in ("401", "403", "auth"):
        keys = [
            key
            for key, field in type(adapter.config).model_fields.items()
            if key not in _COMMON_KEYS and not isinstance(field.default, bool)
        ]
        listed = " and ".join([", ".join(keys[:-1]), keys[-1]] if len(keys) > 1 else keys)
        hint = f"The provider refused the credentials: check {listed} under {where}."
    elif exc.code in ("connect", "timeout"):
        hint = (
            f"The provider at {_base_url(adapter)} did not answer: check base_url under "
            f"{where} and that this machine can reach it."
        )
    elif exc.code and exc.code.isdigit() and int(exc.code) >= 500:
        hint = "The provider has a problem of its own; try again later."
    else:
        hint = f"Check the settings under {where}."
    return CommandError(f"{_label(adapter)}: {what} failed: {paragraph(said)} {hint}")


def _run_on(
    args: argparse.Namespace,
    what: str,
    call: Callable[[FaxProvider[Any]], Awaitable[T]],
) -> tuple[FaxProvider[Any], T]:
    from bridge.errors import ProviderError

    config = config_of(args)
    name = _chosen(args, config)

    async def run(adapters: dict[str, FaxProvider[Any]]) -> tuple[FaxProvider[Any], T]:
        adapter = adapters[name]
        try:
            return adapter, await call(adapter)
        except ProviderError as exc:
            raise _failure(args, adapter, what, exc) from exc

    return asyncio.run(_with_adapters(config, run))


def providers_check(args: argparse.Namespace) -> int:
    config = config_of(args)

    async def check(adapter: FaxProvider[Any]) -> tuple[str, list[str]]:
        return await adapter.check(), await _caller_id_lines(config, adapter)

    adapter, (description, caller_ids) = _run_on(args, "the credentials check", check)
    print(f"{adapter.name}: credentials OK — {description}")
    for line in caller_ids:
        print(line)
    return 0


async def _caller_id_lines(config: Config, adapter: FaxProvider[Any]) -> list[str]:
    """Whether each faxbox's caller ID is one of the account's own fax lines."""
    boxes = [box for box in config.faxboxes if box.provider == adapter.name]
    if not boxes:
        return []
    lines = await adapter.fax_lines()
    if lines is None:
        return [
            f"{adapter.name}: the {adapter.type} API does not list fax lines; caller IDs "
            "not checked"
        ]
    owned = set(lines)
    shown = ", ".join(sorted(owned)) or "none"
    out = []
    for box in boxes:
        if not box.caller_id:
            out.append(f"faxbox {box.name}: no caller_id; the provider's default line is used")
        elif box.caller_id in owned:
            out.append(f"faxbox {box.name}: caller ID {box.caller_id} is a fax line of the account")
        else:
            out.append(
                f"faxbox {box.name}: caller ID {box.caller_id} is NOT one of the account's fax "
                f"lines ({shown}); the provider may refuse the faxes or send another number"
            )
    return out


def providers_setup(args: argparse.Namespace) -> int:
    adapter, lines = _run_on(args, "setup", lambda a: a.setup())
    for line in lines:
        print(line)
    public_url = adapter.context.public_url
    if _base_url(adapter) and _is_loopback(public_url):
        print(
            f"note: http.public_url is {public_url}, which a provider elsewhere cannot reach; "
            "set it to the address providers call this bridge at.",
            file=sys.stderr,
        )
    return 0


def _is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


def register(commands: Subcommands) -> None:
    providers = add_group(commands, "providers", "the configured fax providers")
    cmd = add_command(providers, "list", providers_list, "list providers and their callback URLs")
    cmd.add_argument("--json", action="store_true", help="one JSON document on stdout")
    cmd = add_command(
        providers, "check", providers_check, "make one harmless call: do the credentials work?"
    )
    cmd.add_argument("name", metavar="NAME", help="a key under providers: in the config")
    cmd = add_command(
        providers,
        "setup",
        providers_setup,
        "register this bridge's callback URLs with the provider (or say how)",
    )
    cmd.add_argument("name", metavar="NAME", help="a key under providers: in the config")
