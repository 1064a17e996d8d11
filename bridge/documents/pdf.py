"""A sender's PDF → a plain PDF of what it shows on paper: repaired, decrypted, flattened.

qpdf (through pikepdf) opens what it can, rebuilding a damaged cross-reference table; a file
it had to repair is accepted only if every page is still whole (its content and the images it
draws are there), so a truncated scan is refused rather than faxed with pages missing. A PDF
whose user password is empty opens; any other password is a refusal.

What a fax shows is what a printer prints, so form fields are burned into the page as they
would print (`flatten_annotations("print")`) and everything active or invisible is removed:
JavaScript and other actions, the form itself, remaining annotations, bookmarks, embedded
files. Streams are copied, never decoded: a compressed "bomb" stays compressed here.
"""

from __future__ import annotations

import re
import zlib
from io import BytesIO

import pikepdf
from pikepdf import Array, Dictionary, Name, Pdf, Stream

from bridge.documents.detect import DAMAGED_PDF

PASSWORD_PROTECTED = "the PDF is password-protected"
ENCRYPTED = "the PDF is encrypted for its recipients only (send it unencrypted)"
XFA_FORM = "the PDF is an XFA form that only Adobe Reader can show (print it to a new PDF first)"
IMAGE_TOO_LARGE = "the PDF holds an image too large to fax"

MAX_IMAGE_PIXELS = 300_000_000  # a 1200 dpi A3 scan is 280 million
# Acrobat's (and PDF 1.7 Annex C's) largest page without UserUnit: 200 in on a side. A fax is
# printed 8.5 in wide; anything past this is a drawing error or a trap, not a document.
MAX_PAGE_PT = 200 * 72
_CHECK_BYTES = 8 * 1024 * 1024  # a damaged page's content is read up to this size to check it
_ROOT_EXTRAS = (
    *("/OpenAction", "/AA", "/Names", "/Outlines", "/AcroForm", "/Collection", "/Threads"),
    *("/SpiderInfo", "/URI", "/Dests", "/AF", "/PieceInfo"),
)
_PAGE_EXTRAS = ("/AA", "/Annots", "/Thumb", "/B", "/AF", "/PieceInfo")
_LOST_STREAM = "unable to recover stream data"
_NAME = rb"/([^\s/\[\]<>(){}%]+)"
_DO_RE = re.compile(_NAME + rb"\s*Do\b")
_TF_RE = re.compile(_NAME + rb"\s+[-+]?[\d.]+\s+Tf\b")


class PdfRefused(Exception):
    """The PDF cannot be faxed; `reason` says why in words for the sender."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def clean_pdf(data: bytes) -> tuple[bytes, int]:
    """(the PDF to fax, its page count); raises PdfRefused."""
    try:
        pdf = pikepdf.open(BytesIO(data), password="", suppress_warnings=True)
    except pikepdf.PasswordError as exc:
        raise PdfRefused(PASSWORD_PROTECTED) from exc
    except Exception as exc:
        if "unsupported encryption" in str(exc):  # certificates (Adobe.PubSec) and the like
            raise PdfRefused(ENCRYPTED) from exc
        raise PdfRefused(DAMAGED_PDF) from exc
    try:
        with pdf:
            return _clean(pdf)
    except PdfRefused:
        raise
    except Exception as exc:  # qpdf gives up on objects it cannot make sense of
        raise PdfRefused(DAMAGED_PDF) from exc


def _clean(pdf: Pdf) -> tuple[bytes, int]:
    needs_rendering: object = pdf.Root.get("/NeedsRendering")
    if needs_rendering is True:  # pikepdf hands PDF booleans over as Python booleans
        raise PdfRefused(XFA_FORM)
    pages = len(pdf.pages)
    if pages == 0:
        raise PdfRefused(DAMAGED_PDF)
    repaired = bool(pdf.get_warnings())
    if repaired and any(_LOST_STREAM in warning for warning in pdf.get_warnings()):
        raise PdfRefused(DAMAGED_PDF)
    for page in pdf.pages:
        if repaired and not _page_whole(page.obj):
            raise PdfRefused(DAMAGED_PDF)
        if _largest_image(page.obj) > MAX_IMAGE_PIXELS:
            raise PdfRefused(IMAGE_TOO_LARGE)
    for number, page in enumerate(pdf.pages, start=1):
        if (side := _longest_side_pt(page)) > MAX_PAGE_PT:
            raise PdfRefused(
                f"page {number} is {_length(side)} on its longest side; pages up to "
                f"{_length(MAX_PAGE_PT)} are faxed"
            )
    if "/AcroForm" in pdf.Root:
        pdf.generate_appearance_streams()
    pdf.flatten_annotations("print")
    for key in _ROOT_EXTRAS:
        if key in pdf.Root:
            del pdf.Root[key]
    for page in pdf.pages:
        for key in _PAGE_EXTRAS:
            if key in page.obj:
                del page.obj[key]
    out = BytesIO()
    pdf.save(
        out,
        encryption=False,
        fix_metadata_version=False,
        deterministic_id=True,
        stream_decode_level=pikepdf.StreamDecodeLevel.none,
    )
    return out.getvalue(), pages


def _longest_side_pt(page: pikepdf.Page) -> float:
    """The page's longest side in points, as printed (MediaBox, inherited, times UserUnit)."""
    try:
        box = [float(v) for v in page.mediabox]  # inherited from the page tree if need be
        unit = float(page.obj.get("/UserUnit", 1) or 1)
    except (TypeError, ValueError):
        return 0.0  # no readable box: qpdf gives it Letter
    if len(box) != 4:
        return 0.0
    return max(abs(box[2] - box[0]), abs(box[3] - box[1])) * max(unit, 0.0)


def _length(points: float) -> str:
    inches = points / 72
    if inches < 1000:
        return f"{inches:,.0f} in"
    metres = inches * 0.0254
    return f"{metres:,.0f} m" if metres < 1000 else f"{metres / 1000:,.1f} km"


def _page_whole(page: Dictionary) -> bool:
    """After a repair: the page has content, and every image, form and font it uses is there."""
    contents = page.get("/Contents")
    streams = list(contents) if isinstance(contents, Array) else [contents]
    if not streams or not all(isinstance(s, Stream) for s in streams):
        return False
    xobjects, fonts = _resources(page, "/XObject"), _resources(page, "/Font")
    for stream in streams:
        assert isinstance(stream, Stream)
        data = _content(stream)
        if data is None:
            continue
        for name in _DO_RE.findall(data):
            if not isinstance(xobjects.get("/" + name.decode("latin-1")), Stream):
                return False
        for name in _TF_RE.findall(data):
            if not isinstance(fonts.get("/" + name.decode("latin-1")), Dictionary):
                return False
    return True


def _content(stream: Stream) -> bytes | None:
    """The decoded content, if it can be had cheaply (unfiltered or Flate, up to a limit);
    PdfRefused if its compressed data is broken or cut off."""
    filters = stream.get("/Filter")
    names = list(filters) if isinstance(filters, Array) else [filters] if filters else []
    raw = stream.read_raw_bytes()
    if not names:
        return raw[:_CHECK_BYTES]
    if names != [Name.FlateDecode]:
        return None
    inflater = zlib.decompressobj()
    try:
        data = inflater.decompress(raw, _CHECK_BYTES)
    except zlib.error as exc:
        raise PdfRefused(DAMAGED_PDF) from exc
    if not inflater.eof and not inflater.unconsumed_tail:
        raise PdfRefused(DAMAGED_PDF)  # the compressed data stops short: cut off
    return data


def _resources(page: Dictionary, kind: str) -> Dictionary:
    resources = page.get("/Resources")
    found = resources.get(kind) if isinstance(resources, Dictionary) else None
    return found if isinstance(found, Dictionary) else Dictionary()


def _largest_image(page: Dictionary) -> int:
    """Pixels of the largest image the page's resources name (images a renderer must decode)."""
    largest = 0
    for _, xobject in _resources(page, "/XObject").items():
        if not isinstance(xobject, Stream) or xobject.get("/Subtype") != Name.Image:
            continue
        try:
            width, height = int(xobject.get("/Width", 0)), int(xobject.get("/Height", 0))
        except (TypeError, ValueError):
            continue
        largest = max(largest, abs(width) * abs(height))
    return largest
