"""Small, real PDFs for provider tests: one page each, with a label that survives a merge.

A label lets a test tell pages apart after the bytes went through a provider (our cover page
merged in front of the document, an inbound fax served back by an emulator).
"""

from __future__ import annotations

from pathlib import Path

from fpdf import FPDF


def make_pdf(label: str, pages: int = 1) -> bytes:
    """A PDF whose every page says `label` (and its page number) in plain text."""
    pdf = FPDF(format="letter")
    pdf.set_creator("faxbridge tests")
    pdf.set_font("helvetica", size=24)
    for number in range(1, pages + 1):
        pdf.add_page()
        pdf.cell(text=f"{label} page {number}")
    return bytes(pdf.output())


def write_pdf(path: Path, label: str, pages: int = 1) -> Path:
    path.write_bytes(make_pdf(label, pages))
    return path


def page_texts(data: bytes) -> list[str]:
    """The extracted text of each page, to check which document ended up where."""
    from io import BytesIO

    from pypdf import PdfReader

    return [page.extract_text() or "" for page in PdfReader(BytesIO(data)).pages]
