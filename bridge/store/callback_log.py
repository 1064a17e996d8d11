"""Callbacks the bridge could not act on, kept so nothing a provider said is lost in silence.

An adapter that authenticates a callback but cannot tell what it says (an event name no source
documents, an inbound fax for a number no faxbox owns) returns it as `UnclassifiedCallback`;
it is acknowledged to the provider (which would otherwise retry for hours) and kept here, with
its body, for `faxbridge callbacks list` and `explain`.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from bridge.models import UnclassifiedCallback
from bridge.store.db import Database, new_id, utcnow
from bridge.store.schema import callback_log

MAX_BODY_CHARS = 64 * 1024


def callback_record(row: sa.Row[Any]) -> dict[str, Any]:
    return {
        "id": row.id,
        "received": row.received,
        "provider": row.provider,
        "event": row.event,
        "provider_fax_id": row.provider_fax_id,
        "job_id": row.job_id,
        "reason": row.reason,
        "content_type": row.content_type,
        "body": row.body,
    }


class CallbackLog:
    def __init__(self, db: Database) -> None:
        self.db = db

    def record(
        self, provider: str, item: UnclassifiedCallback, content_type: str, body: bytes
    ) -> str:
        record_id = new_id()
        with self.db.begin() as conn:
            conn.execute(
                callback_log.insert().values(
                    id=record_id,
                    received=utcnow(),
                    provider=provider,
                    event=item.event,
                    provider_fax_id=item.provider_fax_id,
                    job_id=item.job_id,
                    reason=item.reason,
                    content_type=content_type[:200],
                    body=body[:MAX_BODY_CHARS].decode("utf-8", "replace"),
                )
            )
        return record_id

    def recent(
        self,
        *,
        provider: str | None = None,
        job_id: str | None = None,
        provider_fax_ids: list[str] | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        query = callback_log.select().order_by(callback_log.c.received.desc()).limit(limit)
        if provider:
            query = query.where(callback_log.c.provider == provider)
        if job_id or provider_fax_ids:
            about = []
            if job_id:
                about.append(callback_log.c.job_id == job_id)
            if provider_fax_ids:
                about.append(callback_log.c.provider_fax_id.in_(provider_fax_ids))
            query = query.where(sa.or_(*about))
        with self.db.begin() as conn:
            return [callback_record(row) for row in conn.execute(query).fetchall()]
