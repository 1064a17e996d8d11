"""One part's fate: detected, converted (by the right converter), or set aside with a reason.

Containers (a winmail.dat, a ZIP when archives are unpacked) yield an outcome of their own
and then one per file inside. A refusal that must stop the whole fax carries its SMTP reply.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

from bridge.documents.archive import (
    NOT_UNPACKED,
    ONLY_ZIP,
    REASON_NESTED,
    REASON_UNPACKED,
    ArchiveError,
    unpack_zip,
)
from bridge.documents.convert import Converted, Unusable, to_pdf
from bridge.documents.detect import (
    ARCHIVE_KINDS,
    OFFICE_KINDS,
    POSTSCRIPT_KINDS,
    Detection,
    detect,
    label,
    needs,
    sniff,
    text_of,
)
from bridge.documents.external import (
    Converters,
    missing_reply,
    office_to_pdf,
    postscript_to_pdf,
)
from bridge.documents.pool import ConversionLimit
from bridge.documents.tnef import REASON_NO_FILES, TnefError, is_tnef, unpack
from bridge.documents.tnef import REASON_UNPACKED as TNEF_UNPACKED
from bridge.message import REASON_EMPTY, REASON_EXTERNAL, MessagePart

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


@dataclass
class Outcome:
    """One part's fate while the message is being worked through."""

    part: MessagePart
    report: AttachmentReport
    converted: Converted | None = None
    fatal: bool = False
    blocking: bool = field(default=True)  # keeps the text alone from being faxed instead
    reply: str | None = None  # the whole SMTP reply when this part refuses the fax

    @property
    def sentence(self) -> str:
        """The reason as a sentence that names the part (for the SMTP reply)."""
        reason = self.report.reason or ""
        name = label(self.part)
        return reason if reason.startswith(name) else f"{name}: {reason}"

    def refusal(self) -> str:
        if self.reply:
            return self.reply
        name = self.part.filename or f"(unnamed {self.part.content_type})"
        return f'554 5.6.0 Attachment "{name}": {self.report.reason}'


def ignored(part: MessagePart, reason: str, *, blocking: bool | None = None) -> Outcome:
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
    return Outcome(part, report, blocking=blocking)


def convert_all(
    part: MessagePart, converters: Converters, max_pages: int, max_bytes: int
) -> list[Outcome]:
    """One part's outcome; for a container, its own and then one per file inside it."""
    if is_tnef(part):
        detection = Detection("tnef", None)
        try:
            inside = unpack(part)
        except TnefError as exc:
            return [skipped(part, detection, str(exc), fatal=True)]
        reason = TNEF_UNPACKED if inside else REASON_NO_FILES
        container = Outcome(part, report(part, detection, pages=0, reason=reason), blocking=False)
        return [container] + [
            convert(file, converters, max_pages)
            if why is None
            else ignored(file, why, blocking=False)
            for file, why in inside
        ]
    if converters.unpack_archives and sniff(part.data) == "zip":
        return _unpack_zip(part, converters, max_pages, max_bytes)
    return [convert(part, converters, max_pages)]


def _unpack_zip(
    part: MessagePart, converters: Converters, max_pages: int, max_bytes: int
) -> list[Outcome]:
    detection = Detection("zip", None)
    try:
        files = unpack_zip(part, max_bytes)
    except ArchiveError as exc:
        return [skipped(part, detection, exc.reason, fatal=True)]
    container = Outcome(part, report(part, detection, pages=0, reason=REASON_UNPACKED))
    container.blocking = False
    inner = [
        ignored(f, REASON_NESTED)
        if sniff(f.data) in ARCHIVE_KINDS
        else convert(f, converters, max_pages)
        for f in files
    ]
    return [container, *inner]


def convert(part: MessagePart, converters: Converters, max_pages: int) -> Outcome:
    """Detect and convert, with third-party warnings silenced so a Pillow or pikepdf warning
    never turns into a refusal where warnings are errors (tests) and not elsewhere."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _convert_part(part, converters, max_pages)


def _convert_part(part: MessagePart, converters: Converters, max_pages: int) -> Outcome:
    detection = detect(part)
    if not detection.convertible:
        reason = detection.reason or ""
        if detection.kind in ARCHIVE_KINDS:
            reason = f"{label(part)} {ONLY_ZIP if converters.unpack_archives else NOT_UNPACKED}"
        return skipped(part, detection, reason, fatal=detection.fatal)
    kind = detection.kind or ""
    converter = needs(kind)
    if converter is not None and not converters.has(converter):
        missing = missing_reply(label(part), kind, converter)
        return skipped(part, detection, missing.split(" ", 2)[2], fatal=True, reply=missing)
    try:
        if kind in OFFICE_KINDS:
            assert converters.office is not None
            converted = office_to_pdf(converters.office, part.data, kind)
        elif kind in POSTSCRIPT_KINDS:
            assert converters.ghostscript is not None
            converted = postscript_to_pdf(converters.ghostscript, part.data, kind)
        else:
            text = text_of(part) if kind == "text" else None
            converted = to_pdf(kind, part.data, text, max_pages=max_pages)
    except ConversionLimit as exc:
        exc.filename = part.filename or f"(unnamed {part.content_type})"
        raise
    except Unusable as exc:
        reply: str | None = None
        if exc.fatal:
            name = part.filename or f"(unnamed {part.content_type})"
            code = "451 4.3.0" if exc.temporary else f"554 {exc.code}"
            reply = f'{code} Attachment "{name}": {exc.reason}'
        return skipped(part, detection, exc.reason, fatal=exc.fatal, reply=reply)
    return Outcome(part, report(part, detection, pages=converted.pages, reason=None), converted)


def skipped(
    part: MessagePart,
    detection: Detection,
    reason: str,
    *,
    fatal: bool,
    reply: str | None = None,
) -> Outcome:
    return Outcome(part, report(part, detection, pages=0, reason=reason), fatal=fatal, reply=reply)


def report(
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
