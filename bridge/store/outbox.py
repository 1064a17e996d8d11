"""The durable mail outbox: every report and inbound-fax mail is a row before it is sent.

A row is rendered once (the bytes kept under data_dir) and re-sent byte for byte, so a retry
after a relay outage carries the same Message-ID and a recipient never sees two versions.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from bridge.store.db import Database, new_id, utcnow
from bridge.store.schema import mail_outbox


def outbox_record(row: sa.Row[Any]) -> dict[str, Any]:
    return {
        "id": row.id,
        "kind": row.kind,
        "ref": row.ref,
        "faxbox": row.faxbox,
        "to": row.recipients,
        "status": row.status,
        "attempts": row.attempts,
        "last_error": row.last_error,
        "created": row.created,
        "sent": row.sent_at,
    }


def enqueue(conn: sa.Connection, kind: str, ref: str, faxbox: str, sender: str = "") -> None:
    now = utcnow()
    exists = conn.execute(
        sa.select(mail_outbox.c.id).where(mail_outbox.c.kind == kind, mail_outbox.c.ref == ref)
    ).first()
    if exists is None:
        conn.execute(
            mail_outbox.insert().values(
                id=new_id(),
                kind=kind,
                ref=ref,
                faxbox=faxbox,
                sender=sender,
                recipients=[],
                status="pending",
                attempts=0,
                next_attempt_at=now,
                created=now,
                updated=now,
            )
        )


def enqueue_rendered(
    conn: sa.Connection,
    kind: str,
    ref: str,
    faxbox: str,
    recipients: list[str],
    path: str,
    sender: str = "",
) -> None:
    """A mail built before it was queued (a preview, a postmaster forward): the worker only
    has to send it, from `sender` when it is a forward."""
    now = utcnow()
    conn.execute(
        mail_outbox.insert().values(
            id=new_id(),
            kind=kind,
            ref=ref,
            faxbox=faxbox,
            sender=sender,
            recipients=recipients,
            message_path=path,
            status="pending",
            attempts=0,
            next_attempt_at=now,
            created=now,
            updated=now,
        )
    )


class Outbox:
    def __init__(self, db: Database) -> None:
        self.db = db

    def claim(self, limit: int, lease_s: float, owner: str | None = None) -> list[sa.Row[Any]]:
        now = utcnow()
        due = sa.and_(
            mail_outbox.c.status == "pending",
            mail_outbox.c.next_attempt_at <= now,
            sa.or_(mail_outbox.c.lease_until.is_(None), mail_outbox.c.lease_until < now),
        )
        pick = sa.select(mail_outbox.c.id).where(due).order_by(mail_outbox.c.next_attempt_at)
        pick = pick.limit(limit)
        if self.db.is_postgres:
            pick = pick.with_for_update(skip_locked=True)
        with self.db.begin() as conn:
            ids = list(conn.execute(pick).scalars())
            if not ids:
                return []
            conn.execute(
                mail_outbox.update()
                .where(mail_outbox.c.id.in_(ids))
                .values(
                    lease_until=now + timedelta(seconds=lease_s),
                    lease_owner=owner,
                    attempts=mail_outbox.c.attempts + 1,
                    updated=now,
                )
            )
            return list(
                conn.execute(mail_outbox.select().where(mail_outbox.c.id.in_(ids))).fetchall()
            )

    def save_rendered(self, mail_id: str, path: str, recipients: list[str]) -> None:
        with self.db.begin() as conn:
            conn.execute(
                mail_outbox.update()
                .where(mail_outbox.c.id == mail_id)
                .values(message_path=path, recipients=recipients, updated=utcnow())
            )

    def _finish(self, mail_id: str, **values: Any) -> None:
        with self.db.begin() as conn:
            conn.execute(
                mail_outbox.update()
                .where(mail_outbox.c.id == mail_id)
                .values(lease_until=None, lease_owner=None, updated=utcnow(), **values)
            )

    def mark_sent(self, mail_id: str, detail: str) -> None:
        self._finish(mail_id, status="sent", sent_at=utcnow(), last_error=None)

    def lease_owners(self) -> list[str]:
        query = sa.select(mail_outbox.c.lease_owner).where(
            mail_outbox.c.status == "pending",
            mail_outbox.c.lease_owner.is_not(None),
            mail_outbox.c.lease_until > utcnow(),
        )
        with self.db.begin() as conn:
            return [str(owner) for owner in conn.execute(query.distinct()).scalars()]

    def release_leases(self, owners: list[str]) -> int:
        """A dead mailer's rows are due again at once (re-sent byte for byte: same Message-ID)."""
        if not owners:
            return 0
        with self.db.begin() as conn:
            return int(
                conn.execute(
                    mail_outbox.update()
                    .where(mail_outbox.c.lease_owner.in_(owners), mail_outbox.c.status == "pending")
                    .values(lease_until=None, lease_owner=None)
                ).rowcount
            )

    def mark_skipped(self, mail_id: str, why: str) -> None:
        self._finish(mail_id, status="skipped", last_error=why)

    def mark_failed(self, mail_id: str, error: str) -> None:
        self._finish(mail_id, status="failed", last_error=error)

    def reschedule(self, mail_id: str, error: str, delay_s: float) -> None:
        self._finish(
            mail_id, last_error=error, next_attempt_at=utcnow() + timedelta(seconds=delay_s)
        )

    def retry(self, mail_id: str) -> str:
        with self.db.begin() as conn:
            row = conn.execute(mail_outbox.select().where(mail_outbox.c.id == mail_id)).first()
            if row is None:
                raise LookupError(f"no outbox mail {mail_id}")
            if row.status == "sent":
                raise ValueError(f"mail {mail_id} was already sent")
            conn.execute(
                mail_outbox.update()
                .where(mail_outbox.c.id == mail_id)
                .values(status="pending", attempts=0, next_attempt_at=utcnow(), lease_until=None)
            )
        return f"mail {mail_id} is queued again"

    def recent(self, limit: int = 100, status: str | None = None) -> list[dict[str, Any]]:
        query = mail_outbox.select().order_by(mail_outbox.c.created.desc(), mail_outbox.c.id.desc())
        if status:
            query = query.where(mail_outbox.c.status == status)
        with self.db.begin() as conn:
            rows = conn.execute(query.limit(limit)).fetchall()
        return [outbox_record(r) for r in rows]

    def get(self, mail_id: str) -> dict[str, Any] | None:
        with self.db.begin() as conn:
            row = conn.execute(mail_outbox.select().where(mail_outbox.c.id == mail_id)).first()
        return outbox_record(row) if row else None
