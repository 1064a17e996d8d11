"""Fax.Plus read: records by id, the outbox, and the sent faxes paged by time window.

`GET /accounts/{uid}/faxes` takes `category`, `after`, `before` (`YYYY-MM-DD HH:mm:ss`) and
`limit` (default 50) and nothing else: no cursor, no total, no documented order
(faxplus-python docs/FaxesApi.md list_faxes). So the sent faxes are read window by window,
walking back from now: a window that comes back full is split in two and asked again, a sparse
one lets the next grow. This needs no order from the API, and it stops after a fixed number of
requests, saying so. `GET /accounts/{uid}/outbox` lists every fax not sent yet, in one answer
(docs/OutboxApi.md list_outbox_faxes, docs/OutboxList.md).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx

from bridge.config import FaxPlusConfig
from bridge.models import Lookup, OutboundFax, StatusUpdate
from bridge.providers.faxplus_wire import (
    TEXTS,
    answer,
    classify,
    comment_reference,
    format_time,
    parse_time,
    records,
    with_description,
)
from bridge.providers.http import HTTPProvider
from bridge.providers.values import as_int

log = logging.getLogger(__name__)

PAGE = 50  # list_faxes' default `limit`; no maximum is documented
MAX_REQUESTS = 40  # one look-up never asks more than this many listing pages
FIRST_WINDOW = timedelta(hours=1)
# Job records live 30 days by default (storage.retention_days): no older fax needs finding.
LOOKBACK = timedelta(days=31)
CLOCK_SKEW = timedelta(minutes=10)  # Fax.Plus's clock may run ahead of ours
# Which time the listing filters on is not documented: a fax that started at a known moment
# was submitted at most its redials (2, at most 29 minutes apart) and some queueing before.
AROUND = timedelta(hours=2)


def job_created(job_id: str | None) -> datetime | None:
    """When a job was created, from its id (`store.db.new_id`: 11 hex digits of Unix
    milliseconds, then 6 random ones); None for an id of another shape or an implausible time.
    No fax of a job starts before the job: the sent faxes are read no further back."""
    if job_id is None or not re.fullmatch(r"[0-9a-f]{17}", job_id):
        return None
    born = datetime.fromtimestamp(int(job_id[:11], 16) / 1000, tz=UTC)
    return born if born <= datetime.now(UTC) + CLOCK_SKEW else None


@dataclass
class Walk:
    """What one walk over the sent faxes found, and whether it read every window."""

    found: list[dict[str, Any]] = field(default_factory=list)
    requests: int = 0
    complete: bool = True

    @property
    def why_incomplete(self) -> str:
        return (
            f"read {self.requests} pages of Fax.Plus's sent faxes (the bound) without reaching "
            f"the {LOOKBACK.days} days a job is kept"
        )


class FaxPlusLookup(HTTPProvider[FaxPlusConfig]):
    """The reading side of the Fax.Plus adapter."""

    async def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.config.access_token}"}
        headers["Accept"] = "application/json"
        if self.config.client_id:  # only OAuth apps have one; PATs must not send it
            headers["x-fax-clientid"] = self.config.client_id
        kwargs["headers"] = headers | kwargs.get("headers", {})
        return await self.request(method, path, **kwargs)

    def account_path(self, *rest: str) -> str:
        parts = [self.config.user_id, *rest]
        return "/accounts/" + "/".join(quote(p, safe="") for p in parts)

    def error_text(self, response: httpx.Response) -> str:
        return with_description(super().error_text(response), response)

    async def record(self, kind: str, fax_id: str) -> dict[str, Any] | None:
        """`GET /outbox/{id}` or `GET /faxes/{id}`; None when Fax.Plus has no such record."""
        response = await self.call_or_forgotten("GET", self.account_path(kind, fax_id))
        return None if response is None else answer(response)

    def update(self, record: dict[str, Any], *, pending: bool = False) -> StatusUpdate:
        """A record (outbox, fax or webhook `data`) in the common model, linked to our job by
        the reference in its comment when it carries one."""
        raw = str(record.get("status") or "")
        status, reason = classify(raw, pending=pending)
        # `description` says "OK" even beside a failure (apidoc "Get a fax record" example):
        # only words of its own are kept, else Fax.Plus's documented meaning of the status.
        text = record.get("description")
        if not isinstance(text, str) or text.strip().upper() in ("", "OK", raw.upper()):
            text = TEXTS.get(raw)
        update = StatusUpdate(
            provider_fax_id=str(record.get("id") or ""),
            status=status,
            reason=reason,
            provider_code=raw or None,
            provider_text=text,
            pages=as_int(record.get("pages", record.get("page_count"))),
            at=parse_time(
                record.get("last_updated_status_time")
                or record.get("last_update")
                or record.get("start_time")
            ),
        )
        found = comment_reference(record)
        if found is None:
            return update
        return replace(update, job_id=found.job_id, round=found.round)

    # -- listings ------------------------------------------------------------------------
    async def outbox(self) -> list[dict[str, Any]]:
        return records(answer(await self.call("GET", self.account_path("outbox"))))

    async def walk_sent(
        self,
        wanted: Callable[[dict[str, Any]], bool],
        *,
        first: bool,
        around: datetime | None = None,
        job_id: str | None = None,
    ) -> Walk:
        """The sent faxes of the last `LOOKBACK` that `wanted` accepts, newest windows first;
        `first` stops at the first window that has one. `around`: only the hours before that
        moment (a webhook's start time), for a fax known to have started then. `job_id`: no
        further back than that job's creation, which its id tells."""
        walk = Walk()
        seen: set[str] = set()
        now = datetime.now(UTC).replace(microsecond=0)
        until, oldest, span = now + CLOCK_SKEW, now - LOOKBACK, FIRST_WINDOW
        if around is not None:
            until, oldest = around + CLOCK_SKEW, around - AROUND
        if (born := job_created(job_id)) is not None:
            oldest = max(oldest, born - CLOCK_SKEW)
        while until > oldest:
            if walk.requests >= MAX_REQUESTS:
                walk.complete = False
                log.warning("%s: %s", self.name, walk.why_incomplete)
                break
            start = max(oldest, until - span)
            params = {
                "category": "sent",
                # Whether `after` takes in its own second is not documented ("records from that
                # date"): asked one second earlier, a fax on a window's edge is never missed
                # (seen twice at worst, and counted once).
                "after": format_time(start - timedelta(seconds=1)),
                "before": format_time(until),
                "limit": str(PAGE),
            }
            response = await self.call("GET", self.account_path("faxes"), params=params)
            rows = records(answer(response))
            walk.requests += 1
            if len(rows) >= PAGE and until - start > timedelta(seconds=1):
                span = timedelta(seconds=max(1, int((until - start).total_seconds()) // 2))
                continue  # a full page may hide more: ask again for half the window
            if len(rows) >= PAGE:
                walk.complete = False  # PAGE faxes in one second: some may be unseen
            for row in rows:
                key = str(row.get("id") or "")
                if key and key not in seen and wanted(row):
                    walk.found.append(row)
                seen.add(key)
            if first and walk.found:
                break
            until = start
            if len(rows) < PAGE // 2:
                span = min(span * 2, LOOKBACK)
        return walk

    async def find(self, fax: OutboundFax) -> Lookup:
        """Every fax, unsent or sent, whose comment names `fax.job_id` (any round)."""

        def ours(record: dict[str, Any]) -> bool:
            found = comment_reference(record)
            return found is not None and found.job_id == fax.job_id

        pending = [self.update(r, pending=True) for r in await self.outbox() if ours(r)]
        walk = await self.walk_sent(ours, first=False, job_id=fax.job_id)
        sent = sorted(walk.found, key=lambda r: str(r.get("start_time") or ""), reverse=True)
        faxes = tuple(pending + [self.update(r) for r in sent])
        if not faxes and not walk.complete:
            return Lookup(certain=False, detail=f"{self.name}: {walk.why_incomplete}")
        return Lookup(faxes=faxes)
