"""Message → fax document: detection by content, conversion, merging, refusals."""

from __future__ import annotations

import multiprocessing
import zipfile
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from email.message import EmailMessage
from email.mime.application import MIMEApplication
from io import BytesIO

import pytest
from PIL import Image
from pypdf import PdfReader

from bridge.documents import DocumentOptions, PreparedDocument, fax_pdf, prepare_document
from bridge.errors import DocumentError, NoFaxableContent, TooManyPages, UnreadableAttachment
from bridge.models import CoverNote, CoverPolicy
from tests.fixtures_docs import (
    encrypted_pdf,
    fax_tiff,
    jpeg,
    message,
    page_contents,
    page_sizes,
    palette_gif,
    pdf_pages,
    png_bytes,
    png_with_alpha,
    tiff_16bit,
)

OCTET = "application/octet-stream"


def cover_note() -> CoverNote:
    when = datetime(2024, 5, 3, 14, 5, tzinfo=UTC)
    return CoverNote("Jane Doe", "+1 212-555-0123", "Alice", "", "Quarterly report", "", when, 1)


def prepare(msg: EmailMessage | bytes, **options: object) -> PreparedDocument:
    raw = msg if isinstance(msg, bytes) else bytes(msg)
    return prepare_document(raw, DocumentOptions(**options))  # type: ignore[arg-type]


def refusal(msg: EmailMessage | bytes, **options: object) -> DocumentError:
    with pytest.raises(DocumentError) as caught:
        prepare(msg, **options)
    return caught.value


def docx() -> bytes:
    out = BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", "<document/>")
    return out.getvalue()


def pages_document() -> bytes:
    """An Apple Pages file: a zip nothing here can convert."""
    out = BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("Index/Document.iwa", b"\0" * 20)
    return out.getvalue()


def only_image(pdf: bytes) -> Image.Image:
    [image] = PdfReader(BytesIO(pdf)).pages[0].images
    assert image.image is not None
    return image.image


def page_placement(pdf: bytes) -> bytes:
    """The image's transformation matrix on the first page: its size and position."""
    data = PdfReader(BytesIO(pdf)).pages[0].get_contents()
    assert data is not None
    return next(line for line in data.get_data().splitlines() if line.endswith(b" cm"))


def test_octet_stream_pdf_is_detected_by_content() -> None:
    doc = prepare(message((pdf_pages("Scan page 1", "Scan page 2"), OCTET, "scan0001.bin")))
    assert page_contents(doc.pdf) == ["Scan page 1", "Scan page 2"]
    [report] = doc.attachments
    assert (report.detected_type, report.pages, report.used, report.reason) == (
        "pdf",
        2,
        True,
        None,
    )


def test_documents_of_every_kind_are_merged_in_message_order() -> None:
    msg = message(
        (pdf_pages("PDF one", "PDF two"), "application/pdf", "a.pdf"),
        (fax_tiff(3), OCTET, "scan.tif"),
        (jpeg(), "image/jpeg", "photo.jpg"),
        (png_with_alpha(), "image/png", "logo-alpha.png"),
        (palette_gif(), "image/gif", "anim.gif"),
    )
    doc = prepare(msg)
    assert doc.pages == 8
    assert page_contents(doc.pdf) == [
        "PDF one",
        "PDF two",
        "ccitt",
        "ccitt",
        "ccitt",
        "jpeg",
        "flate",
        "flate",
    ]
    assert [(a.filename, a.detected_type, a.pages, a.used) for a in doc.attachments] == [
        ("a.pdf", "pdf", 2, True),
        ("scan.tif", "tiff", 3, True),
        ("photo.jpg", "jpeg", 1, True),
        ("logo-alpha.png", "png", 1, True),
        ("anim.gif", "gif", 1, True),
    ]
    assert doc.wants_cover
    assert doc.cover_subject == "Quarterly report"
    assert doc.cover_notes == "Please fax the attached."


def test_g3_and_g4_fax_tiffs_keep_their_paper_size() -> None:
    for compression in ("group3", "group4"):
        doc = prepare(message((fax_tiff(2, compression=compression), "image/tiff", "fax.tif")))
        assert page_contents(doc.pdf) == ["ccitt", "ccitt"]
        # 1728 x 2200 px at 204 x 196 dpi: 8.47 x 11.22 in, a fax page, not a 24-inch poster
        assert page_sizes(doc.pdf) == [(610, 808), (610, 808)]


def test_normal_resolution_fax_tiff_is_not_stretched() -> None:
    tiff = fax_tiff(1, dpi=(204, 98), size=(1728, 1100))
    assert page_sizes(prepare(message((tiff, OCTET, None))).pdf) == [(610, 808)]


def test_16_bit_tiff_is_converted_frame_by_frame() -> None:
    doc = prepare(message((tiff_16bit(size=(600, 800), dpi=(100, 100)), "image/tiff", "x.tif")))
    assert doc.pages == 1
    assert page_sizes(doc.pdf) == [(432, 576)]
    image = only_image(doc.pdf).convert("L")
    assert image.getpixel((100, 100)) < 10  # 1000 of 65535: black, not clipped to white
    assert 150 <= image.getpixel((500, 700)) <= 160  # 40000 of 65535: scaled, not clipped


def test_alpha_is_flattened_onto_white() -> None:
    doc = prepare(message((png_with_alpha(), "image/png", "a.png")))
    image = only_image(doc.pdf).convert("RGB")
    assert image.getpixel((5, 5)) == (255, 255, 255)
    assert image.getpixel((150, 150)) == (0, 0, 0)


def test_animated_gif_contributes_its_first_frame() -> None:
    doc = prepare(message((palette_gif(frames=4), OCTET, "anim.gif")))
    assert doc.pages == 1
    image = only_image(doc.pdf).convert("L")
    assert image.getpixel((20, 20)) == 0  # frame 1's box starts at x=10
    assert image.getpixel((5, 5)) == 255  # transparent background became white


def test_images_sit_on_letter_pages_and_large_ones_are_shrunk() -> None:
    doc = prepare(message((jpeg((4000, 3000), dpi=72), "image/jpeg", "big.jpg")))
    assert page_sizes(doc.pdf) == [(612, 792)]
    # 8.5 in less two quarter-inch borders wide, aspect kept, centred
    assert page_placement(doc.pdf) == b"576.0000 0 0 432.0000 18.0000 180.0000 cm"


def test_small_images_keep_their_size() -> None:
    doc = prepare(message((jpeg((400, 300), dpi=72), "image/jpeg", "small.jpg")))
    assert page_sizes(doc.pdf) == [(612, 792)]
    assert page_placement(doc.pdf) == b"400.0000 0 0 300.0000 106.0000 246.0000 cm"


def test_rotated_phone_photo_is_turned_upright() -> None:
    doc = prepare(message((jpeg((800, 600), orientation=6), "image/jpeg", "phone.jpg")))
    assert only_image(doc.pdf).size == (600, 800)


def test_password_protected_pdf_is_refused() -> None:
    locked = encrypted_pdf("Secret", user_password="s3cret")
    error = refusal(message((locked, "application/pdf", "x.pdf")))
    assert isinstance(error, UnreadableAttachment)
    assert error.reply == '554 5.6.0 Attachment "x.pdf": the PDF is password-protected'
    assert error.attachments == [
        {
            "filename": "x.pdf",
            "content_type": "application/pdf",
            "detected_type": "pdf",
            "size": len(locked),
            "pages": 0,
            "used": False,
            "reason": "the PDF is password-protected",
        }
    ]


def test_password_protected_pdf_is_refused_even_next_to_a_good_one() -> None:
    msg = message(
        (pdf_pages("fine"), "application/pdf", "fine.pdf"),
        (encrypted_pdf("Secret", user_password="pw"), "application/pdf", "locked.pdf"),
    )
    error = refusal(msg)
    assert error.reply == '554 5.6.0 Attachment "locked.pdf": the PDF is password-protected'
    assert [a["used"] for a in error.attachments] == [True, False]


def test_pdf_with_an_empty_user_password_is_opened() -> None:
    doc = prepare(message((encrypted_pdf("Open A", "Open B", user_password=""), OCTET, "o.pdf")))
    assert page_contents(doc.pdf) == ["Open A", "Open B"]
    assert not PdfReader(BytesIO(doc.pdf)).is_encrypted


def test_damaged_pdfs_are_refused() -> None:
    for data in (b"%PDF-1.7\n1 0 obj\n<< garbage", b"\x00\x01 neither magic nor text"):
        error = refusal(message((data, "application/pdf", "broken.pdf")))
        assert isinstance(error, UnreadableAttachment)
        assert error.reply == (
            '554 5.6.0 Attachment "broken.pdf": the PDF is damaged and cannot be read'
        )


def test_web_page_saved_as_pdf_is_called_a_web_page() -> None:
    error = refusal(message((b"<!DOCTYPE html><p>404</p>", "application/pdf", "get.pdf")))
    assert error.reply == (
        '554 5.6.0 No faxable content: "get.pdf" is a web page (print it to PDF)'
    )


def test_pdf_with_junk_before_the_header_is_repaired() -> None:
    doc = prepare(message((b"\r\n" * 10 + pdf_pages("Survivor"), OCTET, None)))
    assert page_contents(doc.pdf) == ["Survivor"]


def test_pages_document_alone_is_refused_with_advice() -> None:
    error = refusal(message((pages_document(), OCTET, "report.pages"), text=None, subject=None))
    assert isinstance(error, NoFaxableContent)
    assert error.reply == (
        '554 5.6.0 No faxable content: "report.pages" is a Pages document (export it as PDF);'
        " the message has no text"
    )
    assert error.attachments[0]["detected_type"] == "pages"


def test_word_document_without_libreoffice_is_refused_naming_the_converter() -> None:
    error = refusal(message((docx(), OCTET, "report.docx"), text=None, subject=None))
    assert isinstance(error, UnreadableAttachment)
    assert error.reply == (
        '554 5.6.1 "report.docx" is a Word document; this server has no LibreOffice to convert it'
    )
    assert error.attachments[0]["detected_type"] == "docx"


def test_unusable_parts_are_reported_and_the_rest_is_faxed() -> None:
    msg = message(
        (pages_document(), OCTET, "letter.pages"),
        (pdf_pages("The PDF"), "application/pdf", "ok.pdf"),
        (b"PK\x03\x04" + bytes(40), "application/zip", "x.zip"),
        (bytes(range(256)) * 4, OCTET, "a.bin"),
    )
    doc = prepare(msg)
    assert page_contents(doc.pdf) == ["The PDF"]
    assert [(a.used, a.reason) for a in doc.attachments] == [
        (False, '"letter.pages" is a Pages document (export it as PDF)'),
        (True, None),
        (
            False,
            '"x.zip" is an archive (archives are not unpacked here; attach the files themselves)',
        ),
        (False, '"a.bin" is not a PDF, TIFF, image or text file'),
    ]


def test_text_with_only_an_unusable_attachment_is_refused_not_faxed_alone() -> None:
    error = refusal(message((pages_document(), OCTET, "contract.pages"), text="Please sign."))
    assert error.reply == (
        '554 5.6.0 No faxable content: "contract.pages" is a Pages document (export it as PDF)'
    )


def test_damaged_winmail_dat_is_refused() -> None:
    error = refusal(message((b"\x78\x9f\x3e\x22...", "application/ms-tnef", "winmail.dat")))
    assert isinstance(error, UnreadableAttachment)
    assert error.reply == (
        '554 5.6.0 Attachment "winmail.dat": the Outlook winmail.dat (TNEF) file is damaged'
        " and cannot be read"
    )


def test_text_only_mail_is_printed_on_the_cover_page() -> None:
    doc = prepare(message(text="Dear Jane,\n\nplease call me back.\n\nAlice"))
    assert (doc.pages, doc.pdf) == (0, b"")  # nothing beyond the cover
    assert doc.cover_text == "Dear Jane,\n\nplease call me back.\n\nAlice"
    assert (doc.cover_notes, doc.wants_cover) == ("", True)
    [report] = doc.attachments
    assert (report.filename, report.detected_type, report.used) == (None, "text", True)
    assert report.pages == 1
    [page] = page_contents(fax_pdf(doc, cover_note()))
    assert page.startswith("FAX") and page.endswith("please call me back.\nAlice")


def test_text_only_mail_without_a_cover_is_a_text_page() -> None:
    doc = prepare(message(text="Dear Jane"), cover_policy=CoverPolicy.NEVER)
    assert (doc.pages, doc.cover_text, doc.wants_cover) == (1, None, False)
    assert page_contents(doc.pdf) == ["Dear Jane"]


def test_long_text_wraps_and_runs_onto_more_pages() -> None:
    text = "\n".join(f"Line {n:03d} " + "word " * 30 for n in range(150))
    doc = prepare(message(text=text, subject=None), cover_policy=CoverPolicy.NEVER)
    assert doc.pages > 2
    pages = page_contents(doc.pdf)
    assert pages[0].startswith("Line 000 word")
    assert "Line 149" in pages[-1]
    assert all(len(line) <= 90 for page in pages for line in page.splitlines())


def test_html_only_mail_is_faxed_as_its_text_without_libreoffice() -> None:
    html = "<p>Hello <b>Jane</b></p><script>evil()</script><p>Bye</p>"
    doc = prepare(message(text=None, html=html))
    assert doc.cover_text == "Hello Jane\n\nBye"
    assert doc.attachments[0].content_type == "text/html"


def test_text_attachment_becomes_text_pages_in_its_charset() -> None:
    msg = message((pdf_pages("First"), "application/pdf", "a.pdf"))
    msg.add_attachment("Größe: 5 m²", subtype="plain", charset="iso-8859-1", filename="n.txt")
    doc = prepare(msg)
    assert page_contents(doc.pdf) == ["First", "Größe: 5 m²"]
    assert doc.attachments[1].detected_type == "text"


def test_binary_named_txt_is_not_text() -> None:
    doc = prepare(
        message((pdf_pages("x"), "application/pdf", "x.pdf"), (bytes(300), "text/plain", "z.txt"))
    )
    assert doc.attachments[1].reason == '"z.txt" is not a PDF, TIFF, image or text file'


def test_cid_logo_is_not_faxed() -> None:
    msg = message(
        (pdf_pages("Invoice"), "application/pdf", "invoice.pdf"),
        html='<p>Regards</p><img src="cid:logo123">',
    )
    alternative = msg.get_payload()[0]
    assert isinstance(alternative, EmailMessage)
    html = alternative.get_payload()[1]
    assert isinstance(html, EmailMessage)
    html.add_related(png_with_alpha(), "image", "png", cid="<logo123>", filename="logo.png")
    doc = prepare(msg)
    assert page_contents(doc.pdf) == ["Invoice"]
    logo = next(a for a in doc.attachments if a.filename == "logo.png")
    assert (logo.used, logo.detected_type) == (False, "png")
    assert logo.reason == "an image shown inside the HTML text (e.g. a signature logo)"


def test_bare_pdf_message_is_the_document() -> None:
    msg = MIMEApplication(pdf_pages("Bare 1", "Bare 2"), "pdf")
    doc = prepare(msg.as_bytes())
    assert page_contents(doc.pdf) == ["Bare 1", "Bare 2"]
    assert not doc.wants_cover  # no subject, no text


def test_bare_octet_stream_tiff_message_is_the_document() -> None:
    msg = MIMEApplication(fax_tiff(2), "octet-stream")
    msg["Subject"] = "Scan from MFP"
    doc = prepare(msg.as_bytes())
    assert doc.pages == 2
    assert doc.wants_cover


def test_too_many_pages_counts_the_cover_page() -> None:
    msg = message((pdf_pages("1", "2", "3"), "application/pdf", "three.pdf"))
    error = refusal(msg, max_pages=3)
    assert isinstance(error, TooManyPages)
    assert error.reply == "552 5.3.4 The fax would have 4 pages; the limit is 3"
    assert prepare(msg, max_pages=3, cover_policy=CoverPolicy.NEVER).pages == 3


@pytest.mark.parametrize(
    ("policy", "subject", "text", "wants"),
    [
        (CoverPolicy.ALWAYS, None, None, True),
        (CoverPolicy.NEVER, "Subject", "Notes", False),
        (CoverPolicy.AUTO, "Subject", None, True),
        (CoverPolicy.AUTO, None, "Notes", True),
        (CoverPolicy.AUTO, None, None, False),
        (CoverPolicy.AUTO, None, "Scanned by MFP-3000\n\nSent from my iPhone", False),
        (CoverPolicy.AUTO, None, "Real note\nSent from my iPhone", True),
    ],
)
def test_cover_policy(
    policy: CoverPolicy, subject: str | None, text: str | None, wants: bool
) -> None:
    msg = message((pdf_pages("Doc"), "application/pdf", "d.pdf"), text=text, subject=subject)
    patterns = (r"^Scanned by MFP-\d+$", r"^Sent from my iPhone$")
    doc = prepare(msg, cover_policy=policy, ignore_body_patterns=patterns)
    assert doc.wants_cover is wants


def test_ignore_patterns_are_removed_from_the_cover_notes() -> None:
    text = "Please call.\n\n--\nCONFIDENTIAL: this e-mail is for the addressee only.\nReally."
    msg = message((pdf_pages("Doc"), "application/pdf", "d.pdf"), text=text)
    doc = prepare(msg, ignore_body_patterns=(r"^--\nCONFIDENTIAL:(.|\n)*",))
    assert doc.cover_notes == "Please call."


def test_boilerplate_only_text_is_not_faxed() -> None:
    msg = message(text="Scanned by MFP-3000", subject=None)
    error = refusal(msg, ignore_body_patterns=(r"^Scanned by MFP-\d+$",))
    assert error.reply == (
        "554 5.6.0 No faxable content: the message text is only boilerplate that is never faxed"
    )


def test_empty_message_is_refused() -> None:
    error = refusal(message(text=None, subject=None))
    assert error.reply == "554 5.6.0 No faxable content: the message has no attachments and no text"


def test_reply_is_one_ascii_line_of_bounded_length() -> None:
    name = "Größe\u2013Ελληνικά\r\n"  # noqa: RUF001 (Greek on purpose)
    parts = [(pages_document(), OCTET, f"{name}-{n:02d}-{'x' * 40}.pages") for n in range(12)]
    error = refusal(message(*parts, text=None))
    assert error.reply.startswith('554 5.6.0 No faxable content: "Grosse-????????')
    assert error.reply.isascii()
    assert "\r" not in error.reply and "\n" not in error.reply
    assert len(error.reply) <= 400
    assert error.reply.endswith("...")
    assert len(error.attachments) == 12


def test_too_large_image_is_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10_000)
    big = png_bytes(Image.new("L", (150, 100), 255))  # over the limit: Pillow warns
    huge = png_bytes(Image.new("L", (300, 300), 255))  # over twice the limit: Pillow raises
    msg = message(
        (big, "image/png", "big.png"),
        (huge, "image/png", "huge.png"),
        (pdf_pages("Fine"), "application/pdf", "ok.pdf"),
    )
    doc = prepare(msg)
    assert page_contents(doc.pdf) == ["Fine"]
    assert [a.reason for a in doc.attachments] == [
        "the image is too large",
        "the image is too large",
        None,
    ]
    error = refusal(message((huge, "image/png", "huge.png"), text=None))
    assert error.reply == (
        '554 5.6.0 No faxable content: "huge.png": the image is too large; the message has no text'
    )


def test_truncated_image_is_refused_as_damaged() -> None:
    for data, name in ((jpeg()[:2000], "cut.jpg"), (png_with_alpha()[:100], "cut.png")):
        error = refusal(message((data, OCTET, name)))
        assert (
            error.reply == f'554 5.6.0 Attachment "{name}": the image is damaged and cannot be read'
        )


def test_document_preparation_works_in_a_spawned_process_pool() -> None:
    ok = bytes(message((fax_tiff(1), OCTET, "f.tif")))
    bad = bytes(message((pages_document(), OCTET, "r.pages"), text=None))
    options = DocumentOptions()
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        doc = pool.submit(prepare_document, ok, options).result()
        with pytest.raises(NoFaxableContent) as caught:
            pool.submit(prepare_document, bad, options).result()
    assert doc.pages == 1
    assert caught.value.attachments[0]["filename"] == "r.pages"


def test_pgp_encrypted_text_is_not_faxed_as_gibberish() -> None:
    armored = b"-----BEGIN PGP MESSAGE-----\n\nhQEMA5x...\n-----END PGP MESSAGE-----\n"
    error = refusal(message((armored, "text/plain", "secret.txt"), text=None))
    assert error.reply == (
        '554 5.6.0 No faxable content: "secret.txt" is PGP-encrypted (send it unencrypted);'
        " the message has no text"
    )
