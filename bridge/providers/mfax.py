"""mFax / Documo API v1: docs.documo.com (seed 004) and the help.documo.com webhook pages.

Documo authenticates with `Authorization: Basic <API key>` (the raw key). A fax is one
multipart `POST /faxes` whose answer is the fax object; its `messageId` names it everywhere
after. Our reference travels in the custom fields (`cf`), which the fax history returns and its
`query` searches, so `find` asks the history, paged and bounded, 8 calls a minute at most.

Webhooks carry the fax object: as a JSON body (new webhooks) or as the `data` field of a form
whose `attachment` is the received fax (legacy). They are read by the fax object's own fields
(`direction`, `status`, `faxNumber`, `faxCallerId`, `faxCsid`); neither shape is signed, so the
bridge's token in the URL authenticates them. Documo publishes no table of failure codes: a
failure's reason is read from its words, else it is `unknown` with Documo's code and text.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from bridge.config import MFaxConfig
from bridge.errors import PermanentProviderError
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
from bridge.providers.mfax_wire import (
    JOB_FIELD,
    REFERENCE_FIELD,
    CallBudget,
    answer_json,
    caller_id_field,
    classify,
    decode_webhook,
    e164,
    failure_code,
    failure_reason,
    fax_object,
    parse_time,
    raw_status,
    reference_value,
)
from bridge.providers.reference import linked, parse_reference
from bridge.providers.values import as_int

log = logging.getLogger(__name__)

# Documo's documented field limits; longer values are refused, so we shorten them.
_LIMITS = {"recipientName": 40, "senderName": 40, "subject": 55, "notes": 4000}
# `GET /fax/history`: "Rate Limit: 8 per minute"; `limit` "Maximum 500".
HISTORY_PER_MINUTE = 8
HISTORY_PAGE = 500
HISTORY_PAGES = 2
# Job records live 30 days by default (storage.retention_days): no older job is re-sent, so
# nothing older needs finding; one day more for time zones (`fromDate` is a date).
LOOKBACK_DAYS = 31
NUMBERS_PAGE, NUMBERS_PAGES = 100, 20


class MFaxProvider(HTTPProvider[MFaxConfig]):
    type = "mfax"
    default_base_url = "https://api.documo.com/v1"
    # Documo tries a webhook seven times, 5 s, 25 s, 2 m, 10 m, 52 m, 4 h and 22 h apart
    # (help.documo.com "New Webhooks"): the last news can come 27 h 4 m after the event.
    forgotten_grace_s = 28 * 3600.0

    def __init__(
        self, name: str, config: MFaxConfig, client: httpx.AsyncClient, context: ProviderContext
    ) -> None:
        super().__init__(name, config, client, context)
        self._account_id = config.account_id
        self._history = CallBudget(HISTORY_PER_MINUTE)

    async def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Basic {self.config.api_key}", "Accept": "application/json"}
        kwargs["headers"] = headers | kwargs.get("headers", {})
        return await self.request(method, path, **kwargs)

    # -- sending -------------------------------------------------------------------------
    async def send(self, fax: OutboundFax) -> SendResult:
        # Native cover page (`coverPage` + its fields): the document goes without ours.
        if fax.cover is None and fax.cover_pdf is not None:
            pdf = await asyncio.to_thread(transmitted_pdf, fax)
        else:
            pdf = await asyncio.to_thread(fax.document.read_bytes)
        custom = {JOB_FIELD: fax.job_id, REFERENCE_FIELD: str(fax.reference)}
        fields = {
            "faxNumber": fax.to,
            "coverPage": "true" if fax.cover is not None else "false",
            "cf": json.dumps(custom),
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
        response = await self.call(
            "POST",
            "/faxes",
            data=fields,
            files={"attachments": (f"{fax.job_id}.pdf", pdf, "application/pdf")},
        )
        body = fax_object(answer_json(response), self.name)
        self._account_id = self._account_id or body.get("accountId")
        status = classify(body) or JobStatus.SUBMITTED
        if status in (JobStatus.FAILED, JobStatus.CANCELLED):
            text = body.get("errorInfo") or body.get("resultInfo") or body.get("status")
            raise PermanentProviderError(
                f"{self.name}: fax refused: {text}", code=failure_code(body)
            )
        log.info("%s: job %s accepted as fax %s", self.name, fax.job_id, body["messageId"])
        return SendResult(str(body["messageId"]), status, raw_status=str(body.get("status")))

    # -- status and reconciliation -------------------------------------------------------
    async def status(
        self, provider_fax_id: str, *, job_id: str | None = None
    ) -> StatusUpdate | None:
        response = await self.call_or_forgotten("GET", f"/fax/{provider_fax_id}/info")
        if response is None:
            return None
        return self._update(fax_object(answer_json(response), self.name))

    async def find(self, fax: OutboundFax) -> Lookup:
        """The history's faxes whose custom fields name `fax.job_id`, newest first."""
        if not self._account_id:
            return Lookup(
                certain=False,
                detail=f"{self.name}: Documo's fax history needs the account id: set "
                f"account_id under providers.{self.name}",
            )
        today = datetime.now(UTC).date()
        params: dict[str, str | int] = {
            "accountId": self._account_id,
            "limit": HISTORY_PAGE,
            "direction": "outbound",
            "status": "all",
            "fromDate": (today - timedelta(days=LOOKBACK_DAYS)).isoformat(),
            "toDate": (today + timedelta(days=1)).isoformat(),
            "query": fax.job_id,
        }
        found: list[tuple[str, StatusUpdate]] = []  # (createdAt, the fax's news)
        offset = 0
        for _ in range(HISTORY_PAGES):
            self._history.take(f"{self.name}: the fax history")
            response = await self.call("GET", "/fax/history", params={**params, "offset": offset})
            body = answer_json(response)
            rows = body.get("rows") if isinstance(body, dict) else None
            rows = rows if isinstance(rows, list) else []
            for row in rows:
                update = self._update(row) if isinstance(row, dict) else None
                if update is not None and update.job_id == fax.job_id:
                    found.append((str(row.get("createdAt") or ""), update))
            offset += len(rows)
            total = as_int(body.get("count")) if isinstance(body, dict) else None
            if len(rows) < HISTORY_PAGE or (total is not None and offset >= total):
                break
        else:
            return Lookup(
                certain=False,
                detail=f"{self.name}: more than {offset} faxes in Documo's history match job "
                f"{fax.job_id}; only those were read",
            )
        found.sort(key=lambda pair: pair[0], reverse=True)  # ISO times: newest first
        return Lookup(faxes=tuple(update for _, update in found))

    def _update(self, fax: dict[str, Any], event: str = "") -> StatusUpdate | None:
        status = classify(fax, event)
        if status is None or not fax.get("messageId"):
            return None
        failed = status is JobStatus.FAILED
        text = fax.get("errorInfo") or fax.get("resultInfo")
        if failed and str(text).upper() == "OK":
            text = None  # the `resultInfo` a fax is created with, not why it failed
        update = StatusUpdate(
            provider_fax_id=str(fax["messageId"]),
            status=status,
            reason=failure_reason(fax) if failed else None,
            provider_code=failure_code(fax) if failed else raw_status(fax, event),
            provider_text=str(text) if text else None,
            pages=as_int(fax.get("pagesCount")),
            at=parse_time(fax.get("resolvedDate") or fax.get("createdAt")),
        )
        return linked(update, reference_value(fax))

    # -- cancel, delete, lines -----------------------------------------------------------
    async def cancel(self, provider_fax_id: str) -> None:
        """`POST /fax/{id}/cancel` stops a `processing` or `scheduled` fax, nothing later."""
        try:
            response = await self.call("POST", f"/fax/{provider_fax_id}/cancel")
        except PermanentProviderError as exc:
            if exc.code in ("404", "410"):
                raise PermanentProviderError(
                    f"{self.name}: Documo has no fax {provider_fax_id}", code=exc.code
                ) from exc
            raise PermanentProviderError(
                f"{self.name}: Documo cancels only a fax still processing or scheduled, and "
                f"refused to cancel {provider_fax_id}: {exc.message}",
                code=exc.code,
            ) from exc
        body = answer_json(response)
        state = str(body.get("status") or "") if isinstance(body, dict) else ""
        if state and state.lower() not in ("cancelled", "canceled"):
            raise PermanentProviderError(
                f"{self.name}: fax {provider_fax_id} was not cancelled: it is {state}",
                code=state,
            )

    async def delete(self, provider_fax_id: str, *, inbound: bool = False) -> None:
        """`DELETE /fax/{id}` removes a fax, sent or received; gone already is done."""
        await self.call_or_forgotten("DELETE", f"/fax/{provider_fax_id}")

    async def fax_lines(self) -> list[str]:
        """The account's numbers (`GET /numbers`, paged); released ones (pending) left out."""
        lines: list[str] = []
        offset = 0
        for _ in range(NUMBERS_PAGES):
            params = {"offset": offset, "limit": NUMBERS_PAGE}
            body = answer_json(await self.call("GET", "/numbers", params=params))
            rows = body.get("rows") if isinstance(body, dict) else None
            rows = [r for r in rows if isinstance(r, dict)] if isinstance(rows, list) else []
            lines += [e164(r.get("number")) for r in rows if not r.get("pendingUntil")]
            offset += len(rows)
            total = as_int(body.get("count")) if isinstance(body, dict) else None
            if not rows or (total is not None and offset >= total):
                break
        return sorted({line for line in lines if line})

    # -- callbacks -----------------------------------------------------------------------
    async def parse_callback(self, request: CallbackRequest) -> CallbackResult:
        self.verify_callback_token(request)
        event, fax, document = decode_webhook(request)
        if not fax.get("messageId"):
            return _kept("names no fax (no messageId); a number event, perhaps", event)
        direction = str(fax.get("direction") or "").lower()
        if not direction:
            direction = "inbound" if ".inbound." in event else "outbound" if event else ""
        if direction == "inbound":
            return self._inbound_result(fax, event, document)
        update = self._update(fax, event) if direction == "outbound" else None
        if update is None:
            why = f"direction {direction or 'missing'}, status {fax.get('status') or 'missing'}"
            return _kept(f"is no outbound fax news the bridge can read ({why})", event, fax)
        return CallbackResult(updates=[update])

    def _inbound_result(
        self, fax: dict[str, Any], event: str, document: bytes | None
    ) -> CallbackResult:
        status = classify(fax, event)
        if status is None and document:  # a legacy form with the received fax attached
            status = JobStatus.DELIVERED
        if status is not JobStatus.DELIVERED:  # nothing arrived that could be mailed
            why = fax.get("errorInfo") or fax.get("resultInfo")
            state = f"status {fax.get('status') or 'missing'}" + (f" ({why})" if why else "")
            return _kept(f"tells of an inbound fax with {state}: nothing to mail", event, fax)
        country = fax.get("country")
        called, caller = e164(fax.get("faxNumber"), country), e164(fax.get("faxCallerId"), country)
        ours = self.context.inbound_numbers
        if called not in ours and caller in ours:
            # The pages say nothing of which number is whose on a received fax; `faxNumber`
            # names the number dialled on a sent one, so it is read the same way unless the
            # caller's is one of ours and the called one is not.
            called, caller = caller, called
        return CallbackResult(
            inbound=[
                InboundFax(
                    provider_fax_id=str(fax["messageId"]),
                    from_number=caller,
                    to_number=called,
                    pages=as_int(fax.get("pagesCount")),
                    received=parse_time(fax.get("resolvedDate") or fax.get("createdAt")),
                    remote_station_id=str(fax["faxCsid"]) if fax.get("faxCsid") else None,
                    document=document,
                    raw=dict(fax),
                )
            ]
        )

    async def fetch_document(self, fax: InboundFax) -> bytes:
        if fax.document is not None:
            return fax.document
        response = await self.call(
            "GET", f"/fax/{fax.provider_fax_id}/download", headers={"Accept": "application/pdf"}
        )
        return response.content

    # -- admin ---------------------------------------------------------------------------
    async def check(self) -> str:
        # Not `/fax/history`: Documo allows it only 8 times a minute.
        response = await self.call("GET", "/numbers", params={"limit": 1})
        count = answer_json(response).get("count", "?")
        return f"mFax API key works: the account has {count} fax number(s)"

    async def setup(self) -> list[str]:
        lines = [
            "The bridge does not register Documo webhooks itself: add one in the Documo web",
            "app (Toolbox → Webhooks → Add New Webhook) with:",
            f"  URL:    {self.callback_url()}",
            "  events: fax.v1.outbound.complete and fax.v1.inbound.complete",
            "  (legacy webhooks also work: fax.outbound.extended and fax.inbound)",
            "Leave Basic Auth off: the token in the URL authenticates the callbacks.",
        ]
        if not self.config.account_id:
            lines.append(
                f"Set account_id under providers.{self.name} (the id in Documo's account "
                "settings): without it a fax is not looked up before it is sent again."
            )
        return lines


def _kept(what: str, event: str, fax: dict[str, Any] | None = None) -> CallbackResult:
    message_id = str(fax["messageId"]) if fax and fax.get("messageId") else None
    job = parse_reference(reference_value(fax)) if fax else None
    kept = UnclassifiedCallback(
        reason=f"a Documo webhook that {what}",
        event=event or None,
        provider_fax_id=message_id,
        job_id=job.job_id if job else None,
    )
    log.warning("mfax: %s", kept.reason)
    return CallbackResult(unclassified=[kept])
