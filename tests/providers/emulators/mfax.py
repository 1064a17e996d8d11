"""An mFax / Documo API v1 emulator, built from Documo's own published material.

Sources, cited route by route below:
- [API] the docs.documo.com API reference, as captured in seed 004
  (`/work/shared/seeds/004_32da49b255f84271.txt`, cited "API L<line>"): the send form, the fax
  object of its examples, info, download, cancel, delete, history ("Rate Limit: 8 per minute")
  and numbers.
- [NEW] help.documo.com/hc/en-us/articles/20760014975643-New-Webhooks: "Webhooks contain JSON
  object"; events fax.v1.{outbound,inbound}.{init,succeed,failed,complete}, fax.v1.number.{add,
  release}; seven tries 5 s, 25 s, 2 m, 10 m, 52 m, 4 h, 22 h; optional Basic auth.
- [LEGACY] help.documo.com/hc/en-us/articles/7790970638107-Legacy-Webhooks (and the older
  help.documo.com/en/articles/3742441-webhooks): multipart/form-data with the fax object as
  JSON in field `data` and the file in `attachment` (its multer example); `fax.outbound.extended`
  posts every status (success, transmitting, scheduled, failed, processing, cancelled).

What those sources do not show is the emulator's own choice, marked [I] where it is made: error
bodies (`{"error": …}`), a 429 without Retry-After, failure texts and codes (Documo publishes
no table), the answer to cancelling a sent fax, the inbound fax's numbers (`faxNumber` the
number called, `faxCallerId` the caller, as `callerId`/`faxNumber` work for a send), and the
JSON webhook's envelope (a bare fax object: the only webhook body any page shows).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import re
import secrets
import time
import uuid
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pypdf import PdfReader
from pypdf.errors import PyPdfError
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from tests.providers.emulators._callbacks import CallsBack
from tests.providers.harness import CallbackHTTP, RecordedRequest, Recorder, serve

API_KEY = "mfax-test-api-key"
ACCOUNT_ID = "efaa36f7-d9a0-493f-a3aa-0cb1114eea0c"  # API L71 (the send example's accountId)
DEFAULT_CALLER_ID = "5094570000"  # API L59: ten digits, the account's default line
# API L13-17: the cover fields' limits; callerId "10 characters limit".
LIMITS = {"recipientName": 40, "senderName": 40, "subject": 55, "notes": 4000, "callerId": 10}
HISTORY_PER_MINUTE = 8  # API L480
# [I] (errorCode, errorInfo) for each failure of the common model: Documo documents none.
FAILURES = {
    "busy": ("486", "Line busy"),
    "no_answer": ("480", "No answer from the destination"),
    "bad_number": ("404", "Invalid fax number"),
    "disconnected": ("49", "The call dropped prematurely"),
    "blocked_destination": ("603", "Destination is blocked"),
    "file_error": ("415", "Document conversion failed"),
    "on_hold": ("402", "Insufficient credit"),
    "unknown": ("1", "Fax failed"),
}
_PROGRESS = {"submitted": "processing", "sending": "transmitting"}  # LEGACY status list
# The first keys of the LEGACY fax.inbound example, in its order; the rest follow API L590.
_WEBHOOK_FIRST = ("resultInfo", "messageId", "channelType", "isArchived", "isFilePurged")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _pages(pdf: bytes) -> int:
    try:
        return len(PdfReader(io.BytesIO(pdf)).pages)
    except PyPdfError:
        return 1


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)  # [I] the error body


def multipart(fields: dict[str, str], files: dict[str, tuple[str, bytes]]) -> CallbackHTTP:
    """A `multipart/form-data` body as Documo's legacy webhooks send it (LEGACY)."""
    boundary = f"----mfax{secrets.token_hex(8)}"
    chunks = []
    for name, value in fields.items():
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
        chunks.append(head.encode() + value.encode() + b"\r\n")
    for name, (filename, data) in files.items():
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
            f'filename="{filename}"\r\nContent-Type: application/pdf\r\n\r\n'
        )
        chunks.append(head.encode() + data + b"\r\n")
    body = b"".join(chunks) + f"--{boundary}--\r\n".encode()
    return CallbackHTTP(
        headers={"content-type": f"multipart/form-data; boundary={boundary}"}, body=body
    )


def _searchable(fax: dict[str, Any]) -> str:
    """API L492: `query` searches "CSID, Caller ID, fax number, message id, subject, recipient
    name or custom fields" (as a case-insensitive substring [I])."""
    keys = ("faxCsid", "faxCallerId", "faxNumber", "messageId", "subject", "recipientName")
    values = [str(fax.get(k) or "") for k in keys]
    values += [str(v) for v in (fax.get("cf") or {}).values()]
    return "\n".join(values).lower()


@dataclass
class MFaxState:
    faxes: dict[str, dict[str, Any]] = field(default_factory=dict)
    documents: dict[str, bytes] = field(default_factory=dict)
    numbers: list[str] = field(default_factory=lambda: ["2125550100"])  # API L757 style
    history_calls: deque[float] = field(default_factory=deque)
    answer_delay_s: float = 0.0  # the next send is accepted, its answer comes this late

    def new_fax(self, direction: str, **values: Any) -> dict[str, Any]:
        """A fax object shaped like the send example's answer (API L44-107)."""
        message_id = str(uuid.uuid4())
        fax = {
            "errorInfo": None,
            "resultInfo": "OK",
            "processingStatusName": "processing",
            "classificationLabel": direction,
            "messageId": message_id,
            "deliveryId": None,
            "watermark": None,
            "messageNumber": None,
            "status": "processing",
            "pagesCount": 1,
            "pagesComplete": 0,
            "duration": None,
            "faxNumber": None,
            "faxCsid": "mFax",
            "faxCallerId": DEFAULT_CALLER_ID,
            "faxAttempt": None,
            "direction": direction,
            "channelType": "api",
            "recipientName": None,
            "subject": None,
            "accountId": ACCOUNT_ID,
            "errorCode": None,
            "resultCode": "0",
            "isArchived": False,
            "isFilePurged": False,
            "country": "US",
            "createdAt": _now(),
            "resolvedDate": None,
            "deletedAt": None,
            "tags": [],
            "contacts": [],
            "cf": {},
            **values,
        }
        self.faxes[message_id] = fax
        return fax


def info_view(fax: dict[str, Any]) -> dict[str, Any]:
    """The info example (API L590-636) and the cancel example (API L363-399) carry no `cf`."""
    return {k: v for k, v in fax.items() if k not in ("cf", "classificationLabel")}


def webhook_view(fax: dict[str, Any]) -> dict[str, Any]:
    """A webhook's fax object: the LEGACY example's first keys, then the info object's [I]."""
    shown = info_view(fax)
    return {**{k: shown[k] for k in _WEBHOOK_FIRST}, **shown}


def build_app(state: MFaxState) -> Starlette:
    def denied(request: Request) -> Response | None:
        # API L35: `Authorization: Basic API_KEY`, the raw key.
        if request.headers.get("authorization") != f"Basic {API_KEY}":
            return _error(401, "Unauthorized: invalid API key")  # [I]
        return None

    async def send(request: Request) -> Response:
        """POST /v1/faxes (API L2-107): multipart; `faxNumber` in the example, `recipientFax`
        in the table; repeatable `attachments`; cover fields; `cf` a JSON object."""
        if refused := denied(request):
            return refused
        async with request.form() as form:
            values = {k: v for k, v in form.multi_items() if isinstance(v, str)}
            files = [await v.read() for k, v in form.multi_items() if isinstance(v, UploadFile)]
        number = values.get("faxNumber") or values.get("recipientFax")
        if not number or not re.fullmatch(r"\+?\d{10,15}", number):
            return _error(400, "InvalidInputError: faxNumber must be a fax number")  # [I]
        cover = values.get("coverPage", "false").lower() == "true"
        if not files and not cover:
            return _error(400, "InvalidInputError: No files and cover page in to send.")  # L193
        for key, limit in LIMITS.items():
            if len(values.get(key, "")) > limit:
                return _error(400, f"ValidationError: {key} is limited to {limit} characters")
        try:
            custom = json.loads(values.get("cf") or "{}")
        except json.JSONDecodeError:
            return _error(400, "ValidationError: cf must be a JSON object")  # [I]
        fax = state.new_fax(
            "outbound",
            pagesCount=sum(_pages(f) for f in files) + cover,
            faxNumber="+" + number.lstrip("+"),  # API L57: the answer writes it `+1…`
            faxCallerId=values.get("callerId") or DEFAULT_CALLER_ID,
            recipientName=values.get("recipientName"),
            subject=values.get("subject"),
            cf=custom if isinstance(custom, dict) else {},
        )
        state.documents[fax["messageId"]] = files[0] if files else b""
        if state.answer_delay_s:  # accepted, but the answer is late (a lost answer)
            delay, state.answer_delay_s = state.answer_delay_s, 0.0
            await asyncio.sleep(delay)
        return JSONResponse(fax)

    def find(request: Request) -> dict[str, Any] | Response:
        if refused := denied(request):
            return refused
        fax = state.faxes.get(request.path_params["message_id"])
        return fax if fax is not None else _error(404, "NotFoundError: Fax not found")  # [I]

    async def info(request: Request) -> Response:
        """GET /v1/fax/{messageId}/info (API L563-636)."""
        fax = find(request)
        return fax if isinstance(fax, Response) else JSONResponse(info_view(fax))

    async def download(request: Request) -> Response:
        """GET /v1/fax/{messageId}/download (API L469-476): the PDF."""
        fax = find(request)
        if isinstance(fax, Response):
            return fax
        return Response(state.documents[fax["messageId"]], media_type="application/pdf")

    async def cancel(request: Request) -> Response:
        """POST /v1/fax/{messageId}/cancel (API L335-399): "cancels sending of processing or
        scheduled faxes"; the answer is the fax, `cancelled`. (The page's sample request shows
        the PATCH of Update Fax: a copy slip; the heading and path are followed.)"""
        fax = find(request)
        if isinstance(fax, Response):
            return fax
        if fax["status"] not in ("processing", "scheduled"):  # [I] the refusal's shape
            return _error(400, f"InvalidStateError: a {fax['status']} fax cannot be cancelled")
        fax.update(status="cancelled", resultCode=None, resultInfo=None)
        return JSONResponse(info_view(fax))

    async def delete(request: Request) -> Response:
        """DELETE /v1/fax/{messageId} (API L638-677): "Removes a fax"; answers `OK`."""
        fax = find(request)
        if isinstance(fax, Response):
            return fax
        del state.faxes[fax["messageId"]]
        state.documents.pop(fax["messageId"], None)
        return PlainTextResponse("OK")

    async def history(request: Request) -> Response:
        """GET /v1/fax/history (API L478-561): 8 a minute (L480); accountId, offset, limit (<= 500),
        direction, status, fromDate/toDate on createdAt, query; `{count, rows, query}`."""
        if refused := denied(request):
            return refused
        now = time.monotonic()
        while state.history_calls and now - state.history_calls[0] >= 60:
            state.history_calls.popleft()
        if len(state.history_calls) >= HISTORY_PER_MINUTE:
            return _error(429, "Too many requests")  # [I] no Retry-After is documented
        state.history_calls.append(now)
        params = request.query_params
        if params.get("accountId") != ACCOUNT_ID:
            return _error(400, "ValidationError: accountId is required")  # [I]
        offset, limit = int(params.get("offset") or 0), int(params.get("limit") or 10)
        if limit > 500:
            return _error(400, "ValidationError: limit must be at most 500")  # [I]
        rows = sorted(state.faxes.values(), key=lambda f: f["createdAt"], reverse=True)  # [I]
        direction, status = params.get("direction", "all"), params.get("status", "all")
        since, until = params.get("fromDate"), params.get("toDate")
        query = (params.get("query") or "").lower()
        rows = [
            f
            for f in rows
            if direction in ("", "all", f["direction"])
            and status in ("", "all", f["status"])
            and (not since or f["createdAt"][:10] >= since)
            and (not until or f["createdAt"][:10] <= until)
            and (not query or query in _searchable(f))
        ]
        page = rows[offset : offset + limit]
        return JSONResponse(
            {"count": str(len(rows)), "rows": page, "query": {"limit": limit, "offset": offset}}
        )

    async def numbers(request: Request) -> Response:
        """GET /v1/numbers (API L722-791): the account's numbers, paged by offset/limit."""
        if refused := denied(request):
            return refused
        offset = int(request.query_params.get("offset") or 0)
        limit = int(request.query_params.get("limit") or 30)
        rows = [
            {
                "uuid": str(uuid.uuid5(uuid.NAMESPACE_URL, number)),
                "number": number,
                "pendingUntil": None,
                "ownedBy": ACCOUNT_ID,
                "managedBy": ACCOUNT_ID,
                "users": [],
            }
            for number in state.numbers
        ]
        page = rows[offset : offset + limit]
        return JSONResponse({"rows": page, "count": len(rows), "limit": limit, "offset": offset})

    return Starlette(
        routes=[
            Route("/v1/faxes", send, methods=["POST"]),
            Route("/v1/fax/history", history, methods=["GET"]),
            Route("/v1/fax/{message_id}/info", info, methods=["GET"]),
            Route("/v1/fax/{message_id}/download", download, methods=["GET"]),
            Route("/v1/fax/{message_id}/cancel", cancel, methods=["POST"]),
            Route("/v1/fax/{message_id}", delete, methods=["DELETE"]),
            Route("/v1/numbers", numbers, methods=["GET"]),
        ]
    )


class MFaxHarness(CallsBack):
    provider_type = "mfax"
    supported_failures: tuple[str, ...] = tuple(FAILURES)

    def __init__(self, recorder: Recorder, state: MFaxState, base_url: str) -> None:
        self.recorder = recorder
        self.state = state
        self.base_url = base_url

    @property
    def requests(self) -> list[RecordedRequest]:
        return self.recorder.requests

    def provider_config(self, callback_token: str) -> dict[str, Any]:
        return {
            "type": "mfax",
            "base_url": self.base_url,
            "api_key": API_KEY,
            "account_id": ACCOUNT_ID,
            "callback_token": callback_token,
        }

    def fail_next(
        self, status: int, body: Any = None, headers: dict[str, str] | None = None, count: int = 1
    ) -> None:
        # No rate-limit headers: Documo documents none for its 429 [I].
        self.recorder.fail_next(status, body, headers, count)

    def hang_next(self, seconds: float) -> None:
        self.recorder.hang_next(seconds)

    def answer_late(self, seconds: float) -> None:
        """The next send is accepted at once, but its answer comes `seconds` later."""
        self.state.answer_delay_s = seconds

    def error_body(self, message: str) -> dict[str, str]:
        return {"error": message}  # [I]

    # -- webhooks ------------------------------------------------------------------------
    def json_callback(self, fax: dict[str, Any]) -> CallbackHTTP:
        """NEW: "Webhooks contain JSON object": the fax object itself [I: no envelope]."""
        body = json.dumps(webhook_view(fax)).encode()
        return CallbackHTTP(headers={"content-type": "application/json"}, body=body)

    def legacy_callback(self, fax: dict[str, Any], attachment: bytes | None = None) -> CallbackHTTP:
        """LEGACY: multipart, field `data` the fax object as JSON, file `attachment`."""
        files = {"attachment": (f"{fax['messageId']}.pdf", attachment)} if attachment else {}
        return multipart({"data": json.dumps(webhook_view(fax))}, files)

    def finish(self, message_id: str, status: str, **values: Any) -> dict[str, Any]:
        """Move fax `message_id` to `status` (with result fields) and return its object."""
        fax = self.state.faxes.get(message_id) or self.state.new_fax("outbound")
        fax.update(status=status, processingStatusName=status, **values)
        if status in ("success", "failed", "cancelled"):
            fax.update(resolvedDate=_now(), pagesComplete=fax["pagesCount"] * (status == "success"))
        if status in ("success", "failed"):
            fax.update(faxAttempt=1, deliveryId=str(secrets.randbelow(10**18)))
        return dict(fax)

    def _failed(self, message_id: str, reason: str | None) -> dict[str, Any]:
        code, text = FAILURES[reason or "unknown"]
        return self.finish(
            message_id, "failed", resultCode=code, resultInfo=text, errorCode=code, errorInfo=text
        )

    def settle(self, message_id: str, status: str, reason: str | None = None) -> None:
        """The fax ends without a webhook reaching anyone (`GET /fax/{id}/info` shows it)."""
        if status in _PROGRESS:
            self.finish(message_id, _PROGRESS[status])
        elif status == "delivered":
            self.finish(message_id, "success", resultCode="0", resultInfo="OK")
        else:
            self._failed(message_id, reason)

    def status_callback(
        self, provider_fax_id: str, status: str, reason: str | None = None
    ) -> CallbackHTTP:
        if status in _PROGRESS:  # LEGACY: only fax.outbound.extended reports progress
            return self.legacy_callback(self.finish(provider_fax_id, _PROGRESS[status]))
        if status == "delivered":  # NEW: fax.v1.outbound.succeed / .complete
            fax = self.finish(provider_fax_id, "success", resultCode="0", resultInfo="OK")
            return self.json_callback(fax)
        if status == "failed":  # NEW: fax.v1.outbound.failed / .complete
            return self.json_callback(self._failed(provider_fax_id, reason))
        raise NotImplementedError(f"mFax reports no {status!r}")

    def receive(
        self, from_number: str, to_number: str, pdf: bytes, status: str = "success"
    ) -> dict[str, Any]:
        """A fax arriving on `to_number`: stored for download; its object returned.

        [I] `faxNumber` is the number called (ours, `+1…` as in API L57), `faxCallerId` the
        caller's number as ten digits (as in API L59) and `faxCsid` the sender's station id."""
        pages = _pages(pdf)
        fax = self.state.new_fax(
            "inbound",
            status=status,
            processingStatusName=status,
            channelType="web",  # LEGACY fax.inbound example
            pagesCount=pages,
            pagesComplete=pages if status == "success" else 0,
            faxNumber=to_number,
            faxCallerId=from_number.lstrip("+").removeprefix("1"),
            faxCsid="REMOTE FAX",
            resolvedDate=_now(),
        )
        self.state.documents[fax["messageId"]] = pdf
        return dict(fax)

    def inbound_callback(self, from_number: str, to_number: str, pdf: bytes) -> CallbackHTTP:
        """NEW fax.v1.inbound.succeed: it names the fax; the PDF is fetched by `messageId`."""
        return self.json_callback(self.receive(from_number, to_number, pdf))

    def unclassifiable_callback(self) -> CallbackHTTP:
        """NEW fax.v1.number.add, "when a number is added": about a number, not a fax. Its
        body is not shown [I]: a number object as `GET /v1/numbers` lists it (API L755-787)."""
        number = {
            "uuid": str(uuid.uuid4()),
            "number": "3144508380",
            "pendingUntil": None,
            "ownedBy": ACCOUNT_ID,
            "managedBy": ACCOUNT_ID,
            "createdAt": _now(),
        }
        return CallbackHTTP(
            headers={"content-type": "application/json"}, body=json.dumps(number).encode()
        )

    def forged(self, callback: CallbackHTTP) -> CallbackHTTP:
        """Documo signs nothing (NEW: Basic auth at most): a forgery is the same body without
        the bridge's token."""
        query = {**callback.query, "token": "forged-" + secrets.token_hex(4)}
        return CallbackHTTP(headers=dict(callback.headers), body=callback.body, query=query)


@contextlib.contextmanager
def make_harness() -> Iterator[MFaxHarness]:
    state = MFaxState()
    recorder = Recorder(build_app(state))
    with serve(recorder) as root:
        yield MFaxHarness(recorder, state, f"{root}/v1")
