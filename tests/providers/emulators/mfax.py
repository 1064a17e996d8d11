"""An mFax / Documo v1 emulator (seed 004 + PROVIDERS.md), served on a loopback port.

Faithful to: `Authorization: Basic <API key>` (the raw key), multipart `POST /v1/faxes`
(`faxNumber`, or the seed table's `recipientFax`; repeatable `attachments`; the cover fields
with their documented length limits; `cf` custom fields echoed back), the fax object of the
seed's examples, `GET /v1/fax/{id}/info|download`, `POST /v1/fax/{id}/cancel`, `GET
/v1/numbers`, and both webhook shapes: the JSON events (`fax.v1.outbound.succeed` …) and the
legacy multipart form (`data` JSON plus an `attachment` file). Progress (`processing`,
`transmitting`) is reported only by the legacy `fax.outbound.extended` hook, as Documo does.
Documo publishes no failure codes: the texts below are the emulator's own choice [I].
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pypdf import PdfReader
from pypdf.errors import PyPdfError
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.providers.emulators._callbacks import CallsBack
from tests.providers.harness import CallbackHTTP, RecordedRequest, Recorder, serve

API_KEY = "mfax-test-api-key"
ACCOUNT_ID = "efaa36f7-d9a0-493f-a3aa-0cb1114eea0c"
DEFAULT_CALLER_ID = "5094570000"
LIMITS = {"recipientName": 40, "senderName": 40, "subject": 55, "notes": 4000, "callerId": 10}

# (errorCode, errorInfo) the emulator reports for each failure reason of the common model.
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
_PROGRESS = {"submitted": "processing", "sending": "transmitting"}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _pages(pdf: bytes) -> int:
    try:
        return len(PdfReader(io.BytesIO(pdf)).pages)
    except PyPdfError:
        return 1


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def multipart(fields: dict[str, str], files: dict[str, tuple[str, bytes]]) -> CallbackHTTP:
    """A `multipart/form-data` body as Documo's legacy webhooks send it."""
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


@dataclass
class MFaxState:
    faxes: dict[str, dict[str, Any]] = field(default_factory=dict)
    documents: dict[str, bytes] = field(default_factory=dict)

    def new_fax(self, direction: str, **values: Any) -> dict[str, Any]:
        message_id = str(uuid.uuid4())
        fax = {
            "errorInfo": None,
            "resultInfo": "OK",
            "processingStatusName": "processing",
            "classificationLabel": direction,
            "messageId": message_id,
            "deliveryId": None,
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


def build_app(state: MFaxState) -> Starlette:
    def denied(request: Request) -> Response | None:
        if request.headers.get("authorization") != f"Basic {API_KEY}":
            return _error(401, "Unauthorized: invalid API key")
        return None

    async def send(request: Request) -> Response:
        if refused := denied(request):
            return refused
        async with request.form() as form:
            values = {k: v for k, v in form.multi_items() if isinstance(v, str)}
            files = [await v.read() for k, v in form.multi_items() if isinstance(v, UploadFile)]
        number = values.get("faxNumber") or values.get("recipientFax")
        if not number or not re.fullmatch(r"\+?\d{10,15}", number):
            return _error(400, "InvalidInputError: faxNumber must be a fax number")
        cover = values.get("coverPage", "false").lower() == "true"
        if not files and not cover:
            return _error(400, "InvalidInputError: No files and cover page in to send.")
        for key, limit in LIMITS.items():
            if len(values.get(key, "")) > limit:
                return _error(400, f"ValidationError: {key} is limited to {limit} characters")
        try:
            custom = json.loads(values.get("cf") or "{}")
        except json.JSONDecodeError:
            return _error(400, "ValidationError: cf must be a JSON object")
        fax = state.new_fax(
            "outbound",
            pagesCount=sum(_pages(f) for f in files) + cover,
            faxNumber="+" + number.lstrip("+"),
            faxCallerId=values.get("callerId") or DEFAULT_CALLER_ID,
            recipientName=values.get("recipientName"),
            subject=values.get("subject"),
            cf=custom,
        )
        state.documents[fax["messageId"]] = files[0] if files else b""
        return JSONResponse(fax)

    def find(request: Request) -> dict[str, Any] | Response:
        if refused := denied(request):
            return refused
        fax = state.faxes.get(request.path_params["message_id"])
        return fax if fax is not None else _error(404, "NotFoundError: Fax not found")

    async def info(request: Request) -> Response:
        fax = find(request)
        return fax if isinstance(fax, Response) else JSONResponse(fax)

    async def download(request: Request) -> Response:
        fax = find(request)
        if isinstance(fax, Response):
            return fax
        return Response(state.documents[fax["messageId"]], media_type="application/pdf")

    async def cancel(request: Request) -> Response:
        fax = find(request)
        if isinstance(fax, Response):
            return fax
        if fax["status"] not in ("processing", "scheduled"):
            return _error(400, f"InvalidStateError: a {fax['status']} fax cannot be cancelled")
        fax.update(status="cancelled", resultCode=None, resultInfo=None)
        return JSONResponse(fax)

    async def numbers(request: Request) -> Response:
        if refused := denied(request):
            return refused
        row = {"uuid": str(uuid.uuid5(uuid.NAMESPACE_URL, "n1")), "number": "2125550100"}
        return JSONResponse({"rows": [row], "count": 1, "limit": 30, "offset": 0})

    return Starlette(
        routes=[
            Route("/v1/faxes", send, methods=["POST"]),
            Route("/v1/fax/{message_id}/info", info, methods=["GET"]),
            Route("/v1/fax/{message_id}/download", download, methods=["GET"]),
            Route("/v1/fax/{message_id}/cancel", cancel, methods=["POST"]),
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
            "callback_token": callback_token,
        }

    def fail_next(
        self, status: int, body: Any = None, headers: dict[str, str] | None = None, count: int = 1
    ) -> None:
        if status == 429 and not headers:
            headers = {"Retry-After": "60"}  # a rate-limited answer says when to come back
        self.recorder.fail_next(status, body, headers, count)

    def hang_next(self, seconds: float) -> None:
        self.recorder.hang_next(seconds)

    def error_body(self, message: str) -> dict[str, str]:
        return {"error": message}

    # -- webhooks ------------------------------------------------------------------------
    def json_callback(self, fax: dict[str, Any], event: str) -> CallbackHTTP:
        body = json.dumps({**fax, "event": event}).encode()
        return CallbackHTTP(headers={"content-type": "application/json"}, body=body)

    def legacy_callback(self, fax: dict[str, Any], attachment: bytes | None = None) -> CallbackHTTP:
        files = {"attachment": (f"{fax['messageId']}.pdf", attachment)} if attachment else {}
        return multipart({"data": json.dumps(fax)}, files)

    def finish(self, message_id: str, status: str, **values: Any) -> dict[str, Any]:
        """Move fax `message_id` to `status` (with result fields) and return its object."""
        fax = self.state.faxes.get(message_id) or self.state.new_fax("outbound")
        fax.update(status=status, processingStatusName=status, **values)
        if status in ("success", "failed", "cancelled"):
            fax.update(resolvedDate=_now(), pagesComplete=fax["pagesCount"] * (status == "success"))
        return dict(fax)

    def settle(self, message_id: str, status: str, reason: str | None = None) -> None:
        """The fax ends without a webhook reaching anyone (`GET /fax/{id}/info` shows it)."""
        if status in _PROGRESS:
            self.finish(message_id, _PROGRESS[status])
        elif status == "delivered":
            self.finish(message_id, "success", resultCode="0", resultInfo="OK")
        else:
            code, text = FAILURES[reason or "unknown"]
            self.finish(
                message_id,
                "failed",
                resultCode=code,
                resultInfo=text,
                errorCode=code,
                errorInfo=text,
            )

    def status_callback(
        self, provider_fax_id: str, status: str, reason: str | None = None
    ) -> CallbackHTTP:
        if status in _PROGRESS:
            return self.legacy_callback(self.finish(provider_fax_id, _PROGRESS[status]))
        if status == "delivered":
            fax = self.finish(provider_fax_id, "success", resultCode="0", resultInfo="OK")
            return self.json_callback(fax, "fax.v1.outbound.succeed")
        if status == "failed":
            code, text = FAILURES[reason or "unknown"]
            fax = self.finish(
                provider_fax_id,
                "failed",
                resultCode=code,
                resultInfo=text,
                errorCode=code,
                errorInfo=text,
            )
            return self.json_callback(fax, "fax.v1.outbound.failed")
        raise NotImplementedError(f"mFax reports no {status!r}")

    def receive(self, from_number: str, to_number: str, pdf: bytes) -> dict[str, Any]:
        """A fax arriving on `to_number`: stored for download; its object returned."""
        fax = self.state.new_fax(
            "inbound",
            status="success",
            processingStatusName="success",
            pagesCount=_pages(pdf),
            pagesComplete=_pages(pdf),
            faxNumber=to_number,
            faxCallerId=from_number.lstrip("+").removeprefix("1"),
            faxCsid="REMOTE FAX",
            resolvedDate=_now(),
        )
        self.state.documents[fax["messageId"]] = pdf
        return dict(fax)

    def inbound_callback(self, from_number: str, to_number: str, pdf: bytes) -> CallbackHTTP:
        """The JSON webhook: it names the fax; the document is downloaded by `messageId`."""
        return self.json_callback(
            self.receive(from_number, to_number, pdf), "fax.v1.inbound.succeed"
        )

    def forged(self, callback: CallbackHTTP) -> CallbackHTTP:
        """Documo signs nothing: a forgery is the same body without the bridge's token."""
        query = {**callback.query, "token": "forged-" + secrets.token_hex(4)}
        return CallbackHTTP(headers=dict(callback.headers), body=callback.body, query=query)


@contextlib.contextmanager
def make_harness() -> Iterator[MFaxHarness]:
    state = MFaxState()
    recorder = Recorder(build_app(state))
    with serve(recorder) as root:
        yield MFaxHarness(recorder, state, f"{root}/v1")
