"""HelloFax / Dropbox Fax, legacy API v1 (seed 000, PROVIDERS.md "HelloFax").

The API knows accounts (by GUID) and transmissions (by GUID). It renders its own cover page
from `CoverPageTo`/`CoverPageFrom`/`CoverPageMessage`, so with a cover note we send the bare
document and let HelloFax draw the cover. There is nowhere to echo our job id: callbacks are
linked by the transmission GUID we stored as `provider_fax_id`.

Two quirks shape this module: a 429 means "already 200 faxes pending", which is a reason to
wait, never to fail; and a transmission is deleted once its final callback went out, so a 404
from `status()` is not a failure (the callback is the source of truth).
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import httpx

from bridge.config import HelloFaxConfig
from bridge.errors import (
    CallbackError,
    ConfigError,
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


_PROGRESS: dict[str, tuple[JobStatus, str]] = {
    "P": (JobStatus.SUBMITTED, "Pending/converting"),
    "T": (JobStatus.SENDING, "Transmitting"),
    "S": (JobStatus.DELIVERED, "Successfully sent"),
}
# StatusCode H (newer docs: O): unconfirmed account or out of fax pages.
_ON_HOLD = frozenset({"H", "O"})
_ON_HOLD_TEXT = "On hold: the account is unconfirmed or out of fax pages"
# ErrorCode, meaningful only with StatusCode E. B is R in newer docs.
_ERRORS: dict[str, tuple[FailureReason, str]] = {
    "B": (FailureReason.BUSY, "Received a busy signal"),
    "R": (FailureReason.BUSY, "Received a busy signal"),
    "N": (FailureReason.NO_ANSWER, "No answer"),
    "A": (FailureReason.BAD_NUMBER, "Unallocated number"),
    "D": (FailureReason.DISCONNECTED, "The line is disconnected or unreachable"),
    "L": (FailureReason.BLOCKED_DESTINATION, "This number has been blacklisted"),
    "U": (FailureReason.UNKNOWN, "Unknown error during the fax transmission"),
}
# E without an error code: the document failed to convert (PROVIDERS.md, inferred).
_NO_ERROR_CODE = (FailureReason.FILE_ERROR, "Error: the document could not be converted")


def _transmission(body: Any) -> dict[str, Any]:
    """The one transmission in a response or callback, whatever it is wrapped in.

    Responses say `Transmission`, callbacks `Transaction`; lists are accepted too."""
    if isinstance(body, dict):
        for key in ("Transaction", "Transmission", "Transmissions"):
            if key in body:
                return _transmission(body[key])
        if "Guid" in body:
            return body
    if isinstance(body, list) and len(body) == 1:
        return _transmission(body[0])
    raise ValueError("no transmission with a Guid in it")


def status_update(record: dict[str, Any]) -> StatusUpdate:
    """A HelloFax transmission (response or callback) in the common status model."""
    guid = str(record["Guid"])
    code = str(record.get("StatusCode") or "").upper()
    error = str(record.get("ErrorCode") or "").upper()
    reason: FailureReason | None = None
    if code in _PROGRESS:
        status, text = _PROGRESS[code]
        raw = code
    elif code in _ON_HOLD:
        status, reason, text, raw = JobStatus.FAILED, FailureReason.ON_HOLD, _ON_HOLD_TEXT, code
    elif code == "E":
        if error:
            reason, text = _ERRORS.get(error, (FailureReason.UNKNOWN, f"Error code {error}"))
        else:
            reason, text = _NO_ERROR_CODE
        status, raw = JobStatus.FAILED, f"E/{error}" if error else "E"
    else:
        raise ValueError(f"unknown StatusCode {code!r}")
    pages = record.get("NumPagesBilled")
    return StatusUpdate(
        provider_fax_id=guid,
        status=status,
        reason=reason,
        provider_code=raw,
        provider_text=text,
        pages=pages if isinstance(pages, int) and pages > 0 else None,
        at=from_epoch(record.get("UpdatedAt")) or from_epoch(record.get("CreatedAt")),
    )


class HelloFaxProvider(HTTPProvider[HelloFaxConfig]):
    type = "hellofax"
    default_base_url = "https://api.hellofax.com/v1"
    # A 429 ("Please wait. You already have at least 200 transmissions …") names no wait of
    # its own; the shared rule in HTTPProvider marks it rate-limited and waits this long.
    rate_limit_wait_s = 60.0

    @property
    def _account(self) -> str:
        return f"/Accounts/{self.config.account_guid}"

    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        kwargs.setdefault("auth", httpx.BasicAuth(self.config.username, self.config.password))
        return await super().request(method, path, **kwargs)

    # -- sending -------------------------------------------------------------------------
    async def send(self, fax: OutboundFax) -> SendResult:
        params = {"To": digits_only(fax.to)}
        if fax.caller_id:
            params["From"] = digits_only(fax.caller_id)
        fields: dict[str, str] = {}
        if fax.cover is not None:
            # HelloFax draws the cover page itself; our own rendering stays out.
            note = fax.cover
            fields["CoverPageTo"] = note.to_name or note.to_number
            fields["CoverPageFrom"] = note.from_name or note.from_number
            fields["CoverPageMessage"] = "\n\n".join(
                part for part in (note.subject, note.notes) if part
            )
            document = await asyncio.to_thread(fax.document.read_bytes)
        else:
            document = await asyncio.to_thread(transmitted_pdf, fax)
        files = {"file": (f"{fax.job_id}.pdf", document, "application/pdf")}
        response = await self.request(
            "POST", f"{self._account}/Transmissions", params=params, data=fields, files=files
        )
        try:
            update = status_update(_transmission(response.json()))
        except (ValueError, KeyError) as exc:
            raise PermanentProviderError(
                f"{self.name}: unexpected answer to a send: {response.text[:200]}"
            ) from exc
        log.info(
            "%s: job %s accepted as transmission %s", self.name, fax.job_id, update.provider_fax_id
        )
        status = update.status if update.status is JobStatus.SENDING else JobStatus.SUBMITTED
        return SendResult(update.provider_fax_id, status=status, raw_status=update.provider_code)

    async def status(
        self, provider_fax_id: str, *, job_id: str | None = None
    ) -> StatusUpdate | None:
        try:
            response = await self.request("GET", f"{self._account}/Transmissions/{provider_fax_id}")
        except PermanentProviderError as exc:
            if exc.code == "404":  # finished transmissions are deleted: ask the callbacks
                return None
            raise
        try:
            return status_update(_transmission(response.json()))
        except (ValueError, KeyError) as exc:
            raise TransientProviderError(
                f"{self.name}: unreadable transmission status: {response.text[:200]}"
            ) from exc

    # -- callbacks -----------------------------------------------------------------------
    async def parse_callback(self, request: CallbackRequest) -> CallbackResult:
        self.verify_callback_token(request)
        raw = request.form.get("json")
        if raw is None and request.content_type.startswith("application/json"):
            raw = request.body.decode("utf-8", "replace")
        if raw is None:
            raise CallbackError("HelloFax callback without its `json` field")
        try:
            record = _transmission(json.loads(raw))
        except (ValueError, TypeError) as exc:
            raise CallbackError(f"unreadable HelloFax callback: {exc}") from exc
        if _is_inbound(record.get("IsInbound")):
            return CallbackResult(inbound=[self._inbound(record, request)])
        try:
            update = status_update(record)
        except (ValueError, KeyError) as exc:
            raise CallbackError(f"unreadable HelloFax callback: {exc}") from exc
        return CallbackResult(updates=[update])

    def _inbound(self, record: dict[str, Any], request: CallbackRequest) -> InboundFax:
        # The PDF rides along as a file part; its field name is not documented.
        document = next(iter(request.files.values()), None)
        if not document:
            raise CallbackError("HelloFax inbound callback carries no document")
        pages = record.get("NumPagesBilled")
        return InboundFax(
            provider_fax_id=str(record["Guid"]),
            from_number=str(record.get("From") or ""),
            to_number=str(record.get("To") or ""),
            pages=pages if isinstance(pages, int) else None,
            received=from_epoch(record.get("CreatedAt")),
            document=document,
            raw=dict(record),
        )

    async def fetch_document(self, fax: InboundFax) -> bytes:
        if fax.document is None:
            raise PermanentProviderError(
                f"{self.name}: HelloFax delivers inbound faxes only inside the callback, and "
                f"the one for {fax.provider_fax_id} carried no document"
            )
        return fax.document

    # -- account -------------------------------------------------------------------------
    async def check(self) -> str:
        response = await self.request("GET", self._account)
        try:
            account = response.json()
            account = account.get("Account", account)
            outbound = account.get("DefaultOutboundFaxCallbackUrl")
        except (ValueError, AttributeError):
            outbound = None
        hook = "set" if outbound else "not set"
        return (
            f"HelloFax account {self.config.account_guid}: credentials accepted "
            f"(outbound callback URL {hook})"
        )

    async def setup(self) -> list[str]:
        if not self.callback_token:
            raise ConfigError(
                f"providers.{self.name}.callback_token: needed before registering callbacks, "
                "because HelloFax signs nothing and the token is what proves a callback real"
            )
        url = self.callback_url()
        await self.request(
            "POST",
            self._account,
            data={"DefaultInboundFaxCallbackUrl": url, "DefaultOutboundFaxCallbackUrl": url},
        )
        shown = url.replace(self.callback_token, "…")
        return [
            f"HelloFax account {self.config.account_guid}: inbound fax callback URL set to {shown}",
            f"HelloFax account {self.config.account_guid}: outbound fax callback URL set to "
            f"{shown}",
        ]


def _is_inbound(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in {"true", "1", "yes"}
    return bool(value)
