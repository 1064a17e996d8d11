"""The SMTP attempt log: one row per attempt, accepted or not (DESIGN.md §5)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from bridge.models import Outcome
from bridge.store.db import Database, new_id, utcnow
from bridge.store.schema import smtplog

# Public record keys (the API and --json), in display order.
RECORD_KEYS = (
    "id created finished peer helo tls auth_user from header_from recipients message_id subject "
    "size attachments pages outcome reply error errors faxbox fax_ids"
).split()


@dataclass
class Attempt:
    """An SMTP transaction as it unfolds; written once, when it ends."""

    session_id: str
    peer: str | None
    helo: str | None = None
    tls: str | None = None
    auth_user: str | None = None
    mail_from: str | None = None
    id: str = field(default_factory=new_id)
    created: datetime = field(default_factory=utcnow)
    finished: datetime | None = None
    header_from: str | None = None
    recipients: list[dict[str, Any]] = field(default_factory=list)
    message_id: str | None = None
    subject: str | None = None
    size: int | None = None
    attachments: list[dict[str, Any]] = field(default_factory=list)
    pages: int | None = None
    outcome: Outcome = Outcome.ABORTED
    reply: str | None = None
    error: str | None = None
    errors: list[str] = field(default_factory=list)
    faxbox: str | None = None
    fax_ids: list[str] = field(default_factory=list)
    raw_path: str | None = None

    def refuse(self, reply: str, sentence: str | None = None) -> str:
        """Note a refusal (the decisive one is the latest) and return the reply to send."""
        why = sentence or reply.split(" ", 2)[-1]
        self.errors.append(why)
        self.error = why
        self.reply = reply
        return reply

    def row(self) -> dict[str, Any]:
        values = asdict(self)
        values["outcome"] = self.outcome.value
        values["finished"] = self.finished or utcnow()
        return values


def record_of(row: sa.Row[Any]) -> dict[str, Any]:
    """A row as the public record (JSON-ready except datetimes)."""
    data = dict(row._mapping)
    data["from"] = data.pop("mail_from")
    return {key: data.get(key) for key in RECORD_KEYS}


class SmtpLog:
    def __init__(self, db: Database) -> None:
        self.db = db

    def insert(self, attempt: Attempt, conn: sa.Connection | None = None) -> None:
        if conn is not None:
            conn.execute(smtplog.insert().values(**attempt.row()))
            return
        with self.db.begin() as own:
            own.execute(smtplog.insert().values(**attempt.row()))

    def get(self, attempt_id: str) -> dict[str, Any] | None:
        with self.db.begin() as conn:
            row = conn.execute(smtplog.select().where(smtplog.c.id == attempt_id)).first()
        return record_of(row) if row else None

    def raw_path(self, attempt_id: str) -> str | None:
        with self.db.begin() as conn:
            value = conn.execute(
                sa.select(smtplog.c.raw_path).where(smtplog.c.id == attempt_id)
            ).scalar()
        return str(value) if value else None

    def recent(
        self,
        *,
        faxbox: str | None = None,
        since: datetime | None = None,
        outcome: str | None = None,
        limit: int = 100,
        before_id: str | None = None,
    ) -> list[dict[str, Any]]:
        query = smtplog.select().order_by(smtplog.c.created.desc(), smtplog.c.id.desc())
        if faxbox:
            query = query.where(smtplog.c.faxbox == faxbox)
        if since:
            query = query.where(smtplog.c.created >= since)
        if outcome:
            query = query.where(smtplog.c.outcome == outcome)
        if before_id:
            query = query.where(smtplog.c.id <= before_id)
        with self.db.begin() as conn:
            rows = conn.execute(query.limit(limit)).fetchall()
        return [record_of(row) for row in rows]
