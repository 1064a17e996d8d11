"""What provider news does to the store, whether it came by callback or by polling."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from typing import Any

from bridge.config import Config, FaxboxConfig
from bridge.models import InboundFax, StatusUpdate
from bridge.numbers import to_e164
from bridge.providers.base import FaxProvider
from bridge.store import Store

log = logging.getLogger(__name__)


def describe(update: StatusUpdate, source: str) -> str:
    parts = [f"{source}: {update.status.value}"]
    if update.reason:
        parts.append(f"({update.reason.value})")
    if update.provider_code:
        parts.append(f"code {update.provider_code}")
    if update.provider_text:
        parts.append(f"- {update.provider_text}")
    return " ".join(parts)


async def apply_status(store: Store, provider: str, update: StatusUpdate, source: str) -> bool:
    """Apply one status report; False when it names no job of ours or changes nothing."""
    job_id = await asyncio.to_thread(store.jobs.find, provider, update)
    if job_id is None:
        log.warning("%s: status for unknown fax %s", provider, update.provider_fax_id)
        return False
    changed = await asyncio.to_thread(
        store.jobs.apply_update, job_id, update, describe(update, source)
    )
    if changed:
        log.info("%s job %s is %s", provider, job_id, update.status.value)
    return changed


def faxbox_for_number(config: Config, number: str) -> FaxboxConfig | None:
    """The faxbox whose `inbound.numbers` has `number`, compared in E.164 on both sides."""
    wanted = to_e164(number)
    for box in config.faxboxes:
        if wanted in {to_e164(n) for n in box.inbound.numbers}:
            return box
    return None


async def record_inbound(
    config: Config, store: Store, provider: FaxProvider[Any], fax: InboundFax
) -> str | None:
    """Store an inbound fax (document included) and queue its e-mail; idempotent."""
    fax = replace(fax, from_number=to_e164(fax.from_number), to_number=to_e164(fax.to_number))
    faxbox = faxbox_for_number(config, fax.to_number)
    if faxbox is None:
        log.warning(
            "%s: inbound fax %s to %s: no faxbox has that number",
            provider.name,
            fax.provider_fax_id,
            fax.to_number,
        )
        return None
    if await asyncio.to_thread(store.inbound.known, provider.name, fax.provider_fax_id):
        return None
    document = fax.document if fax.document is not None else await provider.fetch_document(fax)
    path = await asyncio.to_thread(
        store.db.write_file, f"inbound/{provider.name}-{_safe(fax.provider_fax_id)}.pdf", document
    )
    fax_id = await asyncio.to_thread(store.inbound.record, faxbox.name, provider.name, fax, path)
    if fax_id:
        log.info("inbound fax %s from %s for faxbox %s", fax_id, fax.from_number, faxbox.name)
    return fax_id


def _safe(value: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in value)[:100]
