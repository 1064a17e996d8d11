"""Kazoo (2600Hz) v2 Faxes API: `X-Auth-Token`, multipart/mixed send, `notifications` webhooks.

Kazoo has no cover-page fields, so the receiver gets our cover page merged in front of the
document. Kazoo's webhooks fire only when a job ends (`outbound_fax` / `outbound_fax_error`),
so `submitted`/`sending` are seen only by polling `faxes/outgoing/{id}`; a finished job moves
to the month-prefixed outbox (`YYYYMM-<id>`), which `status` follows.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import secrets
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from bridge.config import KazooConfig
from bridge.errors import CallbackError, PermanentProviderError, TransientProviderError
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
from bridge.providers.base import ProviderContext, transmitted_pdf
from bridge.providers.http import HTTPProvider, provider_message, retry_after_s
from bridge.providers.values import as_int

log = logging.getLogger(__name__)

JOB_ID_FIELD = "faxbridge_job_id"  # a custom field: Kazoo keeps it on the fax document
RETRIES = 2  # Kazoo redials busy/unanswered lines itself; the bridge only retries submission
HOOK_EVENTS = ("outbound_fax", "outbound_fax_error", "inbound_fax", "inbound_fax_error")
RATE_LIMIT_WAIT_S = 10.0  # Crossbar's 429 names no wait; its default token bucket refills in 10 s
GREGORIAN_OFFSET_S = 62_167_219_200  # Kazoo times are Erlang gregorian seconds
_HOOK = {"http_verb": "post", "hook": "notifications", "format": "json", "retries": 3}

_JOB_STATUSES = {
    "pending": JobStatus.SUBMITTED,
    "locked": JobStatus.SUBMITTED,
    "processing": JobStatus.SENDING,
    "completed": JobStatus.DELIVERED,
    "failed": JobStatus.FAILED,
}
# Hangup causes and error words, checked in this order before the T.30 result code.
_CAUSES: tuple[tuple[FailureReason, tuple[str, ...]], ...] = (
    (FailureReason.BUSY, ("USER_BUSY", "BUSY")),
    (FailureReason.NO_ANSWER, ("NO_ANSWER", "NO_USER_RESPONSE", "NO ANSWER")),
    (FailureReason.BAD_NUMBER, ("UNALLOCATED", "INVALID_NUMBER", "NO_ROUTE", "NUMBER_CHANGED")),
    (FailureReason.FILE_ERROR, ("FILE", "ATTACHMENT", "CONVERT", "TIFF", "DOCUMENT")),
)
_CAUSE_CODE = re.compile(r"[A-Z][A-Z0-9_]+")


class KazooProvider(HTTPProvider[KazooConfig]):
    type = "kazoo"

    def __init__(
        self, name: str, config: KazooConfig, client: httpx.AsyncClient, context: ProviderContext
    ) -> None:
        super().__init__(name, config, client, context)
        self._token: str | None = self.config.auth_token
        self._auth_lock = asyncio.Lock()

    @property
    def _account(self) -> str:
        return f"accounts/{self.config.account_id}"

    # -- auth ----------------------------------------------------------------------------
    async def _authenticate(self, stale: str | None) -> str:
        """Trade the api_key for a token once; callers racing on a 401 share one exchange."""
        async with self._auth_lock:
            if self._token is not None and self._token != stale:
                return self._token
            if not self.config.api_key:
                raise PermanentProviderError(
                    f"{self.name}: no auth_token, and no api_key to obtain one", code="auth"
                )
            response = await self.request(
                "PUT", "api_auth", json={"data": {"api_key": self.config.api_key}}
            )
            body = _json_object(response)
            token = body.get("auth_token") or _dict(body.get("data")).get("auth_token")
            if not isinstance(token, str) or not token:
                raise PermanentProviderError(f"{self.name}: api_auth returned no auth_token")
            log.info("%s: obtained an auth token with the api_key", self.name)
            self._token = token
            return token

    async def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """An authenticated request; with an api_key, a 401 re-authenticates once."""
        token = self._token or await self._authenticate(None)
        headers = dict(kwargs.pop("headers", {}))
        try:
            return await self.request(
                method, path, headers={**headers, "X-Auth-Token": token}, **kwargs
            )
        except PermanentProviderError as exc:
            if exc.code != "401" or not self.config.api_key:
                raise
        log.info("%s: token refused, authenticating again", self.name)
        token = await self._authenticate(token)
        return await self.request(
            method, path, headers={**headers, "X-Auth-Token": token}, **kwargs
        )

    def raise_for_status(self, response: httpx.Response) -> None:
        """Kazoo's error envelope says what was wrong in `message` and, per field, in `data`."""
        code = response.status_code
        if code < 400:
            return
        message = f"{self.name}: HTTP {code}: {_error_text(response)}"
        if code == 429 or code >= 500:
            wait_s = retry_after_s(response)
            if wait_s is None and code == 429:
                wait_s = RATE_LIMIT_WAIT_S
            raise TransientProviderError(message, code=str(code), retry_after_s=wait_s)
        raise PermanentProviderError(message, code=str(code))

    # -- sending -------------------------------------------------------------------------
    async def send(self, fax: OutboundFax) -> SendResult:
        pdf = await asyncio.to_thread(transmitted_pdf, fax)
        data: dict[str, Any] = {"to_number": fax.to, "retries": RETRIES, JOB_ID_FIELD: fax.job_id}
        if fax.caller_id:
            data["from_number"] = fax.caller_id
        if fax.cover is not None:  # no cover fields on Kazoo, but the job shows the names
            data.update(to_name=fax.cover.to_name, from_name=fax.cover.from_name)
        body, content_type = _multipart_mixed(data, pdf, f"{fax.job_id}.pdf")
        response = await self.call(
            "PUT", f"{self._account}/faxes", content=body, headers={"Content-Type": content_type}
        )
        fax_id = _dict(_json_object(response).get("data")).get("id")
        if not isinstance(fax_id, str) or not fax_id:
            raise PermanentProviderError(f"{self.name}: the fax was accepted without an id")
        log.info("%s: job %s queued as Kazoo fax %s", self.name, fax.job_id, fax_id)
        return SendResult(fax_id, JobStatus.SUBMITTED, raw_status="pending")

    # -- status --------------------------------------------------------------------------
    async def status(
        self, provider_fax_id: str, *, job_id: str | None = None
    ) -> StatusUpdate | None:
        for path in self._status_paths(provider_fax_id):
            doc = await self._get_or_none(path)
            if doc is not None:
                return _doc_update(provider_fax_id, doc)
        return None

    def _status_paths(self, fax_id: str) -> list[str]:
        if _strip_month(fax_id) != fax_id:  # already an outbox id
            return [f"{self._account}/faxes/outbox/{fax_id}"]
        now = datetime.now(UTC)
        months = (now, now.replace(day=1) - timedelta(days=1))  # this month, the one before
        outbox = [f"{self._account}/faxes/outbox/{m:%Y%m}-{fax_id}" for m in months]
        return [f"{self._account}/faxes/outgoing/{fax_id}", *outbox]

    async def _get_or_none(self, path: str) -> dict[str, Any] | None:
        try:
            return _dict(_json_object(await self.call("GET", path)).get("data"))
        except PermanentProviderError as exc:
            if exc.code == "404":
                return None
            raise

    # -- callbacks -----------------------------------------------------------------------
    async def parse_callback(self, request: CallbackRequest) -> CallbackResult:
        self.verify_callback_token(request)
        payload = _callback_payload(request)
        event = payload.get("event_name") or payload.get("type")
        if not isinstance(event, str):
            raise CallbackError("Kazoo callback without event_name")
        if event in ("outbound_fax", "outbound_fax_error"):
            return CallbackResult(updates=[_callback_update(event, payload)])
        if event == "inbound_fax":
            return CallbackResult(inbound=[self._inbound(payload)])
        # inbound_fax_error (nothing to deliver) and any other notification: note it only.
        log.info("%s: Kazoo %s: %s", self.name, event, payload.get("fax_error") or "ignored")
        return CallbackResult()

    def _inbound(self, payload: dict[str, Any]) -> InboundFax:
        fax_id = payload.get("fax_id")
        if not isinstance(fax_id, str) or not fax_id:
            raise CallbackError("Kazoo inbound_fax callback without fax_id")
        info = _dict(payload.get("fax_info"))
        station = info.get("fax_remote_station_id")
        return InboundFax(
            provider_fax_id=fax_id,
            from_number=self._number(payload.get("caller_id_number")),
            to_number=self._number(payload.get("callee_id_number")),
            pages=as_int(info.get("fax_total_pages") or info.get("fax_transferred_pages")),
            received=_gregorian(payload.get("fax_timestamp")),
            remote_station_id=station if isinstance(station, str) and station else None,
            raw=payload,
        )

    def _number(self, value: Any) -> str:
        """Kazoo may drop the `+`; restore it when that names one of our numbers."""
        number = str(value or "")
        if number.isdigit() and f"+{number}" in self.context.inbound_numbers:
            return f"+{number}"
        return number

    async def fetch_document(self, fax: InboundFax) -> bytes:
        if fax.document is not None:
            return fax.document
        path = f"{self._account}/faxes/inbox/{fax.provider_fax_id}/attachment"
        response = await self.call("GET", path, headers={"Accept": "application/pdf"})
        return response.content

    # -- operations ----------------------------------------------------------------------
    async def check(self) -> str:
        account = _dict(_json_object(await self.call("GET", self._account)).get("data"))
        name = account.get("name") or account.get("realm") or "?"
        return f"Kazoo account {name} ({self.config.account_id}) accepts our credentials"

    async def setup(self) -> list[str]:
        if not self.callback_token:
            return [
                f"{self.name}: set callback_token first: Kazoo webhooks carry no signature, so "
                "the bridge authenticates them by the token in their URL. Nothing registered."
            ]
        uri = self.callback_url()
        listed = _json_object(await self.call("GET", f"{self._account}/webhooks")).get("data")
        existing = {h.get("name"): h for h in listed or [] if isinstance(h, dict)}
        lines: list[str] = []
        for event in HOOK_EVENTS:
            name = f"faxbridge {self.name} {event}"
            hook = {**_HOOK, "name": name, "uri": uri, "custom_data": {"type": event}}
            found = existing.get(name)
            if found is None:
                await self.call("PUT", f"{self._account}/webhooks", json={"data": hook})
                lines.append(f"registered Kazoo webhook {name!r} → {self.callback_url()}")
            elif found.get("uri") != uri or found.get("enabled") is False:
                await self.call(
                    "POST",
                    f"{self._account}/webhooks/{found.get('id')}",
                    json={"data": {**hook, "enabled": True}},
                )
                lines.append(f"updated Kazoo webhook {name!r} → {self.callback_url()}")
            else:
                lines.append(f"Kazoo webhook {name!r} already points at this bridge")
        return lines


# -- wire helpers ----------------------------------------------------------------------
def _multipart_mixed(data: dict[str, Any], pdf: bytes, filename: str) -> tuple[bytes, str]:
    """Kazoo reads the JSON part by its content type and keeps the other part as the file."""
    boundary = f"faxbridge-{secrets.token_hex(16)}"
    body = b"".join(
        [
            f"--{boundary}\r\nContent-Type: application/json\r\n\r\n".encode(),
            json.dumps({"data": data}).encode(),
            f"\r\n--{boundary}\r\nContent-Type: application/pdf\r\n".encode(),
            f'Content-Disposition: attachment; filename="{filename}"\r\n\r\n'.encode(),
            pdf,
            f"\r\n--{boundary}--\r\n".encode(),
        ]
    )
    return body, f"multipart/mixed; boundary={boundary}"


def _error_text(response: httpx.Response) -> str:
    """`message` plus the per-field validation messages Kazoo puts under `data`."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict) or not (body.get("message") or body.get("error")):
        return provider_message(response)
    message = str(body.get("message") or body.get("error"))
    data = body.get("data")
    details = [data] if isinstance(data, str) else []
    for key, value in data.items() if isinstance(data, dict) else ():
        if isinstance(value, dict):  # {"to_number": {"required": {"message": …}}}
            rules = [r for r in value.values() if isinstance(r, dict) and r.get("message")]
            details += [f"{key}: {rule['message']}" for rule in rules]
        elif key == "message" and isinstance(value, str):
            details.append(value)
    details = [text for text in details if text and text != message]
    return f"{message} ({'; '.join(details)})" if details else message


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError as exc:
        raise PermanentProviderError(f"kazoo: answer is not JSON: {response.text[:200]}") from exc
    return body if isinstance(body, dict) else {}


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _strip_month(fax_id: str) -> str:
    """`202405-<id>` (an outbox/modb id) → `<id>` (the job id `send` returned)."""
    month, sep, rest = fax_id.partition("-")
    return rest if sep and len(month) == 6 and month.isdigit() and rest else fax_id


def _gregorian(value: Any) -> datetime | None:
    seconds = as_int(value)
    if seconds is None or seconds < GREGORIAN_OFFSET_S:
        return None
    return datetime.fromtimestamp(seconds - GREGORIAN_OFFSET_S, UTC)


def _failure(code: Any, *texts: Any) -> FailureReason:
    """Hangup cause words first (busy, no answer, bad number, bad file), then T.30 codes."""
    words = " ".join(str(text) for text in texts if text).upper()
    for reason, needles in _CAUSES:
        if any(needle in words for needle in needles):
            return reason
    number = as_int(code)
    return FailureReason.DISCONNECTED if number else FailureReason.UNKNOWN


def _raw_code(code: Any, cause: Any, fallback: str) -> str:
    """The T.30 result code when the fax started, else the hangup cause (`USER_BUSY`)."""
    if as_int(code):
        return str(code)
    if isinstance(cause, str) and _CAUSE_CODE.fullmatch(cause.strip()):
        return cause.strip()
    return fallback


def _doc_update(fax_id: str, doc: dict[str, Any]) -> StatusUpdate:
    tx = _dict(doc.get("tx_result"))
    raw = doc.get("status") or doc.get("pvt_job_status")
    if not isinstance(raw, str):  # an outbox document without a job status
        raw = "completed" if tx.get("success") is True else "failed"
    status = _JOB_STATUSES.get(raw, JobStatus.SUBMITTED)
    custom = doc.get(JOB_ID_FIELD)
    update = StatusUpdate(
        provider_fax_id=fax_id,
        status=status,
        provider_code=raw,
        pages=as_int(tx.get("pages_sent")) or None,
        job_id=custom if isinstance(custom, str) else None,
    )
    if status is not JobStatus.FAILED:
        return update
    text = tx.get("error_message") or tx.get("result_text") or None
    code = tx.get("result_code")
    return replace(
        update,
        reason=_failure(code, tx.get("result_text"), tx.get("error_message")),
        provider_code=_raw_code(code, text, raw),
        provider_text=str(text) if text else None,
    )


def _callback_payload(request: CallbackRequest) -> dict[str, Any]:
    try:
        payload: Any = json.loads(request.body) if request.body.strip() else dict(request.form)
    except ValueError:
        payload = dict(request.form)
    if not isinstance(payload, dict) or not payload:
        raise CallbackError("Kazoo callback body is not a JSON object")
    if isinstance(payload.get("fax_info"), str):  # `format: form-data` hooks
        try:
            payload["fax_info"] = json.loads(payload["fax_info"])
        except ValueError as exc:
            raise CallbackError("Kazoo callback fax_info is not JSON") from exc
    return payload


def _callback_update(event: str, payload: dict[str, Any]) -> StatusUpdate:
    job = payload.get("fax_jobid") or payload.get("fax_id")
    if not isinstance(job, str) or not job:
        raise CallbackError(f"Kazoo {event} callback without fax_jobid")
    info = _dict(payload.get("fax_info"))
    code = info.get("fax_result_code")
    text = payload.get("fax_error") or info.get("fax_result_text") or None
    failed = event == "outbound_fax_error" or info.get("fax_success") in (False, "false")
    custom = payload.get(JOB_ID_FIELD)
    return StatusUpdate(
        provider_fax_id=_strip_month(job),
        status=JobStatus.FAILED if failed else JobStatus.DELIVERED,
        reason=_failure(code, payload.get("fax_error"), info.get("fax_result_text"))
        if failed
        else None,
        provider_code=_raw_code(code, payload.get("fax_error"), event),
        provider_text=str(text) if text else None,
        pages=as_int(info.get("fax_transferred_pages") or info.get("fax_total_pages")),
        job_id=custom if isinstance(custom, str) else None,
        at=_gregorian(payload.get("fax_timestamp")),
    )
