"""The cover page: who it is for, who sent it, how many pages to expect, and the notes.

One Letter page, always: whatever does not fit is cut and marked with "…", because a cover
that spills onto a second page would make the page count on it wrong.

A text-only mail is faxed on the cover itself: the fields on top, the text below in the text
pages' monospaced font, and only what does not fit goes on to further pages. The split is made
before any cover is drawn (`split_text_for_cover`), so the page count on the cover is right;
for that, the To and From names take one line each on such a cover.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import datetime, timedelta
from functools import cache

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from bridge.documents.fonts import output, release
from bridge.documents.text import (
    LETTER_PT,
    MARGIN_PT,
    TEXT_LINE_HEIGHT_PT,
    TEXT_SIZE_PT,
    Fonts,
    fit_lines,
    new_document,
    text_chunks,
    text_columns,
    wrap_fixed_lines,
)
from bridge.models import CoverNote

TITLE_SIZE_PT = 40.0
FIELD_SIZE_PT = 12.0
NOTES_SIZE_PT = 11.0
_LABEL_WIDTH_PT = 90.0
_MAX_FIELD_LINES = 3
_RULE_GAP_PT = 14.0


def render_cover(note: CoverNote, text: str | None = None) -> bytes:
    """A one-page PDF (Letter) cover sheet for `note`; with `text` (the head that
    `split_text_for_cover` kept), that text is printed below the fields instead of notes."""
    pdf, fonts = new_document(mono=text is not None)
    pdf.set_auto_page_break(False)
    pdf.add_page()
    width = LETTER_PT[0] - 2 * MARGIN_PT
    _header(pdf, fonts, note, width, name_lines=1 if text is not None else _MAX_FIELD_LINES)
    if text is not None:
        pdf.set_font(fonts.mono, "", TEXT_SIZE_PT)
        for line in text.split("\n"):
            pdf.cell(w=width, h=TEXT_LINE_HEIGHT_PT, text=line, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        return output(pdf)

    notes = note.notes.strip()
    if notes:
        pdf.set_font(fonts.sans, "", NOTES_SIZE_PT)
        line_height = NOTES_SIZE_PT * 1.3
        room = LETTER_PT[1] - MARGIN_PT - pdf.get_y()
        lines = fit_lines(pdf, fonts, fonts.clean(notes), width, int(room // line_height))
        for line in lines:
            pdf.cell(w=width, h=line_height, text=line, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    return output(pdf)


def render_covers(notes: Sequence[CoverNote]) -> list[bytes]:
    """The covers of one message's recipients, in one pool task: a note that several
    recipients share (same name and number, in two faxboxes) is drawn once."""
    drawn: dict[CoverNote, bytes] = {}
    for note in notes:
        if note not in drawn:
            drawn[note] = render_cover(note)
    return [drawn[note] for note in notes]


def split_text_for_cover(subject: str, text: str) -> tuple[str, str] | None:
    """(the lines that fit under the cover fields, the rest for text pages), or None when
    no fixed-pitch font is at hand to measure with (then the text gets pages of its own).
    Measured on one document kept per process: loading the fonts costs far more than this."""
    with _MEASURING:
        measure = _measurer()
        if measure is None:
            return None
        pdf, fonts, top, columns = measure
        pdf.set_font(fonts.sans, "", FIELD_SIZE_PT)
        width = LETTER_PT[0] - 2 * MARGIN_PT - _LABEL_WIDTH_PT
        words = fonts.clean(" ".join(subject.split()))
        subject_lines = len(fit_lines(pdf, fonts, words, width, _MAX_FIELD_LINES)) if words else 1
    top += (subject_lines - 1) * FIELD_SIZE_PT * 1.45
    room = int((LETTER_PT[1] - MARGIN_PT - top) // TEXT_LINE_HEIGHT_PT)
    chunks = text_chunks(text.strip("\n"), fonts)
    lines = wrap_fixed_lines(chunks[0], columns)
    head, rest = lines[:room], lines[room:]
    later = "\n".join(rest).strip("\n")
    if len(chunks) > 1:
        later = "\f".join([later, *chunks[1:]]) if later else "\f".join(chunks[1:])
    return "\n".join(head).rstrip(), later


_MEASURING = threading.Lock()


@cache
def _measurer() -> tuple[FPDF, Fonts, float, int] | None:
    """A document to measure with, where the notes start under a one-line subject, and how
    many monospaced characters a line holds."""
    pdf, fonts = new_document()
    if not fonts.fixed_pitch:
        return None
    pdf.set_auto_page_break(False)
    pdf.add_page()
    width = LETTER_PT[0] - 2 * MARGIN_PT
    placeholder = CoverNote("To", "+1", "From", "+1", "Subject", "", datetime(2000, 1, 1), 1)
    _header(pdf, fonts, placeholder, width, name_lines=1)
    top = pdf.get_y()
    pdf.set_font(fonts.mono, "", TEXT_SIZE_PT)
    columns = text_columns(pdf)
    release(pdf)  # the document stays for measuring, without its fontTools objects' files
    return pdf, fonts, top, columns


def _header(pdf: FPDF, fonts: Fonts, note: CoverNote, width: float, *, name_lines: int) -> None:
    """The title and the fields, down to the rule above the notes."""
    pdf.set_font(fonts.sans, "B", TITLE_SIZE_PT)
    pdf.cell(w=width, h=TITLE_SIZE_PT * 1.2, text="FAX", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    _rule(pdf, width)

    pages = f"{note.pages} (including this cover page)"
    rows = (
        ("To:", note.to_name),
        ("To fax:", note.to_number),
        ("From:", note.from_name),
        ("From fax:", note.from_number),
        ("Date:", format_date(note.date)),
        ("Pages:", pages),
        ("Subject:", note.subject),
    )
    for label, value in rows:
        lines = name_lines if label in ("To:", "From:") else _MAX_FIELD_LINES
        _field(pdf, fonts, label, value, width, lines)
    _rule(pdf, width)


def format_date(when: datetime) -> str:
    """E.g. "Friday, 3 May 2024, 14:05 (UTC+02:00)": unambiguous in any country."""
    text = f"{when:%A}, {when.day} {when:%B %Y, %H:%M}"
    offset = when.utcoffset()
    if offset is None:
        return text
    if offset == timedelta(0):
        return f"{text} (UTC)"
    sign = "+" if offset >= timedelta(0) else "-"
    minutes = abs(int(offset.total_seconds())) // 60
    return f"{text} (UTC{sign}{minutes // 60:02d}:{minutes % 60:02d})"


def _field(pdf: FPDF, fonts: Fonts, label: str, value: str, width: float, max_lines: int) -> None:
    line_height = FIELD_SIZE_PT * 1.45
    pdf.set_font(fonts.sans, "B", FIELD_SIZE_PT)
    pdf.cell(w=_LABEL_WIDTH_PT, h=line_height, text=label)
    pdf.set_font(fonts.sans, "", FIELD_SIZE_PT)
    value_width = width - _LABEL_WIDTH_PT
    text = fonts.clean(" ".join(value.split()))
    lines = fit_lines(pdf, fonts, text, value_width, max_lines) if text else [""]
    for number, line in enumerate(lines):
        if number:
            pdf.set_x(MARGIN_PT + _LABEL_WIDTH_PT)
        pdf.cell(w=value_width, h=line_height, text=line, new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def _rule(pdf: FPDF, width: float) -> None:
    y = pdf.get_y() + _RULE_GAP_PT / 2
    pdf.set_line_width(1.0)
    pdf.line(MARGIN_PT, y, MARGIN_PT + width, y)
    pdf.set_y(y + _RULE_GAP_PT)
