"""The schema as the bridge created it before migrations (`metadata.create_all`).

Revision ID: 0001
Revises:
Create Date: 2026-11-22

A frozen copy: later revisions change the tables, never this file. Timestamps are
`DateTime(timezone=True)`, the storage type under `bridge.store.schema.UTCDateTime`.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _at(name: str, nullable: bool = True) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "smtplog",
        sa.Column("id", sa.String(32), primary_key=True),
        _at("created", nullable=False),
        _at("finished"),
        sa.Column("session_id", sa.String(32)),
        sa.Column("peer", sa.String(64)),
        sa.Column("helo", sa.Text()),
        sa.Column("tls", sa.String(16)),
        sa.Column("auth_user", sa.String(255)),
        sa.Column("mail_from", sa.Text()),
        sa.Column("header_from", sa.Text()),
        sa.Column("recipients", sa.JSON(), nullable=False),
        sa.Column("message_id", sa.Text()),
        sa.Column("subject", sa.Text()),
        sa.Column("size", sa.Integer()),
        sa.Column("attachments", sa.JSON(), nullable=False),
        sa.Column("pages", sa.Integer()),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("reply", sa.Text()),
        sa.Column("error", sa.Text()),
        sa.Column("errors", sa.JSON(), nullable=False),
        sa.Column("faxbox", sa.String(64)),
        sa.Column("fax_ids", sa.JSON(), nullable=False),
        sa.Column("raw_path", sa.Text()),
    )
    op.create_index("ix_smtplog_created", "smtplog", ["created"])
    op.create_index("ix_smtplog_faxbox", "smtplog", ["faxbox"])
    op.create_index("ix_smtplog_outcome", "smtplog", ["outcome"])

    op.create_table(
        "fax_jobs",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("attempt_id", sa.String(32), sa.ForeignKey("smtplog.id"), nullable=False),
        sa.Column("faxbox", sa.String(64), nullable=False),
        sa.Column("provider", sa.String(64), nullable=False),
        sa.Column("sender", sa.Text(), nullable=False),
        sa.Column("address", sa.Text(), nullable=False),
        sa.Column("to_number", sa.String(32), nullable=False),
        sa.Column("to_name", sa.Text(), nullable=False),
        sa.Column("original_number", sa.Text(), nullable=False),
        sa.Column("caller_id", sa.String(32)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(32)),
        sa.Column("provider_fax_id", sa.String(128)),
        sa.Column("provider_code", sa.Text()),
        sa.Column("provider_text", sa.Text()),
        sa.Column("pages", sa.Integer(), nullable=False),
        sa.Column("document_pages", sa.Integer(), nullable=False),
        sa.Column("document_path", sa.Text(), nullable=False),
        sa.Column("cover_path", sa.Text()),
        sa.Column("cover", sa.JSON()),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        _at("next_attempt_at", nullable=False),
        _at("next_poll_at"),
        sa.Column("lease_owner", sa.String(64)),
        _at("lease_until"),
        _at("created", nullable=False),
        _at("updated", nullable=False),
        _at("submitted_at"),
        _at("finished_at"),
    )
    op.create_index("ix_fax_jobs_created", "fax_jobs", ["created"])
    op.create_index("ix_fax_jobs_due", "fax_jobs", ["status", "next_attempt_at"])
    op.create_index("ix_fax_jobs_faxbox", "fax_jobs", ["faxbox"])
    op.create_index("ix_fax_jobs_provider_fax", "fax_jobs", ["provider", "provider_fax_id"])
    op.create_index("ix_fax_jobs_status", "fax_jobs", ["status"])

    op.create_table(
        "job_events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("job_id", sa.String(32), sa.ForeignKey("fax_jobs.id"), nullable=False),
        _at("at", nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
    )
    op.create_index("ix_job_events_job_id", "job_events", ["job_id"])

    op.create_table(
        "inbound_faxes",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("faxbox", sa.String(64), nullable=False),
        sa.Column("provider", sa.String(64), nullable=False),
        sa.Column("provider_fax_id", sa.String(128), nullable=False),
        sa.Column("from_number", sa.String(64), nullable=False),
        sa.Column("to_number", sa.String(64), nullable=False),
        sa.Column("pages", sa.Integer()),
        _at("received", nullable=False),
        sa.Column("remote_station_id", sa.Text()),
        sa.Column("document_path", sa.Text()),
        sa.Column("emailed", sa.Boolean(), nullable=False),
        _at("created", nullable=False),
        sa.UniqueConstraint("provider", "provider_fax_id", name="uq_inbound_provider_fax"),
    )
    op.create_index("ix_inbound_faxes_created", "inbound_faxes", ["created"])
    op.create_index("ix_inbound_faxes_faxbox", "inbound_faxes", ["faxbox"])

    op.create_table(
        "mail_outbox",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("ref", sa.String(64), nullable=False),
        sa.Column("faxbox", sa.String(64)),
        sa.Column("sender", sa.Text(), nullable=False),
        sa.Column("recipients", sa.JSON(), nullable=False),
        sa.Column("message_path", sa.Text()),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text()),
        _at("next_attempt_at", nullable=False),
        _at("lease_until"),
        _at("created", nullable=False),
        _at("updated", nullable=False),
        _at("sent_at"),
        sa.UniqueConstraint("kind", "ref", name="uq_outbox_kind_ref"),
    )
    op.create_index("ix_mail_outbox_created", "mail_outbox", ["created"])
    op.create_index("ix_mail_outbox_status", "mail_outbox", ["status"])


def downgrade() -> None:
    for table in ("mail_outbox", "inbound_faxes", "job_events", "fax_jobs", "smtplog"):
        op.drop_table(table)
