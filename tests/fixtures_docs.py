"""Test inputs made at test time: real PDFs, fax TIFFs, images and MIME messages.

Every generated PDF page carries its own label as text, and every image kind ends up with a
recognisable image filter, so tests can check page order in the merged fax.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from io import BytesIO

import img2pdf
from fpdf import FPDF
from PIL import Image, ImageDraw
from pypdf import PdfReader, PdfWriter
from pypdf.generic import ArrayObject, DictionaryObject

LETTER_PT = (612.0, 792.0)


def pdf_pages(*labels: str) -> bytes:
    """A Letter PDF with one page per label, the label written on it."""
    pdf = FPDF(unit="pt", format="letter")
    pdf.set_font("helvetica", size=24)
    for label in labels:
        pdf.add_page()
        pdf.cell(text=label)
    return bytes(pdf.output())


def encrypted_pdf(*labels: str, user_password: str, owner_password: str = "owner") -> bytes:
    writer = PdfWriter(clone_from=PdfReader(BytesIO(pdf_pages(*labels))))
    writer.encrypt(user_password=user_password, owner_password=owner_password, algorithm="AES-128")
    out = BytesIO()
    writer.write(out)
    return out.getvalue()


def fax_tiff(
    pages: int = 3,
    *,
    compression: str = "group4",
    dpi: tuple[int, int] = (204, 196),
    size: tuple[int, int] = (1728, 2200),
) -> bytes:
    """A multi-page bilevel TIFF as fax machines and scanners make them."""
    frames = []
    for number in range(pages):
        frame = Image.new("1", size, 1)
        draw = ImageDraw.Draw(frame)
        top = 100 + number * 150
        draw.rectangle((100, top, size[0] - 100, top + 80), fill=0)
        draw.text((100, 50), f"page {number + 1}", fill=0)
        frames.append(frame)
    out = BytesIO()
    frames[0].save(
        out,
        format="TIFF",
        compression=compression,
        dpi=dpi,
        save_all=True,
        append_images=frames[1:],
    )
    return out.getvalue()


def tiff_16bit(size: tuple[int, int] = (600, 800), dpi: tuple[int, int] = (100, 100)) -> bytes:
    """A 16-bit greyscale TIFF: img2pdf refuses these, so Pillow has to convert them."""
    image = Image.new("I;16", size, 40000)
    ImageDraw.Draw(image).rectangle((50, 50, 300, 300), fill=1000)
    out = BytesIO()
    image.save(out, format="TIFF", dpi=dpi)
    return out.getvalue()


def jpeg(size: tuple[int, int] = (800, 600), *, dpi: int = 100, orientation: int = 1) -> bytes:
    image = Image.new("RGB", size, (200, 220, 255))
    ImageDraw.Draw(image).ellipse((50, 50, size[0] - 50, size[1] - 50), fill=(255, 0, 0))
    exif = Image.Exif()
    if orientation != 1:
        exif[0x0112] = orientation
    out = BytesIO()
    image.save(out, format="JPEG", dpi=(dpi, dpi), exif=exif.tobytes())
    return out.getvalue()


def png_with_alpha(size: tuple[int, int] = (400, 300)) -> bytes:
    """RGBA, fully transparent but for a black box: on white it must read black on white."""
    image = Image.new("RGBA", size, (0, 0, 0, 0))
    ImageDraw.Draw(image).rectangle((100, 100, 200, 200), fill=(0, 0, 0, 255))
    out = BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def palette_gif(frames: int = 3, size: tuple[int, int] = (300, 200)) -> bytes:
    """An animated palette GIF with a transparent colour."""
    images = []
    for number in range(frames):
        image = Image.new("P", size, 0)
        image.putpalette([255, 255, 255, 0, 0, 0, 255, 0, 0] + [0] * (256 - 3) * 3)
        ImageDraw.Draw(image).rectangle((10 + number * 20, 10, 80 + number * 20, 80), fill=1)
        images.append(image)
    out = BytesIO()
    images[0].save(
        out, format="GIF", save_all=True, append_images=images[1:], transparency=0, duration=100
    )
    return out.getvalue()


def png_bytes(image: Image.Image) -> bytes:
    out = BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def message(
    *attachments: tuple[bytes, str, str | None],
    text: str | None = "Please fax the attached.",
    html: str | None = None,
    subject: str | None = "Quarterly report",
) -> EmailMessage:
    """A multipart message: text (and optional HTML alternative) + (data, type, name) parts."""
    msg = EmailMessage()
    msg["From"] = "Alice Sender <alice@example.com>"
    msg["To"] = "Jane Doe <12125550123@fax.example.com>"
    if subject is not None:
        msg["Subject"] = subject
    msg["Message-ID"] = "<test-1@example.com>"
    if text is not None:
        msg.set_content(text)
    if html is not None:
        if text is None:
            msg.set_content(html, subtype="html")
        else:
            msg.add_alternative(html, subtype="html")
    for data, content_type, filename in attachments:
        maintype, subtype = content_type.split("/")
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return msg


def page_contents(pdf: bytes) -> list[str]:
    """Per page: its text if it has any, else the filter of its image ("ccitt", "jpeg", "flate")."""
    names = {"/CCITTFaxDecode": "ccitt", "/DCTDecode": "jpeg", "/FlateDecode": "flate"}
    result = []
    for page in PdfReader(BytesIO(pdf)).pages:
        text = page.extract_text().strip()
        if text:
            result.append(text)
            continue
        resources = page["/Resources"]
        assert isinstance(resources, DictionaryObject)
        xobjects = resources["/XObject"].get_object()
        assert isinstance(xobjects, DictionaryObject)
        image = next(iter(xobjects.values())).get_object()
        filters = image["/Filter"]
        first = filters[0] if isinstance(filters, ArrayObject) else filters
        result.append(names.get(str(first), str(first)))
    return result


def page_sizes(pdf: bytes) -> list[tuple[float, float]]:
    """(width, height) in points, rounded, as a viewer shows them (rotation applied)."""
    sizes = []
    for page in PdfReader(BytesIO(pdf)).pages:
        width, height = float(page.mediabox.width), float(page.mediabox.height)
        if page.rotation % 180:
            width, height = height, width
        sizes.append((round(width), round(height)))
    return sizes


# --- real-world shapes: documents as office software and scanners make them -----------------

FIXED_DATE = datetime(2024, 3, 15, 14, 5, 12, tzinfo=UTC)


def document_pdf(title: str, pages: int = 1, *, paper: str = "letter") -> bytes:
    """A text PDF as office software writes it: a title and a few lines on every page."""
    pdf = FPDF(unit="pt", format=paper)
    pdf.set_creation_date(FIXED_DATE)
    pdf.set_title(title)
    for number in range(1, pages + 1):
        pdf.add_page()
        pdf.set_font("helvetica", "B", 18)
        pdf.cell(text=f"{title} - page {number} of {pages}", new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("helvetica", size=11)
        for line in range(12):
            pdf.cell(text=f"Line {line + 1}: the quick brown fox.", new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def scan_page(label: str, *, mode: str = "1", dpi: int = 200, paper: str = "A4") -> Image.Image:
    """One scanned sheet: white paper of the given size at `dpi`, a few dark text bars."""
    inches = {"A4": (8.27, 11.69), "letter": (8.5, 11.0)}[paper]
    size = (round(inches[0] * dpi), round(inches[1] * dpi))
    page = Image.new(mode, size, 1 if mode == "1" else 255)
    draw = ImageDraw.Draw(page)
    draw.text((dpi // 2, dpi // 2), label, fill=0)
    for row in range(8):
        top = dpi + row * dpi // 3
        draw.rectangle((dpi // 2, top, size[0] - dpi // 2 - row * 40, top + dpi // 10), fill=0)
    return page


def scan_tiff(labels: list[str], *, dpi: int = 200, paper: str = "A4") -> bytes:
    """A multi-page CCITT G4 TIFF as a scanner sends it."""
    pages = [scan_page(label, dpi=dpi, paper=paper) for label in labels]
    out = BytesIO()
    pages[0].save(
        out,
        format="TIFF",
        compression="group4",
        dpi=(dpi, dpi),
        save_all=True,
        append_images=pages[1:],
    )
    return out.getvalue()


def scan_jpeg(label: str, *, dpi: int = 200, paper: str = "A4", quality: int = 40) -> bytes:
    """A greyscale JPEG page as a scanner sends it, one file per page."""
    out = BytesIO()
    scan_page(label, mode="L", dpi=dpi, paper=paper).save(
        out, format="JPEG", quality=quality, dpi=(dpi, dpi)
    )
    return out.getvalue()


def scan_pdf(labels: list[str], *, dpi: int = 200, paper: str = "A4", jpeg: bool = False) -> bytes:
    """An image-only PDF as scanners write it: one CCITT (or JPEG) image per page."""
    images = [
        scan_jpeg(label, dpi=dpi, paper=paper) if jpeg else scan_tiff([label], dpi=dpi, paper=paper)
        for label in labels
    ]
    pdf = img2pdf.convert(images, nodate=True, rotation=img2pdf.Rotation.none)
    assert isinstance(pdf, bytes)
    return pdf


# --- TNEF (winmail.dat), written the way Outlook and Exchange write it ------------------------

TNEF_SIGNATURE = 0x223E9F78
_LEVEL_MESSAGE, _LEVEL_ATTACHMENT = 1, 2
_PT_SHORT, _PT_LONG, _PT_BOOLEAN, _PT_OBJECT, _PT_STRING8, _PT_BINARY = 2, 3, 11, 13, 30, 258
IMESSAGE_SIG = b"\x07\x03\x02\x00\x00\x00\x00\x00\xc0\x00\x00\x00\x00\x00\x00\x46"


@dataclass(frozen=True)
class TnefFile:
    name: str
    data: bytes
    mime: str | None = None
    short_name: str | None = None  # the 8.3 name in attAttachTitle
    content_id: str | None = None
    hidden: bool = False  # a picture shown inside the RTF text
    embedded: bytes | None = None  # a whole TNEF: an attached Outlook item


def tnef(files: list[TnefFile], *, rtf: bytes = b"", codepage: int = 1252) -> bytes:
    """A winmail.dat: version, code page, message class, the RTF body, then each file."""
    out = struct.pack("<IH", TNEF_SIGNATURE, 0x6A1B)
    out += _tnef_object(_LEVEL_MESSAGE, 0x9006, 0x0008, struct.pack("<I", 0x00010000))
    out += _tnef_object(_LEVEL_MESSAGE, 0x9007, 0x0006, struct.pack("<II", codepage, 0))
    out += _tnef_object(_LEVEL_MESSAGE, 0x8008, 0x0007, b"IPM.Microsoft Mail.Note\x00")
    props = [(_PT_LONG, 0x3FDE, struct.pack("<I", 65001))]  # PR_INTERNET_CPID
    if rtf:
        props.append((_PT_BINARY, 0x1009, rtf))  # PR_RTF_COMPRESSED
    out += _tnef_object(_LEVEL_MESSAGE, 0x9003, 0x0006, _mapi(props))
    for file in files:
        out += _tnef_object(
            _LEVEL_ATTACHMENT, 0x9002, 0x0006, struct.pack("<HIHHI", 1, -1 & 0xFFFFFFFF, 0, 0, 0)
        )
        short = (file.short_name or file.name[:8]).encode("cp1252", "replace") + b"\x00"
        out += _tnef_object(_LEVEL_ATTACHMENT, 0x8010, 0x0001, short)
        out += _tnef_object(
            _LEVEL_ATTACHMENT, 0x8013, 0x0003, struct.pack("<7H", 2024, 3, 15, 14, 5, 12, 5)
        )
        if file.embedded is None:
            out += _tnef_object(_LEVEL_ATTACHMENT, 0x800F, 0x0006, file.data)
        attach: list[tuple[int, int, bytes]] = [
            (_PT_STRING8, 0x3707, file.name.encode("cp1252") + b"\x00"),  # PR_ATTACH_LONG_FILENAME
            (_PT_LONG, 0x3705, struct.pack("<I", 5 if file.embedded else 1)),  # PR_ATTACH_METHOD
        ]
        if file.mime:
            attach.append((_PT_STRING8, 0x370E, file.mime.encode() + b"\x00"))
        if file.content_id:
            attach.append((_PT_STRING8, 0x3712, file.content_id.encode() + b"\x00"))
        if file.hidden:
            attach.append((_PT_BOOLEAN, 0x7FFE, struct.pack("<H", 1)))
        if file.embedded is not None:
            attach.append((_PT_OBJECT, 0x3701, IMESSAGE_SIG + file.embedded))
        out += _tnef_object(_LEVEL_ATTACHMENT, 0x9005, 0x0006, _mapi(attach))
    return out


def _tnef_object(level: int, name: int, kind: int, data: bytes) -> bytes:
    checksum = sum(data) & 0xFFFF
    return struct.pack("<BHHI", level, name, kind, len(data)) + data + struct.pack("<H", checksum)


def _mapi(props: list[tuple[int, int, bytes]]) -> bytes:
    """A MAPI property block: count, then type, id and value (variable ones counted, padded)."""
    out = struct.pack("<I", len(props))
    for kind, name, value in props:
        out += struct.pack("<HH", kind, name)
        if kind in (_PT_STRING8, _PT_BINARY, _PT_OBJECT):
            out += struct.pack("<II", 1, len(value)) + value + bytes(-len(value) % 4)
        elif kind in (_PT_SHORT, _PT_BOOLEAN):
            out += value[:2] + b"\x00\x00"
        else:
            out += value
    return out
