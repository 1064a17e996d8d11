"""Office files, web pages, PostScript and HEIC photos become fax pages (issue 12).

One managed LibreOffice serves every test here (the session `office` fixture); each test
builds its files with the real libraries and checks the pages a fax would carry: how many,
which text is on each, their orientation and size.
"""

from __future__ import annotations

from email.message import EmailMessage
from io import BytesIO

import pytest
from PIL import Image
from pypdf import PdfReader

from bridge.documents import DocumentOptions, PreparedDocument, prepare_document
from bridge.documents.detect import sniff
from bridge.documents.external import Converters
from bridge.documents.office import OfficeService
from bridge.errors import DocumentError
from tests.fixtures_docs import message, pdf_pages
from tests.fixtures_office import (
    SHEET_COLUMNS,
    SLIDE_TITLES,
    WORD_PAGE_1,
    WORD_PAGE_2,
    csv_text,
    encrypted_ooxml,
    eps,
    macro_only_xlsm,
    order_docx,
    postscript,
    save_as,
    slides_pptx,
    wide_xlsx,
)

OCTET = "application/octet-stream"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


@pytest.fixture(scope="module")
def converters(office: OfficeService) -> Converters:
    office.wait_ready()
    return Converters.found(office=office.endpoint)


def prepare(msg: EmailMessage, converters: Converters, **options: object) -> PreparedDocument:
    return prepare_document(bytes(msg), DocumentOptions(converters=converters, **options))  # type: ignore[arg-type]


def refusal(msg: EmailMessage, converters: Converters) -> DocumentError:
    with pytest.raises(DocumentError) as caught:
        prepare(msg, converters)
    return caught.value


def pages_text(pdf: bytes) -> list[str]:
    return [" ".join(page.extract_text().split()) for page in PdfReader(BytesIO(pdf)).pages]


def sizes(pdf: bytes) -> list[tuple[float, float]]:
    return [
        (round(float(p.mediabox.width)), round(float(p.mediabox.height)))
        for p in PdfReader(BytesIO(pdf)).pages
    ]


def test_word_document_becomes_its_pages_with_table_picture_and_page_break(
    converters: Converters,
) -> None:
    doc = prepare(message((order_docx(), DOCX, "order.docx")), converters)
    first, second = pages_text(doc.pdf)
    assert all(word in first for word in WORD_PAGE_1)
    assert WORD_PAGE_2 in second and WORD_PAGE_1[0] not in second
    assert len(PdfReader(BytesIO(doc.pdf)).pages[0].images) == 1  # the picture
    [report] = doc.attachments
    assert (report.detected_type, report.pages, report.used) == ("docx", 2, True)


@pytest.fixture(scope="module")
def legacy_files(converters: Converters) -> dict[str, bytes]:
    """The same documents as LibreOffice writes them in the older and the open formats."""
    assert converters.office is not None
    word, sheet, deck = order_docx(), wide_xlsx(), slides_pptx()
    made = {kind: save_as(converters.office, word, "docx", kind) for kind in ("doc", "odt", "rtf")}
    made |= {kind: save_as(converters.office, sheet, "xlsx", kind) for kind in ("xls", "ods")}
    made |= {kind: save_as(converters.office, deck, "pptx", kind) for kind in ("ppt", "odp")}
    return made


@pytest.mark.parametrize(
    ("kind", "name", "first_page", "pages"),
    [
        ("doc", "order.doc", WORD_PAGE_1[0], 2),
        ("odt", "order.odt", WORD_PAGE_1[0], 2),
        ("rtf", "order.rtf", WORD_PAGE_1[0], 2),
        ("xls", "prices.xls", "COL1", 1),
        ("ods", "prices.ods", "COL1", 1),
        ("ppt", "deck.ppt", SLIDE_TITLES[0], 2),
        ("odp", "deck.odp", SLIDE_TITLES[0], 2),
    ],
)
def test_older_and_open_office_formats_convert_with_their_text(
    converters: Converters,
    legacy_files: dict[str, bytes],
    kind: str,
    name: str,
    first_page: str,
    pages: int,
) -> None:
    doc = prepare(message((legacy_files[kind], OCTET, name)), converters)
    text = pages_text(doc.pdf)
    assert len(text) == pages
    assert first_page in text[0]
    assert doc.attachments[0].detected_type == kind


def test_wide_spreadsheet_is_fitted_to_the_page_width(converters: Converters) -> None:
    doc = prepare(message((wide_xlsx(), OCTET, "prices.xlsx")), converters)
    [page] = pages_text(doc.pdf)  # thirty columns: three pages wide at 100 %
    assert "COL1" in page and f"COL{SHEET_COLUMNS}" in page and "300" in page
    [(width, height)] = sizes(doc.pdf)
    assert width > height  # wider than a portrait page: turned to landscape first


def test_csv_attachment_becomes_a_table(converters: Converters) -> None:
    doc = prepare(message((csv_text(), "text/csv", "stock.csv")), converters)
    [page] = pages_text(doc.pdf)
    assert "Widget" in page and "9.99" in page
    assert doc.attachments[0].detected_type == "csv"


def test_landscape_slides_stay_landscape_on_fax_paper(converters: Converters) -> None:
    doc = prepare(message((slides_pptx(), OCTET, "deck.pptx")), converters)
    first, second = pages_text(doc.pdf)
    assert SLIDE_TITLES[0] in first and SLIDE_TITLES[1] in second
    # 16:9 slides are 13.3 in wide: shrunk onto Letter turned sideways, still landscape
    assert sizes(doc.pdf) == [(792, 612), (792, 612)]


def test_password_protected_word_document_is_refused_naming_it(converters: Converters) -> None:
    locked = encrypted_ooxml(order_docx(), "secret")
    assert sniff(locked) == "ooxml-encrypted"  # Office wraps the file in an OLE2 container
    error = refusal(message((locked, DOCX, "order.docx")), converters)
    assert error.reply == (
        '554 5.6.0 Attachment "order.docx": the Word document is password-protected '
        "(send it without a password, or as PDF)"
    )


@pytest.mark.parametrize(
    ("source", "kind", "name", "what"),
    [
        ("docx", "odt", "letter.odt", "OpenDocument text"),
        ("docx", "doc", "letter.doc", "Word document"),
        ("xlsx", "xls", "prices.xls", "Excel spreadsheet"),
    ],
)
def test_files_locked_with_a_password_by_libreoffice_are_refused(
    converters: Converters, source: str, kind: str, name: str, what: str
) -> None:
    assert converters.office is not None
    original = {"docx": order_docx, "xlsx": wide_xlsx, "pptx": slides_pptx}[source]()
    locked = save_as(converters.office, original, source, kind, password="secret")
    error = refusal(message((locked, OCTET, name)), converters)
    assert error.reply == (
        f'554 5.6.0 Attachment "{name}": the {what} is password-protected '
        "(send it without a password, or as PDF)"
    )


def test_workbook_with_only_macros_is_refused(
    converters: Converters, legacy_files: dict[str, bytes]
) -> None:
    workbook = macro_only_xlsm(vba_project=legacy_files["doc"])  # any OLE2 file will do
    error = refusal(message((workbook, OCTET, "tools.xlsm")), converters)
    assert error.reply == (
        '554 5.6.0 Attachment "tools.xlsm": the Excel spreadsheet holds only macros and '
        "nothing to print (macros are never run)"
    )


def test_without_libreoffice_the_reply_names_the_missing_converter() -> None:
    error = refusal(message((order_docx(), DOCX, "order.docx")), Converters.found())
    assert error.reply == (
        '554 5.6.1 "order.docx" is a Word document; this server has no LibreOffice to convert it'
    )
    assert error.attachments[0]["reason"] == (
        '"order.docx" is a Word document; this server has no LibreOffice to convert it'
    )


def test_without_ghostscript_postscript_is_refused_naming_it() -> None:
    error = refusal(message((postscript(), OCTET, "label.ps")), Converters())
    assert error.reply == (
        '554 5.6.1 "label.ps" is a PostScript file; this server has no Ghostscript to convert it'
    )


def test_postscript_and_eps_convert_through_ghostscript() -> None:
    converters = Converters.found()
    doc = prepare(
        message((postscript(2), OCTET, "label.ps"), (eps(), "application/eps", "logo.eps")),
        converters,
    )
    assert pages_text(doc.pdf) == ["PostScript page 1", "PostScript page 2", "EPS drawing"]
    assert sizes(doc.pdf)[2] == (612, 792)  # the drawing fitted onto a Letter page
    assert [a.detected_type for a in doc.attachments] == ["ps", "eps"]


def test_heic_photo_from_an_iphone_becomes_a_page() -> None:
    import pillow_heif

    pillow_heif.register_heif_opener()
    photo = BytesIO()
    Image.new("RGB", (1200, 900), (30, 30, 30)).save(photo, format="HEIF", quality=60)
    doc = prepare(message((photo.getvalue(), "image/heic", "IMG_0001.HEIC")), Converters())
    assert doc.attachments[0].detected_type == "heic"
    [image] = PdfReader(BytesIO(doc.pdf)).pages[0].images
    assert image.image is not None and image.image.size == (1200, 900)


def test_office_files_are_merged_in_message_order_with_pdfs(converters: Converters) -> None:
    doc = prepare(
        message(
            (pdf_pages("Cover letter"), "application/pdf", "letter.pdf"),
            (order_docx(), DOCX, "order.docx"),
        ),
        converters,
    )
    text = pages_text(doc.pdf)
    assert text[0] == "Cover letter" and WORD_PAGE_1[0] in text[1] and WORD_PAGE_2 in text[2]
