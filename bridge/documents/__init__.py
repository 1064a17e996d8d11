"""Message → fax document: detection, conversion, merging, cover pages.

Pure functions of the message, except for the converters outside Python they are handed
(`external.Converters`: the managed LibreOffice, Ghostscript), which they call and wait for."""

from __future__ import annotations

from bridge.documents.convert import count_pages, merge_pdfs
from bridge.documents.cover import render_cover, render_covers
from bridge.documents.pipeline import (
    AttachmentReport,
    DocumentOptions,
    PreparedDocument,
    prepare_document,
)
from bridge.models import CoverNote


def fax_pdf(doc: PreparedDocument, note: CoverNote | None) -> bytes:
    """Exactly what is transmitted: the cover (carrying the text of a text-only mail) and
    the document pages. `note` is needed whenever `doc.wants_cover`."""
    pdfs = [doc.pdf] if doc.pages else []
    if doc.wants_cover:
        assert note is not None
        pdfs.insert(0, render_cover(note, doc.cover_text))
    return pdfs[0] if len(pdfs) == 1 else merge_pdfs(pdfs)


__all__ = [
    "AttachmentReport",
    "DocumentOptions",
    "PreparedDocument",
    "count_pages",
    "fax_pdf",
    "merge_pdfs",
    "prepare_document",
    "render_cover",
    "render_covers",
]
