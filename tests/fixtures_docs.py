"""Test inputs made at test time: real PDFs, fax TIFFs, images and MIME messages.

Every generated PDF page carries its own label as text, and every image kind ends up with a
recognisable image filter, so tests can check page order in the merged fax.
"""

from __future__ import annotations

from email.message import EmailMessage
from io import BytesIO

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
