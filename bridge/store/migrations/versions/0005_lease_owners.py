"""Lease holders named host:pid:nonce, on fax jobs and on the mail outbox.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07

A restarted bridge frees at once the leases of dead processes of its own host (`bridge.leases`),
so the mail outbox learns who holds each row, and `fax_jobs.lease_owner` widens for the nonce.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("fax_jobs") as batch:
        batch.alter_column(
            "lease_owner", type_=sa.String(128), existing_type=sa.String(64), existing_nullable=True
        )
    with op.batch_alter_table("mail_outbox") as batch:
        batch.add_column(sa.Column("lease_owner", sa.String(128)))


def downgrade() -> None:
    with op.batch_alter_table("mail_outbox") as batch:
        batch.drop_column("lease_owner")
    with op.batch_alter_table("fax_jobs") as batch:
        batch.alter_column(
            "lease_owner", type_=sa.String(64), existing_type=sa.String(128), existing_nullable=True
        )
