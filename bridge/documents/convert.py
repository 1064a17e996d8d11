"""PDF, TIFF, images (HEIC too) and text → clean PDF pages; merging and counting pages.

Every converter returns a PDF that pypdf wrote or img2pdf made, so the merge never meets the
quirks of the sender's software. Fax TIFFs (CCITT G3/G4) keep their resolution: img2pdf embeds
G4 as is, and a 204x196 dpi page stays the size of the paper it was scanned from.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from io import BytesIO

import img2pdf
import pillow_heif
from PIL import Image, ImageOps, ImageSequence
from pypdf import PdfReader, PdfWriter

from bridge.documents.detect import DAMAGED_IMAGE
from bridge.documents.pdf import PdfRefused, clean_pdf
from bridge.documents.text import LETTER_PT, text_pages, text_to_pdf

TOO_LARGE = "the image is too large"
EMPTY_TEXT = "the text file is empty"

pillow_heif.register_heif_opener()  # HEIC photos (iPhone) open like any other image

_BOMB = (Image.DecompressionBombError, Image.DecompressionBombWarning)
_IMAGE_BORDER_PT = 18.0  # a quarter inch, so a full-bleed photo is not clipped by the machine
_MAX_NATURAL_PT = (9.5 * 72, 14.5 * 72)  # anything up to Legal keeps its scanned size
_SANE_DPI = (10.0, 10000.0)

Layout = Callable[[int, int, tuple[float, float]], tuple[float, float, float, float]]


class Unusable(Exception):
    """A part that cannot become pages. `fatal` when the sender clearly meant it to be
    faxed (a PDF, a TIFF) but it cannot be read: the fax would be incomplete without it.
    `code` is the RFC 3463 code of the refusal; `temporary` makes it a 451 (try again)."""

    def __init__(
        self, reason: str, *, fatal: bool, code: str = "5.6.0", temporary: bool = False
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.fatal = fatal
        self.code = code
        self.temporary = temporary


@dataclass(frozen=True)
class Converted:
    pdf: bytes
    pages: int


def to_pdf(
    kind: str, data: bytes, text: str | None = None, *, max_pages: int | None = None
) -> Converted:
    """Convert one detected part; raises Unusable with a reason a person understands."""
    if kind == "pdf":
        return pdf_to_pdf(data)
    if kind == "tiff":
        return tiff_to_pdf(data, max_pages=max_pages)
    if kind == "text":
        if not (text or "").strip():
            raise Unusable(EMPTY_TEXT, fatal=False)
        return text_document(text or "", max_pages=max_pages)
    return image_to_pdf(data, kind)


def text_document(text: str, *, max_pages: int | None = None) -> Converted:
    """Text as pages; beyond `max_pages` only counted (no PDF), since the fax is refused."""
    pages = text_pages(text)
    if pages is not None and max_pages is not None and pages > max_pages:
        return Converted(b"", pages)
    pdf = text_to_pdf(text)
    return Converted(pdf, count_pages(pdf))


def pdf_to_pdf(data: bytes) -> Converted:
    """Repaired, decrypted (empty user password) and flattened; see `pdf.py`."""
    try:
        pdf, pages = clean_pdf(data)
    except PdfRefused as exc:
        raise Unusable(exc.reason, fatal=True) from exc
    return Converted(pdf, pages)


def tiff_to_pdf(data: bytes, *, max_pages: int | None = None) -> Converted:
    """Every page of a TIFF at its own resolution; img2pdf first, Pillow frame by frame for
    what img2pdf refuses (16-bit samples, odd compressions). Past `max_pages` the pages are
    only counted (no PDF): the fax is refused for its length, so none is converted."""
    with _image_errors():
        frames = _check_frames(data)
        if max_pages is not None and frames > max_pages:
            return Converted(b"", frames)
        try:
            pdf = _img2pdf([BytesIO(data)], _tiff_layout)
        except _BOMB:
            raise
        except Exception:
            pdf = _img2pdf([_png(frame) for frame in _frames(data)], _tiff_layout)
        pages = count_pages(pdf)
    if pages != frames:
        raise Unusable(DAMAGED_IMAGE, fatal=True)
    return Converted(pdf, pages)


def image_to_pdf(data: bytes, kind: str) -> Converted:
    """One image on a Letter page, shrunk to fit if larger; transparency onto white, only
    the first frame of an animation. A plain JPEG is embedded without re-compressing."""
    with _image_errors(), Image.open(BytesIO(data)) as image:
        image.seek(0)
        if kind == "jpeg" and _plain_jpeg(image):
            source = BytesIO(data)
        elif kind in ("jpeg", "heic"):
            source = _jpeg(_flatten(image))
        else:
            source = _png(image)
        pdf = _img2pdf([source], _image_layout, first_frame_only=True)
    return Converted(pdf, 1)


def merge_pdfs(pdfs: list[bytes]) -> bytes:
    """Concatenate PDFs (each one we wrote) in order, e.g. a cover page before the document."""
    if not pdfs:
        raise ValueError("merge_pdfs needs at least one PDF")
    writer = PdfWriter()
    for pdf in pdfs:
        for page in PdfReader(BytesIO(pdf)).pages:
            writer.add_page(page)
    out = BytesIO()
    writer.write(out)
    return out.getvalue()


def count_pages(pdf: bytes) -> int:
    return len(PdfReader(BytesIO(pdf)).pages)


@contextmanager
def _image_errors() -> Iterator[None]:
    """Decompression bombs are skipped as too large; anything else Pillow or img2pdf raises
    on bad input means the image is damaged. Never a crash."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            yield
        except _BOMB as exc:
            raise Unusable(TOO_LARGE, fatal=False) from exc
        except Unusable:
            raise
        except Exception as exc:
            raise Unusable(DAMAGED_IMAGE, fatal=True) from exc


def _check_frames(data: bytes) -> int:
    """Count the frames, refusing any too big to decode (Pillow checks only the first)."""
    count = 0
    with Image.open(BytesIO(data)) as image:
        for frame in ImageSequence.Iterator(image):
            width, height = frame.size
            if Image.MAX_IMAGE_PIXELS and width * height > Image.MAX_IMAGE_PIXELS:
                raise Unusable(TOO_LARGE, fatal=False)
            count += 1
    return count


def _frames(data: bytes) -> Iterator[Image.Image]:
    with Image.open(BytesIO(data)) as image:
        for frame in ImageSequence.Iterator(image):
            yield frame.copy()


def _img2pdf(sources: list[BytesIO], layout: Layout, *, first_frame_only: bool = False) -> bytes:
    pdf = img2pdf.convert(
        sources,
        layout_fun=layout,
        rotation=img2pdf.Rotation.none,
        first_frame_only=first_frame_only,
        nodate=True,
    )
    if not isinstance(pdf, bytes):
        raise TypeError("img2pdf returned no PDF")
    return pdf


def _plain_jpeg(image: Image.Image) -> bool:
    """A JPEG img2pdf can embed untouched: upright, one frame, and it decodes to the end."""
    try:
        orientation = image.getexif().get(0x0112, 1)
    except Exception:  # a broken EXIF block is no reason to refuse the photo
        orientation = 1
    if orientation != 1 or getattr(image, "n_frames", 1) != 1:
        return False
    image.draft("RGB", (max(image.width // 8, 1), max(image.height // 8, 1)))
    image.load()  # at 1/8 scale: cheap, and a truncated file fails here, not at the receiver
    return True


def _flatten(image: Image.Image) -> Image.Image:
    """Upright, and one of the modes a fax can show: 1-bit, grey or RGB on white."""
    try:
        image = ImageOps.exif_transpose(image) or image
    except Exception:  # broken EXIF: keep the pixels as stored
        pass
    if image.mode == "1":
        return image
    if image.mode.startswith("I;16") or image.mode == "I":
        image = image.convert("I").point(lambda v: v * (1 / 256)).convert("L")
    elif image.mode == "F":
        image = image.convert("L")
    grey = image.mode in ("L", "LA", "La") or (
        image.mode == "P" and image.palette is not None and image.palette.mode == "L"
    )
    if image.mode in ("RGBA", "LA", "La", "RGBa", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        white.alpha_composite(rgba)
        image = white.convert("RGB")
    if grey:
        return image.convert("L")
    return image if image.mode in ("L", "RGB") else image.convert("RGB")


def _dpi(image: Image.Image) -> tuple[float, float] | None:
    dpi = image.info.get("dpi")
    if not isinstance(dpi, tuple):
        return None
    try:
        x, y = float(dpi[0]), float(dpi[1])
    except (TypeError, ValueError, IndexError):
        return None
    low, high = _SANE_DPI
    return (x, y) if low <= x <= high and low <= y <= high else None


def _png(image: Image.Image) -> BytesIO:
    out = BytesIO()
    dpi = _dpi(image)
    flat = _flatten(image)
    if dpi is None:
        flat.save(out, format="PNG")
    else:
        flat.save(out, format="PNG", dpi=dpi)
    out.seek(0)
    return out


def _jpeg(image: Image.Image) -> BytesIO:
    out = BytesIO()
    image.save(out, format="JPEG", quality=90)
    out.seek(0)
    return out


def _tiff_layout(
    width_px: int, height_px: int, dpi: tuple[float, float]
) -> tuple[float, float, float, float]:
    """A page the size the TIFF was scanned at; unless that is absurd (no resolution tag),
    then shrunk onto Letter."""
    x_dpi = dpi[0] if dpi[0] > 0 else 96.0
    y_dpi = dpi[1] if dpi[1] > 0 else 96.0
    width, height = width_px * 72.0 / x_dpi, height_px * 72.0 / y_dpi
    if width <= _MAX_NATURAL_PT[0] and height <= _MAX_NATURAL_PT[1]:
        return width, height, width, height
    scale = min(LETTER_PT[0] / width, LETTER_PT[1] / height)
    return width * scale, height * scale, width * scale, height * scale


_image_layout: Layout = img2pdf.get_layout_fun(
    pagesize=LETTER_PT,
    border=(_IMAGE_BORDER_PT, _IMAGE_BORDER_PT),
    fit=img2pdf.FitMode.shrink,
)
