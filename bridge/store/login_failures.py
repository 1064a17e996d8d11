"""Failed logins, counted per (service, user, address) for the login throttle."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from bridge.store.db import Database, new_id, utcnow
from bridge.store.schema import login_failures as table

_KEEP = timedelta(days=1)  # rows older than this count for nothing: dropped as new ones come


class LoginFailures:
    def __init__(self, db: Database) -> None:
        self.db = db

    def record(self, service: str, username: str, address: str) -> None:
        now = utcnow()
        with self.db.begin() as conn:
            conn.execute(
                table.insert().values(
                    id=new_id(), service=service, username=username, address=address, at=now
                )
            )
            conn.execute(table.delete().where(table.c.at < now - _KEEP))

    def count(self, service: str, address: str, since: datetime, username: str | None) -> int:
        """Failures from `address` since `since`: of `username`, or of anyone (None)."""
        query = sa.select(sa.func.count()).where(
            table.c.service == service, table.c.address == address, table.c.at >= since
        )
        if username is not None:
            query = query.where(table.c.username == username)
        with self.db.begin() as conn:
            return int(conn.execute(query).scalar_one())

    def clear(
        self, username: str, *, service: str | None = None, address: str | None = None
    ) -> int:
        """Forget the failures of `username` (from `address`, of `service`); how many went."""
        query = table.delete().where(table.c.username == username)
        if service is not None:
            query = query.where(table.c.service == service)
        if address is not None:
            query = query.where(table.c.address == address)
        with self.db.begin() as conn:
            return conn.execute(query).rowcount or 0

    def since(self, since: datetime) -> list[dict[str, Any]]:
        """Failures since `since` per (service, user, address), most first."""
        failures = sa.func.count().label("failures")
        query = (
            sa.select(
                table.c.service,
                table.c.username,
                table.c.address,
                failures,
                sa.func.max(table.c.at).label("last"),
            )
            .where(table.c.at >= since)
            .group_by(table.c.service, table.c.username, table.c.address)
            .order_by(failures.desc())
        )
        with self.db.begin() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]
