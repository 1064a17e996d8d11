"""Render a PDF as a multi-page fax TIFF (G4, 204x196 dpi) for `inbound.format: tiff`."""

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
