"""Forgetting on schedule: rows and files older than `storage.retention_days`.

Only finished business is purged: a job still queued or in flight, or a mail not yet sent, is
kept however old it is.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from bridge.models import FINAL_STATUSES
from bridge.store.db import Database
from bridge.store.schema import fax_jobs, inbound_faxes, job_events, mail_outbox, smtplog

_DONE_MAIL = ("sent", "failed", "skipped")


def purge(db: Database, cutoff: datetime) -> int:
    """Delete what finished before `cutoff`; return how many smtplog records went."""
    files: list[str] = []
    with db.begin() as conn:
        jobs = conn.execute(
            sa.select(fax_jobs.c.id, fax_jobs.c.document_path, fax_jobs.c.cover_path).where(
                fax_jobs.c.status.in_([s.value for s in FINAL_STATUSES]),
                fax_jobs.c.created < cutoff,
                sa.func.coalesce(fax_jobs.c.finished_at, fax_jobs.c.updated) < cutoff,
            )
        ).fetchall()
        job_ids = [j.id for j in jobs]
        if job_ids:
            conn.execute(job_events.delete().where(job_events.c.job_id.in_(job_ids)))
            conn.execute(fax_jobs.delete().where(fax_jobs.c.id.in_(job_ids)))
            files += [j.cover_path for j in jobs if j.cover_path]
            still_used = set(conn.execute(sa.select(fax_jobs.c.document_path).distinct()).scalars())
            files += sorted({j.document_path for j in jobs} - still_used)

        attempts = conn.execute(
            sa.select(smtplog.c.id, smtplog.c.raw_path).where(
                smtplog.c.created < cutoff,
                ~sa.exists().where(fax_jobs.c.attempt_id == smtplog.c.id),
            )
        ).fetchall()
        if attempts:
            conn.execute(smtplog.delete().where(smtplog.c.id.in_([a.id for a in attempts])))
            files += [a.raw_path for a in attempts if a.raw_path]

        faxes = conn.execute(
            sa.select(inbound_faxes.c.id, inbound_faxes.c.document_path).where(
                inbound_faxes.c.created < cutoff,
                ~sa.exists().where(
                    mail_outbox.c.kind == "inbound",
                    mail_outbox.c.ref == inbound_faxes.c.id,
                    mail_outbox.c.status == "pending",
                ),
            )
        ).fetchall()
        if faxes:
            conn.execute(
                inbound_faxes.delete().where(inbound_faxes.c.id.in_([f.id for f in faxes]))
            )
            files += [f.document_path for f in faxes if f.document_path]

        mails = conn.execute(
            sa.select(mail_outbox.c.id, mail_outbox.c.message_path).where(
                mail_outbox.c.status.in_(_DONE_MAIL), mail_outbox.c.updated < cutoff
            )
        ).fetchall()
        if mails:
            conn.execute(mail_outbox.delete().where(mail_outbox.c.id.in_([m.id for m in mails])))
            files += [m.message_path for m in mails if m.message_path]
    for relative in files:
        db.path(relative).unlink(missing_ok=True)
    return len(attempts)
