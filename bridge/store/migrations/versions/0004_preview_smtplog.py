"""smtplog.preview: the attempt was a mail to preview+<number>@…, answered with the fax it
would have become instead of being faxed.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07

Existing rows were all real sends: the column defaults to false.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("smtplog") as batch:
        batch.add_column(
            sa.Column("preview", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("smtplog") as batch:
        batch.drop_column("preview")
