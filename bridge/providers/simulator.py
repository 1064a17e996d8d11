"""The built-in fax network in a box (DESIGN.md §9): the default, needing no account.

It reports through the same HTTP callback path real providers use, so a demo exercises the
production path. Its state lives in files under `<data_dir>/simulator/`, so `status` (the
polling fallback) still answers after a restart.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import time
from collections.abc import Coroutine
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bridge import metrics
from bridge.config import SimulatorConfig
from bridge.errors import CallbackError, PermanentProviderError, TransientProviderError
from bridge.models import (
    CallbackRequest,
    CallbackResult,
    FailureReason,
    InboundFax,
    JobStatus,
    Lookup,
    OutboundFax,
    SendResult,
    StatusUpdate,
)
from bridge.providers.base import FaxProvider, ProviderContext, transmitted_pdf

log = logging.getLogger(__name__)

_FAILURES: dict[str, tuple[FailureReason, str]] = {
    "0001": (FailureReason.BUSY, "The line was busy"),
    "0002": (FailureReason.NO_ANSWER, "No answer after 60 seconds"),
    "0003": (FailureReason.BAD_NUMBER, "The number does not answer as a fax machine"),
    "0004": (FailureReason.DISCONNECTED, "The call dropped during page transmission"),
}
_UNAVAILABLE_SUFFIX = "0005"
_UNAVAILABLE_TIMES = 2
_BUSY_ONCE_SUFFIX = "0006"  # busy on the first dial, delivered on a redial


@dataclass(frozen=True)
class _Timeline:
    """When a simulated fax reaches each status, derived from its submit time."""

    fax_id: str
    job_id: str
    to: str
    caller_id: str
    pages: int
    submitted: float
    delay_s: float
    round: int = 0
    cancelled: bool = False

    def status_at(self, now: float) -> StatusUpdate:
        elapsed = now - self.submitted
        if elapsed < self.delay_s / 2:
            return self._update(JobStatus.SUBMITTED)
        if elapsed < self.delay_s:
            return self._update(JobStatus.SENDING)
        return self.final()

    def final(self) -> StatusUpdate:
        if self.cancelled:
            return self._update(JobStatus.CANCELLED, code="cancelled", text="Cancelled")
        failure = _FAILURES.get(self.to[-4:])
        if self.to.endswith(_BUSY_ONCE_SUFFIX) and self.round == 0:
            failure = _FAILURES["0001"]
        if failure is None:
            return self._update(JobStatus.DELIVERED, code="delivered", text="Fax delivered")
        reason, text = failure
        return self._update(JobStatus.FAILED, reason=reason, code=reason.value, text=text)

    def _update(
        self,
        status: JobStatus,
        reason: FailureReason | None = None,
        code: str | None = None,
        text: str | None = None,
    ) -> StatusUpdate:
        return StatusUpdate(
            provider_fax_id=self.fax_id,
            status=status,
            reason=reason,
            provider_code=code or status.value,
            provider_text=text,
            pages=self.pages,
            job_id=self.job_id,
            round=self.round,
        )


class SimulatorProvider(FaxProvider[SimulatorConfig]):
    type = "simulator"

    def __init__(
        self,
        name: str,
        config: SimulatorConfig,
        client: httpx.AsyncClient,
        context: ProviderContext,
    ) -> None:
        super().__init__(name, config, client, context)
        self._token = config.callback_token
        self._root = Path(context.data_dir) / "simulator"
        self._unavailable_counts: dict[str, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def callback_token(self) -> str:
        if self._token is None:
            self._token = _shared_token(self._root / "callback_token")
        return self._token

    @property
    def sent_dir(self) -> Path:
        return self._root / "sent"

    def _state_path(self, fax_id: str) -> Path:
        return self._root / "state" / f"{fax_id}.json"

    # -- sending -------------------------------------------------------------------------
    @metrics.timed
    async def send(self, fax: OutboundFax) -> SendResult:
        if fax.to.endswith(_UNAVAILABLE_SUFFIX):
            count = self._unavailable_counts.get(fax.job_id, 0)
            if count < _UNAVAILABLE_TIMES:
                self._unavailable_counts[fax.job_id] = count + 1
                raise TransientProviderError(
                    f"{self.name}: HTTP 503: the simulated provider is unavailable", code="503"
                )
        fax_id = f"sim-{fax.send_key}"  # a re-send after a crash is the same fax
        existing = self._load(fax_id)
        if existing is None:
            timeline = _Timeline(
                fax_id=fax_id,
                job_id=fax.job_id,
                to=fax.to,
                caller_id=fax.caller_id or "",
                pages=fax.total_pages,
                submitted=time.time(),
                delay_s=self.config.delay_s,
                round=fax.round,
            )
            await asyncio.to_thread(self._store, timeline, fax)
            if self.config.callbacks:
                self._spawn(self._report(timeline))
        return SendResult(fax_id, JobStatus.SUBMITTED, raw_status="submitted")

    def _store(self, timeline: _Timeline, fax: OutboundFax) -> None:
        self.sent_dir.mkdir(parents=True, exist_ok=True)
        self._state_path(timeline.fax_id).parent.mkdir(parents=True, exist_ok=True)
        _write_atomic(self.sent_dir / f"{timeline.fax_id}.pdf", transmitted_pdf(fax))
        state = {k: getattr(timeline, k) for k in timeline.__dataclass_fields__}
        _write_atomic(self._state_path(timeline.fax_id), json.dumps(state).encode())

    def _load(self, fax_id: str) -> _Timeline | None:
        try:
            data = json.loads(self._state_path(fax_id).read_text())
        except (FileNotFoundError, ValueError):
            return None
        return _Timeline(**data)

    async def status(
        self, provider_fax_id: str, *, job_id: str | None = None
    ) -> StatusUpdate | None:
        timeline = await asyncio.to_thread(self._load, provider_fax_id)
        return None if timeline is None else timeline.status_at(time.time())

    async def find(self, fax: OutboundFax) -> Lookup:
        """The simulator keeps every fax it took, so it can always tell."""
        prefix = f"sim-{fax.job_id}"
        now = time.time()

        def scan() -> list[StatusUpdate]:
            found = []
            for path in (self._root / "state").glob(f"{prefix}*.json"):
                timeline = self._load(path.stem)
                if timeline is not None and timeline.job_id == fax.job_id:
                    found.append((timeline.submitted, timeline.status_at(now)))
            return [update for _, update in sorted(found, key=lambda x: x[0], reverse=True)]

        return Lookup(faxes=tuple(await asyncio.to_thread(scan)))

    async def cancel(self, provider_fax_id: str) -> None:
        timeline = await asyncio.to_thread(self._load, provider_fax_id)
        if timeline is None:
            raise PermanentProviderError(f"{self.name}: no fax {provider_fax_id}", code="404")
        if timeline.status_at(time.time()).status.is_final:
            raise PermanentProviderError(
                f"{self.name}: fax {provider_fax_id} is already finished", code="409"
            )
        cancelled = replace(timeline, cancelled=True)
        state = {k: getattr(cancelled, k) for k in cancelled.__dataclass_fields__}
        await asyncio.to_thread(
            _write_atomic, self._state_path(provider_fax_id), json.dumps(state).encode()
        )

    async def delete(self, provider_fax_id: str, *, inbound: bool = False) -> None:
        def remove() -> None:
            for path in (
                self._state_path(provider_fax_id),
                self.sent_dir / f"{provider_fax_id}.pdf",
            ):
                path.unlink(missing_ok=True)

        await asyncio.to_thread(remove)

    async def fax_lines(self) -> list[str] | None:
        return sorted(self.context.inbound_numbers)

    # -- reporting through the real callback path ----------------------------------------
    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _report(self, timeline: _Timeline) -> None:
        # Every stage is reported, even when a slow callback made us late for the next one.
        first = timeline.status_at(timeline.submitted)
        await self._post({"event": "status", **_status_payload(first)})
        await asyncio.sleep(max(0.0, timeline.submitted + timeline.delay_s / 2 - time.time()))
        sending = timeline.status_at(timeline.submitted + timeline.delay_s / 2)
        await self._post({"event": "status", **_status_payload(sending)})
        await asyncio.sleep(max(0.0, timeline.submitted + timeline.delay_s - time.time()))
        final = (await asyncio.to_thread(self._load, timeline.fax_id) or timeline).final()
        await self._post({"event": "status", **_status_payload(final)})
        if final.status is JobStatus.DELIVERED and timeline.to in self.context.inbound_numbers:
            await self._post(
                {
                    "event": "inbound",
                    "fax_id": timeline.fax_id,
                    "from": timeline.caller_id,
                    "to": timeline.to,
                    "pages": timeline.pages,
                    "received": datetime.now(UTC).isoformat(),
                    "station_id": timeline.caller_id,
                }
            )

    async def _post(self, payload: dict[str, object]) -> None:
        url = self.callback_url()
        for attempt in range(5):
            try:
                response = await self.client.post(url, json=payload, timeout=10)
            except httpx.TransportError as exc:
                log.warning("simulator callback to %s failed: %s", url, exc)
            else:
                if response.status_code < 500:
                    if response.status_code >= 400:
                        log.warning("simulator callback refused: %s", response.status_code)
                    return
            await asyncio.sleep(0.5 * 2**attempt)

    async def start(self) -> None:
        """Resume reporting faxes that were still in flight when the bridge stopped."""
        state_dir = self._root / "state"
        if not state_dir.is_dir() or not self.config.callbacks:
            return
        now = time.time()
        for path in sorted(state_dir.glob("*.json")):
            timeline = self._load(path.stem)
            if timeline and now - timeline.submitted < timeline.delay_s + 3600:
                self._spawn(self._report(timeline))

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- callbacks -----------------------------------------------------------------------
    async def parse_callback(self, request: CallbackRequest) -> CallbackResult:
        self.verify_callback_token(request)
        try:
            payload = json.loads(request.body)
            event = payload["event"]
            if event == "status":
                reason = payload.get("reason")
                update = StatusUpdate(
                    provider_fax_id=str(payload["fax_id"]),
                    status=JobStatus(payload["status"]),
                    reason=FailureReason(reason) if reason else None,
                    provider_code=payload.get("code"),
                    provider_text=payload.get("text"),
                    pages=payload.get("pages"),
                    job_id=payload.get("job_id"),
                    round=payload.get("round"),
                )
                return CallbackResult(updates=[update])
            if event == "inbound":
                inbound = InboundFax(
                    provider_fax_id=str(payload["fax_id"]),
                    from_number=str(payload["from"]),
                    to_number=str(payload["to"]),
                    pages=payload.get("pages"),
                    received=datetime.fromisoformat(payload["received"]),
                    remote_station_id=payload.get("station_id"),
                    raw=payload,
                )
                return CallbackResult(inbound=[inbound])
        except (ValueError, KeyError, TypeError) as exc:
            raise CallbackError(f"malformed simulator callback: {exc}") from exc
        raise CallbackError(f"unknown simulator event {event!r}")

    async def fetch_document(self, fax: InboundFax) -> bytes:
        return await asyncio.to_thread((self.sent_dir / f"{fax.provider_fax_id}.pdf").read_bytes)

    async def check(self) -> str:
        return "the simulator needs no credentials"

    async def setup(self) -> list[str]:
        return ["The simulator calls back to this bridge by itself; nothing to set up."]


def _status_payload(update: StatusUpdate) -> dict[str, object]:
    return {
        "fax_id": update.provider_fax_id,
        "job_id": update.job_id,
        "status": update.status.value,
        "reason": update.reason.value if update.reason else None,
        "code": update.provider_code,
        "text": update.provider_text,
        "pages": update.pages,
        "round": update.round,
    }


def _shared_token(path: Path) -> str:
    """One generated token per data_dir, not per process: bridges sharing a data_dir (and a
    restarted one) accept each other's simulator callbacks, wherever they land."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(24))
        try:
            os.link(tmp, path)  # create-if-absent, atomically: the first bridge's token wins
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return path.read_text().strip()


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
