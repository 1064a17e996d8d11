"""Lenient readers for the loosely typed values provider APIs send (ints as strings, epochs)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def as_int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def from_epoch(value: Any) -> datetime | None:
    """Unix seconds (number or string) → aware UTC datetime."""
    try:
        return datetime.fromtimestamp(int(value), tz=UTC)
    except (TypeError, ValueError, OverflowError):
        return None


def digits_only(number: str) -> str:
    """`+1 212-555-0123` → `12125550123`: APIs that want the country code without `+`."""
    return "".join(ch for ch in number if ch.isdigit())
