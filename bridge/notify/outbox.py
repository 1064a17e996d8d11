"""The mail worker: render each outbox row once, then deliver it with retry and backoff.

Rows are created in the same transaction as the event they report (a job's final status, an
inbound fax), so nothing is lost; the rendered bytes are kept, so a retry is byte-identical.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import logging
import random
from email.message import EmailMessage
from email.utils import parseaddr
from typing import Any

from bridge import metrics
from bridge.config import Config
from bridge.documents import merge_pdfs
from bridge.errors import StorageError
from bridge.leases import is_dead_local_owner, process_owner
from bridge.models import FailureReason, JobStatus
from bridge.notify.mailer import MailDeliveryError, Mailer
from bridge.notify.reports import (
    DeliveryOutcome,
    InboundMail,
    build_delivery_report,
    build_inbound_email,
    report_recipients,
)
from bridge.store import Store

log = logging.getLogger(__name__)


def header_block(raw: bytes) -> bytes:
    end = raw.find(b"\r\n\r\n")
    if end < 0:
        end = raw.find(b"\n\n")
    return raw if end < 0 else raw[:end]


class MailWorker:
    def __init__(self, config: Config, store: Store, mailer: Mailer, wake: asyncio.Event) -> None:
        self.config = config
        self.store = store
        self.mailer = mailer
        self.wake = wake
        self.rng = random.Random()
        self.owner = process_owner()
        self._stopping = asyncio.Event()

    async def run(self) -> None:
        await self._release_dead_leases()
        lease_s = self.config.mail.lease_s
        while not self._stopping.is_set():
            try:
                # One at a time: a lease covers one delivery, however slow the relay.
                rows = await asyncio.to_thread(self.store.outbox.claim, 1, lease_s, self.owner)
                for row in rows:
                    await asyncio.shield(self._deliver(row))
                if rows:
                    continue  # more may be due: no waiting between mails
            except StorageError as exc:
                log.error("mail worker cannot reach the store: %s", exc)
            self.wake.clear()
            try:
                await asyncio.wait_for(self.wake.wait(), timeout=1.0)
            except TimeoutError:
                pass

    async def stop(self) -> None:
        self._stopping.set()
        self.wake.set()

    async def _release_dead_leases(self) -> None:
        """Mail a dead bridge of this host was sending goes out again now (same bytes)."""
        try:
            owners = await asyncio.to_thread(self.store.outbox.lease_owners)
            dead = [owner for owner in owners if is_dead_local_owner(owner)]
            if await asyncio.to_thread(self.store.outbox.release_leases, dead):
                log.warning("mail of a stopped bridge (%s) is due again", dead)
        except StorageError as exc:
            log.error("mail worker cannot reach the store to free dead leases: %s", exc)

    async def _deliver(self, row: Any) -> None:
        try:
            if row.message_path is None:
                rendered = await asyncio.to_thread(self._render, row)
                if rendered is None:
                    return
                path, recipients = rendered
            else:
                path, recipients = row.message_path, list(row.recipients)
            raw = await asyncio.to_thread(self.store.db.read_file, path)
        except (OSError, LookupError) as exc:
            log.error("mail %s cannot be prepared: %s", row.id, exc)
            await asyncio.to_thread(self.store.outbox.mark_failed, row.id, f"cannot render: {exc}")
            return
        automatic = row.kind in ("report", "preview")  # answers to a sender: null sender
        sender = "" if automatic else parseaddr(self.config.mail.from_)[1]
        if row.kind == "forward":  # postmaster@ mail keeps its sender; a bounce stays null
            sender = row.sender or ""
        try:
            where = await self.mailer.send(raw, sender=sender, recipients=recipients)
        except MailDeliveryError as exc:
            await self._failed(row, exc)
            return
        await asyncio.to_thread(self.store.outbox.mark_sent, row.id, where)
        metrics.mail_done(row.kind, "sent")
        if row.kind == "inbound":
            await asyncio.to_thread(self.store.inbound.mark_emailed, row.ref)
        log.info("mail %s (%s) sent to %s: %s", row.id, row.kind, ", ".join(recipients), where)

    async def _failed(self, row: Any, exc: MailDeliveryError) -> None:
        settings = self.config.mail
        if exc.permanent or row.attempts >= settings.max_attempts:
            log.warning("mail %s failed for good: %s", row.id, exc.reply)
            await asyncio.to_thread(self.store.outbox.mark_failed, row.id, exc.reply)
            metrics.mail_done(row.kind, "failed")
            return
        delay = min(3600.0, settings.backoff_s * 2 ** (row.attempts - 1))
        delay *= 0.5 + self.rng.random() / 2
        log.info("mail %s not sent (%s); retrying in %.0f s", row.id, exc.reply, delay)
        await asyncio.to_thread(self.store.outbox.reschedule, row.id, exc.reply, delay)
        metrics.mail_done(row.kind, "retry")

    # -- rendering (blocking; runs in a thread) ------------------------------------------
    def _render(self, row: Any) -> tuple[str, list[str]] | None:
        built = self._build_report(row) if row.kind == "report" else self._build_inbound(row)
        if built is None:
            return None
        message, recipients = built
        data = message.as_bytes(policy=email.policy.SMTP)
        path = self.store.db.write_file(f"outbox/{row.id}.eml", data)
        self.store.outbox.save_rendered(row.id, path, recipients)
        return path, recipients

    def _build_report(self, row: Any) -> tuple[EmailMessage, list[str]] | None:
        job_id, _, rest = row.ref.partition(":")  # <job>:<round>[:unknown|:late]
        kind = rest.partition(":")[2]
        job = self.store.jobs.row(job_id)
        if job is None:
            raise LookupError(f"job {job_id} is gone")
        faxbox = self.config.faxbox(job.faxbox)
        events = self.store.jobs.events(job.id)
        status = JobStatus(job.status)
        reason = FailureReason(job.reason) if job.reason else None
        provider_code, provider_text = job.provider_code, job.provider_text
        if kind == "unknown":  # what the job was when it was queued, whatever it is now
            status, reason, provider_code = JobStatus.UNKNOWN, FailureReason.EXPIRED, "expired"
            gave_up = [e.detail for e in events if e.status == JobStatus.UNKNOWN.value]
            provider_text = gave_up[0].removeprefix("gave up waiting: ") if gave_up else None
        to, cc = report_recipients(job.sender, faxbox, status)
        if not to and not cc:
            self.store.outbox.mark_skipped(row.id, "nobody to report to")
            return None
        raw_path = self.store.smtplog.raw_path(job.attempt_id)
        original = self.store.db.read_file(raw_path) if raw_path else b""
        parsed = email.message_from_bytes(original, policy=email.policy.default)
        document = None
        if faxbox.reports.attach_fax:
            parts = [self.store.db.read_file(job.document_path)]
            if job.cover_path:
                parts.insert(0, self.store.db.read_file(job.cover_path))
            document = merge_pdfs(parts) if len(parts) > 1 else parts[0]
        outcome = DeliveryOutcome(
            job_id=job.id,
            attempt_id=job.attempt_id,
            faxbox=job.faxbox,
            to_number=job.to_number,
            to_name=job.to_name,
            status=status,
            reason=reason,
            provider=job.provider,
            provider_code=provider_code,
            provider_text=provider_text,
            pages=job.pages,
            attempts=job.attempts,
            history=[(e.at, e.status, e.detail) for e in events],
            submitted_at=job.submitted_at or job.created,
            finished_at=job.finished_at or job.updated,
            sender=job.sender,
            recipient_address=job.address,
            dials=job.dials,
            provider_redialled=job.provider_redials,
            possible_duplicate=job.possible_duplicate,
            late=kind == "late",
            original_headers=header_block(original),
            original_message_id=str(parsed["Message-ID"]) if parsed["Message-ID"] else None,
            original_subject=str(parsed["Subject"] or ""),
            document_pdf=document,
        )
        message = build_delivery_report(
            outcome,
            mail_from=self.config.mail.from_,
            hostname=self.config.smtp.hostname,
            to=to,
            cc=cc,
            attach_fax=faxbox.reports.attach_fax,
        )
        return message, to + cc

    def _build_inbound(self, row: Any) -> tuple[EmailMessage, list[str]] | None:
        fax = self.store.inbound.row(row.ref)
        if fax is None:
            raise LookupError(f"inbound fax {row.ref} is gone")
        faxbox = self.config.faxbox(fax.faxbox)
        recipients = list(faxbox.inbound.email_to)
        if not recipients:
            self.store.outbox.mark_skipped(row.id, f"faxbox {faxbox.name} has no inbound.email_to")
            return None
        document = self.store.db.read_file(fax.document_path) if fax.document_path else b""
        fmt = faxbox.inbound.format
        if fmt == "tiff":
            from bridge.documents.export import pdf_to_tiff

            document = pdf_to_tiff(document)
        mail = InboundMail(
            faxbox=fax.faxbox,
            from_number=fax.from_number,
            to_number=fax.to_number,
            pages=fax.pages,
            received=fax.received,
            remote_station_id=fax.remote_station_id,
            document=document,
            format=fmt,
        )
        message = build_inbound_email(
            mail,
            mail_from=self.config.mail.from_,
            hostname=self.config.smtp.hostname,
            to=recipients,
            filename_template=faxbox.inbound.filename_template,
            subject_template=faxbox.inbound.subject_template,
        )
        return message, recipients
