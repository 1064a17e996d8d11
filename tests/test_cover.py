"""The cover page, and putting it in front of the document."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone
from io import BytesIO

import pytest
from pypdf import PdfReader

from bridge.documents import count_pages, merge_pdfs, render_cover
from bridge.documents import text as text_module
from bridge.models import CoverNote
from tests.fixtures_docs import page_contents, page_sizes, pdf_pages

UNICODE = "Grüße – Ελληνικά – Кириллица"  # noqa: RUF001 (the point of the test)


def note(**changes: object) -> CoverNote:
    values: dict[str, object] = {
        "to_name": "Jane Doe",
        "to_number": "+1 212-555-0123",
        "from_name": "Alice Sender",
        "from_number": "+1 212-555-0100",
        "subject": "Quarterly report",
        "notes": "Please call me when it arrives.",
        "date": datetime(2024, 5, 3, 14, 5, tzinfo=UTC),
        "pages": 4,
    }
    values.update(changes)
    return CoverNote(**values)  # type: ignore[arg-type]


def cover_text(pdf: bytes) -> str:
    reader = PdfReader(BytesIO(pdf))
    assert len(reader.pages) == 1
    return reader.pages[0].extract_text()


def test_cover_page_shows_every_field() -> None:
    pdf = render_cover(note())
    assert page_sizes(pdf) == [(612, 792)]
    assert cover_text(pdf).splitlines() == [
        "FAX",
        "To: Jane Doe",
        "To fax: +1 212-555-0123",
        "From: Alice Sender",
        "From fax: +1 212-555-0100",
        "Date: Friday, 3 May 2024, 14:05 (UTC)",
        "Pages: 4 (including this cover page)",
        "Subject: Quarterly report",
        "Please call me when it arrives.",
    ]


def test_unicode_text_renders_on_the_cover() -> None:
    text = cover_text(render_cover(note(from_name=UNICODE, subject=UNICODE, notes=UNICODE)))
    assert f"From: {UNICODE}" in text
    assert f"Subject: {UNICODE}" in text
    assert text.rstrip().endswith(UNICODE)


def test_long_notes_are_cut_with_an_ellipsis_to_stay_on_one_page() -> None:
    notes = "\n".join(f"Paragraph {n}: " + "blah " * 30 for n in range(80))
    text = cover_text(render_cover(note(notes=notes, subject="word " * 200)))
    assert text.rstrip().endswith("…")
    assert "Paragraph 0:" in text
    assert "Paragraph 79" not in text
    subject_lines = text.split("Subject: ", 1)[1].splitlines()[:3]
    assert subject_lines[2].endswith("…")


def test_empty_fields_still_give_a_cover() -> None:
    empty = note(to_name="", from_name="", from_number="", subject="", notes="  ")
    lines = cover_text(render_cover(empty)).splitlines()
    assert lines[0] == "FAX"
    assert "To fax: +1 212-555-0123" in lines
    assert "Pages: 4 (including this cover page)" in lines
    assert lines[-1] == "Subject:"  # the form stays, no notes follow


def test_date_shows_the_offset_from_utc() -> None:
    when = datetime(2024, 12, 24, 9, 30, tzinfo=timezone(timedelta(hours=-5)))
    assert "Date: Tuesday, 24 December 2024, 09:30 (UTC-05:00)" in cover_text(
        render_cover(note(date=when))
    )


def test_core_fonts_are_used_when_no_unicode_font_is_found(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(text_module, "find_font", lambda style: None)
    text = cover_text(render_cover(note(from_name=UNICODE, notes="x " * 5000)))
    assert "From: Grüße - ???????? - ????????" in text
    assert text.rstrip().endswith("...")
    assert text_module.text_to_pdf(UNICODE).startswith(b"%PDF-")


def test_dejavu_is_found_on_this_machine() -> None:
    regular = text_module.find_font("regular")
    assert regular is not None and regular.endswith("DejaVuSans.ttf")


def test_cover_merged_in_front_of_the_document() -> None:
    merged = merge_pdfs([render_cover(note(pages=3)), pdf_pages("Page A", "Page B")])
    assert count_pages(merged) == 3
    contents = page_contents(merged)
    assert contents[0].startswith("FAX")
    assert contents[1:] == ["Page A", "Page B"]


def test_merging_nothing_is_an_error() -> None:
    with pytest.raises(ValueError):
        merge_pdfs([])


def test_a_whole_e_mail_as_notes_stays_one_page_and_quick() -> None:
    start = time.monotonic()
    pdf = render_cover(note(subject="S" * 16384, notes="word " * 400_000))
    assert time.monotonic() - start < 3
    assert count_pages(pdf) == 1
