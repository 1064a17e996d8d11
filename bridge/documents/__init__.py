"""Message → fax document: detection, conversion, merging, cover pages. Pure functions."""

from __future__ import annotations

from bridge.documents.convert import count_pages, merge_pdfs
from bridge.documents.cover import render_cover
from bridge.documents.pipeline import (
    AttachmentReport,
    DocumentOptions,
    PreparedDocument,
    prepare_document,
)

__all__ = [
    "AttachmentReport",
    "DocumentOptions",
    "PreparedDocument",
    "count_pages",
    "merge_pdfs",
    "prepare_document",
    "render_cover",
]
