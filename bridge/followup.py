"""After the send: poll the quiet, notice forgotten faxes, give up in time, purge at the provider.

Run by the fax worker's loop, between claims. Each piece is cheap when there is nothing to do
(one indexed query), and the expiry and purge sweeps run every `worker.sweep_interval_s`.

- Polling: an in-flight job whose provider has been quiet for `status_poll_s` is asked about.
  When the provider no longer knows the fax, `find` gets one chance to name it under another id
  (Fax.Plus swaps ids when it sends); otherwise the job's grace clock starts.
- Expiry (`JobUpkeep.expire`): no job waits for ever; it ends `unknown` and its sender is told.
- Purge: with `delete_after_delivery`, settled faxes whose report is out and inbound faxes that
  were mailed are deleted at the provider, each outcome in the job's history.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from bridge.config import Config
from bridge.errors import NotSupportedByProvider, ProviderError, TransientProviderError
from bridge.events import apply_status
from bridge.models import JobStatus, StatusUpdate
from bridge.outbound import outbound_fax
from bridge.providers.base import FaxProvider
from bridge.store import Store

log = logging.getLogger(__name__)


class FollowUp:
    def __init__(
        self, config: Config, store: Store, providers: dict[str, FaxProvider[Any]]
    ) -> None:
        self.config = config
        self.store = store
        self.providers = providers
        self._poll_s = {name: p.config.status_poll_s for name, p in providers.items()}
        self._grace_s = {name: p.forgotten_after_s() for name, p in providers.items()}
        self._purging = [box.name for box in config.faxboxes if box.delete_after_delivery]
        self._next_sweep = 0.0

    async def run_once(self) -> None:
        await self.poll_quiet_jobs()
        if time.monotonic() >= self._next_sweep:
            self._next_sweep = time.monotonic() + self.config.worker.sweep_interval_s
            await self.sweep()

    async def sweep(self) -> None:
        ended = await asyncio.to_thread(
            self.store.jobs.expire, self.config.worker.give_up_after, self._grace_s
        )
        if ended:
            log.warning("%d fax job(s) ended as unknown or expired", ended)
        await self.purge()

    # -- polling -------------------------------------------------------------------------
    async def poll_quiet_jobs(self) -> None:
        jobs = await asyncio.to_thread(self.store.jobs.due_polls, self._poll_s, 20)
        for job in jobs:
            provider = self.providers.get(job.provider)
            if provider is None or not job.provider_fax_id:
                continue
            try:
                update = await provider.status(job.provider_fax_id, job_id=job.id)
                if update is None:
                    update = await self._found_elsewhere(provider, job)
            except ProviderError as exc:
                log.info("job %s: status poll failed: %s", job.id, exc.message)
                continue
            if update is not None:
                await apply_status(self.store, provider.name, update, "status poll")
                continue
            await asyncio.to_thread(
                self.store.jobs.mark_forgotten,
                job.id,
                job.provider_fax_id,
                self._grace_s.get(provider.name, 3600.0),
            )

    async def _found_elsewhere(self, provider: FaxProvider[Any], job: Any) -> StatusUpdate | None:
        """The provider forgot the id we hold: does it know this round's fax by reference?"""
        lookup = await provider.find(outbound_fax(self.store, job, provider.callback_url()))
        for fax in lookup.faxes:
            if fax.round in (None, job.round) and fax.status is not JobStatus.CANCELLED:
                return StatusUpdate(**{**fax.__dict__, "job_id": job.id, "round": job.round})
        return None

    # -- the privacy purge ---------------------------------------------------------------
    async def purge(self) -> None:
        if not self._purging:
            return
        for job in await asyncio.to_thread(self.store.jobs.purge_due, self._purging):
            provider = self.providers.get(job.provider)
            if provider is None:
                continue
            outcome, detail = await self._delete(provider, job.provider_fax_id, inbound=False)
            if outcome:
                await asyncio.to_thread(self.store.jobs.mark_purged, job.id, outcome, detail)
        for fax in await asyncio.to_thread(self.store.jobs.inbound_purge_due, self._purging):
            provider = self.providers.get(fax.provider)
            if provider is None:
                continue
            outcome, detail = await self._delete(provider, fax.provider_fax_id, inbound=True)
            log.info("inbound fax %s: %s", fax.id, detail)
            if outcome:
                await asyncio.to_thread(self.store.jobs.mark_inbound_purged, fax.id, outcome)

    async def _delete(
        self, provider: FaxProvider[Any], provider_fax_id: str, *, inbound: bool
    ) -> tuple[str | None, str]:
        """(outcome, what happened); no outcome when it is worth trying again later."""
        try:
            await provider.delete(provider_fax_id, inbound=inbound)
        except NotSupportedByProvider as exc:
            return "unsupported", f"not deleted at the provider: {exc.message}"
        except TransientProviderError as exc:
            return None, f"deleting at the provider must wait: {exc.message}"
        except ProviderError as exc:
            log.warning("cannot delete fax %s at %s: %s", provider_fax_id, provider.name, exc)
            return "failed", f"deleting at the provider failed: {exc.message}"
        return "done", f"deleted fax {provider_fax_id} and its files at {provider.name}"
