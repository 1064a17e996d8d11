"""LibreOffice as a managed converter: the supervisor (`service`) and its clients (`client`)."""

from __future__ import annotations

from bridge.documents.office.client import (
    OfficeEndpoint,
    OfficeFailure,
    OfficeResult,
    office_convert,
)
from bridge.documents.office.service import OfficeService, find_soffice, find_uno_python

__all__ = [
    "OfficeEndpoint",
    "OfficeFailure",
    "OfficeResult",
    "OfficeService",
    "find_soffice",
    "find_uno_python",
    "office_convert",
]
