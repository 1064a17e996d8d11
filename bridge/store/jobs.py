"""Fax jobs and their status history: claim with a lease, never move backwards.

Every write that changes a job's status also appends to `job_events`, and a final status
enqueues the delivery report in the same transaction, so a report is neither lost nor doubled.
A busy or unanswered line is redialled here, by the job's own redial policy, unless the
provider redials by itself; each redial is a new round, so news about an earlier dial never
moves the job again. The sweeps that end hung jobs and purge faxes at the provider live in
`bridge.store.job_upkeep`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from bridge.models import FailureReason, JobStatus, Redial, RedialPolicy, StatusUpdate
from bridge.store import outbox
from bridge.store.db import Database, utcnow
from bridge.store.job_upkeep import JobUpkeep, event
from bridge.store.schema import fax_jobs, job_events, mail_outbox

IN_FLIGHT = (JobStatus.SUBMITTED.value, JobStatus.SENDING.value)
_REPORTED = (JobStatus.DELIVERED, JobStatus.FAILED, JobStatus.UNKNOWN)


@dataclass(frozen=True)
class NewJob:
    id: str
    faxbox: str
    provider: str
    sender: str
    address: str
    to_number: str
    to_name: str
    original_number: str
    caller_id: str | None
    pages: int  # cover included
    document_pages: int
    document_path: str
    cover_path: str | None
    cover: dict[str, Any] | None
    redial: dict[str, list[float]] | None = None  # `RedialPolicy.as_dict()` of the faxbox


def job_record(row: sa.Row[Any] | dict[str, Any]) -> dict[str, Any]:
    """A job as the CLI and API show it (DESIGN.md §6 keys first)."""
    data = dict(row._mapping) if isinstance(row, sa.Row) else dict(row)
    return {
        "id": data["id"],
        "attempt_id": data["attempt_id"],
        "faxbox": data["faxbox"],
        "to": data["to_number"],
        "to_name": data["to_name"],
        "status": data["status"],
        "reason": data["reason"],
        "provider": data["provider"],
        "provider_fax_id": data["provider_fax_id"],
        "provider_code": data["provider_code"],
        "provider_text": data["provider_text"],
        "attempts": data["attempts"],
        "dials": data.get("dials", 0),
        "possible_duplicate": bool(data.get("possible_duplicate")),
        "pages": data["pages"],
        "sender": data["sender"],
        "created": data["created"],
        "updated": data["updated"],
        "finished": data["finished_at"],
    }


_event = event
INTERRUPTED = " again: the previous send was interrupted (the bridge stopped)"
# Ends the detail of every wait while a send cut off by a crash may still reach the provider,
# so the claims that follow still know when that send began (`interrupted_send_started`).
IN_FLIGHT_WAIT = " (the interrupted send may still arrive)"


def concerns(job: Any, update: StatusUpdate) -> bool:
    """Whether provider news is about the job's current dial, not an earlier round's fax."""
    if update.provider_fax_id and update.provider_fax_id == job.provider_fax_id:
        return True
    return update.round is None or update.round == job.round


def _wait_words(seconds: float) -> str:
    return f"{seconds / 60:g} min" if seconds >= 60 else f"{seconds:g} s"


class Jobs(JobUpkeep):
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- creation ------------------------------------------------------------------------
    def insert_many(
        self,
        conn: sa.Connection,
        attempt_id: str,
        jobs: list[NewJob],
        detail: str = "accepted by SMTP",
    ) -> None:
        now = utcnow()
        for job in jobs:
            conn.execute(
                fax_jobs.insert().values(
                    attempt_id=attempt_id,
                    status=JobStatus.QUEUED.value,
                    attempts=0,
                    round=0,
                    next_attempt_at=now,
                    created=now,
                    updated=now,
                    **job.__dict__,
                )
            )
            _event(conn, job.id, JobStatus.QUEUED.value, detail, now)

    def add(self, attempt_id: str, job: NewJob, detail: str) -> None:
        """One job made outside SMTP (a Kazoo `resubmit` or `forward`), queued at once;
        `detail` opens its history and says where it came from."""
        with self.db.begin() as conn:
            self.insert_many(conn, attempt_id, [job], detail)

    # -- the worker's side ---------------------------------------------------------------
    def claim_due(self, owner: str, limit: int, lease_s: float) -> list[sa.Row[Any]]:
        """Lease up to `limit` jobs that are due, plus sends orphaned by a crash."""
        now = utcnow()
        due = sa.or_(
            sa.and_(fax_jobs.c.status == JobStatus.QUEUED.value, fax_jobs.c.next_attempt_at <= now),
            sa.and_(fax_jobs.c.status == JobStatus.SUBMITTING.value, fax_jobs.c.lease_until < now),
        )
        pick = sa.select(fax_jobs.c.id).where(due).order_by(fax_jobs.c.next_attempt_at)
        pick = pick.limit(limit)
        if self.db.is_postgres:
            pick = pick.with_for_update(skip_locked=True)
        orphaned = fax_jobs.c.status == JobStatus.SUBMITTING.value
        with self.db.begin() as conn:
            ids = list(conn.execute(pick).scalars())
            if not ids:
                return []
            crashed = set(
                conn.execute(
                    sa.select(fax_jobs.c.id).where(fax_jobs.c.id.in_(ids), orphaned)
                ).scalars()
            )
            conn.execute(
                fax_jobs.update()
                .where(fax_jobs.c.id.in_(ids))
                .values(
                    status=JobStatus.SUBMITTING.value,
                    # A send cut short by a crash may have reached the provider: ask it first,
                    # and do not count the interrupted try as an attempt.
                    attempts=sa.case(
                        (orphaned, fax_jobs.c.attempts), else_=fax_jobs.c.attempts + 1
                    ),
                    reconcile=sa.case((orphaned, sa.true()), else_=fax_jobs.c.reconcile),
                    lease_owner=owner,
                    lease_until=now + timedelta(seconds=lease_s),
                    updated=now,
                )
            )
            rows = list(conn.execute(fax_jobs.select().where(fax_jobs.c.id.in_(ids))).fetchall())
            for row in rows:
                detail = f"attempt {row.attempts}"
                if row.id in crashed:
                    detail += INTERRUPTED
                _event(conn, row.id, JobStatus.SUBMITTING.value, detail, now)
        return rows

    def interrupted_send_started(self, job_id: str) -> datetime | None:
        """When the send cut off by a crash began, if this claim follows one (else None).

        Walks back over the ask-and-wait rounds since the crash (a claim, then a wait whose
        detail ends with `IN_FLIGHT_WAIT`) to the claim that found the send interrupted; the
        send began at the claim before that one.
        """
        query = (
            job_events.select()
            .where(job_events.c.job_id == job_id)
            .order_by(job_events.c.id.desc())
            .limit(200)
        )
        with self.db.begin() as conn:
            events = list(conn.execute(query).fetchall())
        i = 0
        while i < len(events) and events[i].status == JobStatus.SUBMITTING.value:
            if events[i].detail.endswith(INTERRUPTED):
                for earlier in events[i + 1 :]:
                    if earlier.status == JobStatus.SUBMITTING.value:
                        at: datetime = earlier.at
                        return at
                return None
            after = events[i + 1] if i + 1 < len(events) else None
            if (
                after is None
                or after.status != JobStatus.QUEUED.value
                or not after.detail.endswith(IN_FLIGHT_WAIT)
            ):
                return None
            i += 2
        return None

    def renew_leases(self, owner: str, job_ids: list[str], lease_s: float) -> int:
        """Keep the leases of sends still in flight: a slow send is never taken over."""
        if not job_ids:
            return 0
        with self.db.begin() as conn:
            return int(
                conn.execute(
                    fax_jobs.update()
                    .where(
                        fax_jobs.c.id.in_(job_ids),
                        fax_jobs.c.lease_owner == owner,
                        fax_jobs.c.status == JobStatus.SUBMITTING.value,
                    )
                    .values(lease_until=utcnow() + timedelta(seconds=lease_s))
                ).rowcount
            )

    def lease_owners(self) -> list[str]:
        with self.db.begin() as conn:
            query = sa.select(fax_jobs.c.lease_owner).where(
                fax_jobs.c.status == JobStatus.SUBMITTING.value,
                fax_jobs.c.lease_owner.is_not(None),
            )
            return [str(owner) for owner in conn.execute(query.distinct()).scalars()]

    def release_leases(self, owners: list[str]) -> int:
        """End now the leases of holders known to be dead (their sends are claimed again)."""
        if not owners:
            return 0
        with self.db.begin() as conn:
            return int(
                conn.execute(
                    fax_jobs.update()
                    .where(
                        fax_jobs.c.lease_owner.in_(owners),
                        fax_jobs.c.status == JobStatus.SUBMITTING.value,
                    )
                    .values(lease_until=utcnow() - timedelta(seconds=1))
                ).rowcount
            )

    def record_submitted(
        self,
        job_id: str,
        provider_fax_id: str,
        detail: str,
        poll_after_s: float,
        *,
        provider_redials: bool = False,
        round: int = 0,
    ) -> None:
        """The provider has this round's fax (sent now, or found by reconciliation).

        A callback may have come first and already named the fax (`_apply` then counted the
        dial); either way each round counts one dial. News of a later round (a redial queued
        meanwhile) makes this a no-op.
        """
        now = utcnow()
        this_round = sa.and_(fax_jobs.c.id == job_id, fax_jobs.c.round == round)
        with self.db.begin() as conn:
            conn.execute(
                fax_jobs.update()
                .where(this_round, fax_jobs.c.provider_fax_id.is_(None))
                .values(provider_fax_id=provider_fax_id, dials=fax_jobs.c.dials + 1)
            )
            moved = conn.execute(
                fax_jobs.update()
                .where(this_round, fax_jobs.c.status == JobStatus.SUBMITTING.value)
                .values(
                    status=JobStatus.SUBMITTED.value,
                    submitted_at=sa.func.coalesce(fax_jobs.c.submitted_at, now),
                    next_poll_at=now + timedelta(seconds=poll_after_s),
                    provider_redials=provider_redials,
                    reconcile=False,
                    forgotten_since=None,
                    lease_owner=None,
                    lease_until=None,
                    updated=now,
                )
            ).rowcount
            if moved:
                _event(conn, job_id, JobStatus.SUBMITTED.value, detail, now)

    def reschedule(
        self,
        job_id: str,
        delay_s: float,
        detail: str,
        refund: bool = False,
        *,
        reconcile: bool = False,
    ) -> None:
        """Back to the queue; `refund` gives the attempt back (rate limits are no failure);
        `reconcile` makes the next try ask the provider before sending (it may have the fax)."""
        now = utcnow()
        values: dict[str, Any] = {
            "status": JobStatus.QUEUED.value,
            "attempts": fax_jobs.c.attempts - (1 if refund else 0),
            "next_attempt_at": now + timedelta(seconds=delay_s),
            "lease_owner": None,
            "lease_until": None,
            "updated": now,
        }
        if reconcile:
            values["reconcile"] = True
        with self.db.begin() as conn:
            moved = conn.execute(
                fax_jobs.update()
                .where(fax_jobs.c.id == job_id, fax_jobs.c.status == JobStatus.SUBMITTING.value)
                .values(**values)
            ).rowcount
            if moved:
                _event(conn, job_id, JobStatus.QUEUED.value, detail, now)

    def mark_possible_duplicate(self, job_id: str, detail: str) -> None:
        """The provider could not say whether it already has this fax; it is sent anyway."""
        now = utcnow()
        with self.db.begin() as conn:
            conn.execute(
                fax_jobs.update()
                .where(fax_jobs.c.id == job_id)
                .values(possible_duplicate=True, reconcile=False, updated=now)
            )
            _event(conn, job_id, JobStatus.SUBMITTING.value, f"possible duplicate: {detail}", now)

    def fail(
        self,
        job_id: str,
        reason: FailureReason,
        *,
        code: str | None,
        text: str | None,
        detail: str,
    ) -> bool:
        """Finally fail a job that is still ours to fail; enqueue its report."""
        update = StatusUpdate("", JobStatus.FAILED, reason, code, text)
        return self._apply(job_id, update, detail)

    # -- provider reports ----------------------------------------------------------------
    def find(self, provider: str, update: StatusUpdate) -> str | None:
        with self.db.begin() as conn:
            if update.job_id:
                found = conn.execute(
                    sa.select(fax_jobs.c.id).where(
                        fax_jobs.c.id == update.job_id, fax_jobs.c.provider == provider
                    )
                ).scalar()
                if found:
                    return str(found)
            found = conn.execute(
                sa.select(fax_jobs.c.id).where(
                    fax_jobs.c.provider == provider,
                    fax_jobs.c.provider_fax_id == update.provider_fax_id,
                )
            ).scalar()
        return str(found) if found else None

    def apply_update(self, job_id: str, update: StatusUpdate, detail: str) -> bool:
        return self._apply(job_id, update, detail)

    def _apply(self, job_id: str, update: StatusUpdate, detail: str) -> bool:
        """Move a job forward; duplicates, out-of-order news and old rounds change nothing."""
        now = update.at or utcnow()
        with self.db.begin() as conn:
            # Lock the row: a callback, a poll and the worker may report on one job at once.
            job = conn.execute(
                fax_jobs.select().where(fax_jobs.c.id == job_id).with_for_update()
            ).first()
            if job is None or not concerns(job, update):
                return False
            current = JobStatus(job.status)
            if current.is_settled or update.status.rank <= current.rank:
                return False
            # News that names the fax before the worker recorded the send counts the dial.
            adopting = bool(update.provider_fax_id) and not job.provider_fax_id
            dials = job.dials + (1 if adopting else 0)
            if update.status is JobStatus.FAILED and current is not JobStatus.UNKNOWN:
                rule = None if job.provider_redials else RedialPolicy.from_dict(job.redial)
                redial = rule.for_reason(update.reason) if rule else None
                if redial is not None and dials < redial.tries:
                    self._redial(conn, job, update, detail, dials, redial)
                    return True
            values: dict[str, Any] = {
                "status": update.status.value,
                "updated": utcnow(),
                "provider_code": update.provider_code or job.provider_code,
                "provider_text": update.provider_text or job.provider_text,
            }
            if update.provider_fax_id and (not job.provider_fax_id or update.job_id == job.id):
                # Matched by our own id: adopt the provider's newest id for this fax
                # (Fax.Plus swaps its outbox id for a fax id once the fax is sent).
                values["provider_fax_id"] = update.provider_fax_id
            if adopting:
                values["dials"] = dials
            if update.tries:
                values["dials"] = update.tries
            if update.status is not JobStatus.UNKNOWN:
                values["forgotten_since"] = None
            if update.status.is_final:
                values.update(
                    reason=update.reason.value if update.reason else None,
                    finished_at=now,
                    lease_owner=None,
                    lease_until=None,
                    next_poll_at=None,
                )
            conn.execute(fax_jobs.update().where(fax_jobs.c.id == job_id).values(**values))
            _event(conn, job_id, update.status.value, detail, now)
            if update.status in _REPORTED:
                self._enqueue_report(conn, job, update.status)
        return True

    def _redial(
        self,
        conn: sa.Connection,
        job: Any,
        update: StatusUpdate,
        detail: str,
        dials: int,
        redial: Redial,
    ) -> None:
        """A busy or unanswered line, with dials left: queue a new round after the interval."""
        interval_s = redial.interval_s
        now = utcnow()
        conn.execute(
            fax_jobs.update()
            .where(fax_jobs.c.id == job.id)
            .values(
                status=JobStatus.QUEUED.value,
                round=job.round + 1,
                attempts=0,
                dials=dials,
                provider_fax_id=None,
                provider_code=update.provider_code or job.provider_code,
                provider_text=update.provider_text or job.provider_text,
                next_attempt_at=now + timedelta(seconds=interval_s),
                next_poll_at=None,
                forgotten_since=None,
                lease_owner=None,
                lease_until=None,
                updated=now,
            )
        )
        why = update.reason.in_words if update.reason else "the line failed"
        _event(
            conn,
            job.id,
            JobStatus.QUEUED.value,
            f"{detail}; {why} on dial {dials} of {redial.tries}: "
            f"redialling in {_wait_words(interval_s)}",
            now,
        )

    def _enqueue_report(self, conn: sa.Connection, job: Any, status: JobStatus) -> None:
        """Queue the job's report. Its ref says what it reports, so it is rendered as that
        whatever the job does meanwhile: `<job>:<round>:unknown` for "outcome unknown",
        `<job>:<round>` for the final word, `…:late` when that word follows an "unknown" report
        already written (one still unwritten is skipped: the final report says it all)."""
        ref = f"{job.id}:{job.round}"
        if status is JobStatus.UNKNOWN:
            outbox.enqueue(conn, "report", f"{ref}:unknown", job.faxbox, job.sender)
            return
        if JobStatus(job.status) is JobStatus.UNKNOWN:
            superseded = conn.execute(
                mail_outbox.update()
                .where(
                    mail_outbox.c.kind == "report",
                    mail_outbox.c.ref == f"{ref}:unknown",
                    mail_outbox.c.status == "pending",
                    mail_outbox.c.message_path.is_(None),
                )
                .values(status="skipped", last_error="superseded by the provider's final word")
            ).rowcount
            if not superseded:
                ref = f"{ref}:late"
        outbox.enqueue(conn, "report", ref, job.faxbox, job.sender)

    def due_polls(self, providers_poll_s: dict[str, float], limit: int) -> list[sa.Row[Any]]:
        """In-flight jobs whose provider has been quiet too long; pushes their next poll."""
        now = utcnow()
        with self.db.begin() as conn:
            query = (
                fax_jobs.select()
                .where(fax_jobs.c.status.in_(IN_FLIGHT), fax_jobs.c.next_poll_at <= now)
                .order_by(fax_jobs.c.next_poll_at)
                .limit(limit)
            )
            if self.db.is_postgres:
                query = query.with_for_update(skip_locked=True)
            rows = list(conn.execute(query).fetchall())
            for row in rows:
                wait = providers_poll_s.get(row.provider, 60.0)
                conn.execute(
                    fax_jobs.update()
                    .where(fax_jobs.c.id == row.id)
                    .values(next_poll_at=now + timedelta(seconds=wait))
                )
        return rows

    def count_since(
        self,
        since: datetime,
        *,
        sender: str | None = None,
        faxbox: str | None = None,
        until: datetime | None = None,
    ) -> int:
        """Faxes accepted since `since` (and before `until`), for the per-hour rate limits."""
        query = sa.select(sa.func.count()).select_from(fax_jobs).where(fax_jobs.c.created >= since)
        if until is not None:
            query = query.where(fax_jobs.c.created < until)
        if sender is not None:
            query = query.where(sa.func.lower(fax_jobs.c.sender) == sender.lower())
        if faxbox is not None:
            query = query.where(fax_jobs.c.faxbox == faxbox)
        with self.db.begin() as conn:
            return int(conn.execute(query).scalar() or 0)

    # -- reading -------------------------------------------------------------------------
    def row(self, job_id: str) -> sa.Row[Any] | None:
        with self.db.begin() as conn:
            return conn.execute(fax_jobs.select().where(fax_jobs.c.id == job_id)).first()

    def get(self, job_id: str) -> dict[str, Any] | None:
        with self.db.begin() as conn:
            row = conn.execute(fax_jobs.select().where(fax_jobs.c.id == job_id)).first()
            if row is None:
                return None
            events = conn.execute(
                job_events.select().where(job_events.c.job_id == job_id).order_by(job_events.c.id)
            ).fetchall()
        record = job_record(row)
        record["history"] = [{"at": e.at, "status": e.status, "detail": e.detail} for e in events]
        return record

    def recent(
        self,
        *,
        status: str | None = None,
        faxbox: str | None = None,
        limit: int = 100,
        before_id: str | None = None,
        attempt_id: str | None = None,
    ) -> list[dict[str, Any]]:
        query = fax_jobs.select().order_by(fax_jobs.c.created.desc(), fax_jobs.c.id.desc())
        if status:
            query = query.where(fax_jobs.c.status == status)
        if faxbox:
            query = query.where(fax_jobs.c.faxbox == faxbox)
        if before_id:
            query = query.where(fax_jobs.c.id <= before_id)
        if attempt_id:
            query = query.where(fax_jobs.c.attempt_id == attempt_id)
        with self.db.begin() as conn:
            rows = conn.execute(query.limit(limit)).fetchall()
        return [job_record(r) for r in rows]

    def events(self, job_id: str) -> list[sa.Row[Any]]:
        with self.db.begin() as conn:
            return list(
                conn.execute(
                    job_events.select()
                    .where(job_events.c.job_id == job_id)
                    .order_by(job_events.c.id)
                ).fetchall()
            )
