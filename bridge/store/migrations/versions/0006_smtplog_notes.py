"""smtplog.notes (what the bridge did to a message it took) and smtplog.repeat_key.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07

Bare LF line endings taken as CRLF, a repeat of an accepted message answered 250 but not faxed
again: facts an admin reading the log needs, that are neither refusals nor errors. Existing
rows get an empty list. `repeat_key` (indexed) finds an accepted message again when its client,
having had no reply in time, sends it once more; older rows have none.
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
        batch.add_column(sa.Column("repeat_key", sa.String(64)))
        batch.create_index("ix_smtplog_repeat_key", ["repeat_key"])


def downgrade() -> None:
    with op.batch_alter_table("smtplog") as batch:
        batch.drop_index("ix_smtplog_repeat_key")
        batch.drop_column("repeat_key")
        batch.drop_column("notes")
