"""Dropbox Sign's fax wire format: records, status codes, callbacks, numbers.

What the official material shows, read leniently; the adapter (`bridge.providers.dropboxsign`)
decides what to do with it. Sources:
- hellosign/hellosign-openapi `openapi.yaml` (FaxResponse, FaxResponseTransmission,
  FaxSendRequest, EventCallbackRequest), `examples/json/Fax*.json`, `test_fixtures/Fax*.json`;
- hellosign/hellosign-openapi `examples/json/EventCallbackFax{Sent,Received,OnHold,Busy,NoAnswer,
  Disconnected,Blacklisted}.json` (newer than the openapi.yaml enum, which still lists no fax
  event): the seven fax events, each a `transmission` object with neither `fax_id` nor a status
  code, whose flags do not tell the outcome (`fax_sent` says `is_complete: false`, `fax_on_hold`
  `has_error: false`), so for these the event name is the outcome;
- hellosign/dropbox-sign-python `dropbox_sign/event_callback_helper.py` (the event_hash);
- developers.hellosign.com/api/reference/fax ("Fax Status Codes", "Fax Error Codes");
- help.dropbox.com "callback-event-example-dropbox-fax-api": the fax sample an account callback
  URL gets, event `transmission_disconnected` with a `transmission` object (the sign-request
  flags `is_complete`, `has_error`, and `files_url`).
A callback is read by its payload first (status code), then by the official event name, then by
its flags and the words of an unlisted event name.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from typing import Any

import phonenumbers

from bridge.errors import CallbackError
from bridge.models import CallbackRequest, FailureReason, JobStatus

REPLY_BODY = "Hello API Event Received"  # openapi.yaml `EventCallbackResponse`

Outcome = tuple[JobStatus, FailureReason | None, str]

# FaxResponseTransmission.status_code (openapi.yaml enum) and the reference page's tables; the
# page adds `on_hold` ("account is unconfirmed"), the enum does not list it: both are read.
STATUS_CODES: dict[str, Outcome] = {
    "transmitting": (JobStatus.SENDING, None, "Transmitting/sending"),
    "success": (JobStatus.DELIVERED, None, "Successfully sent"),
    "on_hold": (JobStatus.FAILED, FailureReason.ON_HOLD, "On hold: the account is unconfirmed"),
    "error_busy": (JobStatus.FAILED, FailureReason.BUSY, "Busy signal"),
    "error_no_answer": (JobStatus.FAILED, FailureReason.NO_ANSWER, "No answer"),
    "error_could_not_fax": (
        JobStatus.FAILED,
        FailureReason.UNKNOWN,
        "Unable to fax (usually a bad connection)",
    ),
    "error_disconnected": (
        JobStatus.FAILED,
        FailureReason.DISCONNECTED,
        "Line disconnected or unreachable",
    ),
    "error_bad_destination": (
        JobStatus.FAILED,
        FailureReason.BAD_NUMBER,
        "Bad destination (the number has been banned)",
    ),
    "error_unknown": (JobStatus.FAILED, FailureReason.UNKNOWN, "Unknown error"),
    # The reference page's "Fax Error Codes" table; the openapi.yaml enum lacks it.
    "error_file": (
        JobStatus.FAILED,
        FailureReason.FILE_ERROR,
        "Error processing the provided file",
    ),
}
# The fax events of hellosign-openapi examples/json/EventCallbackFax*.json. Their `transmission`
# carries no status code and flags that contradict the name, so the name is the outcome.
INBOUND_EVENT = "fax_received"  # EventCallbackFaxReceived.json
EVENTS: dict[str, Outcome] = {
    "fax_sent": (JobStatus.DELIVERED, None, "Fax sent"),
    "fax_on_hold": (JobStatus.FAILED, FailureReason.ON_HOLD, "On hold: the account is unconfirmed"),
    "fax_busy": (JobStatus.FAILED, FailureReason.BUSY, "Busy signal"),
    "fax_no_answer": (JobStatus.FAILED, FailureReason.NO_ANSWER, "No answer"),
    "fax_disconnected": (
        JobStatus.FAILED,
        FailureReason.DISCONNECTED,
        "Line disconnected or unreachable",
    ),
    "fax_blacklisted": (
        JobStatus.FAILED,
        FailureReason.BLOCKED_DESTINATION,
        "The number is blacklisted",
    ),
}
# Words of an event name that say why a fax failed, for a callback whose payload says only that
# it failed (`has_error`), like the official `transmission_disconnected` sample.
_FAILURE_WORDS: list[tuple[re.Pattern[str], FailureReason]] = [
    (re.compile(r"busy"), FailureReason.BUSY),
    (re.compile(r"no[_\s-]?answer"), FailureReason.NO_ANSWER),
    (re.compile(r"disconnect"), FailureReason.DISCONNECTED),
    (re.compile(r"bad[_\s-]?destination|invalid|unallocated"), FailureReason.BAD_NUMBER),
    (re.compile(r"blacklist|block"), FailureReason.BLOCKED_DESTINATION),
    (re.compile(r"hold"), FailureReason.ON_HOLD),
    (re.compile(r"file|convert"), FailureReason.FILE_ERROR),
]
_INBOUND_WORDS = re.compile(r"receiv|inbound|incoming")


def status_outcome(code: str) -> Outcome | None:
    """A transmission status code in the common model; an unlisted `error_*` is a failure."""
    known = STATUS_CODES.get(code)
    if known is not None:
        return known
    if code.startswith("error"):
        return JobStatus.FAILED, FailureReason.UNKNOWN, code
    return None


def event_outcome(event_type: str) -> Outcome | None:
    """The outcome an official fax event name stands for (EVENTS), None for any other name."""
    return EVENTS.get(event_type.strip().lower())


def failure_from_words(event_type: str) -> FailureReason:
    name = event_type.lower()
    return next((r for pattern, r in _FAILURE_WORDS if pattern.search(name)), FailureReason.UNKNOWN)


def event_hash(api_key: str, event_time: str, event_type: str) -> str:
    """hex HMAC-SHA256 of `event_time + event_type` under the API key (EventCallbackHelper)."""
    message = f"{event_time}{event_type}".encode()
    return hmac.new(api_key.encode(), message, hashlib.sha256).hexdigest()


def callback_payload(request: CallbackRequest) -> dict[str, Any]:
    """The `json` form field (callbacks-tag-description.md: multipart, field `json`), or a raw
    JSON body (lenient)."""
    raw = request.form.get("json")
    if raw is None and request.content_type.startswith("application/json"):
        raw = request.body.decode("utf-8", "replace")
    if raw is None:
        raise CallbackError("Dropbox Sign callback without its `json` field")
    try:
        payload = json.loads(raw)
    except ValueError as exc:
        raise CallbackError(f"unreadable Dropbox Sign callback: {exc}") from exc
    if isinstance(payload, dict) and isinstance(payload.get("Transaction"), dict):
        # developers.hellosign.com/docs/fax/v3migration: DefaultOutboundFaxCallbackUrl and
        # DefaultInboundFaxCallbackUrl keep getting the v1 format, which carries no event_hash.
        raise CallbackError(
            "a Dropbox Fax v1 callback (`Transaction`, no event_hash) reached the Dropbox Sign "
            "v3 URL: clear the account's DefaultOutboundFaxCallbackUrl/"
            "DefaultInboundFaxCallbackUrl or point them at a hellofax provider, and set this URL "
            "as the fax API callback URL on the API settings page"
        )
    if not isinstance(payload, dict) or not isinstance(payload.get("event"), dict):
        raise CallbackError("Dropbox Sign callback without an `event` object")
    return payload


@dataclass(frozen=True)
class Transmission:
    """The fax part of a record or callback: whichever of `fax` / `transmission` it carries."""

    record: dict[str, Any]
    key: str  # "fax" or "transmission"

    @property
    def fax_id(self) -> str | None:
        """`fax_id` first (FaxResponse), then `transmission_id`, then the last segment of
        `final_copy_uri`, and only then that of `files_url`. test_fixtures/FaxResponse.json has
        fax_id = transmission_id = the final_copy_uri segment (c2e9…) but files_url …/2b38…;
        the fax events (EventCallbackFax*.json) carry no fax_id, only the two URLs."""
        for key in ("fax_id", "transmission_id"):
            value = self.record.get(key)
            if isinstance(value, str | int) and str(value).strip():
                return str(value).strip()
        for key in ("final_copy_uri", "files_url"):
            segment = _last_segment(self.record.get(key))
            if segment:
                return segment
        return None

    @property
    def legs(self) -> list[dict[str, Any]]:
        legs = self.record.get("transmissions")
        return [leg for leg in legs if isinstance(leg, dict)] if isinstance(legs, list) else []

    @property
    def status_code(self) -> str | None:
        """The (first) leg's `status_code`, or one on the object itself."""
        for source in [*self.legs[:1], self.record]:
            code = source.get("status_code")
            if isinstance(code, str) and code:
                return code
        return None

    def numbers(self) -> tuple[str, str]:
        """(caller, called) in E.164, "" where unknown: the first of `sender`/`from` and of
        `recipient`/`to` that is a phone number (an e-mail address never is)."""
        first = self.legs[0] if self.legs else {}
        record = self.record
        caller = _first_number(first.get("sender"), record.get("from"), record.get("sender"))
        called = _first_number(first.get("recipient"), record.get("recipient"), record.get("to"))
        return caller, called

    def direction(self) -> str | None:
        """ "inbound"/"outbound" where the object says so itself; None where it does not."""
        value = self.record.get("direction")
        if isinstance(value, str) and value.lower() in ("inbound", "outbound"):
            return value.lower()
        flag = self.record.get("is_inbound", self.record.get("IsInbound"))
        if isinstance(flag, bool):
            return "inbound" if flag else "outbound"
        return None


def _last_segment(url: Any) -> str | None:
    if not isinstance(url, str) or not url.strip().rstrip("/"):
        return None
    return url.strip().split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1] or None


def transmission_of(payload: dict[str, Any]) -> Transmission | None:
    for key in ("fax", "transmission"):
        record = payload.get(key)
        if isinstance(record, dict):
            return Transmission(record, key)
    return None


def names_inbound(event_type: str) -> bool:
    return bool(_INBOUND_WORDS.search(event_type.lower()))


def e164(value: Any) -> str:
    """A phone number in E.164, or "" when `value` is no number (an e-mail address: FaxResponse
    `sender` is "Fax Sender Email"). Dropbox Sign writes `16690000001` (examples) or E.164."""
    text = str(value or "").strip()
    if not text or "@" in text:
        return ""
    digits = re.sub(r"\D", "", text)
    if not digits or not re.fullmatch(r"\+?[\d\s().-]+", text):
        return ""
    for candidate, region in ((f"+{digits}", None), (digits, "US")):
        try:
            parsed = phonenumbers.parse(candidate, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_possible_number(parsed):
            return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    return f"+{digits}"


def _first_number(*values: Any) -> str:
    return next((number for number in map(e164, values) if number), "")


def answer_json(body: Any, key: str) -> dict[str, Any] | None:
    value = body.get(key) if isinstance(body, dict) else None
    return value if isinstance(value, dict) else None
