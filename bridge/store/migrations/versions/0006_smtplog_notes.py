"""smtplog.notes: what the bridge did to a message it took, in sentences.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07

Bare LF line endings taken as CRLF, a repeat of an accepted message answered 250 but not faxed
again: facts an admin reading the log needs, that are neither refusals nor errors. Existing
rows get an empty list.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("smtplog") as batch:
        batch.add_column(
            sa.Column("notes", sa.JSON(), nullable=False, server_default=sa.text("'[]'"))
        )


def downgrade() -> None:
    with op.batch_alter_table("smtplog") as batch:
        batch.drop_column("notes")
