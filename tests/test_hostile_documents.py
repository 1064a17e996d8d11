"""Broken and hostile messages and documents: each ends in a fax or a clear refusal, quickly.

MIME (boundaries, base64, 8-bit and huge headers, nesting, empty and countless parts, split
and encoded messages), images (decompression bombs, every TIFF flavour), PDFs (cut off,
damaged, encrypted, scripted, forms, XFA, bombs) and winmail.dat files built to hurt the parser.
"""

from __future__ import annotations

import base64
import struct
import time
import zlib
from collections.abc import Callable
from io import BytesIO

import pikepdf
import pytest
from pikepdf import Array, Dictionary, Name, String
from PIL import Image, TiffImagePlugin
from pypdf import PdfReader

from bridge.documents import DocumentOptions, PreparedDocument, prepare_document
from bridge.documents.text import text_pages, text_to_pdf
from bridge.errors import DocumentError, NoFaxableContent, TooManyPages, UnreadableAttachment
from tests.fixtures_docs import (
    TnefFile,
    document_pdf,
    jpeg,
    message,
    page_contents,
    page_sizes,
    pdf_pages,
    scan_page,
    scan_pdf,
    tnef,
)

PDF = document_pdf("Hostile test", 2)
A4_100DPI = (595, 842)
DAMAGED = "the PDF is damaged and cannot be read"


def prepare(raw: bytes, **options: object) -> PreparedDocument:
    return prepare_document(raw, DocumentOptions(**options))  # type: ignore[arg-type]


def refusal(raw: bytes, **options: object) -> DocumentError:
    with pytest.raises(DocumentError) as caught:
        prepare(raw, **options)
    return caught.value


def part(content_type: str, body: bytes, *, name: str | None = None, b64: bool = True) -> bytes:
    head = f"Content-Type: {content_type}\r\n".encode()
    if name:
        head += f'Content-Disposition: attachment; filename="{name}"\r\n'.encode()
    if b64:
        head += b"Content-Transfer-Encoding: base64\r\n"
        body = base64.encodebytes(body).replace(b"\n", b"\r\n")
    return head + b"\r\n" + body


def mail(
    *parts: bytes, headers: bytes = b"Subject: test\r\n", content_type: bytes | None = None
) -> bytes:
    kind = content_type or b'multipart/mixed; boundary="b"'
    body = b"".join(b"--b\r\n" + p + b"\r\n" for p in parts) + b"--b--\r\n"
    return headers + b"From: a@example.com\r\nContent-Type: " + kind + b"\r\n\r\n" + body


def text_part(text: str) -> bytes:
    return part("text/plain; charset=utf-8", text.encode(), b64=False)


def quickly(seconds: float, run: Callable[[], object]) -> object:
    start = time.monotonic()
    result = run()
    assert time.monotonic() - start < seconds
    return result


# --- MIME structure --------------------------------------------------------------------------


def test_multipart_without_a_boundary_parameter_is_repaired_from_its_body() -> None:
    raw = mail(text_part("see attached"), part("application/pdf", PDF, name="a.pdf"))
    doc = prepare(raw.replace(b'; boundary="b"', b""))
    assert doc.pages == 2
    assert doc.cover_notes == "see attached"


def test_multipart_with_the_wrong_boundary_is_repaired_from_its_body() -> None:
    raw = mail(text_part("see attached"), part("application/pdf", PDF, name="a.pdf"))
    doc = prepare(raw.replace(b'boundary="b"', b'boundary="not-the-one-used"'))
    assert doc.pages == 2


def test_inner_multipart_with_a_broken_boundary_is_repaired() -> None:
    inner = b'Content-Type: multipart/alternative; boundary="wrong"\r\n\r\n--alt\r\n'
    inner += (
        text_part("the text") + b"\r\n--alt\r\n" + part("text/html", b"<p>the text</p>", b64=False)
    )
    inner += b"\r\n--alt--"
    doc = prepare(mail(inner, part("application/pdf", PDF, name="a.pdf")))
    assert (doc.pages, doc.cover_notes) == (2, "the text")


def test_multipart_without_any_delimiter_is_read_as_text() -> None:
    raw = b"Subject: x\r\nContent-Type: multipart/mixed\r\n\r\nJust a note, no parts.\r\n"
    doc = prepare(raw)
    assert (doc.cover_text, doc.pages) == ("Just a note, no parts.", 0)  # on the cover


def test_multipart_whose_delimiters_lead_nowhere_is_refused() -> None:
    raw = (
        b'Subject: x\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n--zz\r\n\r\nno head\r\n'
    )
    error = refusal(raw)
    assert error.reply == (
        "554 5.6.0 No faxable content: the message's MIME structure is broken: a multipart/mixed"
        " part has no boundary that matches its body"
    )


def test_message_cut_before_its_closing_boundary_keeps_its_whole_parts() -> None:
    raw = mail(text_part("hello"), part("application/pdf", PDF, name="a.pdf"))
    assert prepare(raw[: raw.rindex(b"--b--")]).pages == 2


def test_base64_with_junk_and_without_padding_still_decodes() -> None:
    encoded = base64.b64encode(PDF).rstrip(b"=")
    noisy = b"\r\n".join(encoded[i : i + 60] + b" !*" for i in range(0, len(encoded), 60))
    raw = mail(
        part("application/pdf", noisy, name="a.pdf", b64=False).replace(
            b"Content-Type: application/pdf\r\n",
            b"Content-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n",
        )
    )
    assert prepare(raw).pages == 2


def test_base64_cut_short_is_a_damaged_pdf() -> None:
    raw = mail(part("application/pdf", PDF[: len(PDF) // 2], name="half.pdf"))
    error = refusal(raw)
    assert isinstance(error, UnreadableAttachment)
    assert error.reply == f'554 5.6.0 Attachment "half.pdf": {DAMAGED}'


def test_base64_encoded_attached_email_is_decoded() -> None:
    inner = mail(text_part("inner"), part("application/pdf", PDF, name="inner.pdf"))
    attached = part("message/rfc822", inner)
    doc = prepare(mail(text_part("outer"), attached))
    assert [a.filename for a in doc.attachments if a.used] == ["inner.pdf"]


def test_reference_to_an_external_body_is_not_faxed_as_nothing() -> None:
    external = b'Content-Type: message/external-body; access-type=URL; URL="http://x/a.pdf"\r\n\r\n'
    error = refusal(mail(text_part("see link"), external + b"Content-Type: application/pdf\r\n"))
    assert error.reply.startswith("554 5.6.0 No faxable content: an unnamed message/external-body")


@pytest.mark.parametrize(
    "raw",
    [
        b'Content-Type: text/plain; charset="utf-8\x00"\r\n\r\n\xff\xfe text',
        b'Content-Type: multipart/mixed; charset="\x00"\r\n\r\n\xff--b\r\n',
        b'Content-Type: text/plain; charset="no-such-charset"\r\n\r\n\xe9t\xe9',
    ],
    ids=["nul-in-charset", "nul-in-multipart-charset", "unknown-charset"],
)
def test_8bit_body_with_a_bogus_charset_is_read(raw: bytes) -> None:
    # found by the property tests: the stdlib raised ValueError on "utf-8\0"
    doc = prepare(b"Subject: s\r\n" + raw)
    assert doc.cover_text and (doc.pages, doc.wants_cover) == (0, True)  # one page: the cover


# --- headers ---------------------------------------------------------------------------------


def test_raw_8bit_headers_are_read_as_utf8_or_latin1() -> None:
    headers = "Subject: Größe \u2013 Übersicht\r\nFrom: Jörg <j@x.de>\r\n".encode()
    headers += "To: Bürö <12125550123@fax.example.com>\r\n".encode("latin-1")
    raw = mail(part("application/pdf", PDF, name="x.pdf"), headers=headers)
    raw = raw.replace(b'filename="x.pdf"', 'filename="Größe.pdf"'.encode())
    doc = prepare(raw)
    assert doc.cover_subject == "Größe \u2013 Übersicht"
    assert doc.message.from_name == "Jörg"
    assert doc.message.to_names == {"12125550123@fax.example.com": "Bürö"}
    assert doc.attachments[0].filename == "Größe.pdf"


@pytest.mark.parametrize(
    "headers",
    [
        b"Subject: " + b"A" * 2_000_000 + b"\r\n",
        b"Subject: " + b"=?utf-8?q?abc?= " * 100_000 + b"\r\n",
        b"".join(b"X-Header-%d: value\r\n" % n for n in range(20_000)),
        b"Subject: start\r\n" + b" continued\r\n" * 200_000,
        b"To: " + b", ".join(b'"N%d" <%d@x.com>' % (n, n) for n in range(20_000)) + b"\r\n",
        b"From: " + b"<" * 200_000 + b"\r\n",
        b"From: " + b'"\\' * 100_000 + b"\r\n",
        b"Subject: no colon follows\r\nthis line is not a header at all\r\n",
    ],
    ids=[
        "2MB-subject",
        "100k-encoded-words",
        "20k-headers",
        "200k-folds",
        "20k-addresses",
        "angle-bomb",
        "quote-bomb",
        "garbage-line",
    ],
)
def test_huge_and_garbled_headers_are_handled_quickly(headers: bytes) -> None:
    raw = mail(part("application/pdf", PDF, name="x.pdf"), headers=headers)
    result = quickly(5, lambda: prepare(raw))
    assert isinstance(result, PreparedDocument)
    assert len(result.cover_subject) <= 16384


# --- nesting and counts ----------------------------------------------------------------------


def nested(levels: int, leaf: bytes) -> bytes:
    head, tail = b"", b""
    for level in range(levels):
        head += b'Content-Type: multipart/mixed; boundary="n%d"\r\n\r\n--n%d\r\n' % (level, level)
        tail = b"\r\n--n%d--\r\n" % level + tail
    return b"Subject: deep\r\n" + head + leaf + tail


def test_thirty_levels_of_nesting_are_read() -> None:
    assert prepare(nested(30, part("application/pdf", PDF, name="deep.pdf"))).pages == 2


@pytest.mark.parametrize("levels", [60, 3000])
def test_absurd_nesting_is_refused(levels: int) -> None:
    error = quickly(10, lambda: refusal(nested(levels, part("application/pdf", PDF))))
    assert isinstance(error, NoFaxableContent)
    assert error.reply == (
        "554 5.6.0 No faxable content: the message is nested more than 40 levels deep"
    )


def test_deeply_forwarded_messages_end_in_a_refusal_not_a_crash() -> None:
    raw = b"Content-Type: application/pdf\r\n\r\n"
    for _ in range(2000):
        raw = b"Content-Type: message/rfc822\r\n\r\n" + raw
    assert quickly(10, lambda: refusal(b"Subject: x\r\n" + raw)).reply.startswith("554 5.6.0")


def test_zero_byte_parts() -> None:
    empty = part("application/pdf", b"", name="empty.pdf")
    error = refusal(mail(empty))
    assert error.reply == (
        '554 5.6.0 No faxable content: "empty.pdf": empty attachment; the message has no text'
    )
    doc = prepare(mail(empty, part("application/pdf", PDF, name="ok.pdf")))
    assert [(a.filename, a.used) for a in doc.attachments] == [
        ("empty.pdf", False),
        ("ok.pdf", True),
    ]
    error = refusal(mail(text_part("please fax"), empty))  # not the text alone instead
    assert error.reply == '554 5.6.0 No faxable content: "empty.pdf": empty attachment'
    assert refusal(b"").reply == (
        "554 5.6.0 No faxable content: the message has no attachments and no text"
    )


def test_thousands_of_parts_are_refused_quickly() -> None:
    raw = mail(*[part("application/octet-stream", b"x") for _ in range(1500)])
    error = quickly(10, lambda: refusal(raw))
    assert error.reply == "554 5.6.0 No faxable content: the message has more than 1000 parts"


# --- images ----------------------------------------------------------------------------------


def png_bomb(width: int, height: int) -> bytes:
    """A valid 1-bit PNG of all-black rows: a few kilobytes that decode to gigabytes."""
    rows = zlib.compress((b"\x00" + bytes((width + 7) // 8)) * height, 9)

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")
    )


def tiff_claiming(sizes: list[tuple[int, int]]) -> bytes:
    """A G4 TIFF with one small page per entry, each page's header claiming the given size."""
    out = BytesIO()
    pages = [Image.new("1", (16, 16), 1) for _ in sizes]
    pages[0].save(out, format="TIFF", compression="group4", save_all=True, append_images=pages[1:])
    data = bytearray(out.getvalue())
    offset = struct.unpack_from("<I", data, 4)[0]
    for width, height in sizes:
        count = struct.unpack_from("<H", data, offset)[0]
        for entry in range(count):
            at = offset + 2 + entry * 12
            tag, kind = struct.unpack_from("<HH", data, at)
            if tag in (256, 257):
                value = width if tag == 256 else height
                struct.pack_into("<H" if kind == 3 else "<I", data, at + 8, value)
        offset = struct.unpack_from("<I", data, offset + 2 + count * 12)[0]
    return bytes(data)


def jpeg_claiming(width: int, height: int) -> bytes:
    data = bytearray(jpeg((120, 120)))
    frame = data.find(b"\xff\xc0")
    struct.pack_into(">HH", data, frame + 5, height, width)
    return bytes(data)


def gif_claiming(width: int, height: int) -> bytes:
    screen = struct.pack("<HH", width, height) + b"\x80\x00\x00\x00\x00\x00\xff\xff\xff"
    image = b"," + struct.pack("<HHHH", 0, 0, width, height) + b"\x00\x02\x02\x44\x01\x00;"
    return b"GIF89a" + screen + image


@pytest.mark.parametrize(
    ("data", "name"),
    [
        (png_bomb(30_000, 30_000), "bomb.png"),
        (tiff_claiming([(60_000, 60_000)]), "bomb.tif"),
        (tiff_claiming([(16, 16), (65_000, 65_000)]), "second-page-bomb.tif"),
        (jpeg_claiming(65_000, 65_000), "bomb.jpg"),
        (gif_claiming(65_535, 65_535), "bomb.gif"),
    ],
)
def test_decompression_bombs_are_skipped_as_too_large(data: bytes, name: str) -> None:
    raw = bytes(message((data, "application/octet-stream", name), text=None))
    error = quickly(5, lambda: refusal(raw))
    assert error.reply == (
        f'554 5.6.0 No faxable content: "{name}": the image is too large; the message has no text'
    )


def tiff_pages(pages: list[tuple[Image.Image, str]]) -> bytes:
    out = BytesIO()
    with TiffImagePlugin.AppendingTiffWriter(out, True) as writer:
        for image, compression in pages:
            image.save(writer, format="TIFF", compression=compression, dpi=(100, 100))
            writer.newFrame()
    return out.getvalue()


GREY = scan_page("grey scan", mode="L", dpi=100)
TIFFS = {
    "jpeg-rgb": [(GREY.convert("RGB"), "jpeg")],
    "jpeg-grey": [(GREY, "jpeg")],
    "lzw-grey-two-pages": [(GREY, "tiff_lzw"), (GREY, "tiff_lzw")],
    "deflate-rgb": [(GREY.convert("RGB"), "tiff_adobe_deflate")],
    "packbits-bilevel": [(GREY.convert("1"), "packbits")],
    "uncompressed-bilevel": [(GREY.convert("1"), "raw")],
    "16-bit-two-pages": [(GREY.convert("I;16"), "raw"), (GREY.convert("I;16"), "raw")],
    "16-bit-lzw": [(GREY.convert("I;16"), "tiff_lzw")],
    "cmyk-lzw": [(GREY.convert("CMYK"), "tiff_lzw")],
    "rgba-lzw": [(GREY.convert("RGBA"), "tiff_lzw")],
    "32-bit-float": [(GREY.convert("F"), "raw")],
    "g4-then-lzw-then-jpeg": [
        (GREY.convert("1"), "group4"),
        (GREY, "tiff_lzw"),
        (GREY.convert("RGB"), "jpeg"),
    ],
}


@pytest.mark.parametrize("flavour", TIFFS, ids=list(TIFFS))
def test_tiff_of_every_flavour_becomes_pages_of_its_paper_size(flavour: str) -> None:
    data = tiff_pages(TIFFS[flavour])
    doc = prepare(bytes(message((data, "image/tiff", "scan.tif"), text=None)))
    assert doc.pages == len(TIFFS[flavour])
    assert page_sizes(doc.pdf) == [A4_100DPI] * doc.pages


# --- PDFs ------------------------------------------------------------------------------------


def save(pdf: pikepdf.Pdf, **options: object) -> bytes:
    out = BytesIO()
    pdf.save(out, **options)  # type: ignore[arg-type]
    return out.getvalue()


def scanner_style_pdf() -> bytes:
    """Objects in page order, every page an image (as qpdf and many scanners write them)."""
    with pikepdf.open(BytesIO(scan_pdf(["one", "two", "three"], dpi=100, jpeg=True))) as pdf:
        return save(pdf, object_stream_mode=pikepdf.ObjectStreamMode.disable)


def attach(data: bytes, name: str = "doc.pdf") -> bytes:
    return bytes(message((data, "application/pdf", name), text=None))


def test_pdf_cut_after_its_last_page_is_repaired() -> None:
    for data in (PDF, scanner_style_pdf()):
        cut = data[: data.rindex(b"xref")]  # cross-reference table and trailer lost
        doc = prepare(attach(cut))
        assert doc.pages == len(pikepdf.open(BytesIO(data)).pages)


def test_pdf_with_a_wrong_cross_reference_offset_is_repaired() -> None:
    start = PDF.rindex(b"startxref") + len(b"startxref\n")
    broken = PDF[:start] + b"12" + PDF[start:]
    assert page_contents(prepare(attach(broken)).pdf)[0].startswith("Hostile test - page 1")


@pytest.mark.parametrize("fraction", [0.3, 0.5, 0.7, 0.9])
def test_pdf_cut_in_the_middle_is_refused_not_faxed_with_pages_missing(fraction: float) -> None:
    # an office PDF cut at 90% has lost only its trailer: that is repaired (test above)
    for data in (PDF, scanner_style_pdf()) if fraction < 0.9 else (scanner_style_pdf(),):
        cut = data[: int(len(data) * fraction)]
        error = refusal(attach(cut, "cut.pdf"))
        assert error.reply == f'554 5.6.0 Attachment "cut.pdf": {DAMAGED}'


def encrypted(**settings: object) -> bytes:
    with pikepdf.open(BytesIO(pdf_pages("Locked A", "Locked B"))) as pdf:
        return save(pdf, encryption=pikepdf.Encryption(owner="owner", **settings))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "settings",
    [
        {"user": "", "R": 6},
        {"user": "", "R": 4},
        {"user": "", "R": 2, "aes": False, "metadata": False},
        {"user": "", "R": 6, "allow": pikepdf.Permissions(print_lowres=False, print_highres=False)},
    ],
    ids=["aes-256", "aes-128", "rc4-40", "printing-forbidden"],
)
def test_pdf_with_an_empty_user_password_is_opened_and_decrypted(
    settings: dict[str, object],
) -> None:
    doc = prepare(attach(encrypted(**settings)))
    assert page_contents(doc.pdf) == ["Locked A", "Locked B"]
    assert b"/Encrypt" not in doc.pdf


@pytest.mark.parametrize(
    "settings",
    [{"user": "secret", "R": 6}, {"user": "secret", "R": 3, "aes": False, "metadata": False}],
    ids=["aes-256", "rc4-128"],
)
def test_pdf_with_a_user_password_is_refused(settings: dict[str, object]) -> None:
    error = refusal(attach(encrypted(**settings), "locked.pdf"))
    assert error.reply == '554 5.6.0 Attachment "locked.pdf": the PDF is password-protected'


def test_pdf_encrypted_for_certificates_is_refused_with_advice() -> None:
    data = encrypted(user="", R=4).replace(b"/Filter /Standard", b"/Filter /Adobe.PubSec")
    error = refusal(attach(data, "cert.pdf"))
    assert error.reply == (
        '554 5.6.0 Attachment "cert.pdf": the PDF is encrypted for its recipients only'
        " (send it unencrypted)"
    )


def scripted_form() -> bytes:
    """A form with a printing field, a screen-only field, scripts everywhere, a file inside."""
    pdf = pikepdf.open(BytesIO(pdf_pages("Application form")))
    page = pdf.pages[0]
    font = Dictionary(Type=Name.Font, Subtype=Name.Type1, BaseFont=Name.Helvetica)

    def field(name: str, value: str, top: int, flags: int) -> pikepdf.Object:
        return pdf.make_indirect(
            Dictionary(
                Type=Name.Annot,
                Subtype=Name.Widget,
                FT=Name.Tx,
                T=String(name),
                V=String(value),
                Rect=Array([72, top, 300, top + 20]),
                F=flags,
                DA=String("/Helv 12 Tf 0 g"),
                P=page.obj,
            )
        )

    printed, screen_only = field("name", "Jane Doe", 600, 4), field("hint", "SCREEN ONLY", 560, 0)
    script = pdf.make_indirect(Dictionary(S=Name.JavaScript, JS=String("app.alert('hi')")))
    launch = Dictionary(S=Name.Launch, F=String("cmd.exe"))
    link = Dictionary(Type=Name.Annot, Subtype=Name.Link, Rect=Array([0, 0, 9, 9]), A=launch, F=4)
    page.obj.Annots = Array([printed, screen_only, pdf.make_indirect(link)])
    page.obj.AA = Dictionary(O=script)
    pdf.Root.AcroForm = Dictionary(
        Fields=Array([printed, screen_only]),
        NeedAppearances=True,
        DR=Dictionary(Font=Dictionary(Helv=font)),
        DA=String("/Helv 12 Tf 0 g"),
    )
    pdf.Root.OpenAction = script
    pdf.Root.Names = Dictionary(JavaScript=Dictionary(Names=Array([String("x"), script])))
    pdf.attachments["payload.exe"] = pikepdf.AttachedFileSpec(pdf, b"MZ payload")
    return save(pdf)


def test_pdf_form_is_flattened_as_printed_and_scripts_are_removed() -> None:
    doc = prepare(attach(scripted_form(), "form.pdf"))
    assert page_contents(doc.pdf) == ["Application form\nJane Doe"]
    for active in (
        b"/JavaScript",
        b"/JS",
        b"/Launch",
        b"/OpenAction",
        b"/AA",
        b"/AcroForm",
        b"/Annots",
        b"/EmbeddedFile",
        b"payload",
        b"SCREEN ONLY",
    ):
        assert active not in doc.pdf, active


def test_dynamic_xfa_form_is_refused_with_advice() -> None:
    with pikepdf.open(BytesIO(pdf_pages("Please wait..."))) as pdf:
        pdf.Root.NeedsRendering = True
        pdf.Root.AcroForm = Dictionary(Fields=Array(), XFA=Array())
        data = save(pdf)
    error = refusal(attach(data, "xfa.pdf"))
    assert error.reply == (
        '554 5.6.0 Attachment "xfa.pdf": the PDF is an XFA form that only Adobe Reader can'
        " show (print it to a new PDF first)"
    )


def test_pdf_without_pages_is_damaged() -> None:
    with pikepdf.new() as pdf:
        assert refusal(attach(save(pdf), "empty.pdf")).reply.endswith(DAMAGED)


def test_pdf_naming_a_gigapixel_image_is_refused() -> None:
    with pikepdf.open(BytesIO(PDF)) as pdf:
        image = pikepdf.Stream(
            pdf,
            b"\x00" * 16,
            Type=Name.XObject,
            Subtype=Name.Image,
            Width=100_000,
            Height=100_000,
            BitsPerComponent=1,
            ColorSpace=Name.DeviceGray,
        )
        pdf.pages[0].Resources.XObject = Dictionary(Huge=image)
        data = save(pdf)
    error = refusal(attach(data, "huge.pdf"))
    assert error.reply == '554 5.6.0 Attachment "huge.pdf": the PDF holds an image too large to fax'


def test_compressed_bomb_inside_a_pdf_is_never_inflated() -> None:
    with pikepdf.open(BytesIO(PDF)) as pdf:
        bomb = pikepdf.Stream(pdf, zlib.compress(b" " * 300_000_000, 9), Filter=Name.FlateDecode)
        pdf.pages[1].Contents = bomb
        data = save(pdf, compress_streams=False, stream_decode_level=pikepdf.StreamDecodeLevel.none)
    for variant in (data, data[: data.rindex(b"xref")]):  # whole, and needing repair
        result = quickly(5, lambda v=variant: prepare(attach(v)))
        assert isinstance(result, PreparedDocument) and result.pages == 2


# --- winmail.dat -----------------------------------------------------------------------------


def winmail(data: bytes) -> bytes:
    return bytes(message((data, "application/ms-tnef", "winmail.dat")))


TNEF_DAMAGED = (
    '554 5.6.0 Attachment "winmail.dat": the Outlook winmail.dat (TNEF) file is damaged and'
    " cannot be read"
)


def mapi_count_bomb() -> bytes:
    """An attachment whose MAPI block claims four billion properties."""
    good = tnef([TnefFile("a.pdf", PDF, mime="application/pdf")])
    block = struct.pack("<I", 0xFFFFFFFF) + b"\x1e\x00\x07\x37"
    obj = struct.pack("<BHHI", 2, 0x9005, 6, len(block)) + block + struct.pack("<H", sum(block))
    return good + obj


def multivalue_bomb() -> bytes:
    good = tnef([TnefFile("a.pdf", PDF)])
    block = (
        struct.pack("<I", 1) + struct.pack("<HH", 0x1002, 0x3000) + struct.pack("<I", 0x7FFFFFFF)
    )
    obj = struct.pack("<BHHI", 2, 0x9005, 6, len(block)) + block + struct.pack("<H", sum(block))
    return good + obj


def nested_items(levels: int) -> bytes:
    item = tnef([TnefFile("deepest.pdf", PDF)])
    for level in range(levels):
        item = tnef([TnefFile(f"item {level}", b"", embedded=item)])
    return item


@pytest.mark.parametrize(
    "data",
    [
        mapi_count_bomb(),
        multivalue_bomb(),
        tnef([TnefFile("a.pdf", PDF)])[:-100],
        tnef([TnefFile(f"{n}.pdf", b"%PDF-") for n in range(60)]),
        nested_items(6),
        b"\x78\x9f\x3e\x22" + bytes(64),
    ],
    ids=[
        "property-count",
        "multi-value-count",
        "cut-off",
        "too-many-objects",
        "nested-items",
        "zeros",
    ],
)
def test_hostile_winmail_dat_is_refused_quickly(data: bytes) -> None:
    assert quickly(2, lambda: refusal(winmail(data))).reply == TNEF_DAMAGED


def test_winmail_dat_with_only_formatting_lets_the_text_be_faxed() -> None:
    doc = prepare(winmail(tnef([], rtf=b"{\\rtf1 hello}")))
    assert [a.reason for a in doc.attachments][1] == (
        "Outlook winmail.dat (TNEF) with only the message formatting, no files"
    )
    assert doc.attachments[0].detected_type == "text"  # the text became the document


def test_files_of_an_outlook_item_inside_winmail_dat_are_faxed() -> None:
    doc = prepare(winmail(nested_items(2)))
    assert [(a.filename, a.used) for a in doc.attachments] == [
        ("winmail.dat", False),
        ("item 1", False),
        ("item 0", False),
        ("deepest.pdf", True),
    ]


def test_winmail_dat_file_names_in_8bit_code_pages_are_read() -> None:
    data = tnef([TnefFile("Größe.pdf", PDF, short_name="GRÖSSE.PDF")])
    assert prepare(winmail(data)).attachments[1].filename == "Größe.pdf"


# --- text ------------------------------------------------------------------------------------


def test_huge_text_is_refused_as_too_long_without_being_typeset() -> None:
    text = ("word " * 4_000_000).encode()  # 20 MB, one line
    raw = bytes(message((text, "text/plain", "log.txt"), text=None))
    error = quickly(10, lambda: refusal(raw))
    assert isinstance(error, TooManyPages)
    pages = text_pages(text.decode())
    assert pages is not None and pages > 4000
    total = pages + 1  # and the cover page, for the subject
    assert error.reply == f"552 5.3.4 The fax would have {total} pages; the limit is 200"


@pytest.mark.parametrize(
    "text",
    ["short", "line\n" * 54, "line\n" * 55, "x" * 10_000, "a\fb\f\fc", "\t" * 500, "wörd " * 3000],
)
def test_page_count_of_text_matches_the_pages_drawn(text: str) -> None:
    assert text_pages(text) == len(PdfReader(BytesIO(text_to_pdf(text))).pages)
