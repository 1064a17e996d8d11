"""One message → one PDF to fax, a report on every part, and the cover-page decision.

Runs in a worker process (spawn), so everything here is a module-level function of picklable
values. Refusals are DocumentErrors carrying the whole SMTP reply and the per-part report, so
the smtplog shows exactly what was found and why it was not faxed.
"""

from __future__ import annotations

import logging
import re
import unicodedata
import warnings
from dataclasses import dataclass, field

from bridge.documents.convert import Converted, Unusable, merge_pdfs, text_document, to_pdf
from bridge.documents.detect import Detection, detect, label, sniff, text_of
from bridge.documents.tnef import REASON_NO_FILES, REASON_UNPACKED, TnefError, is_tnef, unpack
from bridge.errors import DocumentError, NoFaxableContent, TooManyPages, UnreadableAttachment
from bridge.message import REASON_EMPTY, REASON_EXTERNAL, MessagePart, ParsedMessage, parse_message
from bridge.models import CoverPolicy

log = logging.getLogger(__name__)

MAX_REPLY_CHARS = 400
NO_TEXT = "the message has no text"
NOTHING = "the message has no attachments and no text"
ONLY_BOILERPLATE = "the message text is only boilerplate that is never faxed"
NOT_LOOKED_AT = "not converted: the message as a whole cannot be faxed"
# Set aside, but the sender meant to send something: do not fall back to faxing the text alone.
_BLOCKING_REASONS = frozenset({REASON_EMPTY, REASON_EXTERNAL})


@dataclass(frozen=True)
class AttachmentReport:
    filename: str | None
    content_type: str
    detected_type: str | None
    size: int
    pages: int
    used: bool
    reason: str | None

    def as_dict(self) -> dict[str, object]:
        return {
            "filename": self.filename,
            "content_type": self.content_type,
            "detected_type": self.detected_type,
            "size": self.size,
            "pages": self.pages,
            "used": self.used,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class DocumentOptions:
    cover_policy: CoverPolicy = CoverPolicy.AUTO
    ignore_body_patterns: tuple[str, ...] = ()
    max_pages: int = 200


@dataclass(frozen=True)
class PreparedDocument:
    message: ParsedMessage
    pdf: bytes
    pages: int
    attachments: list[AttachmentReport]
    wants_cover: bool
    cover_subject: str
    cover_notes: str


@dataclass
class _Outcome:
    """One part's fate while the message is being worked through."""

    part: MessagePart
    report: AttachmentReport
    converted: Converted | None = None
    fatal: bool = False
    blocking: bool = field(default=True)  # keeps the text alone from being faxed instead

    @property
    def sentence(self) -> str:
        """The reason as a sentence that names the part (for the SMTP reply)."""
        reason = self.report.reason or ""
        name = label(self.part)
        return reason if reason.startswith(name) else f"{name}: {reason}"


def prepare_document(raw: bytes, options: DocumentOptions) -> PreparedDocument:
    """Parse, convert every part, merge in message order; refuse with the SMTP reply."""
    message = parse_message(raw)
    outcomes = [
        _ignored(p, r) for p, r in zip(message.ignored, message.ignored_reasons, strict=True)
    ]

    def refuse(error: type[DocumentError], reply: str) -> DocumentError:
        return error(reply_line(reply), [o.report.as_dict() for o in outcomes])

    if message.problems:  # the message as a whole cannot be read: its parts are not converted
        outcomes += [_ignored(part, NOT_LOOKED_AT, blocking=False) for part in message.parts]
        outcomes.sort(key=lambda o: o.part.index)
        reply = "554 5.6.0 No faxable content: " + "; ".join(message.problems)
        raise refuse(NoFaxableContent, reply)
    for part in message.parts:
        outcomes += _convert_all(part, options.max_pages)
    outcomes.sort(key=lambda o: o.part.index)  # stable: a winmail.dat's files stay after it
    notes = clean_body(message.body_text, options.ignore_body_patterns)
    for outcome in outcomes:
        if outcome.fatal:
            name = outcome.part.filename or f"(unnamed {outcome.part.content_type})"
            raise refuse(
                UnreadableAttachment, f'554 5.6.0 Attachment "{name}": {outcome.report.reason}'
            )
    used = [o.converted for o in outcomes if o.converted is not None]
    cover_notes = notes
    if not used and notes and not any(o.blocking for o in outcomes):
        used = [text_document(notes, max_pages=options.max_pages)]  # the text is the document
        cover_notes = ""
        outcomes.insert(0, _body_outcome(message, notes, used[0].pages))
    elif not used:
        found = [o.sentence for o in outcomes]
        if not message.body_text.strip():
            found.append(NO_TEXT if found else NOTHING)
        elif not notes:
            found.append(ONLY_BOILERPLATE)
        raise refuse(NoFaxableContent, "554 5.6.0 No faxable content: " + "; ".join(found))

    pages = sum(c.pages for c in used)
    wants_cover = wants_cover_page(options.cover_policy, message.subject, cover_notes)
    total = pages + (1 if wants_cover else 0)
    if total > options.max_pages:  # before merging: a too-long text was only counted
        raise refuse(
            TooManyPages,
            f"552 5.3.4 The fax would have {total} pages; the limit is {options.max_pages}",
        )
    pdf = used[0].pdf if len(used) == 1 else merge_pdfs([c.pdf for c in used])
    return PreparedDocument(
        message=message,
        pdf=pdf,
        pages=pages,
        attachments=[o.report for o in outcomes],
        wants_cover=wants_cover,
        cover_subject=message.subject,
        cover_notes=cover_notes,
    )


def clean_body(text: str, patterns: tuple[str, ...]) -> str:
    """The body without boilerplate: each pattern (re.MULTILINE) removed, then stripped."""
    for pattern in patterns:
        try:
            text = re.sub(pattern, "", text, flags=re.MULTILINE)
        except re.error as exc:
            log.warning("ignore_body_patterns: %r is not a valid regex (%s)", pattern, exc)
    return text.strip()


def wants_cover_page(policy: CoverPolicy, subject: str, notes: str) -> bool:
    if policy == CoverPolicy.ALWAYS:
        return True
    if policy == CoverPolicy.NEVER:
        return False
    return bool(subject.strip() or notes.strip())


def reply_line(text: str) -> str:
    """One SMTP reply line: no CR/LF, at most MAX_REPLY_CHARS (cut with "..."), and ASCII:
    aiosmtpd encodes replies as ASCII unless SMTPUTF8 is on, and an encoding error there
    would lose the refusal. "Grüße.pdf" becomes "Grusse.pdf"-like, other scripts "?"."""
    flat = " ".join(text.split()).translate(_PUNCTUATION)
    decomposed = unicodedata.normalize("NFKD", flat)
    plain = "".join(
        c if c.isascii() and c.isprintable() else "?"
        for c in decomposed
        if not unicodedata.combining(c)
    )
    if len(plain) > MAX_REPLY_CHARS:
        plain = plain[: MAX_REPLY_CHARS - 3].rstrip() + "..."
    return plain


_PUNCTUATION = str.maketrans(  # dashes, curly quotes and sharp s, which NFKD keeps as they are
    {"\u2013": "-", "\u2014": "-", "\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"'}
    | {"\u00df": "ss"}
)


def _ignored(part: MessagePart, reason: str, *, blocking: bool | None = None) -> _Outcome:
    report = AttachmentReport(
        filename=part.filename,
        content_type=part.content_type,
        detected_type=sniff(part.data),
        size=len(part.data),
        pages=0,
        used=False,
        reason=reason,
    )
    if blocking is None:
        blocking = reason in _BLOCKING_REASONS
    return _Outcome(part, report, blocking=blocking)


def _convert_all(part: MessagePart, max_pages: int) -> list[_Outcome]:
    """One part's outcome; for a winmail.dat, its own and then one per file inside it."""
    if not is_tnef(part):
        return [_convert(part, max_pages)]
    detection = Detection("tnef", None)
    try:
        inside = unpack(part)
    except TnefError as exc:
        return [_skipped(part, detection, str(exc), fatal=True)]
    reason = REASON_UNPACKED if inside else REASON_NO_FILES
    container = _Outcome(part, _report(part, detection, pages=0, reason=reason), blocking=False)
    return [container] + [
        _convert(file, max_pages) if why is None else _ignored(file, why, blocking=False)
        for file, why in inside
    ]


def _convert(part: MessagePart, max_pages: int) -> _Outcome:
    """Detect and convert, with third-party warnings silenced so a Pillow or pikepdf warning
    never turns into a refusal where warnings are errors (tests) and not elsewhere."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _convert_part(part, max_pages)


def _convert_part(part: MessagePart, max_pages: int) -> _Outcome:
    detection = detect(part)
    if not detection.convertible:
        return _skipped(part, detection, detection.reason or "", fatal=detection.fatal)
    kind = detection.kind or ""
    try:
        text = text_of(part) if kind == "text" else None
        converted = to_pdf(kind, part.data, text, max_pages=max_pages)
    except Unusable as exc:
        return _skipped(part, detection, exc.reason, fatal=exc.fatal)
    report = _report(part, detection, pages=converted.pages, reason=None)
    return _Outcome(part, report, converted=converted)


def _skipped(part: MessagePart, detection: Detection, reason: str, *, fatal: bool) -> _Outcome:
    return _Outcome(part, _report(part, detection, pages=0, reason=reason), fatal=fatal)


def _report(
    part: MessagePart, detection: Detection, *, pages: int, reason: str | None
) -> AttachmentReport:
    return AttachmentReport(
        filename=part.filename,
        content_type=part.content_type,
        detected_type=detection.kind,
        size=len(part.data),
        pages=pages,
        used=reason is None,
        reason=reason,
    )


def _body_outcome(message: ParsedMessage, text: str, pages: int) -> _Outcome:
    data = text.encode("utf-8")
    part = MessagePart(None, message.body_type, data, None, None, "utf-8", index=0)
    report = AttachmentReport(None, message.body_type, "text", len(data), pages, True, None)
    return _Outcome(part, report, blocking=False)
