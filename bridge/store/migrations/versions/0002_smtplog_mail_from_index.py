"""Index smtplog.mail_from: "show me everything alice sent" is the common support question.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22

The web console and the API filter the smtplog by envelope sender; without an index each such
lookup reads the whole log, which keeps 30 days of attempts.
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_smtplog_mail_from", "smtplog", ["mail_from"])


def downgrade() -> None:
    op.drop_index("ix_smtplog_mail_from", table_name="smtplog")
