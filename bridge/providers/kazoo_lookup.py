"""Kazoo searched: a job's faxes by our custom field, and the account's own numbers.

Crossbar lists through `crossbar_view`: `page_size` rows a page (50 by default),
`next_start_key` in the envelope while rows remain (sent back as `start_key`), newest first
unless asked otherwise; and `crossbar_filter` keeps only the documents whose `filter_<key>`
equals the value, so Kazoo itself searches by our `faxbridge_job_id` field (cb_faxes keeps
unknown keys on the fax document and returns them). `faxes/outgoing` lists the jobs still
running (faxes-db view `list_by_account`: id and status only, so each match is read);
`faxes/outbox` lists the finished ones from the month databases (view `list_by_folder`, whole
public documents) created between `created_from` and `created_to` (gregorian seconds, at most
`crossbar.maximum_range` apart: 31 days and an hour unless configured).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from bridge.config import KazooConfig
from bridge.errors import PermanentProviderError
from bridge.models import Lookup, OutboundFax, StatusUpdate
from bridge.providers.http import HTTPProvider
from bridge.providers.kazoo_records import (
    JOB_ID_FIELD,
    doc_update,
    strip_month,
    to_gregorian,
)
from bridge.providers.values import as_int

PAGE_SIZE = 50
MAX_PAGES = 20  # per listing; a job has a handful of faxes, so this is only a safety stop
WINDOW = timedelta(days=7)  # one outbox request: well inside any sane maximum_range
LOOKBACK = timedelta(days=35)  # the outbox is searched this far back at most
CLOCK_SKEW = timedelta(minutes=10)  # Kazoo's clock may differ from ours
# knm_numbers:check_number: the states in which a number can be the caller ID of a fax.
LINE_STATES = frozenset({"in_service", "reserved", "port_in", "port_out"})


class KazooLookup(HTTPProvider[KazooConfig]):
    """The reading side of the Kazoo adapter: documents, listings, reconciliation."""

    @property
    def _account(self) -> str:
        return f"accounts/{self.config.account_id}"

    async def get_doc(self, path: str, **kwargs: Any) -> dict[str, Any] | None:
        """One document's public fields, or None when Kazoo has no such document."""
        response = await self.call_or_forgotten("GET", path, **kwargs)
        return None if response is None else body_data(json_object(response))

    async def find(self, fax: OutboundFax) -> Lookup:
        now = datetime.now(UTC)
        faxes = f"{self._account}/faxes"
        found: dict[str, tuple[int, StatusUpdate]] = {}
        rows, complete = await self._rows(f"{faxes}/outgoing", fax.job_id, {})
        for row in rows:
            fax_id = row.get("id")
            doc = await self.get_doc(f"{faxes}/outgoing/{fax_id}") if fax_id else None
            if doc is not None:  # None: moved to the outbox meanwhile, and listed there
                _keep(found, fax.job_id, str(fax_id), doc)
        start, since_known = _lookback_start(fax.job_id, now)
        for begin, end in _windows(start, now + CLOCK_SKEW):
            span = {"created_from": to_gregorian(begin), "created_to": to_gregorian(end)}
            rows, listed = await self._rows(f"{faxes}/outbox", fax.job_id, span)
            complete = complete and listed
            for row in rows:
                if isinstance(row.get("id"), str):
                    _keep(found, fax.job_id, row["id"], row)
        ordered = tuple(update for _, update in sorted(found.values(), key=lambda f: -f[0]))
        if ordered or (complete and since_known):
            return Lookup(faxes=ordered)
        return Lookup(
            certain=False,
            detail=f"Kazoo's outbox was searched back to {start:%Y-%m-%d %H:%M} UTC only"
            + ("" if complete else f", and a listing had more than {MAX_PAGES} pages"),
        )

    async def _rows(
        self, path: str, job_id: str, params: dict[str, Any]
    ) -> tuple[list[dict[str, Any]], bool]:
        """The rows Kazoo lists for `job_id`, every page; False when the pages ran out."""
        return await self.listing(path, {**params, f"filter_{JOB_ID_FIELD}": job_id})

    async def listing(
        self, path: str, params: dict[str, Any] | None = None
    ) -> tuple[list[dict[str, Any]], bool]:
        """Every row of a Crossbar listing, page by page; False when the pages ran out."""
        query = {**(params or {}), "page_size": PAGE_SIZE}
        rows: list[dict[str, Any]] = []
        for _ in range(MAX_PAGES):
            body = json_object(await self.call("GET", path, params=query))
            data = body.get("data")
            rows += [row for row in data if isinstance(row, dict)] if isinstance(data, list) else []
            next_key = body.get("next_start_key")
            if not next_key or next_key == query.get("start_key"):
                return rows, True
            query["start_key"] = next_key
        return rows, False

    async def fax_lines(self) -> list[str] | None:
        """The numbers assigned to the account that Kazoo lets a fax carry as caller ID.

        fax_util:is_valid_caller_id asks the numbers database (knm_numbers:lookup_account),
        so the numbers of unfinished port requests, which cb_phone_numbers merges into its
        listing unless `include_ports=false`, are left out."""
        numbers: set[str] = set()
        query: dict[str, Any] = {"page_size": 100, "include_ports": "false"}
        for _ in range(MAX_PAGES):
            response = await self.call("GET", f"{self._account}/phone_numbers", params=query)
            body = json_object(response)
            listed = body_data(body).get("numbers")
            for number, props in listed.items() if isinstance(listed, dict) else ():
                state = props.get("state") if isinstance(props, dict) else None
                if state is None or state in LINE_STATES:
                    numbers.add(number)
            next_key = body.get("next_start_key")
            if not next_key or next_key == query.get("start_key"):
                break
            query["start_key"] = next_key
        return sorted(numbers)


def _keep(
    found: dict[str, tuple[int, StatusUpdate]], job_id: str, fax_id: str, doc: dict[str, Any]
) -> None:
    """Keep `doc` if our reference on it names `job_id` (Kazoo's filter is checked again: an
    old Crossbar may ignore it); an outbox record replaces the running job it became."""
    update = doc_update(strip_month(fax_id), doc)
    if update.job_id != job_id:
        return
    created = as_int(doc.get("created") or doc.get("pvt_created")) or 0
    found[update.provider_fax_id] = (created, update)


def _lookback_start(job_id: str, now: datetime) -> tuple[datetime, bool]:
    """Where the outbox search starts, and whether that covers the whole life of the job.

    Job ids begin with the milliseconds of their creation in hex (`store.db.new_id`); an id
    that does not is searched back the whole `LOOKBACK`.
    """
    oldest = now - LOOKBACK
    try:
        created = datetime.fromtimestamp(int(job_id[:11], 16) / 1000, UTC)
    except (ValueError, OverflowError, OSError):
        return oldest, False
    if created > now + CLOCK_SKEW:
        return oldest, False
    start = created - CLOCK_SKEW
    return (start, True) if start >= oldest else (oldest, False)


def _windows(start: datetime, end: datetime) -> Iterator[tuple[datetime, datetime]]:
    """[start, end] cut into `WINDOW`-long spans, newest first."""
    while end > start:
        begin = max(start, end - WINDOW)
        yield begin, end
        end = begin


def json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError as exc:
        raise PermanentProviderError(f"kazoo: answer is not JSON: {response.text[:200]}") from exc
    return body if isinstance(body, dict) else {}


def body_data(body: dict[str, Any]) -> dict[str, Any]:
    data = body.get("data")
    return data if isinstance(data, dict) else {}
