"""Durable state: the smtplog, fax jobs, inbound faxes and the mail outbox."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from bridge.config import StorageConfig
from bridge.store import retention
from bridge.store.callback_log import CallbackLog
from bridge.store.db import Database, new_id, utcnow
from bridge.store.inbound import Inbound
from bridge.store.jobs import Jobs, NewJob
from bridge.store.login_failures import LoginFailures
from bridge.store.outbox import Outbox, enqueue_rendered
from bridge.store.smtplog import Attempt, SmtpLog
from bridge.store.views import Views

__all__ = ["Attempt", "Database", "ForwardRow", "NewJob", "PreviewRow", "Store", "new_id", "utcnow"]


@dataclass(frozen=True)
class PreviewRow:
    """A preview mail already written under data_dir, to be queued with its attempt."""

    ref: str  # attempt id and recipient number
    faxbox: str
    to: str
    path: str


@dataclass(frozen=True)
class ForwardRow:
    """A message to postmaster@ / abuse@, kept as received, to be passed on with its attempt."""

    ref: str  # attempt id
    faxbox: str
    sender: str  # the original envelope sender ("" for a bounce): theirs, not ours
    recipients: list[str]
    path: str


class Store:
    """One handle on every table; built once per process."""

    def __init__(
        self,
        url: str,
        data_dir: Path,
        *,
        connect_timeout_s: float = 5,
        statement_timeout_s: float = 10,
    ) -> None:
        self.db = Database(
            url,
            data_dir,
            connect_timeout_s=connect_timeout_s,
            statement_timeout_s=statement_timeout_s,
        )
        self.smtplog = SmtpLog(self.db)
        self.jobs = Jobs(self.db)
        self.inbound = Inbound(self.db)
        self.outbox = Outbox(self.db)
        self.callbacks = CallbackLog(self.db)  # callbacks that could not be acted on
        self.login_failures = LoginFailures(self.db)  # the login throttle's memory
        self.views = Views(self.db)  # read-side queries: API pages, metrics counts

    def create_schema(self) -> None:
        self.db.create_schema()

    def accept(
        self,
        attempt: Attempt,
        jobs: list[NewJob],
        previews: list[PreviewRow] | None = None,
        forwards: list[ForwardRow] | None = None,
    ) -> None:
        """The one transaction behind a 250: the attempt, all its jobs, preview and postmaster
        mails."""
        with self.db.begin() as conn:
            self.smtplog.insert(attempt, conn)
            self.jobs.insert_many(conn, attempt.id, jobs)
            for preview in previews or []:
                enqueue_rendered(
                    conn, "preview", preview.ref, preview.faxbox, [preview.to], preview.path
                )
            for mail in forwards or []:
                enqueue_rendered(
                    conn, "forward", mail.ref, mail.faxbox, mail.recipients, mail.path, mail.sender
                )

    def accept_one(self, attempt: Attempt, job: NewJob, detail: str) -> None:
        """An attempt made outside SMTP (a Kazoo `forward`) and its one job, together."""
        with self.db.begin() as conn:
            self.smtplog.insert(attempt, conn)
            self.jobs.insert_many(conn, attempt.id, [job], detail)

    @classmethod
    def for_config(cls, storage: StorageConfig) -> Store:
        return cls(
            storage.url,
            storage.data_dir,
            connect_timeout_s=storage.connect_timeout_s,
            statement_timeout_s=storage.statement_timeout_s,
        )

    def purge(self, retention_days: int) -> int:
        """Forget finished business older than the retention period, files included."""
        return retention.purge(self.db, utcnow() - timedelta(days=retention_days))

    def close(self) -> None:
        self.db.dispose()
