"""Inbound faxes: one row per provider fax, however often the provider calls back."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from bridge.errors import StorageError
from bridge.models import InboundFax
from bridge.store import outbox
from bridge.store.db import Database, new_id, utcnow
from bridge.store.schema import inbound_faxes


def inbound_record(row: sa.Row[Any]) -> dict[str, Any]:
    return {
        "id": row.id,
        "faxbox": row.faxbox,
        "provider": row.provider,
        "provider_fax_id": row.provider_fax_id,
        "from": row.from_number,
        "to": row.to_number,
        "pages": row.pages,
        "received": row.received,
        "remote_station_id": row.remote_station_id,
        "emailed": row.emailed,
    }


class Inbound:
    def __init__(self, db: Database) -> None:
        self.db = db

    def known(self, provider: str, provider_fax_id: str) -> bool:
        with self.db.begin() as conn:
            return (
                conn.execute(
                    sa.select(inbound_faxes.c.id).where(
                        inbound_faxes.c.provider == provider,
                        inbound_faxes.c.provider_fax_id == provider_fax_id,
                    )
                ).first()
                is not None
            )

    def record(
        self, faxbox: str, provider: str, fax: InboundFax, document_path: str | None
    ) -> str | None:
        """Store an inbound fax and enqueue its e-mail; None if it was already known."""
        try:
            return self._record(faxbox, provider, fax, document_path)
        except StorageError as exc:
            if isinstance(exc.__cause__, sa.exc.IntegrityError):
                return None  # the same callback, delivered twice at once: the other one won
            raise

    def _record(
        self, faxbox: str, provider: str, fax: InboundFax, document_path: str | None
    ) -> str | None:
        now = utcnow()
        received: datetime = fax.received or now
        with self.db.begin() as conn:
            existing = conn.execute(
                sa.select(inbound_faxes.c.id).where(
                    inbound_faxes.c.provider == provider,
                    inbound_faxes.c.provider_fax_id == fax.provider_fax_id,
                )
            ).first()
            if existing is not None:
                return None
            fax_id = new_id()
            conn.execute(
                inbound_faxes.insert().values(
                    id=fax_id,
                    faxbox=faxbox,
                    provider=provider,
                    provider_fax_id=fax.provider_fax_id,
                    from_number=fax.from_number,
                    to_number=fax.to_number,
                    pages=fax.pages,
                    received=received,
                    remote_station_id=fax.remote_station_id,
                    document_path=document_path,
                    emailed=False,
                    created=now,
                )
            )
            outbox.enqueue(conn, "inbound", fax_id, faxbox)
        return fax_id

    def mark_emailed(self, fax_id: str) -> None:
        with self.db.begin() as conn:
            conn.execute(
                inbound_faxes.update().where(inbound_faxes.c.id == fax_id).values(emailed=True)
            )

    def row(self, fax_id: str) -> sa.Row[Any] | None:
        with self.db.begin() as conn:
            return conn.execute(inbound_faxes.select().where(inbound_faxes.c.id == fax_id)).first()

    def get(self, fax_id: str) -> dict[str, Any] | None:
        row = self.row(fax_id)
        return inbound_record(row) if row else None

    def recent(self, limit: int = 100, faxbox: str | None = None) -> list[dict[str, Any]]:
        query = inbound_faxes.select().order_by(
            inbound_faxes.c.created.desc(), inbound_faxes.c.id.desc()
        )
        if faxbox:
            query = query.where(inbound_faxes.c.faxbox == faxbox)
        with self.db.begin() as conn:
            rows = conn.execute(query.limit(limit)).fetchall()
        return [inbound_record(r) for r in rows]
