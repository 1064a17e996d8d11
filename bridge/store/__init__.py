"""Durable state: the smtplog, fax jobs, inbound faxes and the mail outbox."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from bridge.store import retention
from bridge.store.callback_log import CallbackLog
from bridge.store.db import Database, new_id, utcnow
from bridge.store.inbound import Inbound
from bridge.store.jobs import Jobs, NewJob
from bridge.store.outbox import Outbox, enqueue_rendered
from bridge.store.smtplog import Attempt, SmtpLog
from bridge.store.views import Views

__all__ = ["Attempt", "Database", "NewJob", "PreviewRow", "Store", "new_id", "utcnow"]


@dataclass(frozen=True)
class PreviewRow:
    """A preview mail already written under data_dir, to be queued with its attempt."""

    ref: str  # attempt id and recipient number
    faxbox: str
    to: str
    path: str


class Store:
    """One handle on every table; built once per process."""

    def __init__(self, url: str, data_dir: Path) -> None:
        self.db = Database(url, data_dir)
        self.smtplog = SmtpLog(self.db)
        self.jobs = Jobs(self.db)
        self.inbound = Inbound(self.db)
        self.outbox = Outbox(self.db)
        self.callbacks = CallbackLog(self.db)  # callbacks that could not be acted on
        self.views = Views(self.db)  # read-side queries: API pages, metrics counts

    def create_schema(self) -> None:
        self.db.create_schema()

    def accept(
        self, attempt: Attempt, jobs: list[NewJob], previews: list[PreviewRow] | None = None
    ) -> None:
        """The one transaction behind a 250: the attempt, all its jobs and preview mails."""
        with self.db.begin() as conn:
            self.smtplog.insert(attempt, conn)
            self.jobs.insert_many(conn, attempt.id, jobs)
            for preview in previews or []:
                enqueue_rendered(
                    conn, "preview", preview.ref, preview.faxbox, [preview.to], preview.path
                )

    def purge(self, retention_days: int) -> int:
        """Forget finished business older than the retention period, files included."""
        return retention.purge(self.db, utcnow() - timedelta(days=retention_days))

    def close(self) -> None:
        self.db.dispose()
