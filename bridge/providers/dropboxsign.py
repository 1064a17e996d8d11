"""Dropbox Sign (formerly HelloSign) fax API v3 (seed 003, PROVIDERS.md "Dropbox Sign").

The API renders its own cover page from `cover_page_to`/`cover_page_from`/`cover_page_message`,
so with a cover note the bare document goes out. Our job id travels in `title`
(`faxbridge <job id>`), which every fax record and callback echoes, so callbacks link back.

Callbacks are the one place this provider signs: `event_hash` is an HMAC-SHA256 of
`event_time + event_type` under the API key, so no callback token is needed, and the account
callback URL can only be set in the web app (`setup` says how). The sender expects the exact
reply body `Hello API Event Received`, or it retries.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import re
from typing import Any

import httpx

from bridge.config import DropboxSignConfig
from bridge.errors import (
    CallbackAuthError,
    CallbackError,
    PermanentProviderError,
    TransientProviderError,
)
from bridge.models import (
    CallbackRequest,
    CallbackResult,
    FailureReason,
    InboundFax,
    JobStatus,
    OutboundFax,
    SendResult,
    StatusUpdate,
)
from bridge.providers.base import transmitted_pdf
from bridge.providers.http import HTTPProvider
from bridge.providers.values import digits_only, from_epoch

log = logging.getLogger(__name__)

REPLY_BODY = "Hello API Event Received"
TITLE_PREFIX = "faxbridge "
_TITLE = re.compile(rf"^{TITLE_PREFIX}(\S+)$")

Outcome = tuple[JobStatus, FailureReason | None, str]

# `transmissions[].status_code` of a fax record.
STATUS_CODES: dict[str, Outcome] = {
    "transmitting": (JobStatus.SENDING, None, "Transmitting"),
    "success": (JobStatus.DELIVERED, None, "Successfully sent"),
    "on_hold": (JobStatus.FAILED, FailureReason.ON_HOLD, "On hold: the account is unconfirmed"),
    "error_busy": (JobStatus.FAILED, FailureReason.BUSY, "Busy signal"),
    "error_no_answer": (JobStatus.FAILED, FailureReason.NO_ANSWER, "No answer"),
    "error_could_not_fax": (
        JobStatus.FAILED,
        FailureReason.UNKNOWN,
        "Unable to fax (usually due to a bad connection)",
    ),
    "error_disconnected": (
        JobStatus.FAILED,
        FailureReason.DISCONNECTED,
        "Line disconnected or unreachable",
    ),
    "error_bad_destination": (
        JobStatus.FAILED,
        FailureReason.BAD_NUMBER,
        "Bad destination (the line has been banned)",
    ),
    "error_unknown": (JobStatus.FAILED, FailureReason.UNKNOWN, "Unknown error"),
    "error_file": (JobStatus.FAILED, FailureReason.FILE_ERROR, "Error processing the file"),
}

# `event.event_type` of a callback; `fax_received` is the inbound one.
EVENTS: dict[str, Outcome] = {
    "fax_sent": (JobStatus.DELIVERED, None, "Fax sent"),
    "fax_on_hold": (JobStatus.FAILED, FailureReason.ON_HOLD, "Fax on hold"),
    "fax_busy": (JobStatus.FAILED, FailureReason.BUSY, "Busy signal"),
    "fax_no_answer": (JobStatus.FAILED, FailureReason.NO_ANSWER, "No answer"),
    "fax_disconnected": (JobStatus.FAILED, FailureReason.DISCONNECTED, "Line disconnected"),
    "fax_blacklisted": (
        JobStatus.FAILED,
        FailureReason.BLOCKED_DESTINATION,
        "The destination is blacklisted",
    ),
}
INBOUND_EVENT = "fax_received"


def status_outcome(code: str) -> Outcome:
    """A status code in the common model; unknown `error_*` codes are failures."""
    known = STATUS_CODES.get(code)
    if known is not None:
        return known
    if code.startswith("error"):
        return JobStatus.FAILED, FailureReason.UNKNOWN, code
    return JobStatus.SUBMITTED, None, code


def event_hash(api_key: str, event_time: str, event_type: str) -> str:
    """The signature Dropbox Sign puts on every callback."""
    message = (event_time + event_type).encode()
    return hmac.new(api_key.encode(), message, hashlib.sha256).hexdigest()


def job_id_from_title(title: Any) -> str | None:
    match = _TITLE.match(title) if isinstance(title, str) else None
    return match.group(1) if match else None


def fax_id_from_files_url(url: Any) -> str:
    if not isinstance(url, str) or not url.rstrip("/"):
        raise ValueError("no files_url to take the fax id from")
    return url.rstrip("/").rsplit("/", 1)[-1]


def e164(value: Any) -> str:
    """Numbers come back as bare digits (`16690000001`); the bridge speaks E.164."""
    text = str(value or "").strip()
    digits = "".join(ch for ch in text if ch.isdigit())
    if text.startswith("+") or not digits or not re.fullmatch(r"[\d\s().-]+", text):
        return text
    return f"+1{digits}" if len(digits) == 10 else f"+{digits}"


class DropboxSignProvider(HTTPProvider[DropboxSignConfig]):
    type = "dropboxsign"
    default_base_url = "https://api.hellosign.com/v3"

    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        kwargs.setdefault("auth", httpx.BasicAuth(self.config.api_key, ""))
        return await super().request(method, path, **kwargs)

    # -- sending -------------------------------------------------------------------------
    async def send(self, fax: OutboundFax) -> SendResult:
        fields = {
            "recipient": digits_only(fax.to),
            "title": f"{TITLE_PREFIX}{fax.job_id}",
            "test_mode": "1" if self.config.test_mode else "0",
        }
        if fax.caller_id:
            fields["sender"] = digits_only(fax.caller_id)
        if fax.cover is not None:
            # Dropbox Sign draws the cover page itself; our own rendering stays out.
            note = fax.cover
            fields["cover_page_to"] = note.to_name or note.to_number
            fields["cover_page_from"] = note.from_name or note.from_number
            fields["cover_page_message"] = "\n\n".join(
                part for part in (note.subject, note.notes) if part
            )
            document = await asyncio.to_thread(fax.document.read_bytes)
        else:
            document = await asyncio.to_thread(transmitted_pdf, fax)
        files = [("files[]", (f"{fax.job_id}.pdf", document, "application/pdf"))]
        response = await self.request("POST", "/fax/send", data=fields, files=files)
        try:
            record = response.json()["fax"]
            fax_id = str(record["fax_id"])
        except (ValueError, KeyError, TypeError) as exc:
            raise PermanentProviderError(
                f"{self.name}: unexpected answer to a send: {response.text[:200]}"
            ) from exc
        update = self._record_update(fax_id, record)
        log.info("%s: job %s accepted as fax %s", self.name, fax.job_id, fax_id)
        status = update.status if update.status is JobStatus.SENDING else JobStatus.SUBMITTED
        return SendResult(fax_id, status=status, raw_status=update.provider_code)

    async def status(
        self, provider_fax_id: str, *, job_id: str | None = None
    ) -> StatusUpdate | None:
        record = await self._fax_record(provider_fax_id)
        return None if record is None else self._record_update(provider_fax_id, record)

    async def _fax_record(self, fax_id: str) -> dict[str, Any] | None:
        try:
            response = await self.request("GET", f"/fax/{fax_id}")
        except PermanentProviderError as exc:
            if exc.code == "404":
                return None
            raise
        try:
            record = response.json()["fax"]
        except (ValueError, KeyError, TypeError) as exc:
            raise TransientProviderError(
                f"{self.name}: unreadable fax record: {response.text[:200]}"
            ) from exc
        if not isinstance(record, dict):
            raise TransientProviderError(f"{self.name}: unreadable fax record")
        return record

    def _record_update(self, fax_id: str, record: dict[str, Any]) -> StatusUpdate:
        """A fax record in the common model, from its (first) transmission's status code."""
        transmissions = record.get("transmissions") or [{}]
        first = transmissions[0] if isinstance(transmissions[0], dict) else {}
        code = str(first.get("status_code") or "transmitting")
        status, reason, text = status_outcome(code)
        return StatusUpdate(
            provider_fax_id=fax_id,
            status=status,
            reason=reason,
            provider_code=code,
            provider_text=text,
            job_id=job_id_from_title(record.get("title")),
            at=from_epoch(first.get("sent_at")) or from_epoch(record.get("created_at")),
        )

    # -- callbacks -----------------------------------------------------------------------
    async def parse_callback(self, request: CallbackRequest) -> CallbackResult:
        payload = _callback_payload(request)
        event = payload.get("event")
        if not isinstance(event, dict):
            raise CallbackError("Dropbox Sign callback without an `event`")
        event_time = str(event.get("event_time") or "")
        event_type = str(event.get("event_type") or "")
        given = str(event.get("event_hash") or "")
        expected = event_hash(self.config.api_key, event_time, event_type)
        if not given or not hmac.compare_digest(expected, given.lower()):
            raise CallbackAuthError("Dropbox Sign callback with a missing or wrong event_hash")
        transmission = payload.get("transmission")
        if event_type == INBOUND_EVENT:
            return CallbackResult(
                inbound=[await self._inbound(transmission, event_time)], reply_body=REPLY_BODY
            )
        outcome = EVENTS.get(event_type)
        if outcome is None:  # callback_test, signature events: acknowledged, nothing to do
            log.debug("%s: ignoring callback event %r", self.name, event_type)
            return CallbackResult(reply_body=REPLY_BODY)
        if not isinstance(transmission, dict):
            raise CallbackError(f"Dropbox Sign {event_type} callback without a transmission")
        try:
            fax_id = fax_id_from_files_url(transmission.get("files_url"))
        except ValueError as exc:
            raise CallbackError(f"Dropbox Sign {event_type} callback: {exc}") from exc
        status, reason, text = outcome
        update = StatusUpdate(
            provider_fax_id=fax_id,
            status=status,
            reason=reason,
            provider_code=event_type,
            provider_text=text,
            job_id=job_id_from_title(transmission.get("title")),
            at=from_epoch(event_time),
        )
        return CallbackResult(updates=[update], reply_body=REPLY_BODY)

    async def _inbound(self, transmission: Any, event_time: str) -> InboundFax:
        if not isinstance(transmission, dict):
            raise CallbackError("Dropbox Sign fax_received callback without a transmission")
        try:
            fax_id = fax_id_from_files_url(transmission.get("files_url"))
        except ValueError as exc:
            raise CallbackError(f"Dropbox Sign fax_received callback: {exc}") from exc
        sender, recipient = _numbers(transmission)
        if not (sender and recipient):
            # The callback names no numbers; the fax record does.
            try:
                record = await self._fax_record(fax_id)
            except (TransientProviderError, PermanentProviderError) as exc:
                raise CallbackError(f"cannot look up received fax {fax_id}: {exc}") from exc
            if record is None:
                raise CallbackError(f"received fax {fax_id} is unknown to Dropbox Sign")
            sender, recipient = _numbers(record)
        return InboundFax(
            provider_fax_id=fax_id,
            from_number=e164(sender),
            to_number=e164(recipient),
            received=from_epoch(event_time),
            raw=dict(transmission),
        )

    async def fetch_document(self, fax: InboundFax) -> bytes:
        if fax.document is not None:
            return fax.document
        response = await self.request("GET", f"/fax/files/{fax.provider_fax_id}")
        return response.content

    # -- account -------------------------------------------------------------------------
    async def check(self) -> str:
        response = await self.request("GET", "/fax/list", params={"page": 1, "page_size": 1})
        try:
            total = response.json()["list_info"]["num_results"]
        except (ValueError, KeyError, TypeError):
            total = "?"
        return f"Dropbox Sign API key accepted ({total} faxes on the account)"

    async def setup(self) -> list[str]:
        return [
            "Dropbox Sign has no API call to set the account callback URL; set it by hand:",
            "  1. Sign in at https://app.hellosign.com and open Settings → API.",
            f"  2. Set 'Account callback' to {self.callback_url()}",
            "  3. Press 'Test': the bridge answers 'Hello API Event Received'.",
            "Callbacks are verified by their event_hash (HMAC with the API key); "
            "no callback_token is needed.",
        ]


def _numbers(record: dict[str, Any]) -> tuple[str, str]:
    """(from, to) of a fax record or callback transmission, in any spelling seen."""
    transmissions = record.get("transmissions")
    first = transmissions[0] if isinstance(transmissions, list) and transmissions else {}
    first = first if isinstance(first, dict) else {}
    sender = first.get("sender") or record.get("sender") or record.get("from") or ""
    recipient = first.get("recipient") or record.get("recipient") or record.get("to") or ""
    return str(sender), str(recipient)


def _callback_payload(request: CallbackRequest) -> dict[str, Any]:
    """The `json` form field (multipart, as sent) or a raw JSON body (lenient)."""
    raw = request.form.get("json")
    if raw is None and request.content_type.startswith("application/json"):
        raw = request.body.decode("utf-8", "replace")
    if raw is None:
        raise CallbackError("Dropbox Sign callback without its `json` field")
    try:
        payload = json.loads(raw)
    except ValueError as exc:
        raise CallbackError(f"unreadable Dropbox Sign callback: {exc}") from exc
    if not isinstance(payload, dict):
        raise CallbackError("Dropbox Sign callback is not a JSON object")
    return payload
