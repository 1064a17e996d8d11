"""A fax as the console shows it: the PDF as sent or received, and its pages as PNG images.

Pages are drawn by poppler's `pdftoppm` (installed with the bridge's converters), one page per
call at screen resolution, in a process of its own: an inbound fax is a PDF from outside, so
the drawing runs under `prlimit` (address space and CPU seconds) and a wall-clock timeout, and
a PDF that breaks poppler costs one failed image, never the bridge. Drawn pages are kept in a
small in-memory cache, so paging back and forth does not draw them again.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

from bridge.documents import merge_pdfs
from bridge.documents.convert import count_pages
from bridge.store import Store

DPI = 100  # a Letter page is 850 by 1100 pixels: legible on screen, ~100 KB as PNG
TIMEOUT_S = 30.0
MEMORY_BYTES = 1024 * 1024 * 1024
CPU_S = 20
_CACHE_PAGES = 64


class RenderError(RuntimeError):
    """pdftoppm could not draw the page (missing, timed out, or the PDF is broken)."""


def job_pdf(store: Store, job_id: str) -> bytes | None:
    """The fax as transmitted (cover page first), or None when the job or its files are gone."""
    row = store.jobs.row(job_id)
    if row is None:
        return None
    paths = [p for p in (row.cover_path, row.document_path) if p]
    try:
        parts = [store.db.read_file(p) for p in paths]
    except OSError:
        return None
    if not parts:
        return None
    return merge_pdfs(parts) if len(parts) > 1 else parts[0]


def inbound_pdf(store: Store, fax_id: str) -> bytes | None:
    """The received fax as the provider delivered it, or None when there is none (any more)."""
    row = store.inbound.row(fax_id)
    if row is None or not row.document_path:
        return None
    try:
        return store.db.read_file(row.document_path)
    except OSError:
        return None


def page_count(pdf: bytes) -> int:
    try:
        return count_pages(pdf)
    except Exception:  # a received PDF pypdf cannot read: shown as no pages, not an error page
        return 0


class PageRenderer:
    """Draws one page of a PDF as PNG; remembers the last few it drew."""

    def __init__(self, pdftoppm: str | None = None, prlimit: str | None = None) -> None:
        self.pdftoppm = pdftoppm or shutil.which("pdftoppm")
        self.prlimit = prlimit if prlimit is not None else shutil.which("prlimit")
        self._cache: OrderedDict[tuple[str, int], bytes] = OrderedDict()
        self._lock = threading.Lock()

    def page(self, key: str, number: int, load: Callable[[], bytes | None]) -> bytes | None:
        """Page `number` (1-based) of the PDF `load` returns, `key` naming it for the cache;
        None when there is no such page (or no PDF)."""
        with self._lock:
            if (key, number) in self._cache:
                self._cache.move_to_end((key, number))
                return self._cache[(key, number)]
        pdf = load()
        if pdf is None or not 1 <= number <= page_count(pdf):
            return None
        png = self._draw(pdf, number)
        with self._lock:
            self._cache[(key, number)] = png
            while len(self._cache) > _CACHE_PAGES:
                self._cache.popitem(last=False)
        return png

    def _draw(self, pdf: bytes, number: int) -> bytes:
        if self.pdftoppm is None:
            raise RenderError("pdftoppm is not installed (Debian package poppler-utils)")
        with tempfile.TemporaryDirectory(prefix="faxbridge-page-") as work:
            source = Path(work) / "fax.pdf"
            source.write_bytes(pdf)
            target = Path(work) / "page"
            command = [self.pdftoppm, "-png", "-r", str(DPI), "-f", str(number), "-l", str(number)]
            command += ["-singlefile", str(source), str(target)]
            if self.prlimit:
                command = [self.prlimit, f"--as={MEMORY_BYTES}", f"--cpu={CPU_S}", "--", *command]
            try:
                done = subprocess.run(
                    command, capture_output=True, timeout=TIMEOUT_S, check=False, cwd=work
                )
            except subprocess.TimeoutExpired as exc:
                raise RenderError(f"page {number} took longer than {TIMEOUT_S:g} s") from exc
            png = target.with_suffix(".png")
            if done.returncode != 0 or not png.exists():
                why = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["?"]
                raise RenderError(f"pdftoppm could not draw page {number}: {why[0]}")
            return png.read_bytes()
