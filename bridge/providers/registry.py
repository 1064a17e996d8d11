"""Provider types by their `type:` key, imported only when configured."""

from __future__ import annotations

import importlib
from typing import Any

import httpx

from bridge.config import Config
from bridge.errors import ConfigError
from bridge.providers.base import FaxProvider, ProviderContext

PROVIDER_TYPES: dict[str, str] = {
    "simulator": "bridge.providers.simulator:SimulatorProvider",
    "hellofax": "bridge.providers.hellofax:HelloFaxProvider",
    "faxplus": "bridge.providers.faxplus:FaxPlusProvider",
    "kazoo": "bridge.providers.kazoo:KazooProvider",
    "dropboxsign": "bridge.providers.dropboxsign:DropboxSignProvider",
    "mfax": "bridge.providers.mfax:MFaxProvider",
    "telnyx": "bridge.providers.telnyx:TelnyxProvider",
}


def provider_class(type_name: str) -> type[FaxProvider[Any]]:
    try:
        module_name, _, class_name = PROVIDER_TYPES[type_name].partition(":")
    except KeyError as exc:
        raise ConfigError(f"unknown provider type {type_name!r}") from exc
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise ConfigError(f"provider type {type_name!r} is not available in this build") from exc
    cls: type[FaxProvider[Any]] = getattr(module, class_name)
    return cls


def faxbox_problems(config: Config) -> list[str]:
    """What makes a configured faxbox unusable with its provider (each adapter says)."""
    problems: list[str] = []
    for box in config.faxboxes:
        problems += provider_class(config.providers[box.provider].type).faxbox_problems(box)
    return problems


def build_providers(
    config: Config, client: httpx.AsyncClient, *, public_url: str | None = None
) -> dict[str, FaxProvider[Any]]:
    """One adapter per configured provider key, all sharing one HTTP client."""
    numbers = frozenset(n for box in config.faxboxes for n in box.inbound.numbers)
    context = ProviderContext(
        public_url=(public_url or config.http.public_url).rstrip("/"),
        data_dir=config.storage.data_dir,
        inbound_numbers=numbers,
    )
    return {
        name: provider_class(cfg.type)(name, cfg, client, context)
        for name, cfg in config.providers.items()
    }
