"""Tables, in SQLAlchemy Core: the same schema on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on both databases."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)  # type: ignore[no-any-return]
        return value.astimezone(UTC)  # type: ignore[no-any-return]


metadata = sa.MetaData()

smtplog = sa.Table(
    "smtplog",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("created", UTCDateTime, nullable=False, index=True),
    sa.Column("finished", UTCDateTime),
    sa.Column("session_id", sa.String(32)),
    sa.Column("peer", sa.String(64)),
    sa.Column("helo", sa.Text),
    sa.Column("tls", sa.String(16)),
    sa.Column("auth_user", sa.String(255)),
    sa.Column("mail_from", sa.Text, index=True),  # sender lookups (revision 0002)
    sa.Column("header_from", sa.Text),
    sa.Column("recipients", sa.JSON, nullable=False),
    sa.Column("message_id", sa.Text),
    sa.Column("subject", sa.Text),
    sa.Column("size", sa.Integer),
    sa.Column("attachments", sa.JSON, nullable=False),
    sa.Column("pages", sa.Integer),
    sa.Column("outcome", sa.String(16), nullable=False, index=True),
    sa.Column("reply", sa.Text),
    sa.Column("error", sa.Text),
    sa.Column("errors", sa.JSON, nullable=False),
    sa.Column("faxbox", sa.String(64), index=True),
    sa.Column("fax_ids", sa.JSON, nullable=False),
    sa.Column("raw_path", sa.Text),
    # A mail to preview+<number>@…: answered with the fax it would be (revision 0003).
    sa.Column("preview", sa.Boolean, nullable=False, server_default=sa.false()),
    # What the bridge did to a message it took: bare LFs normalised, a repeat not faxed
    # again (revision 0006).
    sa.Column("notes", sa.JSON, nullable=False, server_default=sa.text("'[]'")),
    # Digest of Message-ID, sender, recipients and body of an accepted message: a client's
    # retry of a message it got no reply for is found by it (revision 0006).
    sa.Column("repeat_key", sa.String(64), index=True),
)

fax_jobs = sa.Table(
    "fax_jobs",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("attempt_id", sa.String(32), sa.ForeignKey("smtplog.id"), nullable=False),
    sa.Column("faxbox", sa.String(64), nullable=False, index=True),
    sa.Column("provider", sa.String(64), nullable=False),
    sa.Column("sender", sa.Text, nullable=False),
    sa.Column("address", sa.Text, nullable=False),  # the RCPT TO address as given
    sa.Column("to_number", sa.String(32), nullable=False),
    sa.Column("to_name", sa.Text, nullable=False, default=""),
    sa.Column("original_number", sa.Text, nullable=False),
    sa.Column("caller_id", sa.String(32)),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("reason", sa.String(32)),
    sa.Column("provider_fax_id", sa.String(128)),
    sa.Column("provider_code", sa.Text),
    sa.Column("provider_text", sa.Text),
    sa.Column("pages", sa.Integer, nullable=False),
    sa.Column("document_pages", sa.Integer, nullable=False),
    sa.Column("document_path", sa.Text, nullable=False),
    sa.Column("cover_path", sa.Text),
    sa.Column("cover", sa.JSON),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("round", sa.Integer, nullable=False, default=0),
    sa.Column("next_attempt_at", UTCDateTime, nullable=False),
    sa.Column("next_poll_at", UTCDateTime),
    sa.Column("lease_owner", sa.String(128)),
    sa.Column("lease_until", UTCDateTime),
    sa.Column("created", UTCDateTime, nullable=False, index=True),
    sa.Column("updated", UTCDateTime, nullable=False),
    sa.Column("submitted_at", UTCDateTime),
    sa.Column("finished_at", UTCDateTime),
    # Provider fidelity (revision 0003): redials, reconciliation, forgotten faxes, privacy.
    sa.Column("redial", sa.JSON),  # the faxbox's redial policy when the mail was accepted
    sa.Column("dials", sa.Integer, nullable=False, default=0, server_default="0"),
    sa.Column(
        "provider_redials", sa.Boolean, nullable=False, default=False, server_default=sa.false()
    ),
    sa.Column("reconcile", sa.Boolean, nullable=False, default=False, server_default=sa.false()),
    sa.Column(
        "possible_duplicate", sa.Boolean, nullable=False, default=False, server_default=sa.false()
    ),
    sa.Column("forgotten_since", UTCDateTime),
    sa.Column("purge", sa.String(16)),  # null | done | failed | unsupported
    sa.Index("ix_fax_jobs_provider_fax", "provider", "provider_fax_id"),
    sa.Index("ix_fax_jobs_due", "status", "next_attempt_at"),
)

job_events = sa.Table(
    "job_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("job_id", sa.String(32), sa.ForeignKey("fax_jobs.id"), nullable=False, index=True),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("detail", sa.Text, nullable=False, default=""),
)

inbound_faxes = sa.Table(
    "inbound_faxes",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("faxbox", sa.String(64), nullable=False, index=True),
    sa.Column("provider", sa.String(64), nullable=False),
    sa.Column("provider_fax_id", sa.String(128), nullable=False),
    sa.Column("from_number", sa.String(64), nullable=False),
    sa.Column("to_number", sa.String(64), nullable=False),
    sa.Column("pages", sa.Integer),
    sa.Column("received", UTCDateTime, nullable=False),
    sa.Column("remote_station_id", sa.Text),
    sa.Column("document_path", sa.Text),
    sa.Column("emailed", sa.Boolean, nullable=False, default=False),
    sa.Column("created", UTCDateTime, nullable=False, index=True),
    sa.Column("purge", sa.String(16)),  # revision 0003: null | done | failed | unsupported
    sa.UniqueConstraint("provider", "provider_fax_id", name="uq_inbound_provider_fax"),
)

# Callbacks a provider sent that the bridge could not read as news about a fax (revision 0003):
# kept for `explain` and `faxbridge callbacks list`, never dropped in silence.
callback_log = sa.Table(
    "callback_log",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("received", UTCDateTime, nullable=False, index=True),
    sa.Column("provider", sa.String(64), nullable=False),
    sa.Column("event", sa.Text),
    sa.Column("provider_fax_id", sa.String(128), index=True),
    sa.Column("job_id", sa.String(32), index=True),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("content_type", sa.Text),
    sa.Column("body", sa.Text),  # the first 64 KiB, as text
)

mail_outbox = sa.Table(
    "mail_outbox",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),  # report | inbound | preview | forward
    sa.Column("ref", sa.String(64), nullable=False),  # job id + round, or inbound fax id
    sa.Column("faxbox", sa.String(64)),
    sa.Column("sender", sa.Text, nullable=False, default=""),
    sa.Column("recipients", sa.JSON, nullable=False),
    sa.Column("message_path", sa.Text),  # rendered once, then re-sent byte for byte
    sa.Column("status", sa.String(16), nullable=False, index=True),  # pending|sent|failed
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("last_error", sa.Text),
    sa.Column("next_attempt_at", UTCDateTime, nullable=False),
    sa.Column("lease_until", UTCDateTime),
    sa.Column("created", UTCDateTime, nullable=False, index=True),
    sa.Column("updated", UTCDateTime, nullable=False),
    sa.Column("sent_at", UTCDateTime),
    sa.Column("lease_owner", sa.String(128)),  # revision 0005: host:pid:nonce of the mailer
    sa.UniqueConstraint("kind", "ref", name="uq_outbox_kind_ref"),
)

# Failed logins (SMTP AUTH, the web console), for the throttle that keys on (user, address):
# rows rather than memory, so `faxbridge auth unlock` and a second bridge see them (revision 0007).
login_failures = sa.Table(
    "login_failures",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("service", sa.String(16), nullable=False),  # smtp | console
    sa.Column("username", sa.String(255), nullable=False),  # "" for the console's token
    sa.Column("address", sa.String(64), nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Index("ix_login_failures_who", "service", "username", "address", "at"),
    sa.Index("ix_login_failures_address", "service", "address", "at"),
)
