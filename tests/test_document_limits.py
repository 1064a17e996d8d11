"""Limits on what a document may cost: page size, page count before converting, and archive
members that are never inflated whole to find out what they are."""

from __future__ import annotations

import tracemalloc
import zipfile
from io import BytesIO

import pikepdf
from PIL import Image, TiffImagePlugin

from bridge.documents.convert import tiff_to_pdf
from bridge.documents.detect import sniff
from tests.test_hostile_documents import mail, part, refusal, text_part


def pdf_with_page(width_pt: float, height_pt: float, user_unit: float | None = None) -> bytes:
    pdf = pikepdf.new()
    pdf.add_blank_page(page_size=(min(width_pt, 14_400), min(height_pt, 14_400)))
    pdf.pages[0].obj["/MediaBox"] = pikepdf.Array([0, 0, width_pt, height_pt])
    if user_unit is not None:
        pdf.pages[0].obj["/UserUnit"] = user_unit
    out = BytesIO()
    pdf.save(out)
    return out.getvalue()


def test_a_pdf_with_a_page_kilometres_long_is_refused_naming_the_file_and_the_limit() -> None:
    huge = pdf_with_page(14_400, 14_400, user_unit=984)  # 200 in x 984: about 5 km
    raw = mail(text_part("Site plan"), part("application/pdf", huge, name="plan.pdf"))
    error = refusal(raw)
    assert error.reply == (
        '554 5.6.0 Attachment "plan.pdf": page 1 is 5.0 km on its longest side; pages up to '
        "200 in are faxed"
    )


def test_a_page_over_200_inches_without_user_unit_is_refused_too() -> None:
    raw = mail(part("application/pdf", pdf_with_page(612, 20_000), name="banner.pdf"))
    assert "page 1 is 278 in on its longest side" in refusal(raw).reply


def test_large_but_real_paper_is_faxed() -> None:
    from tests.test_hostile_documents import prepare

    a3 = pdf_with_page(842, 1191)
    doc = prepare(mail(text_part("A3 drawing"), part("application/pdf", a3, name="a3.pdf")))
    assert doc.pages == 1


def _tiff(pages: int) -> bytes:
    out = BytesIO()
    page = Image.new("1", (64, 64), 1)
    with TiffImagePlugin.AppendingTiffWriter(out, True) as writer:
        for _ in range(pages):
            page.save(writer, format="TIFF", compression="group4", dpi=(200, 200))
            writer.newFrame()
    return out.getvalue()


def test_a_tiff_over_the_page_limit_is_counted_not_converted() -> None:
    converted = tiff_to_pdf(_tiff(12), max_pages=10)
    assert (converted.pages, converted.pdf) == (12, b"")  # nothing was built
    assert tiff_to_pdf(_tiff(3), max_pages=10).pages == 3


def test_a_tiff_over_the_page_limit_is_refused_with_the_page_count() -> None:
    raw = mail(part("image/tiff", _tiff(12), name="long.tif"))
    assert refusal(raw, max_pages=10).reply == (
        "552 5.3.4 The fax would have 13 pages; the limit is 10"  # 12 and a cover page
    )


def test_a_zip_whose_mimetype_member_is_a_bomb_is_sniffed_without_inflating_it() -> None:
    """The 2.8 MB ZIP that grew a worker to 4.2 GB: here 200 MB of zeros behind "mimetype"."""
    out = BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("mimetype", "w") as member:
            member.write(b"application/vnd.oasis.opendocument.text")
            zeros = bytes(1024 * 1024)
            for _ in range(200):
                member.write(zeros)
    data = out.getvalue()
    assert len(data) < 1024 * 1024
    tracemalloc.start()
    try:
        kind = sniff(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert kind == "zip"  # not an OpenDocument: its mimetype does not say so
    assert peak < 16 * 1024 * 1024, f"sniffing took {peak / 2**20:.0f} MiB"
