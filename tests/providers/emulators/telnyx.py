"""A Telnyx Programmable Fax API v2 emulator, built from Telnyx's own published material.

Sources, cited route by route below:
- [SDK] team-telnyx/telnyx-python (commit 6d68c8c): `resources/faxes/faxes.py` (create, retrieve,
  list, delete; "Expected Webhooks"; 50 MB / 350 pages), `resources/faxes/actions.py` (cancel:
  "queued, media.processed, originated or sending"; refresh: "Refreshes the inbound fax's
  media_url when it has expired"), `types/fax.py` (the fax object, its statuses, the
  `failure_reason` values), `types/fax_create_params.py`, `types/fax_list_params.py` (the
  filters, page[number]/page[size]), `types/fax_{queued,media_processed,sending_started,
  delivered,failed}.py` (webhook envelopes), `resources/fax_applications.py` and
  `types/fax_application_update_params.py` (PATCH: application_name and webhook_event_url
  required), `types/phone_number_list_params.py` (filter[connection_id]),
  `lib/webhook_verification.py` (Ed25519 over "timestamp|body", 300 s tolerance).
- [MP] SendFaxMultipartRequest of Telnyx's OpenAPI (as generated in jmordica/telnyx-deno
  `models/SendFaxMultipartRequest.ts`): `contents`, "The maximum allowed size is 20 MB.
  contents and media_name/media_url can't be submitted together".
- [N150] team-telnyx/telnyx-node issue 150: a `contents` part without a filename is answered
  422 "'contents' is invalid".
- [SC] developers.telnyx.com/docs/programmable-fax/sending-commands: a send is answered 202.
- [RW] developers.telnyx.com/docs/programmable-fax/receiving-webhooks: the fax.queued example,
  out-of-order and duplicate webhooks, the failure_reason list.
- [CB] developers.telnyx.com/api-reference/callbacks/fax-delivered, fax-sending-started: the
  examples, `telnyx-timestamp` and `telnyx-signature-ed25519` headers.
- [RX] developers.telnyx.com/docs/programmable-fax/receive-a-fax-api: fax.receiving.started,
  fax.media.processing.started, fax.received with `media_url` (a signed storage link "valid for
  10 minutes"; its example's X-Amz-Expires=7200 says two hours: the sources disagree).
- [LP] the list example (`{"data": [...], "meta": {page_number, page_size, total_pages,
  total_results}}`) of the Programmable Fax Commands reference (preview.redoc.ly/telnyx).

What those sources do not show is the emulator's own choice, marked [I]: error codes and texts
(the shape `{"errors": [{code, title, detail}]}` is Telnyx's), a 429 without rate-limit headers
(none documented), list order (newest first), default page size 20, whether the multipart form
takes `client_state`/`webhook_url` (the SDK sends every create parameter in the one body, the
multipart schema lists only some: accepted here), the outcome of a cancel (`failed` with
`sender_canceled`), the `caller_id` of an inbound fax (shown, unexplained, in [RX]), the failure
reason a fax with no documented cause carries.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import io
import json
import re
import secrets
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from pypdf import PdfReader
from pypdf.errors import PyPdfError
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.providers.emulators._callbacks import CallsBack
from tests.providers.harness import CallbackHTTP, RecordedRequest, Recorder, serve

API_KEY = "KEY0123456789ABCDEF_telnyx-test"
CONNECTION_ID = "1447842681660114324"  # [RX] the inbound examples' connection_id
USER_ID = "19a75cea-02c6-4b9a-84fa-c9bc8341feb8"  # [CB]
MAX_CONTENTS = 20 * 1024 * 1024  # [MP]
# [SDK] types/fax.py failure_reason values, one per failure of the common model; `unknown` is a
# value outside the documented list [I] ("Common values include" says the list is not whole).
FAILURES = {
    "busy": "user_busy",
    "no_answer": "receiver_no_answer",
    "bad_number": "receiver_unallocated_number",
    "disconnected": "receiver_call_dropped",
    "blocked_destination": "destination_not_in_countries_whitelist",
    "file_error": "file_format_invalid",
    "on_hold": "account_disabled",
    "unknown": "internal_error",
}
# The common model's progress → (event, payload status) as [RW]/[CB] show them.
_PROGRESS = {
    "submitted": ("fax.queued", "queued"),
    "sending": ("fax.sending.started", "sending"),
}
CANCELLABLE = ("queued", "media.processed", "originated", "sending")  # [SDK] actions.py
_E164 = re.compile(r"\+[1-9]\d{6,14}")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _pages(pdf: bytes) -> int:
    try:
        return len(PdfReader(io.BytesIO(pdf)).pages)
    except PyPdfError:
        return 1


def error_body(detail: str, code: str = "10015", title: str = "Bad Request") -> dict[str, Any]:
    """Telnyx's error shape: `{"errors": [{code, title, detail}]}` (codes [I])."""
    return {"errors": [{"code": code, "title": title, "detail": detail}]}


def _error(status: int, detail: str, code: str = "10015", title: str = "Bad Request") -> Response:
    return JSONResponse(error_body(detail, code, title), status_code=status)


@dataclass
class TelnyxState:
    faxes: dict[str, dict[str, Any]] = field(default_factory=dict)
    documents: dict[str, bytes] = field(default_factory=dict)  # fax id → PDF (sent or received)
    media_tokens: dict[str, str] = field(default_factory=dict)  # fax id → live media link token
    application: dict[str, Any] = field(
        default_factory=lambda: {
            "id": CONNECTION_ID,
            "record_type": "fax_application",
            "application_name": "office-fax",
            "active": True,
            "webhook_event_url": "https://example.com/webhooks",
            "webhook_event_failover_url": "",
            "webhook_timeout_secs": 25,
            "created_at": "2020-08-27T16:00:00Z",
            "updated_at": "2020-08-27T16:00:00Z",
        }
    )
    numbers: list[str] = field(default_factory=lambda: ["+12125550100"])
    base_root: str = ""  # the emulator's own root URL, for media links
    answer_delay_s: float = 0.0  # the next send is accepted, its answer comes this late

    def new_fax(self, direction: str, **values: Any) -> dict[str, Any]:
        """A fax object with the fields of [SDK] types/fax.py."""
        fax_id = str(uuid.uuid4())
        now = _now()
        fax: dict[str, Any] = {
            "id": fax_id,
            "record_type": "fax",
            "connection_id": CONNECTION_ID,
            "direction": direction,
            "from": None,
            "to": None,
            "from_display_name": None,
            "status": "queued",
            "quality": "high",
            "store_media": False,
            "stored_media_url": None,
            "media_url": None,
            "media_name": None,
            "client_state": None,
            "webhook_url": None,
            "webhook_failover_url": "",
            "failure_reason": None,
            "internal_failure_reason": None,
            "page_count": None,  # telnyx.com release notes 2021: page_count on fax resources
            "created_at": now,
            "updated_at": now,
            **values,
        }
        self.faxes[fax_id] = fax
        return fax

    def media_url(self, fax_id: str) -> str:
        """A fresh signed-looking link to a received fax's PDF (the storage link of [RX])."""
        token = secrets.token_hex(8)
        self.media_tokens[fax_id] = token
        return f"{self.base_root}/faxes-prod/{USER_ID}/{fax_id}.pdf?X-Amz-Signature={token}"


def build_app(state: TelnyxState) -> Starlette:
    def denied(request: Request) -> Response | None:
        # [SC]: `Authorization: Bearer YOUR_API_KEY`.
        if request.headers.get("authorization") != f"Bearer {API_KEY}":
            return _error(401, "The API key is invalid", "10009", "Authentication failed")
        return None

    async def send(request: Request) -> Response:
        """POST /v2/faxes ([SDK] faxes.py create, [MP], [N150], [SC] 202): JSON with media_url /
        media_name, or multipart with the file in `contents`."""
        if refused := denied(request):
            return refused
        values: dict[str, Any]
        contents: bytes | None = None
        if request.headers.get("content-type", "").startswith("multipart/form-data"):
            async with request.form() as form:
                values = {k: v for k, v in form.multi_items() if isinstance(v, str)}
                upload = form.get("contents")
                if isinstance(upload, UploadFile):
                    if not upload.filename:  # [N150]
                        return _error(422, "'contents' is invalid", "10015", "Invalid value")
                    contents = await upload.read()
                elif upload is not None:  # a plain field: no file at all [N150]
                    return _error(422, "'contents' is invalid", "10015", "Invalid value")
        else:
            try:
                values = json.loads(await request.body())
            except json.JSONDecodeError:
                return _error(400, "The request body is not valid JSON")
            if not isinstance(values, dict):
                return _error(400, "The request body is not a JSON object")
        for required in ("connection_id", "to", "from"):  # fax_create_params.py: Required
            if not values.get(required):
                return _error(422, f"The '{required}' parameter is required", "10005")
        if values["connection_id"] != CONNECTION_ID:
            return _error(422, "The connection_id is not a fax application of this account")
        if not (_E164.fullmatch(values["to"]) or values["to"].startswith("sip:")):
            return _error(422, "The 'to' number must be in E.164 format or a SIP URI")
        if not _E164.fullmatch(values["from"]):
            return _error(422, "The 'from' number must be in E.164 format")
        given = [k for k in ("media_url", "media_name") if values.get(k)] + (
            ["contents"] if contents is not None else []
        )
        if len(given) != 1:  # [MP]
            return _error(422, "contents and media_name/media_url can't be submitted together")
        if contents is not None and len(contents) > MAX_CONTENTS:
            return _error(422, "The file you want to upload exceeds 20 MB")  # [MP]
        state_value = values.get("client_state")
        if state_value:
            try:  # "It must be a valid Base-64 encoded string" (fax_create_params.py)
                base64.b64decode(state_value, validate=True)
            except binascii.Error:
                return _error(422, "client_state must be a valid Base-64 encoded string")
        fax = state.new_fax(
            "outbound",
            to=values["to"],
            **{"from": values["from"]},
            from_display_name=values.get("from_display_name") or values["from"],
            client_state=state_value or None,
            webhook_url=values.get("webhook_url") or None,
            media_url=values.get("media_url"),
            media_name=values.get("media_name"),
        )
        if contents is not None:
            state.documents[fax["id"]] = contents
            fax["page_count"] = _pages(contents)
        if state.answer_delay_s:  # accepted, but the answer is late (a lost answer)
            delay, state.answer_delay_s = state.answer_delay_s, 0.0
            await asyncio.sleep(delay)
        return JSONResponse({"data": fax}, status_code=202)

    def lookup(request: Request) -> dict[str, Any] | Response:
        if refused := denied(request):
            return refused
        fax = state.faxes.get(request.path_params["fax_id"])
        if fax is None:
            return _error(404, "Resource not found", "10005", "Resource not found")  # [I]
        return fax

    async def retrieve(request: Request) -> Response:
        """GET /v2/faxes/{id} ([SDK] faxes.py retrieve): `{"data": fax}`."""
        fax = lookup(request)
        return fax if isinstance(fax, Response) else JSONResponse({"data": fax})

    async def delete(request: Request) -> Response:
        """DELETE /v2/faxes/{id} ([SDK] faxes.py delete: no body, `Accept: */*`)."""
        fax = lookup(request)
        if isinstance(fax, Response):
            return fax
        del state.faxes[fax["id"]]
        state.documents.pop(fax["id"], None)
        state.media_tokens.pop(fax["id"], None)
        return Response(status_code=204)

    async def cancel(request: Request) -> Response:
        """POST /v2/faxes/{id}/actions/cancel ([SDK] actions.py): only an outbound fax queued,
        media.processed, originated or sending; `{"data": {"result": "ok"}}`."""
        fax = lookup(request)
        if isinstance(fax, Response):
            return fax
        if fax["direction"] != "outbound" or fax["status"] not in CANCELLABLE:
            return _error(422, f"A {fax['status']} fax cannot be cancelled", "90034")  # [I]
        fax.update(status="failed", failure_reason="sender_canceled", updated_at=_now())  # [I]
        return JSONResponse({"data": {"result": "ok"}})

    async def refresh(request: Request) -> Response:
        """POST /v2/faxes/{id}/actions/refresh ([SDK] actions.py): a new inbound media_url."""
        fax = lookup(request)
        if isinstance(fax, Response):
            return fax
        if fax["direction"] != "inbound" or fax["id"] not in state.documents:
            return _error(422, "Only a received fax's media can be refreshed", "90035")  # [I]
        fax.update(media_url=state.media_url(fax["id"]), updated_at=_now())
        return JSONResponse({"data": {"result": "ok"}})

    async def listing(request: Request) -> Response:
        """GET /v2/faxes ([SDK] fax_list_params.py filters; [LP] the answer's `meta`)."""
        if refused := denied(request):
            return refused
        params = request.query_params
        rows = sorted(state.faxes.values(), key=lambda f: f["created_at"], reverse=True)  # [I]
        for key, wanted in (
            ("filter[direction][eq]", "direction"),
            ("filter[from][eq]", "from"),
            ("filter[to][eq]", "to"),
        ):
            if params.get(key):
                rows = [f for f in rows if f[wanted] == params[key]]
        for op, keep in (
            ("gte", lambda a, b: a >= b),
            ("gt", lambda a, b: a > b),
            ("lte", lambda a, b: a <= b),
            ("lt", lambda a, b: a < b),
        ):
            bound = params.get(f"filter[created_at][{op}]")
            if bound:
                try:
                    limit = datetime.fromisoformat(bound.replace("Z", "+00:00"))
                except ValueError:
                    return _error(400, f"filter[created_at][{op}] must be ISO 8601")
                rows = [f for f in rows if keep(_at(f["created_at"]), limit)]
        number = int(params.get("page[number]") or 1)
        size = int(params.get("page[size]") or 20)  # [I] default
        if number < 1 or not 1 <= size <= 250:
            return _error(400, "page[number] must be ≥ 1 and page[size] 1 to 250")  # [I]
        page = rows[(number - 1) * size : number * size]
        meta = {
            "page_number": number,
            "page_size": size,
            "total_pages": max(1, -(-len(rows) // size)),
            "total_results": len(rows),
        }
        return JSONResponse({"data": page, "meta": meta})

    async def application(request: Request) -> Response:
        """GET / PATCH /v2/fax_applications/{id} ([SDK] fax_applications.py; the update
        requires application_name and webhook_event_url)."""
        if refused := denied(request):
            return refused
        if request.path_params["app_id"] != CONNECTION_ID:
            return _error(404, "Resource not found", "10005", "Resource not found")
        if request.method == "PATCH":
            body = await request.json()
            for required in ("application_name", "webhook_event_url"):
                if not isinstance(body, dict) or not body.get(required):
                    return _error(422, f"The '{required}' parameter is required", "10005")
            state.application.update(body, updated_at=_now())
        return JSONResponse({"data": state.application})

    async def phone_numbers(request: Request) -> Response:
        """GET /v2/phone_numbers ([SDK] phone_number_list_params.py filter[connection_id])."""
        if refused := denied(request):
            return refused
        wanted = request.query_params.get("filter[connection_id]")
        rows = [
            {
                "id": str(uuid.uuid5(uuid.NAMESPACE_URL, number)),
                "record_type": "phone_number",
                "phone_number": number,
                "status": "active",
                "connection_id": CONNECTION_ID,
            }
            for number in state.numbers
        ]
        rows = [r for r in rows if not wanted or r["connection_id"] == wanted]
        number = int(request.query_params.get("page[number]") or 1)
        size = int(request.query_params.get("page[size]") or 20)
        page = rows[(number - 1) * size : number * size]
        meta = {
            "page_number": number,
            "page_size": size,
            "total_pages": max(1, -(-len(rows) // size)),
            "total_results": len(rows),
        }
        return JSONResponse({"data": page, "meta": meta})

    async def media(request: Request) -> Response:
        """The signed storage link of [RX]: no API key; a stale signature is refused with 403,
        as a signed storage URL past its expiry is [I]."""
        fax_id = request.path_params["fax_id"]
        token = state.media_tokens.get(fax_id)
        if token is None or request.query_params.get("X-Amz-Signature") != token:
            return Response(b"<Error><Code>AccessDenied</Code></Error>", 403)
        return Response(state.documents[fax_id], media_type="application/pdf")

    return Starlette(
        routes=[
            Route("/v2/faxes", send, methods=["POST"]),
            Route("/v2/faxes", listing, methods=["GET"]),
            Route("/v2/faxes/{fax_id}", retrieve, methods=["GET"]),
            Route("/v2/faxes/{fax_id}", delete, methods=["DELETE"]),
            Route("/v2/faxes/{fax_id}/actions/cancel", cancel, methods=["POST"]),
            Route("/v2/faxes/{fax_id}/actions/refresh", refresh, methods=["POST"]),
            Route("/v2/fax_applications/{app_id}", application, methods=["GET", "PATCH"]),
            Route("/v2/phone_numbers", phone_numbers, methods=["GET"]),
            Route("/faxes-prod/{user_id}/{fax_id}.pdf", media, methods=["GET"]),
        ]
    )


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


class TelnyxHarness(CallsBack):
    provider_type = "telnyx"
    supported_failures: tuple[str, ...] = tuple(FAILURES)

    def __init__(self, recorder: Recorder, state: TelnyxState, base_url: str) -> None:
        self.recorder = recorder
        self.state = state
        self.base_url = base_url
        self.signing_key = Ed25519PrivateKey.generate()  # the account's webhook key pair
        raw = self.signing_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.public_key = base64.b64encode(raw).decode()

    @property
    def requests(self) -> list[RecordedRequest]:
        return self.recorder.requests

    def provider_config(self, callback_token: str) -> dict[str, Any]:
        return {
            "type": "telnyx",
            "base_url": self.base_url,
            "api_key": API_KEY,
            "connection_id": CONNECTION_ID,
            "public_key": self.public_key,
            "callback_token": callback_token,
        }

    def fail_next(
        self, status: int, body: Any = None, headers: dict[str, str] | None = None, count: int = 1
    ) -> None:
        # No rate-limit headers on a 429: none is documented [I].
        self.recorder.fail_next(status, body, headers, count)

    def hang_next(self, seconds: float) -> None:
        self.recorder.hang_next(seconds)

    def error_body(self, message: str) -> dict[str, Any]:
        return error_body(message)

    def answer_late(self, seconds: float) -> None:
        """The next send is accepted at once, but its answer comes `seconds` later."""
        self.state.answer_delay_s = seconds

    # -- where webhooks go -----------------------------------------------------------------
    def registered_callback_url(self, inbound: bool) -> str | None:
        """A sent fax's own `webhook_url` overrides the application's ([SDK] create params);
        inbound faxes go to the application's `webhook_event_url`. Only a URL `setup` put
        there (the bridge's) counts: the default one reaches nobody."""
        if not inbound:
            sent = [f for f in self.state.faxes.values() if f["direction"] == "outbound"]
            if sent and sent[-1].get("webhook_url"):
                return str(sent[-1]["webhook_url"])
        url = str(self.state.application.get("webhook_event_url") or "")
        return url if "/callbacks/" in url else None

    # -- webhooks ------------------------------------------------------------------------
    def signed(
        self, body: bytes, *, key: Ed25519PrivateKey | None = None, at: float | None = None
    ) -> CallbackHTTP:
        """`body` as Telnyx posts it: JSON, `telnyx-timestamp` and the Ed25519 signature of
        "timestamp|body" ([SDK] lib/webhook_verification.py, [CB] headers)."""
        stamp = str(int(time.time() if at is None else at))
        signature = (key or self.signing_key).sign(stamp.encode() + b"|" + body)
        return CallbackHTTP(
            headers={
                "content-type": "application/json",
                "telnyx-timestamp": stamp,
                "telnyx-signature-ed25519": base64.b64encode(signature).decode(),
            },
            body=body,
        )

    def event(self, event_type: str, payload: dict[str, Any], **signing: Any) -> CallbackHTTP:
        """The envelope of [SDK] types/fax_*.py and [CB]: data{event_type, id, occurred_at,
        payload, record_type}, meta{attempt, delivered_to}."""
        envelope = {
            "data": {
                "event_type": event_type,
                "id": str(uuid.uuid4()),
                "occurred_at": _now(),
                "payload": payload,
                "record_type": "event",
            },
            "meta": {"attempt": 1, "delivered_to": self.callback_target or "https://example.com"},
        }
        return self.signed(json.dumps(envelope).encode(), **signing)

    def outbound_payload(self, fax: dict[str, Any]) -> dict[str, Any]:
        """The payload fields of [SDK] types/fax_queued.py (and its siblings) for `fax`."""
        payload = {
            "connection_id": fax["connection_id"],
            "direction": "outbound",
            "fax_id": fax["id"],
            "from": fax["from"],
            "status": fax["status"],
            "to": fax["to"],
            "user_id": USER_ID,
        }
        if fax.get("client_state"):
            payload["client_state"] = fax["client_state"]
        if fax.get("media_url"):
            payload["original_media_url"] = fax["media_url"]
        return payload

    def advance(
        self, fax_id: str, status: str, reason: str | None = None
    ) -> tuple[str, dict[str, Any]]:
        """Move fax `fax_id` to the common-model `status`; (event type, webhook payload)."""
        fax = self.state.faxes.get(fax_id) or self.state.new_fax(
            "outbound", to="+12125550123", **{"from": "+12125550100"}
        )
        fax["updated_at"] = _now()
        if status in _PROGRESS:
            event, fax["status"] = _PROGRESS[status]
            return event, self.outbound_payload(fax)
        if status == "delivered":  # [CB] fax.delivered: call_duration_secs, page_count
            fax["status"] = "delivered"
            payload = self.outbound_payload(fax)
            payload |= {"call_duration_secs": 25, "page_count": fax.get("page_count") or 1}
            return "fax.delivered", payload
        if status == "failed":  # [SDK] types/fax_failed.py
            cause = FAILURES[reason or "unknown"]
            fax.update(
                status="failed", failure_reason=cause, internal_failure_reason=f"{cause}_sip"
            )
            payload = self.outbound_payload(fax)
            payload |= {
                "failure_reason": cause,
                "internal_failure_reason": fax["internal_failure_reason"],
            }
            return "fax.failed", payload
        raise NotImplementedError(f"Telnyx reports no {status!r}")

    def settle(self, fax_id: str, status: str, reason: str | None = None) -> None:
        """The fax moves on without a webhook reaching anyone (`GET /v2/faxes/{id}` shows it)."""
        self.advance(fax_id, status, reason)

    def status_callback(
        self, provider_fax_id: str, status: str, reason: str | None = None
    ) -> CallbackHTTP:
        return self.event(*self.advance(provider_fax_id, status, reason))

    def receive(self, from_number: str, to_number: str, pdf: bytes) -> dict[str, Any]:
        """A fax arriving on `to_number` ([RX]): stored, its media link live."""
        fax = self.state.new_fax(
            "inbound",
            status="received",
            to=to_number,
            **{"from": from_number},
            page_count=_pages(pdf),
        )
        self.state.documents[fax["id"]] = pdf
        fax["media_url"] = self.state.media_url(fax["id"])
        return fax

    def inbound_payload(self, fax: dict[str, Any]) -> dict[str, Any]:
        """[RX] fax.received: media_url, page_count, partial_content, caller_id …"""
        return {
            "call_duration_secs": 50,
            "connection_id": CONNECTION_ID,
            "direction": "inbound",
            "fax_id": fax["id"],
            "from": fax["from"],
            "media_url": fax["media_url"],
            "page_count": fax["page_count"],
            "partial_content": False,
            "status": "received",
            "to": fax["to"],
            "user_id": USER_ID,
            "caller_id": fax["from"],
        }

    def inbound_callback(self, from_number: str, to_number: str, pdf: bytes) -> CallbackHTTP:
        fax = self.receive(from_number, to_number, pdf)
        return self.event("fax.received", self.inbound_payload(fax))

    def expire_media(self, fax_id: str) -> None:
        """The received fax's link outlives its signature (10 minutes, [RX])."""
        self.state.media_tokens[fax_id] = secrets.token_hex(8)

    def unclassifiable_callback(self) -> CallbackHTTP:
        """[RX] fax.media.processing.started: an inbound fax still being turned into a PDF."""
        payload = {
            "connection_id": CONNECTION_ID,
            "direction": "inbound",
            "fax_id": str(uuid.uuid4()),
            "from": "+16132484850",
            "status": "media.processing",
            "page_count": 2,
            "to": "+17733372863",
            "user_id": USER_ID,
            "caller_id": "+16132484872",
        }
        return self.event("fax.media.processing.started", payload)

    def forged(self, callback: CallbackHTTP) -> CallbackHTTP:
        """The same webhook signed with a key that is not the account's."""
        return self.signed(callback.body, key=Ed25519PrivateKey.generate())


@contextlib.contextmanager
def make_harness() -> Iterator[TelnyxHarness]:
    state = TelnyxState()
    recorder = Recorder(build_app(state))
    with serve(recorder) as root:
        state.base_root = root
        yield TelnyxHarness(recorder, state, f"{root}/v2")
