"""Schema migrations: `alembic upgrade head` at start-up, safe for several processes at once.

The bridge upgrades its own database when it starts, so an operator never runs a separate
migration step. Three things make that safe:

- The Alembic `Config` is built here, pointing at the migrations shipped inside the package;
  nothing is read from an alembic.ini in the current directory.
- The whole upgrade is one transaction, and on PostgreSQL it first takes a transaction-level
  advisory lock, so two bridges starting together against one database take turns: the second
  finds the schema already at head and does nothing. (SQLite gets the same from `BEGIN
  IMMEDIATE`, which `make_engine` issues for every transaction.)
- A database created before migrations existed (by `metadata.create_all`, so without an
  `alembic_version` table) is stamped at the baseline revision rather than created again.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
BASELINE = "0001"  # the schema as `metadata.create_all` made it before Alembic
_LOCK_NAME = "faxbridge schema migration"


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config for the packaged migrations; `connection` is what env.py runs on."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "the migrations folder has no revisions"
    return head


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


@contextmanager
def _sqlite_file_lock(engine: Engine) -> Iterator[None]:
    """Bridges starting together on one SQLite file take turns, from the first connection on
    (switching a new file to WAL needs it to themselves; SQLite may answer "locked" at once)."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        yield
        return
    with open(f"{database}.migrate-lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def migration_connection(engine: Engine) -> Iterator[Connection]:
    """One transaction that holds the migration lock; every revision runs inside it."""
    with _sqlite_file_lock(engine), engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            with conn.begin():
                key = _lock_key(conn)
                # No statement timeout for a migration: another bridge may hold the lock while
                # it upgrades a big database.
                conn.execute(sa.text("SET LOCAL statement_timeout = 0"))
                conn.execute(sa.text("SET LOCAL lock_timeout = 0"))
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
                yield conn
            return
        # Batch mode rebuilds a SQLite table (copy, drop, rename), and dropping a table that
        # other rows point at fails while foreign keys are enforced. SQLite's own recipe: turn
        # enforcement off outside the transaction, check every reference before commit.
        _sqlite_pragma(conn, "foreign_keys=OFF")
        try:
            with conn.begin():
                yield conn
                broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise sa.exc.IntegrityError(
                        "PRAGMA foreign_key_check", None, Exception(f"dangling rows: {broken}")
                    )
        finally:
            _sqlite_pragma(conn, "foreign_keys=ON")


def _sqlite_pragma(conn: Connection, pragma: str) -> None:
    """Run a PRAGMA outside any transaction (inside one, foreign_keys is silently ignored)."""
    dbapi = conn.connection.dbapi_connection
    assert dbapi is not None
    cursor = dbapi.cursor()
    try:
        cursor.execute(f"PRAGMA {pragma}")
    finally:
        cursor.close()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the database to `revision` in one transaction, under the migration lock."""
    with migration_connection(engine) as conn:
        config = alembic_config(conn)
        inspector = sa.inspect(conn)
        if not inspector.has_table("alembic_version") and inspector.has_table("smtplog"):
            log.info("database predates migrations: stamping it at revision %s", BASELINE)
            command.stamp(config, BASELINE)
        before = current_revision(conn)
        command.upgrade(config, revision)
        after = current_revision(conn)
        if after != before:
            log.info("database schema upgraded from %s to %s", before or "nothing", after)


def _lock_key(conn: Connection) -> int:
    """A 64-bit advisory-lock key per schema: tests give each database its own schema."""
    schema = conn.execute(sa.text("SELECT current_schema()")).scalar() or ""
    digest = hashlib.blake2b(f"{_LOCK_NAME}:{schema}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)
