"""Provider fidelity: redial policy, reconciliation, forgotten faxes, provider-side purge.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07

Jobs keep the faxbox's redial policy from the moment their mail was accepted, count their dials,
remember whether the provider redials by itself, whether the next send must first ask the
provider (`reconcile`), whether a re-send may have duplicated a fax, since when the provider no
longer knows the fax, and whether it was deleted at the provider. Callbacks that could not be
classified are kept in `callback_log`.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

# Frozen like every revision: the storage type under bridge.store.schema.UTCDateTime.
UTCDateTime = sa.DateTime(timezone=True)

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("fax_jobs") as batch:
        batch.add_column(sa.Column("redial", sa.JSON))
        batch.add_column(sa.Column("dials", sa.Integer, nullable=False, server_default="0"))
        for name in ("provider_redials", "reconcile", "possible_duplicate"):
            batch.add_column(sa.Column(name, sa.Boolean, nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("forgotten_since", UTCDateTime))
        batch.add_column(sa.Column("purge", sa.String(16)))
    with op.batch_alter_table("inbound_faxes") as batch:
        batch.add_column(sa.Column("purge", sa.String(16)))
    op.create_table(
        "callback_log",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("received", UTCDateTime, nullable=False),
        sa.Column("provider", sa.String(64), nullable=False),
        sa.Column("event", sa.Text),
        sa.Column("provider_fax_id", sa.String(128)),
        sa.Column("job_id", sa.String(32)),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("content_type", sa.Text),
        sa.Column("body", sa.Text),
    )
    for column in ("received", "provider_fax_id", "job_id"):
        op.create_index(f"ix_callback_log_{column}", "callback_log", [column])


def downgrade() -> None:
    op.drop_table("callback_log")
    with op.batch_alter_table("inbound_faxes") as batch:
        batch.drop_column("purge")
    with op.batch_alter_table("fax_jobs") as batch:
        for name in (
            "purge",
            "forgotten_since",
            "possible_duplicate",
            "reconcile",
            "provider_redials",
            "dials",
            "redial",
        ):
            batch.drop_column(name)
