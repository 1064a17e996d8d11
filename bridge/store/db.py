"""The database handle: engine setup for SQLite (WAL, durable) and PostgreSQL, and ids.

Every store method is synchronous and short; async code calls them through `asyncio.to_thread`
so the event loop never waits on disk.
"""

from __future__ import annotations

import logging
import os
import secrets
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic.util import CommandError as AlembicError
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from bridge.errors import StorageError, StorageFull
from bridge.store import migrate
from bridge.store.space import database_error_is_full, free_bytes, os_error_is_full

log = logging.getLogger(__name__)


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    """Sortable, unguessable id: milliseconds in hex + 24 random bits."""
    return f"{int(time.time() * 1000):011x}{secrets.token_hex(3)}"


def _sqlite_url(url: str) -> str:
    return url.replace("sqlite:///", "sqlite+pysqlite:///", 1) if url.startswith("sqlite:") else url


def _postgres_url(url: str) -> str:
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def make_engine(
    url: str, *, connect_timeout_s: float = 5, statement_timeout_s: float = 10
) -> Engine:
    """An engine whose every call gives up well before an SMTP client does.

    A 250 waits on a commit: a database that hangs must turn into a 451 within seconds (the
    client then retries later), never hold the DATA reply until the client gives up.
    `statement_timeout_s` 0 means none (migrations of a big database, say).
    """
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        busy_s = statement_timeout_s or 30.0
        engine = sa.create_engine(
            _sqlite_url(url), connect_args={"timeout": busy_s, "check_same_thread": False}
        )

        @sa.event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves, below
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")  # a 250 must survive a power cut
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={int(busy_s * 1000)}")
            cursor.close()

        @sa.event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            # Take the write lock up front: two workers never claim the same job.
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    engine = sa.create_engine(
        _postgres_url(url),
        pool_pre_ping=True,
        pool_size=10,
        pool_timeout=max(1.0, connect_timeout_s * 2),
        connect_args={"connect_timeout": max(1, round(connect_timeout_s))},
    )
    if statement_timeout_s:

        @sa.event.listens_for(engine, "connect")
        def _set_timeouts(dbapi_conn: Any, _record: Any) -> None:
            milliseconds = int(statement_timeout_s * 1000)
            with dbapi_conn.cursor() as cursor:
                cursor.execute(f"SET statement_timeout = {milliseconds}")
                cursor.execute(f"SET lock_timeout = {milliseconds}")
            dbapi_conn.commit()

    return engine


class Database:
    """An engine plus the data directory for the files rows point at."""

    def __init__(
        self,
        url: str,
        data_dir: Path,
        *,
        connect_timeout_s: float = 5,
        statement_timeout_s: float = 10,
    ) -> None:
        self.url = url
        self.engine = make_engine(
            url, connect_timeout_s=connect_timeout_s, statement_timeout_s=statement_timeout_s
        )
        self.data_dir = Path(data_dir)
        self.is_postgres = self.engine.dialect.name == "postgresql"

    def create_schema(self) -> None:
        """Create or upgrade the tables (`alembic upgrade head`; see `bridge.store.migrate`)."""
        try:
            migrate.upgrade(self.engine)
        except SQLAlchemyError as exc:
            raise StorageError(f"cannot prepare the database: {exc}") from exc
        except AlembicError as exc:
            raise StorageError(
                f"cannot upgrade the database schema: {exc}. A newer faxbridge may have "
                "migrated it; run that version, or restore a backup taken before the upgrade."
            ) from exc

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """One transaction; any database error becomes `StorageError`."""
        try:
            with self.engine.begin() as conn:
                yield conn
        except SQLAlchemyError as exc:
            message = str(exc).splitlines()[0]
            if database_error_is_full(exc):
                raise StorageFull(message) from exc
            raise StorageError(message) from exc

    def ping(self) -> bool:
        try:
            with self.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
            return True
        except SQLAlchemyError:
            return False

    def dispose(self) -> None:
        self.engine.dispose()

    # -- files under data_dir ------------------------------------------------------------
    def write_file(self, relative: str, data: bytes) -> str:
        """Write durably (fsync file and directory) and return the relative path."""
        path = self.data_dir / relative
        tmp = path.with_name(path.name + ".tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
            dir_fd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError as exc:
            tmp.unlink(missing_ok=True)  # a half-written file is never left behind
            error = StorageFull if os_error_is_full(exc) else StorageError
            raise error(f"cannot write {path}: {exc.strerror}") from exc
        return relative

    def remove_files(self, relatives: Iterable[str]) -> None:
        """Remove files nothing refers to any more (a transaction that did not commit)."""
        for relative in relatives:
            try:
                (self.data_dir / relative).unlink(missing_ok=True)
            except OSError as exc:
                log.warning("cannot remove %s: %s", relative, exc.strerror)

    def free_bytes(self) -> int:
        return free_bytes(self.data_dir)

    def path(self, relative: str) -> Path:
        return self.data_dir / relative

    def read_file(self, relative: str) -> bytes:
        return (self.data_dir / relative).read_bytes()
