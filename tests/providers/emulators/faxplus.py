"""A Fax.Plus v3 emulator (seed 001 + PROVIDERS.md), served on a loopback port.

What it keeps faithful: Bearer auth (plus `x-fax-clientid` when the account is an OAuth app),
upload-then-outbox, the outbox id that is replaced by a new fax id once the fax has been sent,
`comment.tags` kept on both records, `/hooks` registration, `{"error", "description"}` error
bodies, and the `{"hook", "data"}` webhook shape. Fax.Plus has no webhook for the outbox
stages (`submitted` … `sending`): those are seen only by polling, so `status_callback` refuses
them with `NotImplementedError`.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import secrets
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

ACCESS_TOKEN = "fp-test-access-token"
CLIENT_ID = "fp-test-client"
USER_ID = "490ae330dbc749f0b6561dafa300f2fb"

# Which Fax.Plus status the emulator reports for each failure reason of the common model.
FAILURE_STATUSES = {
    "busy": "failed_user_busy",
    "no_answer": "failed_no_answer",
    "bad_number": "failed_unallocated_number",
    "disconnected": "failed_normal_clearing",
    "file_error": "failed_office_converter_issue",
    "on_hold": "insufficient_credit",
    "unknown": "failed",
}


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _new_id() -> str:
    return secrets.token_hex(12)


def _page_count(pdf: bytes) -> int:
    try:
        return len(PdfReader(io.BytesIO(pdf)).pages)
    except PyPdfError:
        return 1


def _error(status: int, error: str, description: str) -> JSONResponse:
    return JSONResponse({"error": error, "description": description}, status_code=status)


@dataclass
class FaxPlusState:
    client_id: str | None
    files: dict[str, bytes] = field(default_factory=dict)  # uploaded path → PDF
    outbox: dict[str, dict[str, Any]] = field(default_factory=dict)
    faxes: dict[str, dict[str, Any]] = field(default_factory=dict)
    documents: dict[str, bytes] = field(default_factory=dict)  # fax id → PDF
    hooks: dict[str, dict[str, Any]] = field(default_factory=dict)

    def complete(self, fax_id: str, raw_status: str) -> dict[str, Any]:
        """Finish an outbox fax with `raw_status`: it leaves the outbox and becomes a fax."""
        if fax_id in self.faxes:
            self.faxes[fax_id]["status"] = raw_status
            return self.faxes[fax_id]
        queued = self.outbox.pop(fax_id, None) or {"to": ["+12125550199"], "files": []}
        new_id = _new_id()
        record = {
            "id": new_id,
            "owner_id": USER_ID,
            "direction": "outgoing",
            "from_number": queued.get("from", "+12125550100"),
            "to": queued["to"][0],
            "pages": queued.get("page_count", 1),
            "status": raw_status,
            "comment": queued.get("comment", {"text": "", "tags": []}),
            "cover_page": queued.get("cover_page"),
            "file": f"{new_id}.tiff",
            "file_name": f"fax-to-{queued['to'][0].lstrip('+')}",
            "start_time": _now(),
            "submit_time": queued.get("submit_time", _now()),
            "cost": queued.get("page_count", 1),
        }
        self.faxes[new_id] = record
        files = queued.get("files") or []
        self.documents[new_id] = self.files.get(files[0], b"") if files else b""
        return record


def build_app(state: FaxPlusState) -> Starlette:
    def authorized(request: Request) -> bool:
        if request.headers.get("authorization") != f"Bearer {ACCESS_TOKEN}":
            return False
        return state.client_id is None or request.headers.get("x-fax-clientid") == state.client_id

    def account_ok(uid: str) -> bool:
        return uid in ("self", USER_ID)

    async def guard(request: Request) -> Response | None:
        if not authorized(request):
            return _error(401, "invalid_token", "The access token is invalid or has expired")
        uid = request.path_params.get("uid")
        if uid is not None and not account_ok(uid):
            return _error(403, "forbidden", f"No access to account {uid}")
        return None

    async def account(request: Request) -> Response:
        if denied := await guard(request):
            return denied
        return JSONResponse(
            {
                "uid": USER_ID,
                "email": "faxes@example.com",
                "account_type": "corporate_admin",
                "status": "active",
                "creation_date": "2022-01-01 00:00:00",
            }
        )

    async def upload(request: Request) -> Response:
        if denied := await guard(request):
            return denied
        if request.query_params.get("format", "pdf") not in ("pdf", "tiff"):
            return _error(400, "invalid_format", "format must be 'pdf' or 'tiff'")
        async with request.form() as form:
            part = form.get("fax_file")
            if not isinstance(part, UploadFile):
                return _error(400, "missing_file", "multipart field 'fax_file' is required")
            data = await part.read()
        path = f"/transient-{_new_id()}.pdf"
        state.files[path] = data
        return JSONResponse({"path": path})

    async def send(request: Request) -> Response:
        if denied := await guard(request):
            return denied
        try:
            body = json.loads(await request.body())
        except json.JSONDecodeError:
            return _error(400, "invalid_json", "The request body is not JSON")
        to, files = body.get("to"), body.get("files")
        if not isinstance(to, list) or not to or not body.get("from"):
            return _error(400, "invalid_parameters", "'from' and a non-empty 'to' are required")
        if not all(isinstance(n, str) and re.fullmatch(r"\+?\d{7,15}", n) for n in to):
            return _error(400, "invalid_parameters", "'to' must list fax numbers")
        if not isinstance(files, list) or not files or any(f not in state.files for f in files):
            return _error(400, "invalid_file", "'files' must name uploaded files")
        ids: dict[str, str] = {}
        pages = sum(_page_count(state.files[f]) for f in files) + bool(body.get("cover_page"))
        for number in to:
            outbox_id = _new_id()
            ids[number] = outbox_id
            state.outbox[outbox_id] = {
                "id": outbox_id,
                "uid": USER_ID,
                "from": body["from"],
                "to": [number],
                "files": files,
                "comment": body.get("comment") or {"text": "", "tags": []},
                "cover_page": body.get("cover_page"),
                "send_time": body.get("send_time"),
                "status": "submitted",
                "submit_time": _now(),
                "last_updated_status_time": _now(),
                "page_count": pages,
            }
        return JSONResponse({"ids": ids} if body.get("return_ids") else {}, status_code=201)

    def lookup(table: dict[str, dict[str, Any]]) -> Any:
        async def endpoint(request: Request) -> Response:
            if denied := await guard(request):
                return denied
            record = table.get(request.path_params["fax_id"])
            if record is None:
                return _error(404, "not_found", "Fax not found")
            return JSONResponse(record)

        return endpoint

    async def list_faxes(request: Request) -> Response:
        """`GET /faxes?category=inbox|sent|spam&after&before&limit`: newest first."""
        if denied := await guard(request):
            return denied
        query = request.query_params
        category = query.get("category")
        if category not in (None, "inbox", "sent", "spam"):
            return _error(400, "invalid_parameters", "category must be inbox, sent or spam")
        try:
            limit = int(query.get("limit", "50"))
        except ValueError:
            return _error(400, "invalid_parameters", "limit must be a number")
        if limit < 1:
            return _error(400, "invalid_parameters", "limit must be positive")
        direction = {"inbox": "incoming", "sent": "outgoing"}.get(category or "")
        after, before = query.get("after"), query.get("before")
        records = [
            record
            for record in reversed(state.faxes.values())
            if category != "spam"  # the emulator marks nothing as spam
            and direction in (None, record.get("direction"))
            and (after is None or record["start_time"] >= after)
            and (before is None or record["start_time"] < before)
        ]
        return JSONResponse({"data": {"records": records[:limit]}})

    async def download(request: Request) -> Response:
        if denied := await guard(request):
            return denied
        fax_id = request.path_params["fax_id"]
        if fax_id not in state.documents:
            return _error(404, "not_found", "File not found")
        return Response(state.documents[fax_id], media_type="application/pdf")

    async def hooks(request: Request) -> Response:
        if denied := await guard(request):
            return denied
        if request.method == "GET":
            event = request.query_params.get("event")
            found = [h for h in state.hooks.values() if event in (None, h["event"])]
            return JSONResponse({"data": found})
        body = json.loads(await request.body() or b"{}")
        if body.get("event") not in ("fax_sent", "fax_received") or not body.get("target"):
            return _error(400, "invalid_parameters", "'target' and a known 'event' are required")
        hook_id = _new_id()
        state.hooks[hook_id] = {"id": hook_id, "target": body["target"], "event": body["event"]}
        return JSONResponse({"id": hook_id}, status_code=201)

    async def delete_hook(request: Request) -> Response:
        if denied := await guard(request):
            return denied
        state.hooks.pop(request.path_params["hook_id"], None)
        return Response(status_code=204)

    prefix = "/v3/accounts/{uid}"
    return Starlette(
        routes=[
            Route(prefix, account, methods=["GET"]),
            Route(f"{prefix}/files", upload, methods=["POST"]),
            Route(f"{prefix}/files/{{fax_id}}", download, methods=["GET"]),
            Route(f"{prefix}/outbox", send, methods=["POST"]),
            Route(f"{prefix}/outbox/{{fax_id}}", lookup(state.outbox), methods=["GET"]),
            Route(f"{prefix}/faxes", list_faxes, methods=["GET"]),
            Route(f"{prefix}/faxes/{{fax_id}}", lookup(state.faxes), methods=["GET"]),
            Route("/v3/hooks", hooks, methods=["GET", "POST"]),
            Route("/v3/hooks/{hook_id}", delete_hook, methods=["DELETE"]),
        ]
    )


class FaxPlusHarness(CallsBack):
    provider_type = "faxplus"
    supported_failures: tuple[str, ...] = tuple(FAILURE_STATUSES)

    def __init__(self, recorder: Recorder, state: FaxPlusState, base_url: str) -> None:
        self.recorder = recorder
        self.state = state
        self.base_url = base_url

    @property
    def requests(self) -> list[RecordedRequest]:
        return self.recorder.requests

    def provider_config(self, callback_token: str) -> dict[str, Any]:
        config: dict[str, Any] = {
            "type": "faxplus",
            "base_url": self.base_url,
            "access_token": ACCESS_TOKEN,
            "user_id": "self",
            "callback_token": callback_token,
        }
        if self.state.client_id:
            config["client_id"] = self.state.client_id
        return config

    def fail_next(
        self, status: int, body: Any = None, headers: dict[str, str] | None = None, count: int = 1
    ) -> None:
        if status == 429 and not headers:
            headers = {"Retry-After": "30"}  # a rate-limited answer says when to come back
        self.recorder.fail_next(status, body, headers, count)

    def error_body(self, message: str) -> dict[str, str]:
        """An error answer as Fax.Plus words it: a terse code and a description."""
        return {"error": "invalid_request", "description": message}

    def hang_next(self, seconds: float) -> None:
        self.recorder.hang_next(seconds)

    def registered_callback_url(self, inbound: bool) -> str | None:
        """The target of the `fax_received` / `fax_sent` hook (`POST /hooks`)."""
        event = "fax_received" if inbound else "fax_sent"
        return next((h["target"] for h in self.state.hooks.values() if h["event"] == event), None)

    def _hook(self, event: str, data: dict[str, Any]) -> CallbackHTTP:
        target = next(
            (h["target"] for h in self.state.hooks.values() if h["event"] == event),
            "http://bridge.invalid/callbacks/faxplus",
        )
        body = {
            "hook": {"id": data["id"], "event": event, "event_time": _now(), "target": target},
            "data": data,
        }
        return CallbackHTTP(
            headers={"content-type": "application/json"}, body=json.dumps(body).encode()
        )

    def raw_callback(self, provider_fax_id: str, raw_status: str) -> CallbackHTTP:
        """The webhook for fax `provider_fax_id` (outbox or fax id) ending in `raw_status`."""
        record = self.state.complete(provider_fax_id, raw_status)
        data = {
            "id": record["id"],
            "uid": USER_ID,
            "pages": record["pages"],
            "from": record["from_number"],
            "to": record["to"],
            "start_time": record["start_time"],
            "file": record["file"],
            "file_name": record["file_name"],
            "cost": record["cost"],
            "status": raw_status,
        }
        return self._hook("fax_sent", data)

    def settle(self, provider_fax_id: str, status: str, reason: str | None = None) -> None:
        """The fax moves on without a webhook reaching anyone.

        Outbox stages change the outbox entry; a finished fax leaves the outbox and becomes a
        sent fax under a new id, which only `GET /faxes?category=sent` shows then.
        """
        if status == "delivered":
            self.state.complete(provider_fax_id, "success")
        elif status == "failed":
            self.state.complete(provider_fax_id, FAILURE_STATUSES[reason or "unknown"])
        else:
            queued = self.state.outbox[provider_fax_id]
            queued["status"] = "sending" if status == "sending" else "submitted"
            queued["last_updated_status_time"] = _now()

    def status_callback(
        self, provider_fax_id: str, status: str, reason: str | None = None
    ) -> CallbackHTTP:
        if status == "delivered":
            return self.raw_callback(provider_fax_id, "success")
        if status == "failed":
            return self.raw_callback(provider_fax_id, FAILURE_STATUSES[reason or "unknown"])
        # The outbox stages are only visible by polling `GET /outbox/{id}`.
        raise NotImplementedError(f"Fax.Plus sends no webhook for {status!r}")

    def inbound_callback(self, from_number: str, to_number: str, pdf: bytes) -> CallbackHTTP:
        fax_id = _new_id()
        record = {
            "id": fax_id,
            "owner_id": USER_ID,
            "direction": "incoming",
            "from_number": from_number,
            "to": to_number,
            "pages": _page_count(pdf),
            "status": "success",
            "file": f"{fax_id}.tiff",
            "file_name": f"fax-from-{from_number.lstrip('+')}",
            "start_time": _now(),
            "cost": 1,
        }
        self.state.faxes[fax_id] = record
        self.state.documents[fax_id] = pdf
        data = {k: record[k] for k in ("id", "pages", "start_time", "file", "file_name", "cost")}
        data |= {"uid": USER_ID, "from": from_number, "to": to_number, "status": "success"}
        return self._hook("fax_received", data)

    def forged(self, callback: CallbackHTTP) -> CallbackHTTP:
        """Fax.Plus signs nothing: a forgery is the same body without the bridge's token."""
        query = {**callback.query, "token": "forged-" + secrets.token_hex(4)}
        return CallbackHTTP(headers=dict(callback.headers), body=callback.body, query=query)


@contextlib.contextmanager
def make_harness(client_id: str | None = CLIENT_ID) -> Iterator[FaxPlusHarness]:
    state = FaxPlusState(client_id=client_id)
    recorder = Recorder(build_app(state))
    with serve(recorder) as root:
        yield FaxPlusHarness(recorder, state, f"{root}/v3")
