"""The fax worker: claim due jobs under a lease, ask before re-sending, send, retry.

Final writes run under `asyncio.shield` so a shutdown mid-send cannot leave a job half-recorded
(arq's `run_job` → `finish_job`). A job whose last send may have reached the provider — claimed
again after a crash, retried by an admin, or cut off by a timeout after the request went out —
carries `reconcile`: the provider is asked (`FaxProvider.find`) first, and a fax it already has
is adopted instead of sent twice. Polling, expiry and the privacy purge are in `bridge.followup`.
"""

from __future__ import annotations

import asyncio
import logging
import random
from datetime import UTC, datetime, timedelta
from typing import Any

from bridge import logsetup
from bridge.config import Config
from bridge.errors import PermanentProviderError, StorageError, TransientProviderError
from bridge.events import apply_status
from bridge.followup import FollowUp
from bridge.leases import is_dead_local_owner, process_owner
from bridge.models import FailureReason, JobStatus, Lookup, OutboundFax, StatusUpdate
from bridge.outbound import adoptable, outbound_fax
from bridge.providers.base import FaxProvider
from bridge.store import Store
from bridge.store.jobs import IN_FLIGHT_WAIT

log = logging.getLogger(__name__)

# After a crash mid-send, how long past the provider timeout to wait before asking whether the
# provider took the fax after all.
INFLIGHT_MARGIN_S = 5.0
# Within that window, when to ask again whether the provider has taken the fax by now: after
# this at first, then after as long again as the send has been away (5, 10, 20 s …), so a fax
# taken late is adopted soon and a provider whose look-ups are rate limited (Documo: 8 a
# minute) is asked a handful of times, not every few seconds.
INFLIGHT_REASK_S = 5.0
# A send's outcome that cannot be written (the database restarts) is tried again, this often.
FINISH_RETRY_FIRST_S = 0.2
FINISH_RETRY_MAX_S = 5.0


def backoff_s(attempt: int, base_s: float, max_s: float, rng: random.Random) -> float:
    """Exponential backoff with jitter: base·2^(n-1), capped, then scaled by 0.5 to 1.0."""
    delay = min(max_s, base_s * 2 ** max(0, attempt - 1))
    return float(delay * (0.5 + rng.random() / 2))


class FaxWorker:
    def __init__(
        self,
        config: Config,
        store: Store,
        providers: dict[str, FaxProvider[Any]],
        wake: asyncio.Event,
    ) -> None:
        self.config = config
        self.store = store
        self.providers = providers
        self.wake = wake
        self.owner = process_owner()
        self.rng = random.Random()
        self._running: dict[asyncio.Task[None], str] = {}  # send in flight → its job id
        self._stopping = asyncio.Event()
        self.followup = FollowUp(config, store, providers)

    async def run(self) -> None:
        settings = self.config.worker
        heartbeat = asyncio.get_running_loop().create_task(self._heartbeat(), name="lease-renewal")
        try:
            await self._release_dead_leases()
            await self._loop(settings)
        finally:
            heartbeat.cancel()

    async def _release_dead_leases(self) -> None:
        """Sends cut off when a bridge of this host died are claimed again now, not after
        their lease; the provider is asked first (`reconcile`) whether it has them."""
        try:
            owners = await asyncio.to_thread(self.store.jobs.lease_owners)
            dead = [owner for owner in owners if is_dead_local_owner(owner)]
            released = await asyncio.to_thread(self.store.jobs.release_leases, dead)
        except StorageError as exc:
            log.error("worker cannot reach the store to free dead leases: %s", exc)
            return
        if released:
            log.warning("%d send(s) of a stopped bridge (%s) claimed again", released, dead)

    async def _heartbeat(self) -> None:
        lease_s = self.config.worker.lease_s
        while True:
            await asyncio.sleep(lease_s / 3)
            try:
                await asyncio.to_thread(
                    self.store.jobs.renew_leases, self.owner, list(self._running.values()), lease_s
                )
            except StorageError as exc:
                log.error("cannot renew the leases of sends in flight: %s", exc)

    async def _loop(self, settings: Any) -> None:
        while not self._stopping.is_set():
            try:
                await self._claim_and_start(settings.concurrency - len(self._running))
                await self.followup.run_once()
            except StorageError as exc:
                log.error("worker cannot reach the store: %s", exc)
            self.wake.clear()
            try:
                await asyncio.wait_for(self.wake.wait(), timeout=settings.poll_interval_s)
            except TimeoutError:
                pass

    async def stop(self) -> None:
        """Stop claiming; let sends in flight finish and record their outcome."""
        self._stopping.set()
        self.wake.set()
        if self._running:
            await asyncio.gather(*self._running, return_exceptions=True)

    async def _claim_and_start(self, free: int) -> None:
        if free <= 0:
            return
        jobs = await asyncio.to_thread(
            self.store.jobs.claim_due, self.owner, free, self.config.worker.lease_s
        )
        for job in jobs:
            task = asyncio.get_running_loop().create_task(self._send(job))
            self._running[task] = job.id
            task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._running.pop(task, None)
        self.wake.set()  # a slot is free

    async def _send(self, job: Any) -> None:
        logsetup.bind_job(job.id, job.attempt_id)  # this task's log lines name the job
        provider = self.providers.get(job.provider)
        if provider is None:
            await self._finish(
                self.store.jobs.fail,
                job.id,
                FailureReason.REJECTED,
                code=None,
                text=f"provider {job.provider!r} is not configured",
                detail="no such provider",
            )
            return
        faxbox = self._faxbox(job.faxbox)
        header = faxbox.fax_header if faxbox is not None else None
        fax = outbound_fax(self.store, job, provider.callback_url(), header)
        if job.reconcile and await self._reconciled(job, provider, fax):
            return
        log.info(
            "job %s: sending to %s via %s (attempt %d)",
            job.id,
            job.to_number,
            provider.name,
            job.attempts,
        )
        try:
            result = await provider.send(fax)
        except TransientProviderError as exc:
            await self._transient(job, exc)
        except PermanentProviderError as exc:
            log.warning("job %s refused by %s: %s", job.id, provider.name, exc.message)
            await self._finish(
                self.store.jobs.fail,
                job.id,
                FailureReason.REJECTED,
                code=exc.code,
                text=exc.message,
                detail=f"attempt {job.attempts}: refused: {exc.message}",
            )
        except Exception as exc:
            log.exception("job %s: unexpected error from %s", job.id, provider.name)
            await self._transient(job, TransientProviderError(f"{exc.__class__.__name__}: {exc}"))
        else:
            detail = (
                f"attempt {job.attempts}: accepted by {provider.name} as {result.provider_fax_id}"
            )
            await self._finish(
                self.store.jobs.record_submitted,
                job.id,
                result.provider_fax_id,
                detail,
                provider.config.status_poll_s,
                provider_redials=provider.redials_natively,
                round=job.round,
            )
            if result.status.rank > JobStatus.SUBMITTED.rank:
                update = StatusUpdate(
                    result.provider_fax_id,
                    result.status,
                    provider_code=result.raw_status,
                    job_id=job.id,
                )
                await asyncio.shield(apply_status(self.store, provider.name, update, "send reply"))

    def _faxbox(self, name: str) -> Any:
        try:
            return self.config.faxbox(name)
        except KeyError:
            return None

    async def _reconciled(self, job: Any, provider: FaxProvider[Any], fax: OutboundFax) -> bool:
        """Ask the provider whether it already has this job's fax; True when nothing is to be
        sent now (a fax was adopted, or the question must wait)."""
        started = await asyncio.to_thread(self.store.jobs.interrupted_send_started, job.id)
        window_s = 0.0
        away_s = 0.0
        if started is not None:
            away_s = (datetime.now(UTC) - started).total_seconds()
            # A send cut off by a crash may still be taken by the provider until it gives up
            # on it too (our timeout, and a margin): until then a fax the provider does not
            # have yet is asked about again, never sent.
            ready = started + timedelta(seconds=provider.config.timeout_s + INFLIGHT_MARGIN_S)
            window_s = (ready - datetime.now(UTC)).total_seconds()
        try:
            lookup = await provider.find(fax)
        except TransientProviderError as exc:
            # Cannot ask now: never send blind while the provider may have it; ask again later.
            delay = exc.retry_after_s if exc.retry_after_s is not None else 30.0
            await self._finish(
                self.store.jobs.reschedule,
                job.id,
                delay,
                f"cannot ask {provider.name} whether it has this fax ({exc.message}); "
                f"asking again in {delay:.0f} s" + (IN_FLIGHT_WAIT if window_s > 0 else ""),
                refund=True,  # asking is no try: the claim that follows counts the real one
                reconcile=True,
            )
            return True
        except PermanentProviderError as exc:
            lookup = Lookup(certain=False, detail=exc.message)
        found = adoptable(job, lookup)
        if found is not None:
            log.info(
                "job %s: %s already has it as %s; adopting, not sending again",
                job.id,
                provider.name,
                found.provider_fax_id,
            )
            detail = (
                f"found at {provider.name} as {found.provider_fax_id} ({found.status.value}); "
                "adopted, not sent again"
            )
            await self._finish(
                self.store.jobs.record_submitted,
                job.id,
                found.provider_fax_id,
                detail,
                provider.config.status_poll_s,
                provider_redials=provider.redials_natively,
                round=job.round,
            )
            update = StatusUpdate(**{**found.__dict__, "job_id": job.id})
            if update.status.rank > JobStatus.SUBMITTED.rank:
                await asyncio.shield(
                    apply_status(self.store, provider.name, update, "reconciliation")
                )
            return True
        if window_s > 0:
            # Not there yet: ask again soon (or, where the provider cannot tell, once the
            # window has passed), so a fax taken late is adopted within seconds.
            delay = min(window_s, max(INFLIGHT_REASK_S, away_s)) if lookup.certain else window_s
            await self._finish(
                self.store.jobs.reschedule,
                job.id,
                delay,
                f"{provider.name} has no fax for this job yet; asking again in {delay:.0f} s"
                + IN_FLIGHT_WAIT,
                refund=True,  # the claim that follows counts the one real try
                reconcile=True,
            )
            return True
        if not lookup.certain:
            why = lookup.detail or f"{provider.name} cannot tell whether it already has it"
            log.warning("job %s: sending again may duplicate the fax: %s", job.id, why)
            await self._finish(self.store.jobs.mark_possible_duplicate, job.id, why)
        return False

    async def _transient(self, job: Any, exc: TransientProviderError) -> None:
        settings = self.config.worker
        if exc.maybe_sent:
            # The request went out and the answer was lost: the provider may have the fax, so
            # the next try asks it first. The try still counts, which bounds the re-sends to
            # `max_attempts` where the provider cannot be asked.
            if job.attempts < settings.max_attempts:
                delay = exc.retry_after_s if exc.retry_after_s is not None else settings.backoff_s
                await self._finish(
                    self.store.jobs.reschedule,
                    job.id,
                    delay,
                    f"attempt {job.attempts}: {exc.message}; the provider may have the fax, "
                    f"asking it in {delay:.0f} s before any re-send",
                    reconcile=True,
                )
                return
        if exc.rate_limited:
            # Being asked to slow down is not a failed try (HelloFax's 200-pending 429).
            delay = exc.retry_after_s if exc.retry_after_s is not None else 60.0
            await self._finish(
                self.store.jobs.reschedule,
                job.id,
                delay,
                f"rate-limited: {exc.message}; next try in {delay:.0f} s",
                refund=True,
            )
            return
        if job.attempts >= settings.max_attempts:
            await self._finish(
                self.store.jobs.fail,
                job.id,
                FailureReason.PROVIDER_ERROR,
                code=exc.code,
                text=exc.message,
                detail=f"attempt {job.attempts}: {exc.message}; gave up after "
                f"{job.attempts} attempts",
            )
            return
        if exc.retry_after_s is not None:
            delay = exc.retry_after_s
        else:
            delay = backoff_s(job.attempts, settings.backoff_s, settings.max_backoff_s, self.rng)
        log.info("job %s: %s; retrying in %.1f s", job.id, exc.message, delay)
        await self._finish(
            self.store.jobs.reschedule,
            job.id,
            delay,
            f"attempt {job.attempts}: {exc.message}; next try in {delay:.0f} s",
        )

    async def _finish(self, write: Any, *args: Any, **kwargs: Any) -> None:
        """Record an outcome even if we are being cancelled (shutdown)."""
        await asyncio.shield(self._record(write, *args, **kwargs))

    async def _record(self, write: Any, *args: Any, **kwargs: Any) -> None:
        """Write an outcome, trying again through a database outage of up to a lease.

        The outcome of a send lives only in this task until it is written: dropping it on a
        PostgreSQL restart would leave the job `submitting` until its lease ran out and the
        provider was asked. Every write here is guarded by the job's status, so one that
        committed before its answer was lost is a no-op when repeated.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.worker.lease_s
        delay = FINISH_RETRY_FIRST_S
        while True:
            try:
                await asyncio.to_thread(write, *args, **kwargs)
                return
            except StorageError as exc:
                if loop.time() + delay > deadline:
                    raise
                log.warning("cannot record the outcome yet (%s); again in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, FINISH_RETRY_MAX_S)
