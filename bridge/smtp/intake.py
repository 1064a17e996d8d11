"""After DATA: message → documents → files → one transaction → the 250 (or a refusal).

CPU work (MIME, PDF, images, cover pages) runs in a process pool; disk and database work in
threads. The 250 is only returned after the raw message, the document, every cover page and
the database rows are durably written.
"""

from __future__ import annotations

import asyncio
import fnmatch
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

from bridge.config import Config, FaxboxConfig
from bridge.documents import (
    DocumentOptions,
    PreparedDocument,
    fax_pdf,
    prepare_document,
    render_covers,
)
from bridge.documents.external import Converters
from bridge.documents.pool import ConversionLimit, DocumentPool
from bridge.errors import DocumentError, StorageError, StorageFull
from bridge.message import ParsedMessage, parse_headers
from bridge.models import CoverNote, Outcome
from bridge.numbers import format_for_people
from bridge.smtp.policy import (
    AUTO_SUBMITTED_REPLY,
    STORAGE_FULL_REPLY,
    STORAGE_REPLY,
    Recipient,
)
from bridge.smtp.preview import preview_row
from bridge.smtp.repeats import InFlight, repeat_key
from bridge.store import Attempt, ForwardRow, NewJob, PreviewRow, Store, new_id

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IntakeResult:
    reply: str
    job_ids: list[str]


def document_options(
    faxbox: FaxboxConfig,
    sender: str | None = None,
    converters: Converters | None = None,
    max_bytes: int = 26_214_400,
    max_attachment_bytes: int | None = None,
) -> DocumentOptions:
    """The faxbox's cover policy, or that of the first `sender_overrides` entry matching;
    the converters this server has, and what an unpacked archive may hold."""
    cover, patterns = faxbox.cover_page, faxbox.ignore_body_patterns
    for override in faxbox.sender_overrides:
        if sender and any(
            fnmatch.fnmatchcase(sender.lower(), glob.lower()) for glob in override.senders
        ):
            cover = override.cover_page or cover
            if override.ignore_body_patterns is not None:
                patterns = override.ignore_body_patterns
            break
    return DocumentOptions(
        cover_policy=cover,
        ignore_body_patterns=tuple(patterns),
        max_pages=faxbox.max_pages,
        converters=converters or Converters(),
        max_bytes=max_bytes,
        max_attachment_bytes=max_attachment_bytes,
    )


def auto_submitted(raw: bytes) -> str | None:
    """The Auto-Submitted value unless it is `no`: such mail is never faxed (no loops)."""
    return _automatic(parse_headers(raw))


def _automatic(headers: ParsedMessage) -> str | None:
    value = headers.auto_submitted
    return value if value and value != "no" else None


class Intake:
    def __init__(self, config: Config, store: Store, pool: DocumentPool) -> None:
        self.config = config
        self.store = store
        self.pool = pool
        self.jobs_ready = asyncio.Event()
        self.converters = Converters.found()  # the bridge sets its managed LibreOffice here
        self.in_flight = InFlight()
        self._written: dict[str, list[str]] = {}  # attempt id -> files written for it so far

    async def _in_pool(self, func: Callable[..., object], *args: object) -> object:
        return await self.pool.run(func, *args)

    async def accept(self, attempt: Attempt, raw: bytes, recipients: list[Recipient]) -> str:
        """Turn one message into jobs; return the final SMTP reply. Records the attempt."""
        attempt.size = len(raw)
        self._written[attempt.id] = []
        try:
            reply = await self._accept(attempt, raw, recipients)
        except StorageError as exc:
            log.error("%s storage failed: %s", attempt.id, exc)
            attempt.fax_ids = []
            if isinstance(exc, StorageFull):
                reply = attempt.refuse(STORAGE_FULL_REPLY, f"disk full: {exc}")
            else:
                reply = attempt.refuse(STORAGE_REPLY, f"storage unavailable: {exc}")
            attempt.outcome = Outcome.REJECTED
            # Nothing was committed, so nothing refers to the documents written so far; the
            # message itself stays only if the smtplog row that names it could be written.
            written = self._written.get(attempt.id, [])
            self.store.db.remove_files(w for w in written if w != attempt.raw_path)
            if not await self._log_quietly(attempt) and attempt.raw_path:
                self.store.db.remove_files([attempt.raw_path])
            return reply
        except (DocumentError, ConversionLimit) as exc:  # past the document: cover, preview
            log.warning("%s refused while building its pages: %s", attempt.id, exc)
            attempt.fax_ids = []
            attempt.outcome = Outcome.REJECTED
            reply = attempt.refuse(exc.reply if isinstance(exc, DocumentError) else exc.reply())
            await self._log_quietly(attempt)
            return reply
        finally:
            self._written.pop(attempt.id, None)
        return reply

    async def _write(self, attempt: Attempt, relative: str, data: bytes) -> str:
        """Write one file for this attempt, durably, remembering it in case nothing commits."""
        self._written.setdefault(attempt.id, []).append(relative)
        return await asyncio.to_thread(self.store.db.write_file, relative, data)

    async def _accept(self, attempt: Attempt, raw: bytes, recipients: list[Recipient]) -> str:
        raw_path = f"messages/{attempt.created:%Y/%m/%d}/{attempt.id}.eml"
        attempt.raw_path = await self._write(attempt, raw_path, raw)
        # Subject, From and Message-ID go on the smtplog row of every message received, the
        # refused ones first of all: they are what an admin searches for.
        headers = await asyncio.to_thread(parse_headers, raw)
        _note_headers(attempt, headers)
        why = _automatic(headers)
        if why and any(r.forward_to for r in recipients):
            # The postmaster gets automatic mail too (that is what bounces are); nothing is faxed.
            if any(not r.forward_to for r in recipients):
                attempt.notes.append(f"Auto-Submitted: {why}: forwarded only, not faxed")
            recipients = [r for r in recipients if r.forward_to]
        elif why:
            attempt.outcome = Outcome.REJECTED
            reply = attempt.refuse(AUTO_SUBMITTED_REPLY, f"Auto-Submitted: {why}")
            await self._log_quietly(attempt)
            return reply

        window = self.config.smtp.duplicate_window
        key = repeat_key(raw, attempt.mail_from, (r.address for r in recipients))
        if not window or key is None:
            return await self._take(attempt, raw, recipients)
        async with self.in_flight.hold(key):
            since = attempt.created - timedelta(seconds=window)
            earlier = await asyncio.to_thread(self.store.smtplog.first_accepted, key, since)
            if earlier is not None:
                return await self._repeat(attempt, earlier)
            attempt.repeat_key = key
            return await self._take(attempt, raw, recipients)

    async def _repeat(self, attempt: Attempt, earlier: dict[str, Any]) -> str:
        """Answer a repeat like the first copy was answered, and fax nothing."""
        minutes = max(0, round((attempt.created - _aware(earlier["created"])).total_seconds() / 60))
        attempt.message_id = earlier["message_id"]
        attempt.subject = earlier["subject"]
        attempt.header_from = earlier["header_from"]
        attempt.faxbox = earlier["faxbox"]
        attempt.pages = earlier["pages"]
        attempt.fax_ids = []
        attempt.outcome = Outcome.ACCEPTED
        attempt.notes.append(
            f"a repeat of attempt {earlier['id']} (same Message-ID, sender, recipients and "
            f"body, {minutes} min earlier): not faxed again"
        )
        attempt.reply = (
            f"250 2.0.0 Already queued as {earlier['id']} (a repeat of the same message; "
            "not faxed again)"
        )
        attempt.finished = datetime.now(UTC)
        await asyncio.to_thread(self.store.smtplog.insert, replace(attempt))
        log.info("%s is a repeat of %s: not faxed again", attempt.id, earlier["id"])
        return attempt.reply

    async def _take(self, attempt: Attempt, raw: bytes, all_recipients: list[Recipient]) -> str:
        recipients = [r for r in all_recipients if not r.forward_to]
        if not recipients:
            forwards = await self._forwards(attempt, raw, all_recipients)
            return await self._forward_only(attempt, forwards)
        faxboxes = {r.faxbox.name: r.faxbox for r in recipients}
        prepared: dict[str, PreparedDocument] = {}
        try:
            for name, faxbox in faxboxes.items():
                smtp = self.config.smtp
                options = document_options(
                    faxbox,
                    attempt.mail_from,
                    self.converters,
                    smtp.size_limit,
                    smtp.max_attachment_bytes,
                )
                result = await self._in_pool(prepare_document, raw, options)
                assert isinstance(result, PreparedDocument)
                prepared[name] = result
        except DocumentError as exc:
            attempt.attachments = exc.attachments
            attempt.outcome = Outcome.REJECTED
            reply = attempt.refuse(exc.reply)
            await self._log_quietly(attempt)
            return reply
        except ConversionLimit as exc:
            attempt.outcome = Outcome.REJECTED
            reply = attempt.refuse(exc.reply())
            await self._log_quietly(attempt)
            return reply

        first = prepared[recipients[0].faxbox.name]
        _note_headers(attempt, first.message)
        attempt.attachments = [a.as_dict() for a in first.attachments]
        attempt.pages = first.pages + (1 if first.wants_cover else 0)
        attempt.faxbox = recipients[0].faxbox.name

        forwards = await self._forwards(attempt, raw, all_recipients)  # the fax is good
        faxes = [r for r in recipients if not r.preview]
        documents: dict[str, str] = {}
        for name, doc in prepared.items():
            if doc.cover_text is None and any(r.faxbox.name == name for r in faxes):
                documents[name] = await self._write(
                    attempt, f"documents/{attempt.id}-{name}.pdf", doc.pdf
                )
        covers = await self._covers(attempt, faxes, prepared)
        jobs = [
            await self._job(
                attempt, r, prepared[r.faxbox.name], documents.get(r.faxbox.name), covers.get(n)
            )
            for n, r in enumerate(faxes)
        ]
        previews = [
            await self._preview(attempt, r, prepared[r.faxbox.name], n)
            for n, r in enumerate(recipients)
            if r.preview
        ]
        attempt.fax_ids = [job.id for job in jobs]
        attempt.preview = bool(previews)
        attempt.outcome = Outcome.ACCEPTED
        attempt.reply = f"250 2.0.0 Queued as {attempt.id} ({_queued(jobs, previews, forwards)})"
        attempt.finished = datetime.now(UTC)
        await asyncio.to_thread(self.store.accept, attempt, jobs, previews, forwards)
        self.jobs_ready.set()
        log.info(
            "%s accepted: %d fax job(s), %d preview(s), %s pages",
            attempt.id,
            len(jobs),
            len(previews),
            attempt.pages,
        )
        return attempt.reply

    async def _forwards(
        self, attempt: Attempt, raw: bytes, recipients: list[Recipient]
    ) -> list[ForwardRow]:
        """postmaster@ / abuse@ recipients: the message as received, under a Received line,
        written once and queued with the attempt (one mail to all their addresses)."""
        own = [r for r in recipients if r.forward_to]
        if not own:
            return []
        targets = list(dict.fromkeys(a for r in own for a in r.forward_to))
        for_ = f"\r\n\tfor <{own[0].address}>" if len(own) == 1 else ""
        received = (
            f"Received: from {attempt.helo or 'unknown'} ([{attempt.peer or 'unknown'}])\r\n"
            f"\tby {self.config.smtp.hostname} (faxbridge) with ESMTP id {attempt.id}{for_};"
            f"\r\n\t{format_datetime(attempt.created)}\r\n"
        )
        path = await self._write(
            attempt, f"outbox/forward-{attempt.id}.eml", received.encode() + raw
        )
        addresses = ", ".join(r.address for r in own)
        attempt.notes.append(f"{addresses}: not faxed, forwarded to {', '.join(targets)}")
        sender = (attempt.mail_from or "").strip().strip("<>")
        return [ForwardRow(attempt.id, own[0].faxbox.name, sender, targets, path)]

    async def _forward_only(self, attempt: Attempt, forwards: list[ForwardRow]) -> str:
        """A message only for postmaster@ / abuse@: logged with its headers (noted on receipt,
        `_note_headers`), nothing faxed."""
        attempt.faxbox = attempt.faxbox or (forwards[0].faxbox if forwards else None)
        attempt.fax_ids = []
        attempt.outcome = Outcome.ACCEPTED
        attempt.reply = f"250 2.0.0 Queued as {attempt.id} ({_queued([], [], forwards)})"
        attempt.finished = datetime.now(UTC)
        await asyncio.to_thread(self.store.accept, attempt, [], [], forwards)
        log.info("%s accepted for the postmaster: forwarded, not faxed", attempt.id)
        return attempt.reply

    def _note(self, attempt: Attempt, recipient: Recipient, doc: PreparedDocument) -> CoverNote:
        message, faxbox = doc.message, recipient.faxbox
        return CoverNote(
            to_name=message.to_names.get(recipient.address.strip("<>").lower(), ""),
            to_number=format_for_people(recipient.e164),
            from_name=message.from_name or message.from_address or (attempt.mail_from or ""),
            from_number=format_for_people(faxbox.caller_id) if faxbox.caller_id else "",
            subject=doc.cover_subject,
            notes=doc.cover_notes,
            date=attempt.created,
            pages=doc.pages + (1 if doc.wants_cover else 0),
        )

    async def _covers(
        self, attempt: Attempt, faxes: list[Recipient], prepared: dict[str, PreparedDocument]
    ) -> dict[int, tuple[CoverNote, bytes]]:
        """The cover page of each fax (by its place in `faxes`) that goes in front of a
        document, all drawn in one pool task: one round trip per message, not per recipient."""
        notes = {
            n: self._note(attempt, r, prepared[r.faxbox.name])
            for n, r in enumerate(faxes)
            if prepared[r.faxbox.name].wants_cover and prepared[r.faxbox.name].cover_text is None
        }
        if not notes:
            return {}
        pdfs = await self._in_pool(render_covers, list(notes.values()))
        assert isinstance(pdfs, list)
        return {n: (note, pdf) for (n, note), pdf in zip(notes.items(), pdfs, strict=True)}

    async def _preview(
        self, attempt: Attempt, recipient: Recipient, doc: PreparedDocument, number: int
    ) -> PreviewRow:
        """The preview mail, built and written now; queued with the attempt."""
        note = self._note(attempt, recipient, doc) if doc.wants_cover else None
        data = await self._in_pool(preview_row, self.config, attempt, recipient, doc, note)
        assert isinstance(data, bytes)
        path = await self._write(attempt, f"outbox/preview-{attempt.id}-{number}.eml", data)
        to = (attempt.mail_from or "").strip("<>")
        return PreviewRow(f"{attempt.id}:{recipient.e164}", recipient.faxbox.name, to, path)

    async def _job(
        self,
        attempt: Attempt,
        recipient: Recipient,
        doc: PreparedDocument,
        document_path: str | None,
        cover: tuple[CoverNote, bytes] | None,
    ) -> NewJob:
        job_id = new_id()
        faxbox = recipient.faxbox
        total = doc.pages + (1 if doc.wants_cover else 0)
        cover_path = None
        cover_data = None
        if doc.cover_text is not None:  # a text-only mail on its cover: one document per job
            whole = await self._in_pool(fax_pdf, doc, self._note(attempt, recipient, doc))
            assert isinstance(whole, bytes)
            document_path = await self._write(
                attempt, f"documents/{attempt.id}-{job_id}.pdf", whole
            )
        elif doc.wants_cover:
            assert cover is not None  # drawn for every such fax by `_covers`
            note, pdf = cover
            cover_path = await self._write(attempt, f"covers/{job_id}.pdf", pdf)
            cover_data = {
                "to_name": note.to_name,
                "to_number": note.to_number,
                "from_name": note.from_name,
                "from_number": note.from_number,
                "subject": note.subject,
                "notes": note.notes,
                "date": note.date.isoformat(),
                "pages": note.pages,
            }
        assert document_path is not None
        return NewJob(
            id=job_id,
            faxbox=faxbox.name,
            provider=faxbox.provider,
            sender=attempt.mail_from or "",
            address=recipient.address,
            to_number=recipient.e164,
            to_name=doc.message.to_names.get(recipient.address.strip("<>").lower(), ""),
            original_number=recipient.local_part,
            caller_id=faxbox.caller_id,
            pages=total,
            document_pages=total if doc.cover_text is not None else doc.pages,
            document_path=document_path,
            cover_path=cover_path,
            cover=cover_data,
            redial=faxbox.redial_policy().as_dict(),
        )

    async def _log_quietly(self, attempt: Attempt) -> bool:
        try:
            await asyncio.to_thread(self.store.smtplog.insert, replace(attempt))
        except StorageError as exc:
            log.error("%s could not be logged: %s", attempt.id, exc)
            return False
        return True


def _note_headers(attempt: Attempt, message: ParsedMessage) -> None:
    attempt.header_from = (
        f"{message.from_name} <{message.from_address}>"
        if message.from_name
        else message.from_address
    ) or None
    attempt.message_id = message.message_id
    attempt.subject = message.subject


def _fax_ids(ids: list[str]) -> str:
    """`fax a, b, c`, or `faxes a, b and 47 more` when the ids would not fit one reply line."""
    shown: list[str] = []
    for number, job_id in enumerate(ids):
        if len(", ".join([*shown, job_id])) > _IDS_ROOM:
            return f"{len(ids)} faxes: {', '.join(shown)} and {len(ids) - number} more"
        shown.append(job_id)
    return f"fax {', '.join(shown)}"


def _aware(moment: datetime) -> datetime:
    """SQLite hands timestamps back naive (they are stored in UTC)."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# Room for the fax ids in a 250 line (RFC 5321: 512 octets a line): the rest are counted.
_IDS_ROOM = 360


def _queued(
    jobs: list[NewJob], previews: list[PreviewRow], forwards: list[ForwardRow] | None = None
) -> str:
    said = [_fax_ids([job.id for job in jobs])] if jobs else []
    if previews:
        said.append(f"preview mailed to {previews[0].to}")
    if forwards:
        said.append("forwarded to the postmaster")
    return "; ".join(said)
