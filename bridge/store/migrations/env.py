"""Alembic's entry point, run by `bridge.store.migrate` with a connection it already holds.

The connection comes in `config.attributes["connection"]` (already in a transaction, and on
PostgreSQL already holding the migration lock), so this file never opens one of its own and
never reads an alembic.ini. SQLite gets batch mode: its ALTER TABLE cannot drop or change
columns, so Alembic rebuilds the table instead.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from bridge.store.schema import metadata


def run() -> None:
    connection = context.config.attributes.get("connection")
    if not isinstance(connection, Connection):
        raise RuntimeError(
            "faxbridge migrations run through bridge.store.migrate.upgrade(engine), "
            "which passes the connection"
        )
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run()
