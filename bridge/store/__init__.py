"""Durable state: the smtplog, fax jobs, inbound faxes and the mail outbox."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from bridge.store import retention
from bridge.store.callback_log import CallbackLog
from bridge.store.db import Database, new_id, utcnow
from bridge.store.inbound import Inbound
from bridge.store.jobs import Jobs, NewJob
from bridge.store.outbox import Outbox
from bridge.store.smtplog import Attempt, SmtpLog
from bridge.store.views import Views

__all__ = ["Attempt", "Database", "NewJob", "Store", "new_id", "utcnow"]


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

    def accept(self, attempt: Attempt, jobs: list[NewJob]) -> None:
        """The one transaction behind a 250: the attempt and all its jobs, or nothing."""
        with self.db.begin() as conn:
            self.smtplog.insert(attempt, conn)
            self.jobs.insert_many(conn, attempt.id, jobs)

    def purge(self, retention_days: int) -> int:
        """Forget finished business older than the retention period, files included."""
        return retention.purge(self.db, utcnow() - timedelta(days=retention_days))

    def close(self) -> None:
        self.db.dispose()
