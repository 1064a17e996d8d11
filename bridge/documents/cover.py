"""The cover page: who it is for, who sent it, how many pages to expect, and the notes.

One Letter page, always: whatever does not fit is cut and marked with "…", because a cover
that spills onto a second page would make the page count on it wrong.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from bridge.documents.text import LETTER_PT, MARGIN_PT, Fonts, fit_lines, new_document
from bridge.models import CoverNote

TITLE_SIZE_PT = 40.0
FIELD_SIZE_PT = 12.0
NOTES_SIZE_PT = 11.0
_LABEL_WIDTH_PT = 90.0
_MAX_FIELD_LINES = 3
_RULE_GAP_PT = 14.0


def render_cover(note: CoverNote) -> bytes:
    """A one-page PDF (Letter) cover sheet for `note`."""
    pdf, fonts = new_document(mono=False)
    pdf.set_auto_page_break(False)
    pdf.add_page()
    width = LETTER_PT[0] - 2 * MARGIN_PT

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
        _field(pdf, fonts, label, value, width)
    _rule(pdf, width)

    notes = note.notes.strip()
    if notes:
        pdf.set_font(fonts.sans, "", NOTES_SIZE_PT)
        line_height = NOTES_SIZE_PT * 1.3
        room = LETTER_PT[1] - MARGIN_PT - pdf.get_y()
        lines = fit_lines(pdf, fonts, fonts.clean(notes), width, int(room // line_height))
        for line in lines:
            pdf.cell(w=width, h=line_height, text=line, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    return bytes(pdf.output())


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


def _field(pdf: FPDF, fonts: Fonts, label: str, value: str, width: float) -> None:
    line_height = FIELD_SIZE_PT * 1.45
    pdf.set_font(fonts.sans, "B", FIELD_SIZE_PT)
    pdf.cell(w=_LABEL_WIDTH_PT, h=line_height, text=label)
    pdf.set_font(fonts.sans, "", FIELD_SIZE_PT)
    value_width = width - _LABEL_WIDTH_PT
    text = fonts.clean(" ".join(value.split()))
    lines = fit_lines(pdf, fonts, text, value_width, _MAX_FIELD_LINES) if text else [""]
    for number, line in enumerate(lines):
        if number:
            pdf.set_x(MARGIN_PT + _LABEL_WIDTH_PT)
        pdf.cell(w=value_width, h=line_height, text=line, new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def _rule(pdf: FPDF, width: float) -> None:
    y = pdf.get_y() + _RULE_GAP_PT / 2
    pdf.set_line_width(1.0)
    pdf.line(MARGIN_PT, y, MARGIN_PT + width, y)
    pdf.set_y(y + _RULE_GAP_PT)
