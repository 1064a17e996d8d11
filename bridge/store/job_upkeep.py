"""What happens to fax jobs besides sending: admin actions and the sweeps that keep promises.

- `retry` and `cancel` (an admin's word; an in-flight job only once its provider cancelled it);
- `expire`: no job waits forever. Past `worker.give_up_after` a job that reached its provider
  ends as `unknown` (nobody knows whether the fax arrived), one that never did as `failed`
  (reason expired); a job whose provider no longer knows its fax ends as `unknown` after the
  provider's grace period;
- the privacy purge: settled faxes whose report went out, and inbound faxes that were mailed,
  are listed for deletion at the provider and marked once deleted.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from bridge.models import SETTLED_STATUSES, FailureReason, JobStatus, StatusUpdate
from bridge.store.db import Database, utcnow
from bridge.store.schema import fax_jobs, inbound_faxes, job_events, mail_outbox

_IN_FLIGHT = (JobStatus.SUBMITTED.value, JobStatus.SENDING.value)
_WAITING = (JobStatus.QUEUED.value, *_IN_FLIGHT)
_SETTLED = [status.value for status in SETTLED_STATUSES]


def event(conn: sa.Connection, job_id: str, status: str, detail: str, at: datetime) -> None:
    conn.execute(job_events.insert().values(job_id=job_id, at=at, status=status, detail=detail))


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:g} h" if seconds >= 3600 else f"{seconds / 60:g} min"


class JobUpkeep:
    """Mixed into `Jobs`; relies on its `_apply` (the one way a status moves)."""

    db: Database

    def _apply(self, job_id: str, update: StatusUpdate, detail: str) -> bool:
        raise NotImplementedError

    # -- admin actions -------------------------------------------------------------------
    def retry(self, job_id: str) -> str:
        now = utcnow()
        retriable = (JobStatus.FAILED.value, JobStatus.CANCELLED.value, JobStatus.UNKNOWN.value)
        with self.db.begin() as conn:
            job = conn.execute(fax_jobs.select().where(fax_jobs.c.id == job_id)).first()
            if job is None:
                raise LookupError(f"no fax job {job_id}")
            if job.status not in retriable:
                raise ValueError(
                    f"fax job {job_id} is {job.status}; only failed, cancelled or unknown "
                    "jobs can be retried"
                )
            conn.execute(
                fax_jobs.update()
                .where(fax_jobs.c.id == job_id)
                .values(
                    status=JobStatus.QUEUED.value,
                    reason=None,
                    provider_fax_id=None,
                    provider_code=None,
                    provider_text=None,
                    attempts=0,
                    dials=0,
                    round=job.round + 1,
                    next_attempt_at=now,
                    finished_at=None,
                    forgotten_since=None,
                    possible_duplicate=False,
                    # The provider may have the fax after all (a refusal of ours, a lost
                    # callback): the worker asks it before sending again.
                    reconcile=True,
                    updated=now,
                )
            )
            event(conn, job_id, JobStatus.QUEUED.value, "retried by an admin", now)
        return f"fax job {job_id} is queued again"

    def cancel(self, job_id: str, *, at_provider: str | None = None) -> str:
        """Cancel a queued job; an in-flight one only with `at_provider` saying the provider
        cancelled it (the caller asked the provider first)."""
        now = utcnow()
        allowed = [JobStatus.QUEUED.value] + (list(_IN_FLIGHT) if at_provider else [])
        with self.db.begin() as conn:
            job = conn.execute(fax_jobs.select().where(fax_jobs.c.id == job_id)).first()
            if job is None:
                raise LookupError(f"no fax job {job_id}")
            moved = conn.execute(
                fax_jobs.update()
                .where(fax_jobs.c.id == job_id, fax_jobs.c.status.in_(allowed))
                .values(
                    status=JobStatus.CANCELLED.value,
                    finished_at=now,
                    next_poll_at=None,
                    updated=now,
                )
            ).rowcount
            if not moved:
                raise ValueError(
                    f"fax job {job_id} is {job.status}; only queued jobs, or jobs the provider "
                    "has not sent yet, can be cancelled"
                )
            detail = "cancelled by an admin"
            if at_provider:
                detail += f"; {at_provider}"
            event(conn, job_id, JobStatus.CANCELLED.value, detail, now)
        return f"fax job {job_id} is cancelled"

    # -- faxes the provider no longer knows -------------------------------------------
    def mark_forgotten(self, job_id: str, provider_fax_id: str, grace_s: float) -> bool:
        """The provider said it does not know the fax; start the grace clock (once)."""
        now = utcnow()
        with self.db.begin() as conn:
            moved = conn.execute(
                fax_jobs.update()
                .where(
                    fax_jobs.c.id == job_id,
                    fax_jobs.c.status.in_(_IN_FLIGHT),
                    fax_jobs.c.forgotten_since.is_(None),
                )
                .values(forgotten_since=now)
            ).rowcount
            if moved:
                status = conn.execute(
                    sa.select(fax_jobs.c.status).where(fax_jobs.c.id == job_id)
                ).scalar_one()
                event(
                    conn,
                    job_id,
                    status,
                    f"status poll: the provider no longer knows fax {provider_fax_id}; "
                    f"waiting up to {_hours(grace_s)} for its callback",
                    now,
                )
        return bool(moved)

    def expire(self, give_up_after_s: float, grace_s: dict[str, float], limit: int = 100) -> int:
        """End the jobs nobody will hear about any more; returns how many ended."""
        now = utcnow()
        deadline = now - timedelta(seconds=give_up_after_s)
        query = (
            sa.select(
                fax_jobs.c.id,
                fax_jobs.c.status,
                fax_jobs.c.provider,
                fax_jobs.c.provider_fax_id,
                fax_jobs.c.created,
                fax_jobs.c.forgotten_since,
                fax_jobs.c.provider_text,
            )
            .where(
                fax_jobs.c.status.in_(_WAITING),
                sa.or_(fax_jobs.c.created < deadline, fax_jobs.c.forgotten_since.is_not(None)),
            )
            .order_by(fax_jobs.c.created)
            .limit(limit)
        )
        with self.db.begin() as conn:
            rows = list(conn.execute(query).fetchall())
        ended = 0
        for row in rows:
            update = self._expiry(row, deadline, now, give_up_after_s, grace_s)
            if update is not None and self._apply(row.id, update[0], update[1]):
                ended += 1
        return ended

    @staticmethod
    def _expiry(
        row: Any, deadline: datetime, now: datetime, give_up_s: float, grace_s: dict[str, float]
    ) -> tuple[StatusUpdate, str] | None:
        if row.created < deadline:
            if row.status == JobStatus.QUEUED.value:
                last = f" (last: {row.provider_text})" if row.provider_text else ""
                text = f"not sent within {_hours(give_up_s)} of being accepted{last}"
                update = StatusUpdate("", JobStatus.FAILED, FailureReason.EXPIRED, "expired", text)
                return update, f"gave up: {text}"
            text = f"no final word from the provider within {_hours(give_up_s)}"
        else:
            grace = grace_s.get(row.provider, 3600.0)
            if row.forgotten_since is None or row.forgotten_since > now - timedelta(seconds=grace):
                return None
            text = (
                f"the provider no longer knows fax {row.provider_fax_id} and sent no final "
                f"word within {_hours(grace)}"
            )
        update = StatusUpdate("", JobStatus.UNKNOWN, FailureReason.EXPIRED, "expired", text)
        return update, f"gave up waiting: {text}"

    # -- the privacy purge ---------------------------------------------------------------
    def purge_due(self, faxboxes: list[str], limit: int = 20) -> list[sa.Row[Any]]:
        """Settled faxes of `faxboxes` still at the provider whose report is out (or that were
        cancelled, which has no report)."""
        if not faxboxes:
            return []
        reported = (
            sa.select(mail_outbox.c.id)
            .where(
                mail_outbox.c.kind == "report",
                mail_outbox.c.ref.startswith(fax_jobs.c.id + ":"),
                mail_outbox.c.status.in_(("sent", "skipped")),
            )
            .exists()
        )
        query = (
            fax_jobs.select()
            .where(
                fax_jobs.c.faxbox.in_(faxboxes),
                fax_jobs.c.status.in_(_SETTLED),
                fax_jobs.c.purge.is_(None),
                fax_jobs.c.provider_fax_id.is_not(None),
                sa.or_(fax_jobs.c.status == JobStatus.CANCELLED.value, reported),
            )
            .order_by(fax_jobs.c.finished_at)
            .limit(limit)
        )
        with self.db.begin() as conn:
            return list(conn.execute(query).fetchall())

    def mark_purged(self, job_id: str, outcome: str, detail: str) -> None:
        """`outcome`: done | failed | unsupported; the job's history says what happened."""
        now = utcnow()
        with self.db.begin() as conn:
            status = conn.execute(
                sa.select(fax_jobs.c.status).where(fax_jobs.c.id == job_id)
            ).scalar()
            if status is None:
                return
            conn.execute(fax_jobs.update().where(fax_jobs.c.id == job_id).values(purge=outcome))
            event(conn, job_id, str(status), detail, now)

    def inbound_purge_due(self, faxboxes: list[str], limit: int = 20) -> list[sa.Row[Any]]:
        if not faxboxes:
            return []
        query = (
            inbound_faxes.select()
            .where(
                inbound_faxes.c.faxbox.in_(faxboxes),
                inbound_faxes.c.emailed.is_(True),
                inbound_faxes.c.purge.is_(None),
            )
            .order_by(inbound_faxes.c.received)
            .limit(limit)
        )
        with self.db.begin() as conn:
            return list(conn.execute(query).fetchall())

    def mark_inbound_purged(self, fax_id: str, outcome: str) -> None:
        with self.db.begin() as conn:
            conn.execute(
                inbound_faxes.update().where(inbound_faxes.c.id == fax_id).values(purge=outcome)
            )
