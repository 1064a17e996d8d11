"""Fax.Plus REST API v3 (seed 001; facts in PROVIDERS.md and the official SDK models).

Two things shape this adapter. A fax is sent in two calls (upload the PDF, then post to the
outbox referring to the uploaded path). And a fax has two ids: the outbox id we get back names
it only until it is sent; after that it is a fax with a new id, and the `fax_sent` webhook names
only that one. We therefore tag every fax with `job:<our job id>` and, on a webhook, read the
fax record's tags to tell the bridge which job it is about.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx

from bridge.config import FaxPlusConfig
from bridge.errors import CallbackError, PermanentProviderError, ProviderError
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

JOB_TAG_PREFIX = "job:"
BRIDGE_TAG = "faxbridge"
# How many of the latest sent faxes a status poll searches for a job's fax (the API's default
# page size): one request, so a fax sent longer ago than that many others is not found.
SENT_LOOKBACK = 50

_SUBMITTED = frozenset({"submitted", "converting", "scheduled_for_sending"})
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
_FAILURES: dict[str, FailureReason] = {
    "failed_user_busy": FailureReason.BUSY,
    "failed_no_answer": FailureReason.NO_ANSWER,
    "failed_unallocated_number": FailureReason.BAD_NUMBER,
    "failed_invalid_number_format": FailureReason.BAD_NUMBER,
    "failed_destination_not_supported": FailureReason.BAD_NUMBER,
    "failed_normal_clearing": FailureReason.DISCONNECTED,
    "failed_normal_temporary_failure": FailureReason.DISCONNECTED,
    "failed_to_send": FailureReason.DISCONNECTED,
    "partially_sent": FailureReason.DISCONNECTED,
    "insufficient_credit": FailureReason.ON_HOLD,
    "failed": FailureReason.UNKNOWN,
    "failed_internal_process_error": FailureReason.UNKNOWN,
    **dict.fromkeys(_FILE_ERRORS, FailureReason.FILE_ERROR),
}
# What Fax.Plus's status table says each outcome means (its payloads carry no text of their
# own), so failure reports can quote the provider rather than only our reason.
_TEXTS = {
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
    "failed_normal_clearing": "The call was cleared by the destination",
    "failed_mimetype_not_supported": "Unsupported file type",
}


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


def job_id_from_tags(record: dict[str, Any]) -> str | None:
    """Our job id from a fax or outbox record's `comment.tags` (`job:<id>`)."""
    comment = record.get("comment")
    tags = comment.get("tags") if isinstance(comment, dict) else record.get("tags")
    for tag in tags if isinstance(tags, list) else []:
        if isinstance(tag, str) and tag.startswith(JOB_TAG_PREFIX):
            return tag[len(JOB_TAG_PREFIX) :] or None
    return None


def _number(value: Any) -> str:
    """`+1 334-304-1234` → `+13343041234`; user ids (free accounts) are left as they are."""
    text = str(value or "").strip()
    if re.fullmatch(r"\+?[\d\s().-]+", text):
        digits = re.sub(r"\D", "", text)
        return f"+{digits}" if text.startswith("+") else digits
    return text


def _time(value: Any) -> datetime | None:
    """Fax.Plus times are `YYYY-MM-DD HH:mm:ss` in UTC."""
    try:
        return datetime.strptime(str(value), "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        return None


class FaxPlusProvider(HTTPProvider[FaxPlusConfig]):
    type = "faxplus"
    default_base_url = "https://restapi.fax.plus/v3"

    # -- plumbing ------------------------------------------------------------------------
    def _headers(self, accept: str = "application/json") -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.config.access_token}", "Accept": accept}
        if self.config.client_id:  # only OAuth apps have one; PATs must not send it
            headers["x-fax-clientid"] = self.config.client_id
        return headers

    def _account_path(self, *rest: str) -> str:
        parts = [self.config.user_id, *rest]
        return "/accounts/" + "/".join(quote(p, safe="") for p in parts)

    def error_text(self, response: httpx.Response) -> str:
        """Fax.Plus's terse `error` code with the `description` it puts beside it."""
        return _with_description(super().error_text(response), response)

    async def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {**self._headers(), **kwargs.pop("headers", {})}
        return await self.request(method, path, headers=headers, **kwargs)

    async def _record(
        self, fax_id: str, kinds: tuple[str, ...]
    ) -> tuple[str, dict[str, Any]] | None:
        """The first of `outbox`/`faxes` that knows `fax_id`, with its record; 404s are None."""
        for kind in kinds:
            try:
                response = await self._call("GET", self._account_path(kind, fax_id))
            except PermanentProviderError as exc:
                if exc.code == "404":
                    continue
                raise
            return kind, _answer(response)
        return None

    # -- sending -------------------------------------------------------------------------
    async def send(self, fax: OutboundFax) -> SendResult:
        # Native cover page: Fax.Plus renders it from `cover_page`, so the document goes
        # without ours. Only a cover PDF without a note (not expected) is merged in.
        if fax.cover is None and fax.cover_pdf is not None:
            pdf = await asyncio.to_thread(transmitted_pdf, fax)
        else:
            pdf = await asyncio.to_thread(fax.document.read_bytes)
        upload = await self._call(
            "POST",
            self._account_path("files"),
            params={"format": "pdf"},
            files={"fax_file": (f"{fax.job_id}.pdf", pdf, "application/pdf")},
        )
        path = _answer(upload).get("path")
        if not isinstance(path, str) or not path:
            raise PermanentProviderError(f"{self.name}: the upload answer names no file path")

        payload: dict[str, Any] = {
            # Corporate members without a number of their own send "from": "no_number".
            "from": fax.caller_id or "no_number",
            "to": [fax.to],
            "files": [path],
            "comment": {
                "text": f"faxbridge job {fax.job_id}",
                "tags": [BRIDGE_TAG, f"{JOB_TAG_PREFIX}{fax.job_id}"],
            },
            "return_ids": True,
        }
        if fax.cover is not None:
            payload["cover_page"] = {
                "name_to": fax.cover.to_name,
                "name_from": fax.cover.from_name,
                "subject": fax.cover.subject,
                "message": fax.cover.notes,
            }
        response = await self._call("POST", self._account_path("outbox"), json=payload)
        ids = _answer(response).get("ids")
        outbox_id = None
        if isinstance(ids, dict) and ids:
            outbox_id = ids.get(fax.to) or next(iter(ids.values()))
        if not outbox_id:
            # Accepted but untrackable; failing it is better than sending it a second time.
            raise PermanentProviderError(f"{self.name}: the outbox answer names no fax id")
        log.info("%s: job %s queued as outbox fax %s", self.name, fax.job_id, outbox_id)
        return SendResult(str(outbox_id), JobStatus.SUBMITTED, raw_status="submitted")

    # -- status --------------------------------------------------------------------------
    async def status(
        self, provider_fax_id: str, *, job_id: str | None = None
    ) -> StatusUpdate | None:
        found = await self._record(provider_fax_id, ("outbox", "faxes"))
        if found is not None:
            kind, record = found
            return self._update(provider_fax_id, record, pending=kind == "outbox")
        if job_id is None:
            return None
        # Sent: the outbox id is gone and the fax has a new id. Find it by our job tag among
        # the latest sent faxes; the update names the new id and our job, so the store adopts it.
        sent = await self._sent_fax(job_id)
        if sent is None:
            return None
        fax_id, record = sent
        log.info(
            "%s: job %s (outbox fax %s) was sent as fax %s",
            self.name,
            job_id,
            provider_fax_id,
            fax_id,
        )
        return self._update(fax_id, record, job_id=job_id)

    async def _sent_fax(self, job_id: str) -> tuple[str, dict[str, Any]] | None:
        """The newest sent fax tagged `job:<job_id>` among the last `SENT_LOOKBACK`, or None."""
        response = await self._call(
            "GET",
            self._account_path("faxes"),
            params={"category": "sent", "limit": str(SENT_LOOKBACK)},
        )
        data = _answer(response).get("data")
        records = data.get("records") if isinstance(data, dict) else None
        for record in records if isinstance(records, list) else []:
            if isinstance(record, dict) and record.get("id") and job_id_from_tags(record) == job_id:
                return str(record["id"]), record
        return None

    def _update(
        self,
        fax_id: str,
        record: dict[str, Any],
        *,
        pending: bool = False,
        job_id: str | None = None,
        at: datetime | None = None,
    ) -> StatusUpdate:
        raw = str(record.get("status") or "")
        status, reason = classify(raw, pending=pending)
        text = record.get("description")
        return StatusUpdate(
            provider_fax_id=fax_id,
            status=status,
            reason=reason,
            provider_code=raw,
            provider_text=text if isinstance(text, str) and text else _TEXTS.get(raw),
            pages=as_int(record.get("pages", record.get("page_count"))),
            job_id=job_id or job_id_from_tags(record),
            at=at or _time(record.get("last_updated_status_time") or record.get("start_time")),
        )

    # -- callbacks -----------------------------------------------------------------------
    async def parse_callback(self, request: CallbackRequest) -> CallbackResult:
        self.verify_callback_token(request)
        body = _json_body(request)
        hook, data = body.get("hook"), body.get("data")
        if not isinstance(hook, dict) or not isinstance(data, dict) or not data.get("id"):
            raise CallbackError(f"{self.name}: a webhook needs a `hook` and a `data.id`")
        if hook.get("event") != "fax_received" and not data.get("status"):
            raise CallbackError(f"{self.name}: the {hook.get('event')} webhook has no status")
        fax_id = str(data["id"])
        if hook.get("event") == "fax_received":
            return CallbackResult(inbound=[self._inbound(fax_id, data)])
        job_id = await self._job_id(fax_id, data)
        at = _time(hook.get("event_time")) or _time(data.get("start_time"))
        return CallbackResult(updates=[self._update(fax_id, data, job_id=job_id, at=at)])

    async def _job_id(self, fax_id: str, data: dict[str, Any]) -> str | None:
        """Which of our jobs the webhook is about: the `job:` tag on the fax record."""
        try:
            found = await self._record(fax_id, ("faxes", "outbox"))
        except ProviderError as exc:
            log.warning("%s: cannot read fax %s to link its webhook: %s", self.name, fax_id, exc)
            return None
        job_id = job_id_from_tags(found[1]) if found else None
        if job_id is None:
            log.warning(
                "%s: fax %s to %s carries no job tag; only its fax id links it",
                self.name,
                fax_id,
                _number(data.get("to") or data.get("to_number")),
            )
        return job_id

    def _inbound(self, fax_id: str, data: dict[str, Any]) -> InboundFax:
        return InboundFax(
            provider_fax_id=fax_id,
            from_number=_number(data.get("from") or data.get("from_number")),
            to_number=_number(data.get("to") or data.get("to_number")),
            pages=as_int(data.get("pages")),
            received=_time(data.get("start_time")),
            raw=dict(data),
        )

    async def fetch_document(self, fax: InboundFax) -> bytes:
        if fax.document is not None:
            return fax.document
        response = await self._call(
            "GET",
            self._account_path("files", fax.provider_fax_id),
            params={"format": "pdf"},
            headers={"Accept": "application/pdf"},
        )
        return response.content

    # -- admin ---------------------------------------------------------------------------
    async def check(self) -> str:
        account = _answer(await self._call("GET", self._account_path()))
        who = account.get("email") or account.get("uid") or self.config.user_id
        kind = account.get("account_type") or "account"
        return f"Fax.Plus credentials work: {kind} {who} (status {account.get('status', '?')})"

    async def setup(self) -> list[str]:
        target = self.callback_url()
        lines = []
        for event in ("fax_sent", "fax_received"):
            listing = _answer(await self._call("GET", "/hooks", params={"event": event}))
            hooks = listing.get("data")
            if any(h.get("target") == target for h in hooks or [] if isinstance(h, dict)):
                lines.append(f"Fax.Plus webhook {event} → {self._shown(target)} already exists")
                continue
            created = await self._call("POST", "/hooks", json={"target": target, "event": event})
            hook_id = _answer(created).get("id", "?")
            lines.append(
                f"Registered Fax.Plus webhook {event} → {self._shown(target)} (id {hook_id})"
            )
        return lines

    def _shown(self, url: str) -> str:
        """The callback URL with its token masked, for terminal output and logs."""
        token = self.callback_token
        return url.replace(token, "***") if token else url


def _answer(response: httpx.Response) -> dict[str, Any]:
    """A JSON object answer, or `{}` when the body is empty or something else."""
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return {}
    return body if isinstance(body, dict) else {}


def _with_description(message: str, response: httpx.Response) -> str:
    description = _answer(response).get("description")
    if isinstance(description, str) and description and description not in message:
        return f"{message} ({description[:300]})"
    return message


def _json_body(request: CallbackRequest) -> dict[str, Any]:
    try:
        body = json.loads(request.body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CallbackError(f"Fax.Plus webhook body is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise CallbackError("Fax.Plus webhook body is not a JSON object")
    return body
