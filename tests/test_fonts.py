"""Fonts parsed once per process: every document still embeds exactly its own glyphs."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from io import BytesIO

from fpdf import FPDF
from pypdf import PdfReader

from bridge.documents import fonts, render_cover
from bridge.documents.text import find_font, new_document, text_to_pdf
from bridge.models import CoverNote

GREEK = "Ωμέγα"
LATIN = "Quarterly report \u2013 \u201cQ3\u201d \u2026 \u20ac5"  # dash, quotes, ellipsis, euro


def note(**changes: object) -> CoverNote:
    values: dict[str, object] = {
        "to_name": "Jane Doe",
        "to_number": "+1 212-555-0123",
        "from_name": "Alice Sender",
        "from_number": "+1 212-555-0100",
        "subject": LATIN,
        "notes": "Please call me when it arrives.",
        "date": datetime(2024, 5, 3, 14, 5, tzinfo=UTC),
        "pages": 4,
    }
    values.update(changes)
    return CoverNote(**values)  # type: ignore[arg-type]


def embedded(pdf: bytes) -> dict[str, tuple[bytes, bytes]]:
    """Each font's embedded file and its ToUnicode map, by base font name."""
    found: dict[str, tuple[bytes, bytes]] = {}
    for page in PdfReader(BytesIO(pdf)).pages:
        for ref in page["/Resources"]["/Font"].values():
            font = ref.get_object()
            descendant = font["/DescendantFonts"][0].get_object()
            file = descendant["/FontDescriptor"]["/FontFile2"].get_object().get_data()
            found[str(font["/BaseFont"])] = (file, font["/ToUnicode"].get_object().get_data())
    return found


def uncached(text: str) -> bytes:
    """What fpdf2 alone embeds for `text` in DejaVu Sans (no cache, no common cut)."""
    path = find_font("regular")
    assert path is not None
    pdf = FPDF(unit="pt", format="letter")
    pdf.add_font("sans", "", path)
    pdf.add_page()
    pdf.set_font("sans", "", 12)
    pdf.cell(text=text)
    return bytes(pdf.output())


def cached(text: str) -> bytes:
    pdf, font_names = new_document(mono=False)
    pdf.add_page()
    pdf.set_font(font_names.sans, "", 12)
    pdf.cell(text=text)
    return fonts.output(pdf)


def test_the_embedded_subset_is_the_one_fpdf2_makes_from_the_whole_font() -> None:
    for text in (f"{LATIN} Zoë", f"{LATIN} Łukasz", f"Grüße {GREEK} Кириллица"):  # each cut
        [(ours, our_map)] = embedded(cached(text)).values()
        [(theirs, their_map)] = embedded(uncached(text)).values()
        assert (ours, our_map) == (theirs, their_map)
        assert PdfReader(BytesIO(cached(text))).pages[0].extract_text() == text


def test_a_document_carries_no_glyphs_of_the_one_before() -> None:
    render_cover(note(notes=f"{GREEK} Кириллица"))
    pdf = render_cover(note())
    maps = b"".join(to_unicode for _, to_unicode in embedded(pdf).values())
    assert b"03A9" not in maps  # Ω
    assert re.search(rb"<[0-9A-F]{4}> <0051>", maps)  # Q, from the subject
    assert LATIN in PdfReader(BytesIO(pdf)).pages[0].extract_text()


def test_text_pages_share_the_parsed_font_and_keep_their_text() -> None:
    pdf = text_to_pdf(f"first page {GREEK}\fsecond page")
    assert [p.extract_text() for p in PdfReader(BytesIO(pdf)).pages] == [
        f"first page {GREEK}",
        "second page",
    ]


def test_a_cover_costs_milliseconds_once_the_fonts_are_parsed() -> None:
    render_cover(note())
    started = time.process_time()
    for number in range(10):
        render_cover(note(to_number=f"+1 212-555-01{number:02d}"))
    per_cover_s = (time.process_time() - started) / 10
    assert per_cover_s < 0.08  # ~20 ms here; fpdf2 parsing the fonts each time took ~130 ms
