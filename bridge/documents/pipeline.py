"""One message → one PDF to fax, a report on every part, and the cover-page decision.

Runs in a worker process (spawn), so everything here is a module-level function of picklable
values. Refusals are DocumentErrors carrying the whole SMTP reply and the per-part report, so
the smtplog shows exactly what was found and why it was not faxed.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from dataclasses import dataclass, field

from bridge.documents.convert import Converted, Unusable, count_pages, merge_pdfs, text_document
from bridge.documents.cover import split_text_for_cover
from bridge.documents.detect import sniff
from bridge.documents.external import Converters
from bridge.documents.html import html_document, is_logo
from bridge.documents.parts import AttachmentReport, Outcome, convert, convert_all, ignored
from bridge.documents.text import text_pages, text_to_pdf
from bridge.errors import (
    AttachmentsTooLarge,
    DocumentError,
    NoFaxableContent,
    TooManyPages,
    UnreadableAttachment,
)
from bridge.message import REASON_LOGO, MessagePart, ParsedMessage, parse_message
from bridge.models import CoverPolicy

__all__ = ["AttachmentReport", "DocumentOptions", "PreparedDocument", "prepare_document"]

log = logging.getLogger(__name__)

MAX_REPLY_CHARS = 400
NO_TEXT = "the message has no text"
NOTHING = "the message has no attachments and no text"
ONLY_BOILERPLATE = "the message text is only boilerplate that is never faxed"
NOT_LOOKED_AT = "not converted: the message as a whole cannot be faxed"
SHOWN_IN_TEXT = "shown in place in the message text"


@dataclass(frozen=True)
class DocumentOptions:
    cover_policy: CoverPolicy = CoverPolicy.AUTO
    ignore_body_patterns: tuple[str, ...] = ()
    max_pages: int = 200
    converters: Converters = field(default_factory=Converters)
    max_bytes: int = 26_214_400  # what an unpacked archive may hold (the message size limit)
    max_attachment_bytes: int | None = None  # the attachments together, decoded


@dataclass(frozen=True)
class PreparedDocument:
    """`pdf` holds the document pages; with `cover_text` set (a text-only mail) the cover
    carries that text below its fields and `pdf` only what did not fit (maybe no pages)."""

    message: ParsedMessage
    pdf: bytes
    pages: int
    attachments: list[AttachmentReport]
    wants_cover: bool
    cover_subject: str
    cover_notes: str
    cover_text: str | None = None


def prepare_document(raw: bytes, options: DocumentOptions) -> PreparedDocument:
    """Parse, convert every part, merge in message order; refuse with the SMTP reply."""
    message = parse_message(raw)
    outcomes = [
        ignored(p, r) for p, r in zip(message.ignored, message.ignored_reasons, strict=True)
    ]

    def refuse(error: type[DocumentError], reply: str) -> DocumentError:
        return error(reply_line(reply), [o.report.as_dict() for o in outcomes])

    if message.problems:  # the message as a whole cannot be read: its parts are not converted
        outcomes += [ignored(part, NOT_LOOKED_AT, blocking=False) for part in message.parts]
        outcomes.sort(key=lambda o: o.part.index)
        reply = "554 5.6.0 No faxable content: " + "; ".join(message.problems)
        raise refuse(NoFaxableContent, reply)
    if (limit := options.max_attachment_bytes) is not None:
        attached = [p for p in message.parts if not p.in_html]
        if (size := sum(len(p.data) for p in attached)) > limit:
            outcomes += [ignored(part, NOT_LOOKED_AT, blocking=False) for part in message.parts]
            outcomes.sort(key=lambda o: o.part.index)
            biggest = max(attached, key=lambda p: len(p.data))
            name = biggest.filename or f"(unnamed {biggest.content_type})"
            which = (
                f'"{name}" is {_mb(size)}'
                if len(attached) == 1
                else f'the attachments are {_mb(size)} together ("{name}" {_mb(len(biggest.data))})'
            )
            raise refuse(
                AttachmentsTooLarge,
                f"552 5.3.4 {which[0].upper()}{which[1:]} once decoded; the limit is {_mb(limit)}",
            )
    converters = options.converters
    shown: list[MessagePart] = []  # images the HTML-only body shows, placed if it is rendered
    for part in message.parts:
        if part.in_html and is_logo(part):
            outcomes.append(ignored(part, REASON_LOGO, blocking=False))
        elif part.in_html:
            shown.append(part)
        else:
            outcomes += convert_all(part, converters, options.max_pages, options.max_bytes)
    notes = clean_body(message.body_text, options.ignore_body_patterns)
    for outcome in outcomes:
        if outcome.fatal:
            raise refuse(UnreadableAttachment, outcome.refusal())
    used = [o.converted for o in outcomes if o.converted is not None]
    cover_notes = notes
    cover_text: str | None = None
    text_alone = not used and bool(notes) and not any(o.blocking for o in outcomes)
    html = _html_body(message, shown, converters) if text_alone else None
    if html is not None:  # the HTML-only body is the document, its pictures in place
        used, cover_notes = [html], ""
        outcomes += [_shown(part) for part in shown]
        outcomes.append(_body_outcome(message, notes, html.pages))
    else:
        outcomes += [convert(part, converters, options.max_pages) for part in shown]
        used = [o.converted for o in outcomes if o.converted is not None]
    if html is None and text_alone and not used:
        split = None
        if options.cover_policy != CoverPolicy.NEVER:
            split = split_text_for_cover(message.subject, notes)
        if split is not None:  # the cover carries the text: one page for a short mail
            cover_text, rest = split
            used = [_rest_of_text(rest, options.max_pages)]
        else:
            used = [text_document(notes, max_pages=options.max_pages)]
        cover_notes = ""
        outcomes.append(_body_outcome(message, notes, used[0].pages + (cover_text is not None)))
    elif not used:
        found = [o.sentence for o in outcomes]
        if not message.body_text.strip():
            found.append(NO_TEXT if found else NOTHING)
        elif not notes:
            found.append(ONLY_BOILERPLATE)
        raise refuse(NoFaxableContent, "554 5.6.0 No faxable content: " + "; ".join(found))

    outcomes.sort(key=lambda o: o.part.index)  # stable: a container's files stay after it
    pages = sum(c.pages for c in used)
    wants_cover = cover_text is not None or wants_cover_page(
        options.cover_policy, message.subject, cover_notes
    )
    total = pages + (1 if wants_cover else 0)
    if total > options.max_pages:  # before merging: a too-long text was only counted
        raise refuse(
            TooManyPages,
            f"552 5.3.4 The fax would have {total} pages; the limit is {options.max_pages}",
        )
    pdfs = [c.pdf for c in used if c.pages]
    pdf = b"" if not pdfs else pdfs[0] if len(pdfs) == 1 else merge_pdfs(pdfs)
    return PreparedDocument(
        message=message,
        pdf=pdf,
        pages=pages,
        attachments=[o.report for o in outcomes],
        wants_cover=wants_cover,
        cover_subject=message.subject,
        cover_notes=cover_notes,
        cover_text=cover_text,
    )


def _html_body(
    message: ParsedMessage, shown: list[MessagePart], converters: Converters
) -> Converted | None:
    """The HTML-only body rendered with its pictures; None (so its text is faxed instead) when
    the body is not HTML, there is no LibreOffice, or the rendering fails."""
    if message.body_type != "text/html" or not message.body_html or converters.office is None:
        return None
    try:
        return html_document(message.body_html, shown, converters.office)
    except Unusable as exc:
        log.warning("the HTML body could not be rendered (%s); faxing its text", exc.reason)
        return None


def _mb(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB"


def _rest_of_text(rest: str, max_pages: int) -> Converted:
    if not rest.strip():
        return Converted(b"", 0)
    pages = text_pages(rest)
    if pages is not None and pages > max_pages:
        return Converted(b"", pages)  # only counted: the fax is refused as too long
    pdf = text_to_pdf(rest)
    return Converted(pdf, count_pages(pdf))


def _shown(part: MessagePart) -> Outcome:
    report = AttachmentReport(
        part.filename, part.content_type, sniff(part.data), len(part.data), 0, True, None
    )
    return Outcome(part, report, blocking=False)


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


def _body_outcome(message: ParsedMessage, text: str, pages: int) -> Outcome:
    data = text.encode("utf-8")
    part = MessagePart(None, message.body_type, data, None, None, "utf-8", index=0)
    report = AttachmentReport(None, message.body_type, "text", len(data), pages, True, None)
    return Outcome(part, report, blocking=False)
