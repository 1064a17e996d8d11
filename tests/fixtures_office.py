"""Real Office files made at test time: python-docx, openpyxl and python-pptx write the modern
formats with known text, tables, pictures and page breaks; LibreOffice itself (through the
managed converter's save-as) turns those into .doc, .odt, .xls, .ods, .ppt, .odp and into
password-protected files. Nothing here is a hand-made imitation of a format.
"""

from __future__ import annotations

import zipfile
from io import BytesIO

import docx
import openpyxl
import pptx
from docx.shared import Inches
from PIL import Image, ImageDraw
from pptx.util import Inches as PptxInches

from bridge.documents.office import OfficeEndpoint, office_convert

WORD_PAGE_1 = ("Order form 4711", "Widget", "3.50")
WORD_PAGE_2 = "Terms on page two"
SHEET_COLUMNS = 30
SLIDE_TITLES = ("First slide title", "Second slide title")

# LibreOffice's export filters, by the file kind they write.
SAVE_AS = {
    "doc": "MS Word 97",
    "odt": "writer8",
    "rtf": "Rich Text Format",
    "xls": "MS Excel 97",
    "ods": "calc8",
    "ppt": "MS PowerPoint 97",
    "odp": "impress8",
    "docx": "MS Word 2007 XML",
}


def picture(size: tuple[int, int] = (600, 400), label: str = "") -> bytes:
    """A PNG with a black box in the middle (easy to find at fax resolution)."""
    image = Image.new("RGB", size, (255, 255, 255))
    width, height = size
    ImageDraw.Draw(image).rectangle(
        (width // 4, height // 4, 3 * width // 4, 3 * height // 4), fill=(0, 0, 0)
    )
    if label:
        ImageDraw.Draw(image).text((10, 10), label, fill=(0, 0, 0))
    out = BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def order_docx() -> bytes:
    """Two pages: a heading, a table and a picture, a page break, then the terms."""
    document = docx.Document()
    document.add_heading(WORD_PAGE_1[0], level=1)
    table = document.add_table(rows=2, cols=3)
    for cell, text in zip(table.rows[0].cells, ("Item", "Quantity", "Price"), strict=True):
        cell.text = text
    for cell, text in zip(table.rows[1].cells, ("Widget", "12", "3.50"), strict=True):
        cell.text = text
    document.add_picture(BytesIO(picture()), width=Inches(3))
    document.add_page_break()
    document.add_paragraph(WORD_PAGE_2)
    out = BytesIO()
    document.save(out)
    return out.getvalue()


def wide_xlsx() -> bytes:
    """Thirty columns: three pages wide at 100 %, one page when fitted to the width."""
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "Prices"
    for column in range(1, SHEET_COLUMNS + 1):
        sheet.cell(row=1, column=column, value=f"COL{column}")
        sheet.cell(row=2, column=column, value=column * 10)
    out = BytesIO()
    workbook.save(out)
    return out.getvalue()


def macro_only_xlsm(vba_project: bytes) -> bytes:
    """An empty workbook that carries a VBA project (`vba_project`: an OLE2 file)."""
    workbook = openpyxl.Workbook()
    out = BytesIO()
    workbook.save(out)
    source = zipfile.ZipFile(BytesIO(out.getvalue()))
    result = BytesIO()
    with source, zipfile.ZipFile(result, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            data = source.read(item)
            if item.filename == "[Content_Types].xml":
                data = data.replace(
                    b"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml",
                    b"application/vnd.ms-excel.sheet.macroEnabled.main+xml",
                ).replace(
                    b"</Types>",
                    b'<Default Extension="bin" '
                    b'ContentType="application/vnd.ms-office.vbaProject"/></Types>',
                )
            target.writestr(item, data)
        target.writestr("xl/vbaProject.bin", vba_project)
    return result.getvalue()


def slides_pptx() -> bytes:
    """Two 16:9 slides (13.3 x 7.5 inches), each with a title."""
    deck = pptx.Presentation()
    deck.slide_width, deck.slide_height = PptxInches(13.333), PptxInches(7.5)
    for title in SLIDE_TITLES:
        slide = deck.slides.add_slide(deck.slide_layouts[5])
        assert slide.shapes.title is not None
        slide.shapes.title.text = title
    out = BytesIO()
    deck.save(out)
    return out.getvalue()


def csv_text() -> bytes:
    return b"Item,Quantity,Price\r\nWidget,12,3.50\r\nGadget,3,9.99\r\n"


def save_as(
    endpoint: OfficeEndpoint, data: bytes, kind: str, target: str, password: str = ""
) -> bytes:
    """`data` saved by LibreOffice in the `target` format (optionally with a password)."""
    return office_convert(endpoint, data, kind, save_as=(SAVE_AS[target], password)).pdf


def encrypted_ooxml(data: bytes, password: str) -> bytes:
    """A .docx/.xlsx/.pptx locked the way Office's "Encrypt with password" locks it."""
    from msoffcrypto.format.ooxml import OOXMLFile

    out = BytesIO()
    OOXMLFile(BytesIO(data)).encrypt(password, out)
    return out.getvalue()


def postscript(pages: int = 2) -> bytes:
    """A PostScript program that prints one labelled Letter page per page."""
    body = b"".join(
        b"/Helvetica findfont 24 scalefont setfont 72 700 moveto (PostScript page %d) show "
        b"showpage\n" % (n + 1)
        for n in range(pages)
    )
    return b"%!PS-Adobe-3.0\n%%Pages: " + str(pages).encode() + b"\n" + body + b"%%EOF\n"


def eps() -> bytes:
    """A small EPS drawing (a 200 x 100 pt box with a caption)."""
    return (
        b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 200 100\n"
        b"newpath 10 10 moveto 190 10 lineto 190 90 lineto 10 90 lineto closepath stroke\n"
        b"/Helvetica findfont 14 scalefont setfont 30 45 moveto (EPS drawing) show\n%%EOF\n"
    )
