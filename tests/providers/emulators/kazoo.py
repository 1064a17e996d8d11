"""A Kazoo v2 Faxes API on loopback, built from seed 002 and PROVIDERS.md.

It answers like Crossbar: every response is an envelope (`data`, `status`, `request_id`,
`revision`, `auth_token`), errors carry `error`/`message` and per-field messages in `data`,
requests without a valid `X-Auth-Token` get 401. Faxes live in memory: `outgoing` while a job
runs, then the outbox as `YYYYMM-<id>`; inbound faxes in the inbox with their PDF.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from io import BytesIO
from typing import Any

from pypdf import PdfReader
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.providers.emulators._callbacks import CallsBack
from tests.providers.harness import CallbackHTTP, RecordedRequest, Recorder, serve

GREGORIAN_OFFSET_S = 62_167_219_200
FOLDERS = ("outgoing", "outbox", "inbox")
Handler = Callable[[Request, str], Awaitable[Response]]
SUMMARY = {"id": "id", "status": "status", "created": "created", "from": "from_number",
           "to": "to_number"}  # fmt: skip
TX_RESULT = {"error_message": "", "fax_bad_rows": 0, "fax_error_correction": False,
             "fax_receiver_id": "", "fax_speed": 0, "pages_sent": 0, "success": False,
             "time_elapsed": 0}  # fmt: skip

# How each of our failure reasons looks on Kazoo: (fax_error / hangup cause, T.30 code, text).
FAILURES: dict[str, tuple[str, int, str]] = {
    "busy": ("USER_BUSY", 0, "USER_BUSY"),
    "no_answer": ("NO_ANSWER", 0, "NO_ANSWER"),
    "bad_number": ("UNALLOCATED_NUMBER", 0, "UNALLOCATED_NUMBER"),
    "disconnected": ("The call dropped prematurely", 49, "The call dropped prematurely"),
    "file_error": ("can not convert file, try uploading a tiff", 0, "Job failed"),
    "unknown": ("RECOVERY_ON_TIMER_EXPIRE", 0, "RECOVERY_ON_TIMER_EXPIRE"),
}


def gregorian_now() -> int:
    return int(time.time()) + GREGORIAN_OFFSET_S


def month() -> str:
    return datetime.now(UTC).strftime("%Y%m")


def envelope(data: Any, code: int = 200, token: str = "", **extra: Any) -> JSONResponse:
    body = {
        "auth_token": token,
        "data": data,
        "request_id": secrets.token_hex(16),
        "revision": f"1-{secrets.token_hex(16)}",
        "status": "success",
        **extra,
    }
    return JSONResponse(body, status_code=code)


def error(code: int, message: str, data: Any = None) -> JSONResponse:
    """Crossbar's error envelope: `error` is the HTTP status, `data` the details."""
    details = data if data is not None else {}
    return envelope(details, code, error=str(code), message=message, status="error")


@dataclass
class KazooState:
    account_id: str = field(default_factory=lambda: secrets.token_hex(16))
    auth_token: str = field(default_factory=lambda: secrets.token_hex(32))
    api_key: str = field(default_factory=lambda: secrets.token_hex(32))
    tokens: set[str] = field(default_factory=set)
    outgoing: dict[str, dict[str, Any]] = field(default_factory=dict)
    outbox: dict[str, dict[str, Any]] = field(default_factory=dict)
    inbox: dict[str, dict[str, Any]] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)  # fax id (any folder) → PDF
    webhooks: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.tokens.add(self.auth_token)


def make_app(state: KazooState) -> Starlette:
    def authed(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        """Crossbar's checks before any handler: a live token, its account, a real folder."""

        async def guarded(request: Request) -> Response:
            token = request.headers.get("x-auth-token", "")
            if token not in state.tokens:
                return error(401, "invalid credentials")
            if request.path_params.get("account") != state.account_id:
                return error(403, "forbidden", {"cause": "token cannot access this account"})
            folder = request.path_params.get("folder")
            if folder is not None and folder not in FOLDERS:
                return error(404, "not_found", {"message": f"no such folder {folder}"})
            return await handler(request, token)

        return guarded

    async def api_auth(request: Request) -> Response:
        data = _data(await request.body())
        if data.get("api_key") != state.api_key:
            return error(401, "invalid credentials")
        token = secrets.token_hex(32)
        state.tokens.add(token)
        account = {"account_id": state.account_id, "account_name": "Faxbridge Test"}
        return envelope({**account, "apply_to": "account"}, 201, token)

    async def account(request: Request, token: str) -> Response:
        data = {"id": state.account_id, "name": "Faxbridge Test", "realm": "fax.test.local"}
        return envelope({**data, "enabled": True}, token=token)

    async def create_fax(request: Request, token: str) -> Response:
        data, pdf = _fax_request(request, await request.body())
        problems: dict[str, Any] = {}
        for key in ("to_number", "from_number"):
            if not data.get(key):
                problems[key] = {"required": {"message": "Field is required but missing"}}
        if pdf is None and not (data.get("document") or {}).get("url"):
            problems["document.url"] = {"required": {"message": "Field is required but missing"}}
        retries = data.get("retries", 1)
        if not isinstance(retries, int) or not 0 <= retries <= 4:
            problems["retries"] = {"maximum": {"message": "Value is not within 0..4"}}
        if problems:
            return error(400, "invalid data", problems)
        fax_id = secrets.token_hex(16)
        tx = dict(TX_RESULT)
        doc = {**data, "attempts": 0, "tx_result": tx, "fax_timezone": "undefined", "id": fax_id}
        state.outgoing[fax_id] = {**doc, "status": "pending", "created": gregorian_now()}
        if pdf is not None:
            state.files[fax_id] = pdf
        return envelope(doc, 201, token)

    async def list_folder(request: Request, token: str) -> Response:
        folder = getattr(state, request.path_params["folder"])
        rows = [{key: doc.get(src) for key, src in SUMMARY.items()} for doc in folder.values()]
        size = int(request.query_params.get("page_size", len(rows) or 1))
        return envelope(rows[:size], token=token, page_size=len(rows[:size]))

    async def get_fax(request: Request, token: str) -> Response:
        fax_id = request.path_params["fax_id"]
        doc = getattr(state, request.path_params["folder"]).get(fax_id)
        if doc is None:
            return error(404, "bad_identifier", {"cause": fax_id, "message": "bad identifier"})
        return envelope(doc, token=token)

    async def attachment(request: Request, token: str) -> Response:
        fax_id = request.path_params["fax_id"]
        folder = getattr(state, request.path_params["folder"])
        if fax_id not in folder or fax_id not in state.files:
            return error(404, "bad_identifier", {"cause": fax_id, "message": "bad identifier"})
        disposition = request.query_params.get("disposition", "attachment")
        headers = {"content-disposition": f'{disposition}; filename="{fax_id}.pdf"'}
        return Response(state.files[fax_id], media_type="application/pdf", headers=headers)

    async def webhooks(request: Request, token: str) -> Response:
        if request.method == "GET":
            return envelope(list(state.webhooks.values()), token=token)
        data = _data(await request.body())
        problems = {
            key: {"required": {"message": "Field is required but missing"}}
            for key in ("name", "uri", "hook")
            if not data.get(key)
        }
        if problems:
            return error(400, "invalid data", problems)
        hook_id = request.path_params.get("hook_id") or secrets.token_hex(16)
        if request.method == "POST" and hook_id not in state.webhooks:
            return error(404, "bad_identifier", {"cause": hook_id, "message": "bad identifier"})
        state.webhooks[hook_id] = {"enabled": True, **data, "id": hook_id}
        return envelope(state.webhooks[hook_id], 201 if request.method == "PUT" else 200, token)

    fax = "/v2/accounts/{account}/faxes"
    return Starlette(
        routes=[
            Route("/v2/api_auth", api_auth, methods=["PUT"]),
            Route("/v2/accounts/{account}", authed(account), methods=["GET"]),
            Route(fax, authed(create_fax), methods=["PUT"]),
            Route(f"{fax}/outgoing", authed(create_fax), methods=["PUT"]),
            Route(fax + "/{folder}", authed(list_folder), methods=["GET"]),
            Route(fax + "/{folder}/{fax_id}", authed(get_fax), methods=["GET"]),
            Route(fax + "/{folder}/{fax_id}/attachment", authed(attachment), methods=["GET"]),
            Route("/v2/accounts/{account}/webhooks", authed(webhooks), methods=["GET", "PUT"]),
            Route("/v2/accounts/{account}/webhooks/{hook_id}", authed(webhooks), methods=["POST"]),
        ]
    )


def _data(body: bytes) -> dict[str, Any]:
    try:
        parsed = json.loads(body or b"{}")
    except ValueError:
        return {}
    data = parsed.get("data") if isinstance(parsed, dict) else None
    return data if isinstance(data, dict) else {}


def _fax_request(request: Request, body: bytes) -> tuple[dict[str, Any], bytes | None]:
    """JSON with `document.url`, or multipart: a JSON part and a document part, any order."""
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/"):
        return _data(body), None
    recorded = RecordedRequest("PUT", "", {}, {"content-type": content_type}, body)
    data: dict[str, Any] = {}
    pdf = None
    for part in recorded.parts():
        if part.content_type == "application/json":
            data = _data(part.data)
        else:
            pdf = part.data
    return data, pdf


def _pages(pdf: bytes) -> int:
    return len(PdfReader(BytesIO(pdf)).pages)


@dataclass
class KazooHarness(CallsBack):
    """The contract suite's handle on the emulator (see `tests/providers/harness.py`)."""

    state: KazooState
    recorder: Recorder
    root: str
    provider_type: str = "kazoo"
    # Kazoo notifies only when a job ends; `submitted`/`sending` are seen by polling.
    supported_statuses: tuple[str, ...] = ("delivered", "failed")
    supported_failures: tuple[str, ...] = tuple(FAILURES)

    @property
    def base_url(self) -> str:
        return f"{self.root}/v2"

    @property
    def requests(self) -> list[RecordedRequest]:
        return self.recorder.requests

    def provider_config(self, callback_token: str) -> dict[str, Any]:
        return {
            "type": "kazoo",
            "base_url": self.base_url,
            "account_id": self.state.account_id,
            "auth_token": self.state.auth_token,
            "callback_token": callback_token,
            "timeout_s": 5,
        }

    def fail_next(
        self, status: int, body: Any = None, headers: dict[str, str] | None = None, count: int = 1
    ) -> None:
        """Crossbar's token-bucket 429 carries no Retry-After header, so none is added."""
        if isinstance(body, dict) and body.get("status") == "error":
            body = {"error": str(status), **body}
        self.recorder.fail_next(status, body, headers, count)

    def error_body(self, message: str) -> dict[str, Any]:
        """Crossbar's error envelope (`error` holds the HTTP status, added by `fail_next`)."""
        data = {"message": message}
        return {"auth_token": "", "data": data, "message": message, "status": "error"}

    def hang_next(self, seconds: float) -> None:
        self.recorder.hang_next(seconds)

    def expire_tokens(self) -> None:
        """Tokens obtained through `api_auth` stop working, as after their lifetime."""
        self.state.tokens.intersection_update({self.state.auth_token})

    def set_job_status(self, fax_id: str, status: str) -> None:
        """Move a queued job on: `locked`, `processing` (it stays in `outgoing`)."""
        self.state.outgoing[fax_id]["status"] = status

    def finish(self, fax_id: str, status: str, reason: str | None = None) -> dict[str, Any]:
        """End a job like Kazoo's fax worker: fill `tx_result`, move it to the outbox."""
        job = self.state.outgoing.pop(fax_id, None) or {"id": fax_id}
        delivered = status == "delivered"
        cause, code, text = ("", 0, "OK") if delivered else FAILURES[reason or "unknown"]
        pages = _pages(self.state.files[fax_id]) if fax_id in self.state.files else 1
        tx = {
            **job.get("tx_result", {}),
            "success": delivered,
            "result_code": code,
            "result_text": text,
            "error_message": cause,
            "pages_sent": pages if delivered else 0,
            "time_elapsed": 42,
            "fax_receiver_id": "REMOTE FAX" if delivered else "",
        }
        outbox_id = f"{month()}-{fax_id}"
        job_status = "completed" if delivered else "failed"
        doc = {**job, "id": outbox_id, "folder": "outbox", "tx_result": tx, "status": job_status}
        self.state.outbox[outbox_id] = doc
        if fax_id in self.state.files:
            self.state.files[outbox_id] = self.state.files[fax_id]
        return doc

    def settle(self, fax_id: str, status: str, reason: str | None = None) -> None:
        """The job ends without a webhook reaching anyone (polling sees it in the outbox)."""
        if status in ("delivered", "failed"):
            self.finish(fax_id, status, reason)
        else:
            self.set_job_status(fax_id, "processing" if status == "sending" else "pending")

    def registered_callback_url(self, inbound: bool) -> str | None:
        """The `uri` of the webhook for `inbound_fax` / `outbound_fax` notifications."""
        event = "inbound_fax" if inbound else "outbound_fax"
        for hook in self.state.webhooks.values():
            if hook.get("custom_data") == {"type": event} and hook.get("enabled", True):
                return str(hook["uri"])
        return None

    def status_callback(
        self, provider_fax_id: str, status: str, reason: str | None = None
    ) -> CallbackHTTP:
        if status not in self.supported_statuses:
            raise NotImplementedError(f"Kazoo sends no webhook when a job is {status}")
        doc = self.finish(provider_fax_id, status, reason)
        tx = doc["tx_result"]
        event = "outbound_fax" if status == "delivered" else "outbound_fax_error"
        payload = {
            "caller_id_name": doc.get("from_name", ""),
            "caller_id_number": doc.get("from_number", ""),
            "callee_id_name": doc.get("to_name", ""),
            "callee_id_number": doc.get("to_number", ""),
            "fax_id": doc["id"],
            "fax_jobid": provider_fax_id,
            "fax_info": {
                "fax_success": tx["success"],
                "fax_result_code": tx["result_code"],
                "fax_result_text": tx["result_text"],
                "fax_total_pages": tx["pages_sent"] or 1,
                "fax_transferred_pages": tx["pages_sent"],
                "fax_remote_station_id": tx["fax_receiver_id"],
            },
        }
        if event == "outbound_fax_error":
            payload["fax_error"] = tx["error_message"]
        return self._notify(event, payload)

    def inbound_callback(self, from_number: str, to_number: str, pdf: bytes) -> CallbackHTTP:
        fax_id = f"{month()}-{secrets.token_hex(16)}"
        pages = _pages(pdf)
        self.state.inbox[fax_id] = {
            "id": fax_id,
            "folder": "inbox",
            "from_number": from_number,
            "to_number": to_number,
            "rx_result": {"success": True, "result_code": 0, "pages_received": pages},
        }
        self.state.files[fax_id] = pdf
        payload = {
            "caller_id_name": "",
            "caller_id_number": from_number,
            "callee_id_name": "",
            "callee_id_number": to_number,
            "fax_id": fax_id,
            "faxbox_id": secrets.token_hex(16),
            "owner_id": "",
            "fax_info": {
                "fax_success": True,
                "fax_result_code": 0,
                "fax_result_text": "OK",
                "fax_total_pages": pages,
                "fax_transferred_pages": pages,
                "fax_remote_station_id": "SENDER FAX",
                "fax_doc_id": fax_id,
            },
        }
        return self._notify("inbound_fax", payload)

    def _notify(self, event: str, fields: dict[str, Any]) -> CallbackHTTP:
        """A `notifications` webhook delivery: AMQP base fields, event fields, custom_data."""
        hooks = [h for h in self.state.webhooks.values() if h.get("custom_data") == {"type": event}]
        hook: dict[str, Any] = hooks[0] if hooks else {"id": secrets.token_hex(16)}
        hook.setdefault("custom_data", {"type": event})
        payload = {
            "account_id": self.state.account_id,
            "app_name": "fax",
            "app_version": "4.3.0",
            "event_category": "notification",
            "event_name": event,
            "msg_id": secrets.token_hex(16),
            "node": "kazoo_apps@kazoo.test",
            "server_id": secrets.token_hex(8),
            "call_id": secrets.token_hex(16),
            "fax_timestamp": gregorian_now(),
            **fields,
            **hook["custom_data"],
        }
        headers = {
            "content-type": "application/json",
            "x-hook-id": hook["id"],
            "x-account-id": self.state.account_id,
        }
        return CallbackHTTP(headers=headers, body=json.dumps(payload).encode())

    def forged(self, callback: CallbackHTTP) -> CallbackHTTP:
        """Kazoo signs nothing: a forger knows the payload shape but not our URL's token."""
        query = {**callback.query, "token": f"forged-{secrets.token_hex(8)}"}
        return CallbackHTTP(headers=dict(callback.headers), body=callback.body, query=query)


@contextlib.contextmanager
def make_harness() -> Iterator[KazooHarness]:
    state = KazooState()
    recorder = Recorder(make_app(state))
    with serve(recorder) as root:
        yield KazooHarness(state=state, recorder=recorder, root=root)
