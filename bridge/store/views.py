"""Read-side queries for the HTTP API and the metrics: keyset pages and live counts.

Pages are newest first *by id* (ids start with a millisecond timestamp, see `new_id`), not by
`created`: two rows made in the same millisecond may sort differently by the two, and a page
boundary drawn on one order but walked on the other would skip or repeat a row. A page is
fetched one row long; that extra row's id is the next page's `start_key` (inclusive), as in
Kazoo's `next_start_key`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from bridge.models import FINAL_STATUSES
from bridge.store.db import Database
from bridge.store.inbound import inbound_record
from bridge.store.jobs import job_record
from bridge.store.outbox import outbox_record
from bridge.store.schema import fax_jobs, inbound_faxes, mail_outbox, smtplog
from bridge.store.smtplog import record_of

_FINAL = [status.value for status in FINAL_STATUSES]


@dataclass(frozen=True)
class Page:
    records: list[dict[str, Any]]
    next_key: str | None  # id of the first record of the next page; None on the last page


@dataclass(frozen=True)
class OutboxBacklog:
    pending: int
    oldest_created: datetime | None


class Views:
    def __init__(self, db: Database) -> None:
        self.db = db

    def _page(
        self,
        table: sa.Table,
        record: Callable[[sa.Row[Any]], dict[str, Any]],
        where: Sequence[sa.ColumnElement[bool]],
        limit: int,
        start_key: str | None,
    ) -> Page:
        query = table.select().where(*where).order_by(table.c.id.desc()).limit(limit + 1)
        if start_key:
            query = query.where(table.c.id <= start_key)
        with self.db.begin() as conn:
            rows = conn.execute(query).fetchall()
        next_key = str(rows[limit].id) if len(rows) > limit else None
        return Page([record(row) for row in rows[:limit]], next_key)

    def smtplog_page(self, faxbox: str, limit: int, start_key: str | None = None) -> Page:
        return self._page(smtplog, record_of, [smtplog.c.faxbox == faxbox], limit, start_key)

    def jobs_page(
        self, faxbox: str, *, final: bool, limit: int, start_key: str | None = None
    ) -> Page:
        """Final jobs (Kazoo's outbox) or those still on their way (its outgoing queue)."""
        done = fax_jobs.c.status.in_(_FINAL)
        where = [fax_jobs.c.faxbox == faxbox, done if final else ~done]
        return self._page(fax_jobs, job_record, where, limit, start_key)

    def inbound_page(self, faxbox: str, limit: int, start_key: str | None = None) -> Page:
        where = [inbound_faxes.c.faxbox == faxbox]
        return self._page(inbound_faxes, inbound_record, where, limit, start_key)

    # -- the web console's lists: every faxbox, optionally narrowed -------------------------
    def console_inbound_page(
        self, limit: int, start_key: str | None = None, faxbox: str | None = None
    ) -> Page:
        where = [inbound_faxes.c.faxbox == faxbox] if faxbox else []
        return self._page(inbound_faxes, inbound_record, where, limit, start_key)

    def console_outbox_page(
        self, limit: int, start_key: str | None = None, status: str | None = None
    ) -> Page:
        where = [mail_outbox.c.status == status] if status else []
        return self._page(mail_outbox, outbox_record, where, limit, start_key)

    # -- counts for /metrics (read at scrape time) ----------------------------------------
    def job_counts(self) -> list[tuple[str, str, int]]:
        """(provider, status, jobs) for every pair that has at least one job."""
        query = sa.select(fax_jobs.c.provider, fax_jobs.c.status, sa.func.count()).group_by(
            fax_jobs.c.provider, fax_jobs.c.status
        )
        with self.db.begin() as conn:
            return [(str(p), str(s), int(n)) for p, s, n in conn.execute(query)]

    def outbox_backlog(self) -> OutboxBacklog:
        query = sa.select(sa.func.count(), sa.func.min(mail_outbox.c.created)).where(
            mail_outbox.c.status == "pending"
        )
        with self.db.begin() as conn:
            count, oldest = conn.execute(query).one()
        return OutboxBacklog(int(count or 0), oldest)
