"""login_failures: failed SMTP AUTH and console sign-ins, throttled per (user, address).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07

The throttle once counted failures per address in memory: one mistyped password on a scanner
locked out every user behind the office's NAT, and nothing but a restart lifted it. Rows let
`faxbridge auth unlock USER` lift it and bridges sharing a database count together.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# Frozen like every revision: the storage type under bridge.store.schema.UTCDateTime.
UTCDateTime = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "login_failures",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("service", sa.String(16), nullable=False),
        sa.Column("username", sa.String(255), nullable=False),
        sa.Column("address", sa.String(64), nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
    )
    op.create_index(
        "ix_login_failures_who", "login_failures", ["service", "username", "address", "at"]
    )
    op.create_index("ix_login_failures_address", "login_failures", ["service", "address", "at"])


def downgrade() -> None:
    op.drop_index("ix_login_failures_address", "login_failures")
    op.drop_index("ix_login_failures_who", "login_failures")
    op.drop_table("login_failures")
