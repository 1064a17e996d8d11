"""Documo's wire format: the fax object, its statuses and words, webhooks, the call budget.

What docs.documo.com (seed 004) and the help.documo.com webhook pages show, read leniently; the
adapter (`bridge.providers.mfax`) decides what to do with it.
"""

from __future__ import annotations

import json
import re
import time
from collections import deque
from datetime import datetime
from typing import Any

import httpx
import phonenumbers

from bridge.errors import CallbackError, PermanentProviderError, TransientProviderError
from bridge.models import CallbackRequest, FailureReason, JobStatus

# Custom fields we send: the bare job id (what the history `query` finds every round by) and
# the reference with its round. Faxes sent before rounds existed carry only the first.
JOB_FIELD = "faxbridgeJobId"
REFERENCE_FIELD = "faxbridgeReference"
# The statuses the legacy webhook page lists: success, transmitting, scheduled, failed,
# processing, cancelled.
_STATUSES = {
    "processing": JobStatus.SUBMITTED,
    "scheduled": JobStatus.SUBMITTED,
    "transmitting": JobStatus.SENDING,
    "success": JobStatus.DELIVERED,
    "failed": JobStatus.FAILED,
    "cancelled": JobStatus.CANCELLED,
    "canceled": JobStatus.CANCELLED,
}
# Words in Documo's result texts, most specific first ("disconnected number" is a bad number).
# Documo documents no codes, so codes are never read as reasons.
_REASON_WORDS: list[tuple[FailureReason, re.Pattern[str]]] = [
    (FailureReason.BUSY, re.compile(r"busy")),
    (FailureReason.NO_ANSWER, re.compile(r"no[\s_-]?answer|not answer|unanswered|ring\s*time")),
    (FailureReason.BLOCKED_DESTINATION, re.compile(r"block|blacklist|do not fax|opt[\s-]?out")),
    (
        FailureReason.BAD_NUMBER,
        re.compile(
            r"invalid (fax |destination |phone )?number|number (is )?invalid|unallocated"
            r"|not in service|wrong number|disconnected number|not a fax|no fax (tone|machine)"
            r"|fax tone not detected|voice|invalid destination"
        ),
    ),
    (
        FailureReason.DISCONNECTED,
        re.compile(r"disconnect|dropped|hung up|hang[\s-]?up|interrupt|incomplete|partial|lost"),
    ),
    (
        FailureReason.FILE_ERROR,
        re.compile(r"conver(t|sion)|render|corrupt|password|unsupported file|file type|attachment"),
    ),
    (FailureReason.ON_HOLD, re.compile(r"credit|balance|insufficient|payment|suspend")),
]


def failure_reason(fax: dict[str, Any]) -> FailureReason:
    """Why a fax failed, from the words Documo gave."""
    text = " ".join(str(fax.get(k) or "") for k in ("errorInfo", "resultInfo")).lower()
    return next((r for r, pattern in _REASON_WORDS if pattern.search(text)), FailureReason.UNKNOWN)


def classify(fax: dict[str, Any], event: str = "") -> JobStatus | None:
    """The common status of a fax object; None when neither it nor the event name says."""
    status = _STATUSES.get(str(fax.get("status") or "").lower())
    if status is None and event.endswith(".succeed"):
        return JobStatus.DELIVERED
    if status is None and event.endswith(".failed"):
        return JobStatus.FAILED
    return status


def reference_value(fax: dict[str, Any]) -> str | None:
    """Our reference from the fax's custom fields (an object, or its JSON text)."""
    custom = fax.get("cf")
    if isinstance(custom, str):
        try:
            custom = json.loads(custom)
        except json.JSONDecodeError:
            return None
    if not isinstance(custom, dict):
        return None
    value = custom.get(REFERENCE_FIELD) or custom.get(JOB_FIELD)
    return str(value) if value else None


def caller_id_field(number: str | None) -> str | None:
    """Documo's `callerId` takes at most 10 characters: a NANP number without its `+1`."""
    digits = re.sub(r"\D", "", number or "")
    if len(digits) == 11 and digits.startswith("1"):
        digits = digits[1:]
    return digits if 0 < len(digits) <= 10 else None


def e164(value: Any, country: Any = None) -> str:
    """Documo writes numbers as `+19206505920` or as national digits `5094570000` (the fax
    object's `country` says whose); "" for no number."""
    text = str(value or "").strip()
    if not re.sub(r"\D", "", text):
        return ""
    try:
        parsed = phonenumbers.parse(text, str(country or "US").upper())
    except phonenumbers.NumberParseException:
        return text
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def parse_time(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return None


class CallBudget:
    """At most `calls` requests in any `per_s` seconds, counted here so that a burst of
    look-ups waits its turn instead of being refused by Documo."""

    def __init__(self, calls: int, per_s: float = 60.0) -> None:
        self.calls, self.per_s = calls, per_s
        self._made: deque[float] = deque()

    def take(self, what: str) -> None:
        now = time.monotonic()
        while self._made and now - self._made[0] >= self.per_s:
            self._made.popleft()
        if len(self._made) >= self.calls:
            wait_s = self.per_s - (now - self._made[0])
            raise TransientProviderError(
                f"{what}: Documo answers it {self.calls} times a minute; "
                f"asking again in {wait_s:.0f} s",
                code="429",
                retry_after_s=wait_s,
                rate_limited=True,
            )
        self._made.append(now)


def answer_json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return {}


def raw_status(fax: dict[str, Any], event: str) -> str:
    return str(fax.get("status") or event or "unknown")


def failure_code(fax: dict[str, Any]) -> str:
    """The most specific code Documo gave for a failure (a `resultCode` of 0 says nothing)."""
    for key in ("errorCode", "resultCode"):
        value = fax.get(key)
        if value not in (None, "", "0", 0):
            return str(value)
    return str(fax.get("status") or "failed")


def fax_object(body: Any, name: str) -> dict[str, Any]:
    """The fax object of an answer; `/faxes/multiple` wraps it in `success`/`errors`."""
    if isinstance(body, dict) and isinstance(body.get("success"), list):
        if not body["success"]:
            errors = body.get("errors") or [{}]
            raise PermanentProviderError(f"{name}: fax refused: {errors[0].get('error', errors)}")
        body = body["success"][0]
    if not isinstance(body, dict) or not body.get("messageId"):
        raise PermanentProviderError(f"{name}: the answer names no messageId")
    return body


def decode_webhook(request: CallbackRequest) -> tuple[str, dict[str, Any], bytes | None]:
    """(event name, fax object, attached document) from either webhook shape."""
    document: bytes | None = None
    outer: dict[str, Any]
    if "data" in request.form:  # legacy multipart: `data` JSON, file `attachment`
        raw: Any = request.form["data"]
        document = request.files.get("attachment") or next(iter(request.files.values()), None)
        outer = dict(request.form)
    else:
        try:
            outer = json.loads(request.body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CallbackError(f"mFax webhook body is neither JSON nor a form: {exc}") from exc
        if not isinstance(outer, dict):
            raise CallbackError("mFax webhook body is not a JSON object")
        raw = outer.get("data", outer)  # the bare fax object, or one under `data`
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise CallbackError(f"mFax webhook `data` is not JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise CallbackError("mFax webhook `data` is not a JSON object")
    # The pages name the events but show no field for them: take one wherever it is found.
    names = [outer.get(k) for k in ("event", "eventName", "type")]
    names.append(request.headers.get("x-webhook-event"))
    event = next((str(n) for n in names if isinstance(n, str) and n.startswith("fax")), "")
    return event, raw, document
