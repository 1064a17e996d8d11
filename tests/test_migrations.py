"""Schema migrations: the migrated schema is the declared one, and an upgrade keeps every row."""

from __future__ import annotations

import multiprocessing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext

from bridge.store import Store
from bridge.store.db import Database, make_engine
from bridge.store.migrate import current_revision, head_revision, migration_connection, upgrade
from bridge.store.schema import metadata

NOW = datetime(2026, 11, 22, 9, 30, tzinfo=UTC)


def schema_of(engine: sa.Engine) -> dict[str, Any]:
    """Tables as the database reports them: columns, keys, indexes, constraints."""
    inspector = sa.inspect(engine)
    tables = {}
    for name in sorted(set(inspector.get_table_names()) - {"alembic_version"}):
        tables[name] = {
            "columns": [
                (c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(name)
            ],
            "primary_key": inspector.get_pk_constraint(name)["constrained_columns"],
            "foreign_keys": sorted(
                (tuple(fk["constrained_columns"]), fk["referred_table"])
                for fk in inspector.get_foreign_keys(name)
            ),
            "indexes": sorted(
                (i["name"], tuple(i["column_names"]), bool(i["unique"]))
                for i in inspector.get_indexes(name)
            ),
            "unique": sorted(
                (u["name"], tuple(u["column_names"]))
                for u in inspector.get_unique_constraints(name)
            ),
        }
    return tables


def test_migrating_an_empty_database_gives_exactly_the_declared_schema(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        upgrade(engine)
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, metadata) == []
            assert current_revision(conn) == head_revision()
        migrated = schema_of(engine)

        with engine.begin() as conn:
            metadata.drop_all(conn)
            conn.execute(sa.text("DROP TABLE alembic_version"))
        metadata.create_all(engine)
        assert schema_of(engine) == migrated
    finally:
        engine.dispose()


def insert_rows_at_revision_0001(engine: sa.Engine) -> None:
    """One row in every table, written against the tables as they were (reflected)."""
    tables = sa.MetaData()
    tables.reflect(engine)
    with engine.begin() as conn:
        conn.execute(
            tables.tables["smtplog"].insert(),
            [
                dict(
                    id=f"att{n}",
                    created=NOW,
                    mail_from=f"sender{n % 3}@example.com",
                    recipients=[{"address": "12125550123@fax.localhost", "accepted": True}],
                    attachments=[],
                    outcome="accepted",
                    errors=[],
                    fax_ids=[f"job{n}"],
                    faxbox="main",
                )
                for n in range(30)
            ],
        )
        conn.execute(
            tables.tables["fax_jobs"].insert(),
            [
                dict(
                    id=f"job{n}",
                    attempt_id=f"att{n}",
                    faxbox="main",
                    provider="sim",
                    sender=f"sender{n % 3}@example.com",
                    address="12125550123@fax.localhost",
                    to_number="+12125550123",
                    to_name="Jane",
                    original_number="12125550123",
                    status="queued",
                    pages=1,
                    document_pages=1,
                    document_path=f"documents/job{n}.pdf",
                    attempts=0,
                    round=0,
                    next_attempt_at=NOW,
                    created=NOW,
                    updated=NOW,
                )
                for n in range(30)
            ],
        )
        conn.execute(
            tables.tables["job_events"].insert(),
            [dict(job_id=f"job{n}", at=NOW, status="queued", detail="accepted") for n in range(30)],
        )
        conn.execute(
            tables.tables["inbound_faxes"]
            .insert()
            .values(
                id="in1",
                faxbox="main",
                provider="sim",
                provider_fax_id="sim-1",
                from_number="+12125550100",
                to_number="+12125550100",
                received=NOW,
                emailed=False,
                created=NOW,
            )
        )
        conn.execute(
            tables.tables["mail_outbox"]
            .insert()
            .values(
                id="mail1",
                kind="report",
                ref="job1:0",
                faxbox="main",
                sender="sender1@example.com",
                recipients=["sender1@example.com"],
                status="pending",
                attempts=0,
                next_attempt_at=NOW,
                created=NOW,
                updated=NOW,
            )
        )


# The tables of revision 0001 (later revisions add tables that start empty).
BASELINE_TABLES = ("smtplog", "fax_jobs", "job_events", "inbound_faxes", "mail_outbox")


def row_counts(engine: sa.Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            table.name: int(
                conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
            )
            for table in metadata.sorted_tables
            if table.name in BASELINE_TABLES
        }


def test_upgrade_keeps_every_row_and_adds_the_sender_index(db_url: str, tmp_path: Path) -> None:
    engine = make_engine(db_url)
    try:
        upgrade(engine, "0001")
        assert "ix_smtplog_mail_from" not in {
            i["name"] for i in sa.inspect(engine).get_indexes("smtplog")
        }
        insert_rows_at_revision_0001(engine)
        before = row_counts(engine)
        assert before == {
            "smtplog": 30,
            "fax_jobs": 30,
            "job_events": 30,
            "inbound_faxes": 1,
            "mail_outbox": 1,
        }
    finally:
        engine.dispose()

    store = Store(db_url, tmp_path / "var")  # what the bridge does when it starts
    try:
        store.create_schema()
        assert row_counts(store.db.engine) == before
        indexes = {
            i["name"]: i["column_names"] for i in sa.inspect(store.db.engine).get_indexes("smtplog")
        }
        assert indexes["ix_smtplog_mail_from"] == ["mail_from"]
        job = store.jobs.get("job7")
        assert job is not None
        assert (job["to"], job["status"], job["created"]) == ("+12125550123", "queued", NOW)
        assert [h["status"] for h in job["history"]] == ["queued"]
        attempt = store.smtplog.get("att7")
        assert attempt is not None
        assert attempt["from"] == "sender1@example.com"
        assert attempt["fax_ids"] == ["job7"]
        assert store.outbox.get("mail1") is not None
        with store.db.engine.connect() as conn:
            assert current_revision(conn) == head_revision()
    finally:
        store.close()


def test_database_made_before_migrations_is_stamped_not_created_again(
    db_url: str, tmp_path: Path
) -> None:
    engine = make_engine(db_url)
    try:
        upgrade(engine, "0001")
        with engine.begin() as conn:  # what `metadata.create_all` used to leave behind
            conn.execute(sa.text("DROP TABLE alembic_version"))
        insert_rows_at_revision_0001(engine)
    finally:
        engine.dispose()

    db = Database(db_url, tmp_path / "var")
    try:
        db.create_schema()  # "table smtplog already exists" if it tried to create it
        assert row_counts(db.engine)["fax_jobs"] == 30
        with db.engine.connect() as conn:
            assert current_revision(conn) == head_revision()
        assert "ix_smtplog_mail_from" in {
            i["name"] for i in sa.inspect(db.engine).get_indexes("smtplog")
        }
    finally:
        db.dispose()


def _start_bridge_store(url: str, data_dir: Path, go: Any, result: Any) -> None:
    """What each bridge process does first: prepare the schema (in a fresh process)."""
    db = Database(url, data_dir)
    go.wait()
    try:
        db.create_schema()
        result.put("ok")
    except Exception as exc:
        result.put(f"{type(exc).__name__}: {exc}")
    finally:
        db.dispose()


def test_bridges_starting_together_upgrade_one_after_the_other(db_url: str, tmp_path: Path) -> None:
    spawn = multiprocessing.get_context("spawn")  # Alembic's context is per process
    go, results = spawn.Barrier(4), spawn.Queue()
    processes = [
        spawn.Process(target=_start_bridge_store, args=(db_url, tmp_path / "var", go, results))
        for _ in range(4)
    ]
    for process in processes:
        process.start()
    outcomes = sorted(results.get(timeout=60) for _ in processes)
    for process in processes:
        process.join(30)
    assert outcomes == ["ok"] * 4
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            versions = conn.execute(sa.text("SELECT version_num FROM alembic_version")).all()
        assert versions == [(head_revision(),)]
        assert row_counts(engine)["smtplog"] == 0
    finally:
        engine.dispose()


def test_sqlite_table_rebuild_in_batch_mode_keeps_rows_that_point_at_it(
    db_url: str, tmp_path: Path
) -> None:
    if not db_url.startswith("sqlite"):
        pytest.skip("batch mode rebuilds tables on SQLite only; PostgreSQL alters in place")
    engine = make_engine(db_url)
    try:
        upgrade(engine, "0001")
        insert_rows_at_revision_0001(engine)
        # What a future revision changing a fax_jobs column does (job_events points at it).
        with migration_connection(engine) as conn:
            operations = Operations(MigrationContext.configure(conn))
            with operations.batch_alter_table("fax_jobs") as batch:
                batch.alter_column("to_name", existing_type=sa.Text(), nullable=True)
        assert row_counts(engine)["job_events"] == 30
        columns = {c["name"]: c for c in sa.inspect(engine).get_columns("fax_jobs")}
        assert columns["to_name"]["nullable"] is True
        with engine.begin() as conn:  # foreign keys are enforced again afterwards
            with pytest.raises(sa.exc.IntegrityError):
                conn.execute(
                    sa.text(
                        "INSERT INTO job_events (job_id, at, status, detail) VALUES "
                        "('nope', '2026-01-01', 'queued', '')"
                    )
                )
    finally:
        engine.dispose()
