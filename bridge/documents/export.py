"""A PDF at fax resolution (G4, 204x196 dpi): as a TIFF for `inbound.format: tiff`, or as a PDF
of those pages, the way a receiving machine prints them (`faxbridge preview --fax-resolution`)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from bridge.errors import DocumentError


def pdf_to_tiff(pdf: bytes) -> bytes:
    """Ghostscript renders; fax machines and archives expect exactly this flavour of TIFF."""
    gs = shutil.which("gs")
    if gs is None:
        raise DocumentError("ghostscript (gs) is needed to deliver inbound faxes as TIFF")
    with tempfile.TemporaryDirectory(prefix="faxbridge-") as tmp:
        source, target = Path(tmp) / "in.pdf", Path(tmp) / "out.tif"
        source.write_bytes(pdf)
        result = subprocess.run(
            [
                gs,
                "-q",
                "-dNOPAUSE",
                "-dBATCH",
                "-dSAFER",
                "-sDEVICE=tiffg4",
                "-r204x196",
                f"-sOutputFile={target}",
                str(source),
            ],
            capture_output=True,
            timeout=120,
            check=False,
        )
        if result.returncode != 0 or not target.exists():
            message = result.stderr.decode(errors="replace").strip()[:200]
            raise DocumentError(f"ghostscript could not render the fax as TIFF: {message}")
        return target.read_bytes()


def fax_resolution_pdf(pdf: bytes) -> bytes:
    """The pages as the receiving machine prints them: 1-bit, 204x196 dpi (fine resolution),
    so a light-grey form or a tiny font shows up as it will arrive. Ghostscript rasterises to
    G4 TIFF, img2pdf wraps each page without re-encoding, at the paper size it had."""
    import img2pdf

    tiff = pdf_to_tiff(pdf)
    out = img2pdf.convert(tiff, rotation=img2pdf.Rotation.none, nodate=True)
    if not isinstance(out, bytes):
        raise DocumentError("img2pdf made no PDF of the fax rendering")
    return out
