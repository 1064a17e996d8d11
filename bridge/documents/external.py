"""Conversions by programs outside Python: Office files and web pages through the managed
LibreOffice, PostScript and EPS through Ghostscript.

Every refusal is an `Unusable` that names what the file is ("the Word document is
password-protected"), and is fatal: the sender clearly meant the file to be faxed, so a fax
without it would be incomplete. A server without the converter says which one it lacks.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import zipfile
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

from pypdf import PdfReader, PdfWriter, Transformation

from bridge.documents.convert import Converted, Unusable, pdf_to_pdf
from bridge.documents.detect import (
    GHOSTSCRIPT,
    KIND_NAMES,
    LIBREOFFICE,
    POSTSCRIPT_KINDS,
    password_reason,
)
from bridge.documents.office.client import (
    CRASHED,
    PASSWORD,
    TIMEOUT,
    UNAVAILABLE,
    OfficeEndpoint,
    OfficeFailure,
    office_convert,
)
from bridge.documents.text import LETTER_PT

_LARGEST_PT = (8.5 * 72 + 1, 14 * 72 + 1)  # up to Legal a portrait page keeps its size
_LANDSCAPE_PT = (842.0 + 1, 612.0 + 1)  # A4 or Letter turned sideways
_GS_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class Converters:
    """What this server can convert with; a plain value, sent along to document workers."""

    office: OfficeEndpoint | None = None
    ghostscript: str | None = None
    unpack_archives: bool = False

    @classmethod
    def found(cls, office: OfficeEndpoint | None = None) -> Converters:
        return cls(office=office, ghostscript=find_ghostscript())

    def has(self, converter: str) -> bool:
        if converter == LIBREOFFICE:
            return self.office is not None
        if converter == GHOSTSCRIPT:
            return self.ghostscript is not None
        return True


def find_ghostscript(setting: str | None = "auto") -> str | None:
    if setting is None:
        return None
    return shutil.which("gs" if setting == "auto" else setting)


def missing_reply(name: str, kind: str | None, converter: str) -> str:
    """`554 5.6.1 "order.docx" is a Word document; this server has no LibreOffice to convert it`"""
    what = KIND_NAMES.get(kind or "", "a document")
    return f"554 5.6.1 {name} is {what}; this server has no {converter} to convert it"


def _the(kind: str) -> str:
    return "the " + KIND_NAMES.get(kind, "a document").split(" ", 1)[1]


def office_to_pdf(
    endpoint: OfficeEndpoint,
    data: bytes,
    kind: str,
    extra_files: dict[str, bytes] | None = None,
) -> Converted:
    """An Office file or web page as fax pages; raises Unusable (fatal) with the reason."""
    try:
        result = office_convert(endpoint, data, kind, extra_files)
    except OfficeFailure as exc:
        raise _office_refusal(exc, kind, endpoint.timeout_s) from exc
    converted = pdf_to_pdf(fit_to_paper(result.pdf))
    if (result.macros or has_macros(data)) and _blank(converted.pdf):
        raise Unusable(
            f"{_the(kind)} holds only macros and nothing to print (macros are never run)",
            fatal=True,
        )
    return converted


def _office_refusal(exc: OfficeFailure, kind: str, timeout_s: float) -> Unusable:
    what = _the(kind)
    if exc.error == PASSWORD:
        return Unusable(password_reason(kind), fatal=True)
    if exc.error == TIMEOUT:
        return Unusable(
            f"{what} took longer than {timeout_s:g} s to convert (it may be damaged or far "
            "too large; send it as PDF)",
            fatal=True,
            code="5.6.5",
        )
    if exc.error in (CRASHED, UNAVAILABLE):
        return Unusable(
            f"LibreOffice failed while converting {what}; please try again later",
            fatal=True,
            temporary=True,
        )
    return Unusable(f"{what} is damaged and cannot be read", fatal=True)


def has_macros(data: bytes) -> bool:
    """VBA (OOXML, OLE2) or Basic (OpenDocument) code inside the file, found by name."""
    if data[:4] == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(BytesIO(data)) as archive:
                names = archive.namelist()
        except Exception:
            return False
        return any(n.endswith("vbaProject.bin") or n.startswith("Basic/") for n in names)
    return "_VBA_PROJECT".encode("utf-16-le") in data or "Macros".encode("utf-16-le") in data


def _blank(pdf: bytes) -> bool:
    """No text and no images on any page: nothing a person would want faxed."""
    for page in PdfReader(BytesIO(pdf)).pages:
        if page.extract_text().strip() or list(page.images):
            return False
        contents = page.get_contents()
        if contents is not None and len(contents.get_data()) > 200:
            return False  # vector drawing
    return True


def fit_to_paper(pdf: bytes) -> bytes:
    """Pages larger than fax paper (a 16:9 slide is 13.3 in wide) shrunk onto Letter in their
    own orientation: a landscape slide stays landscape, at a size a fax machine can print."""
    reader = PdfReader(BytesIO(pdf))
    if all(_fits(page.mediabox.width, page.mediabox.height) for page in reader.pages):
        return pdf
    writer = PdfWriter(clone_from=reader)
    for page in writer.pages:
        width, height = float(page.mediabox.width), float(page.mediabox.height)
        if _fits(width, height):
            continue
        paper = LETTER_PT if height >= width else (LETTER_PT[1], LETTER_PT[0])
        scale = min(paper[0] / width, paper[1] / height)
        left, bottom = float(page.mediabox.left), float(page.mediabox.bottom)
        page.add_transformation(
            Transformation()
            .translate(-left, -bottom)
            .scale(scale, scale)
            .translate((paper[0] - width * scale) / 2, (paper[1] - height * scale) / 2)
        )
        page.mediabox.lower_left = (0, 0)
        page.mediabox.upper_right = paper
        page.cropbox = page.mediabox
    out = BytesIO()
    writer.write(out)
    return out.getvalue()


def _fits(width: float, height: float) -> bool:
    """Portrait up to Legal; landscape up to A4 or Letter turned sideways (what a fax machine
    prints across its paper without shrinking)."""
    width, height = float(width), float(height)
    if width > height:
        return width <= _LANDSCAPE_PT[0] and height <= _LANDSCAPE_PT[1]
    return width <= _LARGEST_PT[0] and height <= _LARGEST_PT[1]


def postscript_to_pdf(ghostscript: str, data: bytes, kind: str) -> Converted:
    """PostScript keeps its own page size; an EPS drawing is fitted onto a Letter page.
    `-dSAFER` keeps the PostScript program away from files; it runs with a time limit."""
    assert kind in POSTSCRIPT_KINDS
    with tempfile.TemporaryDirectory(prefix="faxbridge-gs-") as tmp:
        source, target = Path(tmp) / f"in.{kind}", Path(tmp) / "out.pdf"
        source.write_bytes(data)
        layout = ["-dEPSFitPage", "-sPAPERSIZE=letter"] if kind == "eps" else []
        try:
            result = subprocess.run(
                [
                    ghostscript,
                    "-q",
                    "-dNOPAUSE",
                    "-dBATCH",
                    "-dSAFER",
                    "-sDEVICE=pdfwrite",
                    *layout,
                    f"-sOutputFile={target}",
                    str(source),
                ],
                capture_output=True,
                timeout=_GS_TIMEOUT_S,
                check=False,
                cwd=tmp,
            )
        except subprocess.TimeoutExpired as exc:
            raise Unusable(
                f"{_the(kind)} took longer than {_GS_TIMEOUT_S:g} s to convert",
                fatal=True,
                code="5.6.5",
            ) from exc
        if result.returncode != 0 or not target.is_file() or target.stat().st_size == 0:
            raise Unusable(f"{_the(kind)} is damaged and cannot be read", fatal=True)
        return pdf_to_pdf(fit_to_paper(target.read_bytes()))
