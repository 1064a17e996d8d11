"""Fax.Plus's wire format: statuses, records, comments, numbers and times, read leniently.

What AlohiHQ/faxplus-python (docs/ and models/), AlohiHQ/faxplus-js (models/) and the
apidoc.fax.plus pages show; the adapter (`bridge.providers.faxplus`) decides what to do with it.
Where they disagree the readers here accept every variant:
- a *fax* record's `comment` is a plain string (docs/Fax.md "comment | str", models/fax.ts,
  apidoc "Get a fax record" example `"comment": ""`); an *outbox* record's is `{text, tags}`
  (docs/OutboxComment.md). Our reference is read from either.
- a fax record names its numbers `from` (models/fax.py attribute_map) or `from_number` (the
  apidoc example); a webhook's `data` says `from`/`to` (apidoc.fax.plus/concepts/webhook
  example) or `from_number`/`to_number` (docs/WebhookCallbackData.md).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import httpx

from bridge.models import FailureReason, FaxReference, JobStatus
from bridge.providers.reference import parse_reference

# docs/OutboxStatus.md: the stages of a fax not sent yet (apidoc.fax.plus/concepts/outbox).
_SUBMITTED = frozenset({"submitted", "converting", "scheduled_for_sending"})
# `in_progress`: apidoc.fax.plus/concepts/fax, "the fax is currently being received" (fax
# streaming); not an outbound status, but never a failure wherever it shows up.
_SENDING = frozenset({"sending", "in_progress"})
_FILE_ERRORS = frozenset(
    {
        "failed_office_converter_issue",
        "failed_separate_file_pages_issue",
        "failed_render_header_issue",
        "failed_unknown_converter_issue",
        "failed_convert_to_tiff_issue",
        "failed_mimetype_not_supported",
        "failed_image_preparation",
    }
)
# docs/FaxStatus.md, read with the meanings of apidoc.fax.plus/concepts/fax "Fax Error Statuses":
# `failed_normal_clearing` is "Destination was busy. Wait and retry." there, so it is busy (and
# redialled as busy), whatever the telephone cause's name suggests.
_FAILURES: dict[str, FailureReason] = {
    "failed_user_busy": FailureReason.BUSY,
    "failed_no_answer": FailureReason.NO_ANSWER,
    "failed_unallocated_number": FailureReason.BAD_NUMBER,
    "failed_invalid_number_format": FailureReason.BAD_NUMBER,
    "failed_destination_not_supported": FailureReason.BAD_NUMBER,
    "failed_normal_clearing": FailureReason.BUSY,
    "failed_normal_temporary_failure": FailureReason.DISCONNECTED,
    "failed_to_send": FailureReason.DISCONNECTED,
    "partially_sent": FailureReason.DISCONNECTED,
    "insufficient_credit": FailureReason.ON_HOLD,
    "failed": FailureReason.UNKNOWN,
    "failed_internal_process_error": FailureReason.UNKNOWN,
    **dict.fromkeys(_FILE_ERRORS, FailureReason.FILE_ERROR),
}
# What apidoc.fax.plus/concepts/fax says each outcome means (payloads carry no text of their
# own), so failure reports can quote the provider rather than only our reason.
TEXTS = {
    "success": "The fax was sent successfully",
    "partially_sent": "The first pages were sent, then the call dropped",
    "insufficient_credit": "Not enough credit to send the pages",
    "failed": "Generic error",
    "failed_internal_process_error": "Internal processing error",
    "failed_user_busy": "The destination was busy",
    "failed_no_answer": "No answer at the destination",
    "failed_unallocated_number": "Invalid (unallocated) number",
    "failed_invalid_number_format": "Invalid number format",
    "failed_destination_not_supported": "Special service number, or not covered by the plan",
    "failed_to_send": "The system was busy",
    "failed_normal_temporary_failure": "Temporary network issue",
    "failed_normal_clearing": "The destination was busy",
    "failed_mimetype_not_supported": "Unsupported file type",
    "failed_office_converter_issue": "The Microsoft Office document could not be converted",
    "failed_unknown_converter_issue": "File conversion failed (is the file password-protected?)",
    **dict.fromkeys(
        (
            "failed_separate_file_pages_issue",
            "failed_render_header_issue",
            "failed_image_preparation",
            "failed_convert_to_tiff_issue",
        ),
        "File conversion issue: some page of the document is not valid",
    ),
    "in_progress": "The fax is still being received",
}
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"  # every Fax.Plus time: "YYYY-MM-DD HH:mm:ss", UTC


def classify(raw: str, *, pending: bool = False) -> tuple[JobStatus, FailureReason | None]:
    """Map one Fax.Plus status to ours.

    `pending` says the record is still in the outbox, where an unknown status means "not sent
    yet"; anywhere else an unknown status is a failure we cannot explain.
    """
    if raw == "success":
        return JobStatus.DELIVERED, None
    if raw in _SUBMITTED:
        return JobStatus.SUBMITTED, None
    if raw in _SENDING:
        return JobStatus.SENDING, None
    if raw in _FAILURES:
        return JobStatus.FAILED, _FAILURES[raw]
    if raw.startswith("failed_fs_"):  # FreeSWITCH hang-up causes: the call broke off
        return JobStatus.FAILED, FailureReason.DISCONNECTED
    if "convert" in raw:
        return JobStatus.FAILED, FailureReason.FILE_ERROR
    if pending and not raw.startswith("failed"):
        return JobStatus.SUBMITTED, None
    return JobStatus.FAILED, FailureReason.UNKNOWN


def comment_reference(record: dict[str, Any]) -> FaxReference | None:
    """Our reference from a record's comment, whichever shape it has.

    A fax record's comment is the outbox comment's *text* as a plain string; an outbox record
    keeps `{text, tags}`. Tags are read too (`job:<ref>`), and a `tags` list beside the comment.
    """
    comment = record.get("comment")
    if isinstance(comment, dict):
        found = parse_reference(comment.get("text")) or parse_reference(comment.get("tags"))
    else:
        found = parse_reference(comment) if isinstance(comment, str) else None
    return found or parse_reference(record.get("tags"))


def number(value: Any) -> str:
    """`+1 334-304-1234` → `+13343041234`; user ids (free accounts) are left as they are."""
    text = str(value or "").strip()
    if re.fullmatch(r"\+?[\d\s().-]+", text):
        digits = re.sub(r"\D", "", text)
        return f"+{digits}" if text.startswith("+") else digits
    return text


def from_number(record: dict[str, Any]) -> str:
    return number(record.get("from") or record.get("from_number"))


def to_number(record: dict[str, Any]) -> str:
    """`to` is a string on a fax record and a webhook, a list on an outbox record."""
    to = record.get("to") or record.get("to_number")
    if isinstance(to, list):
        to = to[0] if to else ""
    return number(to)


def parse_time(value: Any) -> datetime | None:
    try:
        return datetime.strptime(str(value), TIME_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return None


def format_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(TIME_FORMAT)


def answer(response: httpx.Response) -> dict[str, Any]:
    """A JSON object answer, or `{}` when the body is empty or something else."""
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return {}
    return body if isinstance(body, dict) else {}


def records(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The records of a listing: `{"data": {"records": […]}}` (docs/FaxList.md) or
    `{"records": […]}` (docs/OutboxList.md)."""
    data = body.get("data")
    found = data.get("records") if isinstance(data, dict) else body.get("records")
    return [r for r in found if isinstance(r, dict)] if isinstance(found, list) else []


def with_description(message: str, response: httpx.Response) -> str:
    """docs/Error.md: a terse `error` code with a `description` beside it."""
    description = answer(response).get("description")
    if isinstance(description, str) and description and description not in message:
        return f"{message} ({description[:300]})"
    return message
