"""Linking a provider's fax back to our job: one spelling of our mark, one reader of it.

Every adapter writes `reference_text(fax)` (or the bare `str(fax.reference)` where a field holds
only an id) into whatever its provider echoes back — a Fax.Plus comment, a Dropbox Sign title, a
Kazoo or Documo custom field — and reads it back with `parse_reference`, whatever the provider
did to it (a comment turned into a plain string, a tag list, a JSON-encoded custom field).
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from bridge.models import FaxReference, StatusUpdate

PREFIX = "faxbridge job"
# Job ids are 11 hex digits of milliseconds and 6 random ones (`store.db.new_id`); older ids
# may be shorter or longer, so accept 12 to 40 hex digits.
_KEY = r"(?P<job>[0-9a-f]{12,40})(?:-r(?P<round>\d{1,4}))?"
_BARE = re.compile(rf"^\s*{_KEY}\s*$")
_PREFIXED = re.compile(rf"faxbridge(?:\s+job)?[\s:#-]+{_KEY}\b", re.IGNORECASE)
_TAG = re.compile(rf"^\s*job:{_KEY}\s*$")


def reference_text(fax_reference: FaxReference) -> str:
    """`faxbridge job 0190f2a1b3c4d5e6f-r1`: readable on the provider's dashboard, findable."""
    return f"{PREFIX} {fax_reference}"


def parse_reference(value: Any) -> FaxReference | None:
    """Our reference in a string (prefixed or bare), a `job:<key>` tag, or a list or dict of them.

    Bare keys are accepted only when they are the whole string, so a stray hex number in a
    free-text comment is never mistaken for a job.
    """
    if isinstance(value, str):
        for pattern in (_PREFIXED, _TAG, _BARE):
            match = pattern.search(value) if pattern is _PREFIXED else pattern.match(value)
            if match:
                return FaxReference(match.group("job"), int(match.group("round") or 0))
        return None
    if isinstance(value, list | tuple):
        for item in value:
            found = parse_reference(item)
            if found is not None:
                return found
        return None
    if isinstance(value, dict):
        for item in value.values():
            found = parse_reference(item)
            if found is not None:
                return found
    return None


def linked(update: StatusUpdate, value: Any) -> StatusUpdate:
    """`update` with the job and round that the reference in `value` names (when it names one)."""
    found = parse_reference(value)
    if found is None:
        return update
    return replace(update, job_id=found.job_id, round=found.round)
