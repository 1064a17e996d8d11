"""Telnyx Programmable Fax v2 on the wire: statuses, failure reasons, webhooks, signatures.

What Telnyx publishes, read leniently; the adapter (`bridge.providers.telnyx`) decides what to
do with it. Sources: team-telnyx/telnyx-python `types/fax.py` (the fax object, its statuses and
`failure_reason` values), `types/fax_{queued,media_processed,sending_started,delivered,
failed}.py` (the webhook envelopes), `lib/webhook_verification.py` (the signature rule); the
developers.telnyx.com pages "Receiving Webhooks", "Receive a Fax via API" (inbound events and
`fax.received` with `media_url`) and api-reference/callbacks/fax-* (headers).
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from datetime import datetime
from typing import Any

import httpx
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from bridge.errors import CallbackAuthError, CallbackError, PermanentProviderError
from bridge.models import CallbackRequest, FailureReason, JobStatus
from bridge.numbers import to_e164

SIGNATURE_HEADER = "telnyx-signature-ed25519"
TIMESTAMP_HEADER = "telnyx-timestamp"
# telnyx-python lib/webhook_verification.py: TIMESTAMP_TOLERANCE_SECONDS = 300, either way.
TIMESTAMP_TOLERANCE_S = 300

# types/fax.py `status`; the outbound ones. "Receiving Webhooks" also writes the status of
# fax.sending.started as `sending.started` where the callback page shows `sending`: both count.
_OUTBOUND_STATUSES = {
    "queued": JobStatus.SUBMITTED,
    "media.processed": JobStatus.SUBMITTED,
    "originated": JobStatus.SENDING,
    "sending": JobStatus.SENDING,
    "sending.started": JobStatus.SENDING,
    "delivered": JobStatus.DELIVERED,
    "failed": JobStatus.FAILED,
}
_OUTBOUND_EVENTS = {
    "fax.queued": JobStatus.SUBMITTED,
    "fax.media.processed": JobStatus.SUBMITTED,
    "fax.sending.started": JobStatus.SENDING,
    "fax.delivered": JobStatus.DELIVERED,
    "fax.failed": JobStatus.FAILED,
}
# The event each status is announced by, so a poll and a webhook name the same code.
_EVENT_OF_STATUS = {
    status: event
    for event, status in (
        ("fax.queued", "queued"),
        ("fax.media.processed", "media.processed"),
        ("fax.sending.started", "sending"),
        ("fax.sending.started", "sending.started"),
        ("fax.delivered", "delivered"),
        ("fax.failed", "failed"),
    )
}
# Telnyx's `failure_reason` values (types/fax.py, the "Receiving Webhooks" list) in our words.
# Telnyx explains none of them beyond the name, so each is read by what its name says.
FAILURE_REASONS: dict[str, FailureReason] = {
    "user_busy": FailureReason.BUSY,
    "receiver_no_answer": FailureReason.NO_ANSWER,
    # No answer to the call (SIP timeout), as its name says; not a line that answered.
    "receiver_no_response": FailureReason.NO_ANSWER,
    "receiver_invalid_number_format": FailureReason.BAD_NUMBER,
    "receiver_unallocated_number": FailureReason.BAD_NUMBER,
    "destination_invalid": FailureReason.BAD_NUMBER,
    "destination_unreachable": FailureReason.BAD_NUMBER,
    "receiver_incompatible_destination": FailureReason.BAD_NUMBER,  # not a fax machine
    "receiver_call_dropped": FailureReason.DISCONNECTED,
    "sender_call_dropped": FailureReason.DISCONNECTED,
    "carrier_lost": FailureReason.DISCONNECTED,
    "fax_signaling_error": FailureReason.DISCONNECTED,
    "receiver_communication_error": FailureReason.DISCONNECTED,
    "sender_communication_error": FailureReason.DISCONNECTED,
    "invalid_ecm_response_from_receiver": FailureReason.DISCONNECTED,
    "receiver_recovery_on_timer_expire": FailureReason.DISCONNECTED,
    "fax_initial_communication_timeout": FailureReason.DISCONNECTED,
    "receiver_decline": FailureReason.BLOCKED_DESTINATION,  # the called side refused the call
    "destination_not_in_service_plan": FailureReason.BLOCKED_DESTINATION,
    "destination_not_in_countries_whitelist": FailureReason.BLOCKED_DESTINATION,
    "file_format_invalid": FailureReason.FILE_ERROR,
    "file_download_failed": FailureReason.FILE_ERROR,
    "file_size_limit_exceeded": FailureReason.FILE_ERROR,
    "page_count_limit_exceeded": FailureReason.FILE_ERROR,
    "media_processing_exception": FailureReason.FILE_ERROR,
    "account_disabled": FailureReason.ON_HOLD,
    "no_outbound_profile": FailureReason.ON_HOLD,
    "outbound_profile_daily_spend_limit_exceeded": FailureReason.ON_HOLD,
    "unverified_origination_number": FailureReason.REJECTED,
    "unverified_destination_not_allowed": FailureReason.REJECTED,
    "user_channel_limit_exceeded": FailureReason.PROVIDER_ERROR,
    "outbound_profile_channel_limit_exceeded": FailureReason.PROVIDER_ERROR,
    "connection_channel_limit_exceeded": FailureReason.PROVIDER_ERROR,
    "service_unavailable": FailureReason.PROVIDER_ERROR,
}
# A fax stopped by `POST /faxes/{id}/actions/cancel` ends `failed` with this reason.
CANCELLED_REASON = "sender_canceled"
# Inbound progress before the PDF exists ("Receive a Fax via API"): nothing to mail yet.
INBOUND_PROGRESS_EVENTS = frozenset({"fax.receiving.started", "fax.media.processing.started"})


def failure_reason(fax: dict[str, Any]) -> FailureReason:
    return FAILURE_REASONS.get(str(fax.get("failure_reason") or ""), FailureReason.UNKNOWN)


def classify(fax: dict[str, Any], event: str = "") -> JobStatus | None:
    """The common status of an outbound fax object or webhook payload; None when neither its
    `status` nor the event name is one of the documented outbound ones."""
    status = _OUTBOUND_STATUSES.get(str(fax.get("status") or "").strip().lower())
    if status is None:
        status = _OUTBOUND_EVENTS.get(event)
    if status is JobStatus.FAILED and fax.get("failure_reason") == CANCELLED_REASON:
        return JobStatus.CANCELLED
    return status


def progress_code(fax: dict[str, Any], event: str = "") -> str:
    """The code a job keeps for news that is no failure: the event name, which a fax object
    polled without one is given from its status (`originated` has no event of its own)."""
    status = str(fax.get("status") or "").strip().lower()
    return event or _EVENT_OF_STATUS.get(status) or status or "unknown"


def client_state(text: str) -> str:
    """`client_state` "must be a valid Base-64 encoded string" (fax_create_params.py)."""
    return base64.b64encode(text.encode()).decode()


def decoded_state(value: Any) -> str | None:
    """What we put in `client_state`, or None when it is absent or not ours to read."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return base64.b64decode(value, validate=True).decode()
    except (binascii.Error, ValueError):
        return None


def e164(value: Any) -> str:
    """A number as Telnyx writes it, in E.164. Its numbers are E.164, but the 2021 release
    notes show `" 13122010119"` (a `+` decoded to a space on the way): `to_e164` puts it back.
    SIP URIs and withheld numbers come back as given; "" for no number."""
    return to_e164(str(value or ""))


def parse_time(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def answer_json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return {}


def fax_record(response: httpx.Response, name: str) -> dict[str, Any]:
    """The fax object of `{"data": {...}}` (send, retrieve), refused if it names no fax."""
    body = answer_json(response)
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, dict) or not data.get("id"):
        raise PermanentProviderError(f"{name}: Telnyx's answer names no fax id: {body!r:.200}")
    return data


def error_text(body: Any) -> str | None:
    """Telnyx errors are `{"errors": [{"code", "title", "detail", "source"}]}`: "title: detail"
    of each, or None for any other shape."""
    errors = body.get("errors") if isinstance(body, dict) else None
    if not isinstance(errors, list):
        return None
    texts = []
    for error in errors:
        if not isinstance(error, dict):
            continue
        title, detail = str(error.get("title") or ""), str(error.get("detail") or "")
        texts.append(
            f"{title}: {detail}" if title and detail and title != detail else title or detail
        )
    return "; ".join(t for t in texts if t) or None


def verify_signature(
    request: CallbackRequest, public_key: str, *, now: float | None = None
) -> None:
    """Telnyx's webhook signature: base64 Ed25519 over `"{telnyx-timestamp}|{raw body}"`,
    checked with the account's base64 public key; a timestamp more than 300 s from now either
    way is refused (a replay), as the official SDKs do."""
    signature = request.headers.get(SIGNATURE_HEADER)
    stamp = request.headers.get(TIMESTAMP_HEADER)
    if not signature or not stamp:
        raise CallbackAuthError(f"Telnyx webhook without {SIGNATURE_HEADER} / {TIMESTAMP_HEADER}")
    try:
        sent_at = int(stamp.strip())
    except ValueError as exc:
        raise CallbackAuthError(f"Telnyx webhook timestamp {stamp!r} is not a number") from exc
    skew = abs((time.time() if now is None else now) - sent_at)
    if skew > TIMESTAMP_TOLERANCE_S:
        raise CallbackAuthError(
            f"Telnyx webhook timestamp is {skew:.0f} s away from now (at most "
            f"{TIMESTAMP_TOLERANCE_S} s): a replayed or delayed webhook"
        )
    try:
        raw_key = base64.b64decode(public_key.strip(), validate=True)
        key = Ed25519PublicKey.from_public_bytes(raw_key)
    except (binascii.Error, ValueError) as exc:
        raise CallbackAuthError(
            "the configured Telnyx public_key is not a base64 Ed25519 key (32 bytes)"
        ) from exc
    try:
        raw = base64.b64decode(signature, validate=True)
        key.verify(raw, stamp.encode() + b"|" + request.body)
    except (binascii.Error, ValueError, InvalidSignature) as exc:
        raise CallbackAuthError("Telnyx webhook signature does not verify") from exc


def decode_webhook(request: CallbackRequest) -> tuple[str, dict[str, Any], datetime | None]:
    """(event type, payload, when it occurred) of `{"data": {"id", "event_type",
    "occurred_at", "payload"}, "meta"}`."""
    try:
        body = json.loads(request.body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CallbackError(f"Telnyx webhook body is not JSON: {exc}") from exc
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, dict):
        raise CallbackError("Telnyx webhook body has no `data` object")
    payload = data.get("payload")
    if not isinstance(payload, dict):
        payload = {}
    return str(data.get("event_type") or ""), payload, parse_time(data.get("occurred_at"))
