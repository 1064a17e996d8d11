"""mFax / Documo API v1 (seed 004; facts in PROVIDERS.md).

Documo authenticates with `Authorization: Basic <API key>` (the raw key, not base64 of
user:password). A fax is one multipart `POST /faxes` with the cover page as fields Documo
renders itself; the answer is the fax object, whose `messageId` every later call and webhook
names. Webhooks come in two shapes: the current JSON one (the fax object plus an event name
such as `fax.v1.outbound.complete`) and the legacy form (a `data` field holding the JSON, and
the received fax as an `attachment` file part). Neither is signed, so the bridge's token in the
URL authenticates them. Documo publishes no table of failure codes: reasons are read from the
words of `errorInfo`/`resultInfo`, which is the best it offers.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from datetime import datetime
from typing import Any

import httpx

from bridge.config import MFaxConfig
from bridge.errors import CallbackError, PermanentProviderError
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
from bridge.providers.values import as_int

log = logging.getLogger(__name__)

# The custom field (`cf`) that carries our job id; Documo echoes `cf` in every fax object.
JOB_FIELD = "faxbridgeJobId"
# Documo's documented field limits; longer values are refused, so we shorten them.
_LIMITS = {"recipientName": 40, "senderName": 40, "subject": 55, "notes": 4000}

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
# SIP causes sometimes surface as result codes when the text says nothing useful.
_SIP_CODES = {
    "486": FailureReason.BUSY,
    "600": FailureReason.BUSY,
    "408": FailureReason.NO_ANSWER,
    "480": FailureReason.NO_ANSWER,
    "487": FailureReason.NO_ANSWER,
    "404": FailureReason.BAD_NUMBER,
    "484": FailureReason.BAD_NUMBER,
    "604": FailureReason.BAD_NUMBER,
}


def failure_reason(fax: dict[str, Any]) -> FailureReason:
    """Why a fax failed, from the words (then the codes) Documo gave."""
    text = " ".join(str(fax.get(k) or "") for k in ("errorInfo", "resultInfo")).lower()
    for reason, pattern in _REASON_WORDS:
        if pattern.search(text):
            return reason
    for key in ("errorCode", "resultCode"):
        code = str(fax.get(key) or "")
        if code in _SIP_CODES:
            return _SIP_CODES[code]
    return FailureReason.UNKNOWN


def classify(fax: dict[str, Any], event: str = "") -> tuple[JobStatus, FailureReason | None]:
    raw = str(fax.get("status") or "").lower()
    status = _STATUSES.get(raw)
    if status is None:  # no status of its own: the event name still says how it ended
        status = (
            JobStatus.DELIVERED
            if event.endswith(".succeed")
            else JobStatus.FAILED
            if event.endswith(".failed")
            else JobStatus.SUBMITTED
        )
    return status, failure_reason(fax) if status is JobStatus.FAILED else None


def job_id_of(fax: dict[str, Any]) -> str | None:
    custom = fax.get("cf")
    if isinstance(custom, str):
        try:
            custom = json.loads(custom)
        except json.JSONDecodeError:
            return None
    value = custom.get(JOB_FIELD) if isinstance(custom, dict) else None
    return str(value) if value else None


def caller_id_field(number: str | None) -> str | None:
    """Documo's `callerId` takes at most 10 characters: a NANP number without its `+1`."""
    digits = re.sub(r"\D", "", number or "")
    if len(digits) == 11 and digits.startswith("1"):
        digits = digits[1:]
    return digits if 0 < len(digits) <= 10 else None


def _e164(value: Any) -> str:
    """Documo writes numbers as `+19206505920` or as ten national digits `5094570000`."""
    text = str(value or "").strip()
    digits = re.sub(r"\D", "", text)
    if not digits or text.startswith("+"):
        return f"+{digits}" if digits else text
    if len(digits) == 10:
        return f"+1{digits}"
    return f"+{digits}" if len(digits) == 11 and digits.startswith("1") else digits


def _time(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return None


class MFaxProvider(HTTPProvider[MFaxConfig]):
    type = "mfax"
    default_base_url = "https://api.documo.com/v1"

    def _headers(self, accept: str = "application/json") -> dict[str, str]:
        return {"Authorization": f"Basic {self.config.api_key}", "Accept": accept}

    # -- sending -------------------------------------------------------------------------
    async def send(self, fax: OutboundFax) -> SendResult:
        # Native cover page (`coverPage` + its fields): the document goes without ours.
        if fax.cover is None and fax.cover_pdf is not None:
            pdf = await asyncio.to_thread(transmitted_pdf, fax)
        else:
            pdf = await asyncio.to_thread(fax.document.read_bytes)
        fields = {
            "faxNumber": fax.to,
            "coverPage": "true" if fax.cover is not None else "false",
            "cf": json.dumps({JOB_FIELD: fax.job_id}),
        }
        if fax.cover is not None:
            cover = {
                "recipientName": fax.cover.to_name,
                "senderName": fax.cover.from_name,
                "subject": fax.cover.subject,
                "notes": fax.cover.notes,
            }
            fields |= {k: v[: _LIMITS[k]] for k, v in cover.items() if v}
        if caller_id := caller_id_field(fax.caller_id):
            fields["callerId"] = caller_id
        elif fax.caller_id:
            log.warning(
                "%s: caller ID %s does not fit Documo's 10 digits; the account default is used",
                self.name,
                fax.caller_id,
            )
        response = await self.request(
            "POST",
            "/faxes",
            headers=self._headers(),
            data=fields,
            files={"attachments": (f"{fax.job_id}.pdf", pdf, "application/pdf")},
        )
        body = _fax_object(_answer(response), self.name)
        status, _ = classify(body)
        if status in (JobStatus.FAILED, JobStatus.CANCELLED):
            text = body.get("errorInfo") or body.get("resultInfo") or body.get("status")
            raise PermanentProviderError(f"{self.name}: fax refused: {text}", code=_code(body))
        log.info("%s: job %s accepted as fax %s", self.name, fax.job_id, body["messageId"])
        return SendResult(str(body["messageId"]), status, raw_status=str(body.get("status")))

    # -- status --------------------------------------------------------------------------
    async def status(
        self, provider_fax_id: str, *, job_id: str | None = None
    ) -> StatusUpdate | None:
        try:
            response = await self.request(
                "GET", f"/fax/{provider_fax_id}/info", headers=self._headers()
            )
        except PermanentProviderError as exc:
            if exc.code == "404":
                return None
            raise
        return self._update(_fax_object(_answer(response), self.name))

    def _update(self, fax: dict[str, Any], event: str = "") -> StatusUpdate:
        status, reason = classify(fax, event)
        text = fax.get("errorInfo") or fax.get("resultInfo")
        if status is JobStatus.FAILED and str(text).upper() == "OK":
            text = None  # the `resultInfo` a fax is created with, not why it failed
        return StatusUpdate(
            provider_fax_id=str(fax["messageId"]),
            status=status,
            reason=reason,
            provider_code=_code(fax) if status is JobStatus.FAILED else _raw(fax, event),
            provider_text=str(text) if text else None,
            pages=as_int(fax.get("pagesCount")),
            job_id=job_id_of(fax),
            at=_time(fax.get("resolvedDate") or fax.get("createdAt")),
        )

    # -- callbacks -----------------------------------------------------------------------
    async def parse_callback(self, request: CallbackRequest) -> CallbackResult:
        self.verify_callback_token(request)
        event, fax, document = _webhook(request)
        direction = str(fax.get("direction") or "").lower()
        if direction == "inbound" or (not direction and ".inbound." in event):
            status, _ = classify(fax, event)
            if status is not JobStatus.DELIVERED:  # nothing arrived that could be mailed
                log.info("%s: inbound fax %s ended %s", self.name, fax["messageId"], status)
                return CallbackResult()
            return CallbackResult(inbound=[self._inbound(fax, document)])
        return CallbackResult(updates=[self._update(fax, event)])

    def _inbound(self, fax: dict[str, Any], document: bytes | None) -> InboundFax:
        to_keys = ("toNumber", "recipientFax", "faxReceiverCsid", "faxNumber")
        from_keys = ("fromNumber", "faxCallerId", "faxNumber", "faxCsid")
        numbers = {k: _e164(fax[k]) for k in (*to_keys, *from_keys) if fax.get(k)}
        ours = self.context.inbound_numbers
        # Which field holds our number is not documented: one we own wins, else the first.
        to = next((n for n in numbers.values() if n in ours), None)
        to = to or next((numbers[k] for k in to_keys if k in numbers), "")
        sender = next((numbers[k] for k in from_keys if k in numbers and numbers[k] != to), "")
        return InboundFax(
            provider_fax_id=str(fax["messageId"]),
            from_number=sender,
            to_number=to,
            pages=as_int(fax.get("pagesCount")),
            received=_time(fax.get("resolvedDate") or fax.get("createdAt")),
            remote_station_id=str(fax["faxCsid"]) if fax.get("faxCsid") else None,
            document=document,
            raw=dict(fax),
        )

    async def fetch_document(self, fax: InboundFax) -> bytes:
        if fax.document is not None:
            return fax.document
        response = await self.request(
            "GET",
            f"/fax/{fax.provider_fax_id}/download",
            headers=self._headers("application/pdf"),
        )
        return response.content

    # -- admin ---------------------------------------------------------------------------
    async def check(self) -> str:
        # Not `/fax/history`: Documo allows it only 8 times a minute.
        response = await self.request(
            "GET", "/numbers", headers=self._headers(), params={"limit": 1}
        )
        count = _answer(response).get("count", "?")
        return f"mFax API key works: the account has {count} fax number(s)"

    async def setup(self) -> list[str]:
        return [
            "mFax's API (seed) has no call to register webhooks; add one in the mFax web app",
            "(Toolbox → Webhooks → Add New Webhook) with:",
            f"  URL:    {self.callback_url()}",
            "  events: fax.v1.outbound.complete and fax.v1.inbound.complete",
            "  (legacy webhooks also work: fax.outbound.extended and fax.inbound)",
            "Leave Basic Auth off: the token in the URL authenticates the callbacks.",
        ]


def _answer(response: httpx.Response) -> Any:
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return {}


def _raw(fax: dict[str, Any], event: str) -> str:
    return str(fax.get("status") or event or "unknown")


def _code(fax: dict[str, Any]) -> str:
    """The most specific code Documo gave for a failure (a `resultCode` of 0 says nothing)."""
    for key in ("errorCode", "resultCode"):
        value = fax.get(key)
        if value not in (None, "", "0", 0):
            return str(value)
    return str(fax.get("status") or "failed")


def _fax_object(body: Any, name: str) -> dict[str, Any]:
    """The fax object of an answer; `/faxes/multiple` wraps it in `success`/`errors`."""
    if isinstance(body, dict) and isinstance(body.get("success"), list):
        if not body["success"]:
            errors = body.get("errors") or [{}]
            raise PermanentProviderError(f"{name}: fax refused: {errors[0].get('error', errors)}")
        body = body["success"][0]
    if not isinstance(body, dict) or not body.get("messageId"):
        raise PermanentProviderError(f"{name}: the answer names no messageId")
    return body


def _webhook(request: CallbackRequest) -> tuple[str, dict[str, Any], bytes | None]:
    """(event name, fax object, attached document) from either webhook shape."""
    document: bytes | None = None
    if "data" in request.form:  # legacy multipart: `data` JSON, file `attachment`
        raw: Any = request.form["data"]
        document = request.files.get("attachment") or next(iter(request.files.values()), None)
        outer: dict[str, Any] = {"event": request.form.get("event", "")}
    else:
        try:
            outer = json.loads(request.body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CallbackError(f"mFax webhook body is neither JSON nor a form: {exc}") from exc
        if not isinstance(outer, dict):
            raise CallbackError("mFax webhook body is not a JSON object")
        raw = outer.get("data", outer)
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise CallbackError(f"mFax webhook `data` is not JSON: {exc}") from exc
    if not isinstance(raw, dict) or not raw.get("messageId"):
        raise CallbackError("mFax webhook names no messageId")
    event = next((str(outer[k]) for k in ("event", "eventName", "type") if outer.get(k)), "")
    return event, raw, document
