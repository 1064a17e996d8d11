"""Telnyx Programmable Fax API v2 (team-telnyx/telnyx-python, developers.telnyx.com).

Telnyx authenticates with `Authorization: Bearer <API v2 key>`. A fax is one `POST /v2/faxes`
answered 202 with the fax object, whose `id` names it everywhere after. The document goes as a
multipart upload in `contents` (the OpenAPI's SendFaxMultipartRequest; telnyx-node issue 150:
the part needs a filename), so the bridge needs no public document URL; Telnyx has no cover
fields, so the bridge's own cover page leads the PDF. `from` is required: the faxbox's caller ID.

Our reference travels Base64-encoded in `client_state`, which Telnyx echoes in every webhook and
keeps on the fax object, so `find` lists the job's destination (`GET /v2/faxes`, filtered by
direction, `to` and creation time, paged) and reads it back. `webhook_url` on each fax sends its
news to the bridge even when the fax application points elsewhere.

Webhooks are JSON `{"data": {"event_type", "payload"}, "meta"}`, signed with Ed25519 over
`timestamp|body` (`telnyx-signature-ed25519`, `telnyx-timestamp`), verified with the account's
public key; the bridge's token is checked as well when one is configured. Inbound faxes arrive
as `fax.received` carrying `media_url`, a short-lived signed link fetched without our API key
(refreshed through `POST /v2/faxes/{id}/actions/refresh` once it has expired).
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from bridge.config import TelnyxConfig
from bridge.errors import PermanentProviderError, TransientProviderError
from bridge.models import (
    CallbackRequest,
    CallbackResult,
    InboundFax,
    JobStatus,
    Lookup,
    OutboundFax,
    SendResult,
    StatusUpdate,
    UnclassifiedCallback,
)
from bridge.providers.base import ProviderContext, transmitted_pdf
from bridge.providers.http import HTTPProvider
from bridge.providers.reference import linked, parse_reference, reference_text
from bridge.providers.telnyx_wire import (
    INBOUND_PROGRESS_EVENTS,
    answer_json,
    classify,
    client_state,
    decode_webhook,
    decoded_state,
    e164,
    error_text,
    failure_reason,
    fax_record,
    parse_time,
    progress_code,
    verify_signature,
)
from bridge.providers.values import as_int

log = logging.getLogger(__name__)

# SendFaxMultipartRequest: `contents` "The maximum allowed size is 20 MB"; the SDK's create
# docstring says files over 50 MB fail: an upload is held to the smaller figure.
MAX_UPLOAD_BYTES = 20 * 1024 * 1024
# fax_create_params.py `from_display_name`: at most 128 of letters, digits, spaces, -_~!.+
_DISPLAY_NAME_JUNK = re.compile(r"[^A-Za-z0-9 \-_~!.+]")
# Job records live 30 days by default (storage.retention_days): nothing older is re-sent.
LOOKBACK_DAYS = 31
LIST_PAGE, LIST_PAGES = 100, 10
NUMBERS_PAGE, NUMBERS_PAGES = 250, 20


class TelnyxProvider(HTTPProvider[TelnyxConfig]):
    type = "telnyx"
    default_base_url = "https://api.telnyx.com/v2"
    requires_caller_id = True  # fax_create_params.py: `from` is Required
    # "Receiving Webhooks": a non-200 answer sends the webhook to the failover URL (if one is
    # set), not again to ours; Telnyx retries only when no answer comes in time. So a webhook
    # naming no job is kept and answered 200 (our `client_state` names the job even before
    # the send's answer is recorded, so a fast fax.queued still finds it).
    retries_refused_callbacks = False

    def __init__(
        self, name: str, config: TelnyxConfig, client: httpx.AsyncClient, context: ProviderContext
    ) -> None:
        super().__init__(name, config, client, context)
        # Whether Telnyx kept the `client_state` of an upload: the multipart schema does not
        # list it (the SDK sends it in the same form). None until a send has shown it.
        self._keeps_state: bool | None = None

    async def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.config.api_key}", "Accept": "application/json"}
        kwargs["headers"] = headers | kwargs.get("headers", {})
        return await self.request(method, path, **kwargs)

    def error_text(self, response: httpx.Response) -> str:
        return error_text(answer_json(response)) or super().error_text(response)

    # -- sending -------------------------------------------------------------------------
    async def send(self, fax: OutboundFax) -> SendResult:
        if not fax.caller_id:
            raise PermanentProviderError(
                f"{self.name}: Telnyx needs a `from` number: set the faxbox's caller_id",
                code="caller_id",
            )
        pdf = await asyncio.to_thread(transmitted_pdf, fax)  # no native cover page
        if len(pdf) > MAX_UPLOAD_BYTES:
            raise PermanentProviderError(
                f"{self.name}: the document is {len(pdf) / 1e6:.1f} MB; Telnyx takes uploads "
                f"of at most {MAX_UPLOAD_BYTES // (1024 * 1024)} MB",
                code="file_size_limit_exceeded",
            )
        fields = {
            "connection_id": self.config.connection_id,
            "to": fax.to,
            "from": fax.caller_id,
            "client_state": client_state(reference_text(fax.reference)),
            "webhook_url": fax.callback_url,
        }
        name = " ".join(_DISPLAY_NAME_JUNK.sub(" ", fax.header or "").split())[:128]
        if name:
            fields["from_display_name"] = name
        response = await self.call(
            "POST",
            "/faxes",
            data=fields,
            files={"contents": (f"{fax.job_id}.pdf", pdf, "application/pdf")},
        )
        record = fax_record(response, self.name)
        status = classify(record) or JobStatus.SUBMITTED
        if status in (JobStatus.FAILED, JobStatus.CANCELLED):
            raise PermanentProviderError(
                f"{self.name}: fax refused: {record.get('failure_reason') or status}",
                code=str(record.get("failure_reason") or record.get("status")),
            )
        self._keeps_state = bool(record.get("client_state"))
        if not self._keeps_state:
            log.warning(
                "%s: Telnyx did not keep client_state on fax %s: a fax cannot be looked up by "
                "its job before it is sent again",
                self.name,
                record["id"],
            )
        log.info("%s: job %s accepted as fax %s", self.name, fax.job_id, record["id"])
        return SendResult(str(record["id"]), status, raw_status=str(record.get("status")))

    # -- status and reconciliation -------------------------------------------------------
    async def status(
        self, provider_fax_id: str, *, job_id: str | None = None
    ) -> StatusUpdate | None:
        response = await self.call_or_forgotten("GET", f"/faxes/{provider_fax_id}")
        if response is None:
            return None
        return self._update(fax_record(response, self.name), fax_id=provider_fax_id)

    async def find(self, fax: OutboundFax) -> Lookup:
        """The outbound faxes to `fax.to` of the last month whose `client_state` names the job."""
        if self._keeps_state is False:
            return Lookup(
                certain=False,
                detail=f"{self.name}: Telnyx did not keep the client_state of the faxes the "
                "bridge uploaded, so none can be told apart by its job",
            )
        since = datetime.now(UTC) - timedelta(days=LOOKBACK_DAYS)
        params: dict[str, str | int] = {
            "filter[direction][eq]": "outbound",
            "filter[to][eq]": fax.to,
            "filter[created_at][gte]": since.isoformat(timespec="seconds"),
            "page[size]": LIST_PAGE,
        }
        found: list[tuple[str, StatusUpdate]] = []
        read = 0
        for number in range(1, LIST_PAGES + 1):
            response = await self.call("GET", "/faxes", params={**params, "page[number]": number})
            body = answer_json(response)
            rows = body.get("data") if isinstance(body, dict) else None
            rows = [r for r in rows if isinstance(r, dict)] if isinstance(rows, list) else []
            read += len(rows)
            for row in rows:
                update = self._update(row)
                if update is not None and update.job_id == fax.job_id:
                    found.append((str(row.get("created_at") or ""), update))
            meta = body.get("meta") if isinstance(body, dict) else None
            pages = as_int(meta.get("total_pages")) if isinstance(meta, dict) else None
            if len(rows) < LIST_PAGE or (pages is not None and number >= pages):
                break
        else:
            return Lookup(
                certain=False,
                detail=f"{self.name}: more than {read} faxes to {fax.to} in a month at Telnyx; "
                "only those were read",
            )
        found.sort(key=lambda pair: pair[0], reverse=True)  # ISO times: newest first
        return Lookup(faxes=tuple(update for _, update in found))

    def _update(
        self, fax: dict[str, Any], event: str = "", *, fax_id: str | None = None
    ) -> StatusUpdate | None:
        """Our view of a fax object (`id`) or a webhook payload (`fax_id`)."""
        status = classify(fax, event)
        fax_id = fax_id or str(fax.get("fax_id") or fax.get("id") or "")
        if status is None or not fax_id:
            return None
        failed = status is JobStatus.FAILED
        code = str(fax.get("failure_reason") or "failed") if failed else None
        if status is JobStatus.CANCELLED:
            code = str(fax.get("failure_reason") or "cancelled")
        internal = fax.get("internal_failure_reason")
        update = StatusUpdate(
            provider_fax_id=fax_id,
            status=status,
            reason=failure_reason(fax) if failed else None,
            provider_code=code or progress_code(fax, event),
            provider_text=str(internal) if internal and internal != code else None,
            pages=as_int(fax.get("page_count")),
            at=parse_time(fax.get("updated_at") or fax.get("created_at")),
        )
        return linked(update, decoded_state(fax.get("client_state")))

    # -- cancel, delete, lines -----------------------------------------------------------
    async def cancel(self, provider_fax_id: str) -> None:
        """Telnyx cancels a fax still `queued`, `media.processed`, `originated` or `sending`."""
        try:
            await self.call("POST", f"/faxes/{provider_fax_id}/actions/cancel")
        except PermanentProviderError as exc:
            if exc.code in ("404", "410"):
                raise PermanentProviderError(
                    f"{self.name}: Telnyx has no fax {provider_fax_id}", code=exc.code
                ) from exc
            raise PermanentProviderError(
                f"{self.name}: Telnyx cancels only a fax not yet sent, and refused to cancel "
                f"{provider_fax_id}: {exc.message}",
                code=exc.code,
            ) from exc

    async def delete(self, provider_fax_id: str, *, inbound: bool = False) -> None:
        """`DELETE /v2/faxes/{id}` removes the fax resource; gone already is done."""
        await self.call_or_forgotten(
            "DELETE", f"/faxes/{provider_fax_id}", headers={"Accept": "*/*"}
        )

    async def fax_lines(self) -> list[str]:
        """The numbers assigned to the fax application (`GET /v2/phone_numbers`, filtered)."""
        lines: list[str] = []
        for number in range(1, NUMBERS_PAGES + 1):
            params: dict[str, str | int] = {
                "filter[connection_id]": self.config.connection_id,
                "page[number]": number,
                "page[size]": NUMBERS_PAGE,
            }
            body = answer_json(await self.call("GET", "/phone_numbers", params=params))
            rows = body.get("data") if isinstance(body, dict) else None
            rows = [r for r in rows if isinstance(r, dict)] if isinstance(rows, list) else []
            lines += [e164(r.get("phone_number")) for r in rows]
            meta = body.get("meta") if isinstance(body, dict) else None
            pages = as_int(meta.get("total_pages")) if isinstance(meta, dict) else None
            if len(rows) < NUMBERS_PAGE or (pages is not None and number >= pages):
                break
        return sorted({line for line in lines if line})

    # -- callbacks -----------------------------------------------------------------------
    async def parse_callback(self, request: CallbackRequest) -> CallbackResult:
        verify_signature(request, self.config.public_key)
        if self.callback_token:
            self.verify_callback_token(request)
        event, payload, occurred = decode_webhook(request)
        fax_id = str(payload.get("fax_id") or "")
        if not fax_id:
            return _kept(f"names no fax (no fax_id) in {event or 'an unnamed event'}", event)
        direction = str(payload.get("direction") or "").lower()
        if direction == "inbound" or (not direction and event == "fax.received"):
            return self._inbound_result(payload, event, occurred)
        update = self._update(payload, event) if direction in ("outbound", "") else None
        if update is not None and update.at is None and occurred is not None:
            update = replace(update, at=occurred)
        if update is None:
            why = f"direction {direction or 'missing'}, status {payload.get('status') or 'missing'}"
            return _kept(f"is no outbound fax news the bridge can read ({why})", event, payload)
        return CallbackResult(updates=[update])

    def _inbound_result(
        self, payload: dict[str, Any], event: str, occurred: datetime | None
    ) -> CallbackResult:
        status = str(payload.get("status") or "").lower()
        if event != "fax.received" and status != "received":
            if event in INBOUND_PROGRESS_EVENTS:
                what = f"tells of an inbound fax still arriving ({status or event})"
            else:
                why = payload.get("failure_reason") or status or "no status"
                what = f"tells of an inbound fax that did not arrive ({why}): nothing to mail"
            return _kept(what, event, payload)
        if not payload.get("media_url"):
            return _kept("announces a received fax without a media_url", event, payload)
        # `from` is the calling number; "Receive a Fax via API" also shows a `caller_id`
        # that differs from it, unexplained: `from` is read, `caller_id` stands in for it.
        caller = e164(payload.get("from")) or e164(payload.get("caller_id"))
        return CallbackResult(
            inbound=[
                InboundFax(
                    provider_fax_id=str(payload["fax_id"]),
                    from_number=caller,
                    to_number=e164(payload.get("to")),
                    pages=as_int(payload.get("page_count")),
                    received=occurred,
                    raw=dict(payload),
                )
            ]
        )

    async def fetch_document(self, fax: InboundFax) -> bytes:
        """The received PDF from `media_url`: a signed storage link, fetched without our API
        key. Once it has expired (10 minutes, the page says), it is refreshed and asked again."""
        if fax.document is not None:
            return fax.document
        url = str(fax.raw.get("media_url") or "")
        if url:
            content = await self._download(url)
            if content is not None:
                return content
        await self.call("POST", f"/faxes/{fax.provider_fax_id}/actions/refresh")
        record = fax_record(await self.call("GET", f"/faxes/{fax.provider_fax_id}"), self.name)
        fresh = record.get("media_url")
        if isinstance(fresh, list):  # "The URL (or list of URLs)"
            fresh = next((u for u in fresh if isinstance(u, str) and u), None)
        if not isinstance(fresh, str) or not fresh:
            raise PermanentProviderError(
                f"{self.name}: Telnyx gives no media_url for received fax {fax.provider_fax_id}"
            )
        content = await self._download(fresh)
        if content is None:
            raise TransientProviderError(
                f"{self.name}: the refreshed media_url of fax {fax.provider_fax_id} was refused"
            )
        return content

    async def _download(self, url: str) -> bytes | None:
        """The body at `url`, or None when the link is refused (expired, gone)."""
        try:
            response = await self.client.get(url, timeout=self.config.timeout_s)
        except httpx.TransportError as exc:
            raise TransientProviderError(
                f"{self.name}: cannot fetch the received fax ({exc.__class__.__name__}: {exc})",
                code="connect",
            ) from exc
        if response.status_code in (401, 403, 404, 410):
            return None
        self.raise_for_status(response)
        return response.content

    # -- admin ---------------------------------------------------------------------------
    async def _application(self) -> dict[str, Any]:
        response = await self.call("GET", f"/fax_applications/{self.config.connection_id}")
        body = answer_json(response)
        data = body.get("data") if isinstance(body, dict) else None
        return data if isinstance(data, dict) else {}

    async def check(self) -> str:
        app = await self._application()
        name = app.get("application_name") or self.config.connection_id
        url = app.get("webhook_event_url") or "no webhook URL"
        note = " (the bridge)" if url == self.callback_url() else ""
        return f"Telnyx API key works: fax application {name!r} sends webhooks to {url}{note}"

    async def setup(self) -> list[str]:
        """Point the fax application's webhook URL at the bridge (inbound faxes go there; each
        sent fax names the bridge in its own `webhook_url`)."""
        app = await self._application()
        name = str(app.get("application_name") or f"faxbridge {self.name}")
        url = self.callback_url()
        # fax_application_update_params.py: application_name and webhook_event_url required.
        await self.call(
            "PATCH",
            f"/fax_applications/{self.config.connection_id}",
            json={"application_name": name, "webhook_event_url": url},
        )
        return [
            f"Fax application {name!r} ({self.config.connection_id}) now sends webhooks to {url}",
            "Webhooks are verified with public_key (Mission Control Portal → Keys & "
            "Credentials → Public Key); a webhook that does not verify is refused.",
        ]


def _kept(what: str, event: str, payload: dict[str, Any] | None = None) -> CallbackResult:
    fax_id = str(payload["fax_id"]) if payload and payload.get("fax_id") else None
    job = parse_reference(decoded_state(payload.get("client_state"))) if payload else None
    kept = UnclassifiedCallback(
        reason=f"a Telnyx webhook that {what}",
        event=event or None,
        provider_fax_id=fax_id,
        job_id=job.job_id if job else None,
    )
    log.warning("telnyx: %s", kept.reason)
    return CallbackResult(unclassified=[kept])
