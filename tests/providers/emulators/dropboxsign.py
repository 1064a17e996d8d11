"""A Dropbox Sign fax API v3 on loopback, from seed 003, PROVIDERS.md and the public OpenAPI
examples (response and callback shapes).

Basic auth with the API key and an empty password; `POST /fax/send` (multipart or JSON,
`recipient`/`sender` or the pre-release `to`/`from`, `files[]`/`files[N]`/`file_urls[]`),
`GET /fax/{id}`, `GET /fax/list`, `GET /fax/files/{id}`, `DELETE /fax/{id}`; rate-limit headers
on every answer and `X-Ratelimit-Reset` (epoch seconds) on a 429; errors as
`{"error": {"error_msg", "error_name"}}`. Callbacks are multipart with one `json` field whose
`event_hash` is signed with the API key; like the real ones, they name no phone numbers.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.providers.emulators._callbacks import CallsBack
from tests.providers.emulators.hellofax import multipart
from tests.providers.harness import CallbackHTTP, RecordedRequest, Recorder, serve

API_KEY = "c4f1e0a9b2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9"
ACCOUNT_EMAIL = "fax@example.com"
ACCOUNT_ID = "63522885f9261e2b04eea043933ee7313eb674fd"
RATE_LIMIT = 100
RATE_LIMIT_RESET_S = 30

# Common model → callback event (Dropbox Sign sends no callback for submitted/sending).
EVENTS = {"delivered": "fax_sent"}
# Common model → `transmissions[].status_code` of the fax record (what `GET /fax/{id}` shows).
STATUS_CODES = {"sending": "transmitting", "delivered": "success"}
FAILURE_STATUS_CODES = {
    "busy": "error_busy",
    "no_answer": "error_no_answer",
    "bad_number": "error_bad_destination",
    "disconnected": "error_disconnected",
    "unknown": "error_unknown",
}
FAILURE_EVENTS = {
    "busy": "fax_busy",
    "no_answer": "fax_no_answer",
    "disconnected": "fax_disconnected",
    "blocked_destination": "fax_blacklisted",
    "on_hold": "fax_on_hold",
}


def event_hash(key: str, event_time: str, event_type: str) -> str:
    """hex(HMAC-SHA256(key=api_key, msg=event_time + event_type)), as Dropbox Sign signs."""
    return hmac.new(key.encode(), f"{event_time}{event_type}".encode(), hashlib.sha256).hexdigest()


def error(status: int, message: str, name: str) -> JSONResponse:
    return JSONResponse({"error": {"error_msg": message, "error_name": name}}, status_code=status)


def rate_limit_headers(remaining: int = RATE_LIMIT - 1) -> dict[str, str]:
    return {
        "X-RateLimit-Limit": str(RATE_LIMIT),
        "X-RateLimit-Remaining": str(remaining),
        "X-Ratelimit-Reset": str(int(time.time()) + RATE_LIMIT_RESET_S),
    }


@dataclass
class Fax:
    fax_id: str
    recipient: str
    sender: str
    files: list[bytes]
    title: str = ""
    cover: dict[str, str] = field(default_factory=dict)
    test_mode: bool = False
    status_code: str = "transmitting"
    created_at: int = field(default_factory=lambda: int(time.time()))
    sent_at: int | None = None

    def files_url(self, base_url: str) -> str:
        return f"{base_url}/fax/files/{self.fax_id}"

    def as_json(self, base_url: str) -> dict[str, Any]:
        return {
            "fax_id": self.fax_id,
            "title": self.title,
            "original_title": self.title,
            "subject": self.cover.get("cover_page_to"),
            "message": self.cover.get("cover_page_message"),
            "metadata": {},
            "created_at": self.created_at,
            "sender": self.sender,
            "transmissions": [
                {
                    "recipient": self.recipient,
                    "sender": self.sender,
                    "sent_at": self.sent_at,
                    "status_code": self.status_code,
                }
            ],
            "files_url": self.files_url(base_url),
        }


@dataclass
class DropboxSignState:
    base_url: str = ""
    faxes: dict[str, Fax] = field(default_factory=dict)


def _authorized(request: Request) -> bool:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        decoded = base64.b64decode(value).decode()
    except ValueError:
        return False
    return secrets.compare_digest(decoded, f"{API_KEY}:")


def _truthy(value: Any) -> bool:
    return str(value).strip().lower() in {"1", "true", "yes", "on"}


async def _send_fields(request: Request) -> tuple[dict[str, Any], list[bytes]]:
    """Form or JSON fields and the uploaded files, whichever way the client sent them."""
    if request.headers.get("content-type", "").startswith("application/json"):
        return dict(await request.json()), []
    fields: dict[str, Any] = {}
    files: list[bytes] = []
    async with request.form() as form:
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                if key in {"files", "file"} or key.startswith(("files[", "file[")):
                    files.append(await value.read())
            else:
                fields.setdefault(key, value)
    return fields, files


def build_app(state: DropboxSignState) -> Starlette:
    def json_response(body: Any, status: int = 200) -> JSONResponse:
        return JSONResponse(body, status_code=status, headers=rate_limit_headers())

    def refused(request: Request) -> Response | None:
        if _authorized(request):
            return None
        return error(401, "Unauthorized user. No credentials supplied.", "unauthorized")

    async def send(request: Request) -> Response:
        if (answer := refused(request)) is not None:
            return answer
        fields, files = await _send_fields(request)
        recipient = str(fields.get("recipient") or fields.get("to") or "")
        sender = str(fields.get("sender") or fields.get("from") or ACCOUNT_EMAIL)
        if not recipient:
            return error(400, "Parameter recipient is required", "bad_request")
        if not (recipient.isdigit() and len(recipient) >= 10) and "@" not in recipient:
            return error(400, f"Invalid recipient: {recipient}", "bad_request")
        if not files and not fields.get("file_urls[]") and not fields.get("file_urls"):
            return error(400, "Either files[] or file_urls[] is required", "bad_request")
        cover = {k: str(fields[k]) for k in fields if k.startswith("cover_page_")}
        fax = Fax(
            fax_id=secrets.token_hex(20),
            recipient=recipient,
            sender=sender,
            files=files,
            title=str(fields.get("title") or ""),
            cover=cover,
            test_mode=_truthy(fields.get("test_mode", "0")),
        )
        state.faxes[fax.fax_id] = fax
        return json_response({"fax": fax.as_json(state.base_url)})

    async def one_fax(request: Request) -> Response:
        if (answer := refused(request)) is not None:
            return answer
        fax = state.faxes.get(request.path_params["fax_id"])
        if fax is None:
            return error(404, "Not found", "not_found")
        if request.method == "DELETE":
            del state.faxes[fax.fax_id]
            return Response(status_code=200, headers=rate_limit_headers())
        return json_response({"fax": fax.as_json(state.base_url)})

    async def list_faxes(request: Request) -> Response:
        if (answer := refused(request)) is not None:
            return answer
        page = max(1, int(request.query_params.get("page", "1")))
        size = min(100, max(1, int(request.query_params.get("page_size", "20"))))
        faxes = list(state.faxes.values())
        return json_response(
            {
                "list_info": {
                    "num_pages": max(1, -(-len(faxes) // size)),
                    "num_results": len(faxes),
                    "page": page,
                    "page_size": size,
                },
                "faxes": [f.as_json(state.base_url) for f in faxes[(page - 1) * size :][:size]],
            }
        )

    async def files(request: Request) -> Response:
        if (answer := refused(request)) is not None:
            return answer
        fax = state.faxes.get(request.path_params["fax_id"])
        if fax is None or not fax.files:
            return error(404, "Not found", "not_found")
        return Response(fax.files[0], media_type="application/pdf", headers=rate_limit_headers())

    return Starlette(
        routes=[
            Route("/v3/fax/send", send, methods=["POST"]),
            Route("/v3/fax/list", list_faxes, methods=["GET"]),
            Route("/v3/fax/files/{fax_id}", files, methods=["GET"]),
            Route("/v3/fax/{fax_id}", one_fax, methods=["GET", "DELETE"]),
        ]
    )


class DropboxSignHarness(CallsBack):
    provider_type = "dropboxsign"
    supported_failures = tuple(FAILURE_EVENTS)

    def __init__(self, state: DropboxSignState, recorder: Recorder, url: str) -> None:
        self.state = state
        self.recorder = recorder
        self.base_url = f"{url}/v3"
        state.base_url = self.base_url

    @property
    def requests(self) -> list[RecordedRequest]:
        return self.recorder.requests

    def provider_config(self, callback_token: str) -> dict[str, Any]:
        # No callback_token: Dropbox Sign callbacks are authenticated by their event_hash.
        return {"type": "dropboxsign", "base_url": self.base_url, "api_key": API_KEY}

    def fail_next(
        self, status: int, body: Any = None, headers: dict[str, str] | None = None, count: int = 1
    ) -> None:
        if headers is None and status == 429:
            headers = rate_limit_headers(remaining=0)
        self.recorder.fail_next(status, body, headers, count)

    def hang_next(self, seconds: float) -> None:
        self.recorder.hang_next(seconds)

    def error_body(self, message: str) -> Any:
        return {"error": {"error_msg": message, "error_name": "bad_request"}}

    def settle(self, fax_id: str, status: str, reason: str | None = None) -> None:
        """The fax ends without a callback reaching anyone (`GET /fax/{id}` shows it)."""
        fax = self.state.faxes[fax_id]
        if status == "failed":
            fax.status_code = FAILURE_STATUS_CODES[reason or "unknown"]
        else:
            fax.status_code = STATUS_CODES[status]
        fax.sent_at = int(time.time())

    def event_callback(
        self, event_type: str, fax: Fax, event_time: int | None = None
    ) -> CallbackHTTP:
        """The multipart POST Dropbox Sign makes to the account callback URL."""
        when = str(event_time if event_time is not None else int(time.time()))
        payload = {
            "event": {
                "event_time": when,
                "event_type": event_type,
                "event_hash": event_hash(API_KEY, when, event_type),
                "event_metadata": {
                    "related_signature_id": None,
                    "reported_for_account_id": ACCOUNT_ID,
                    "reported_for_app_id": None,
                },
            },
            "transmission": {
                "test_mode": fax.test_mode,
                "signature_request_id": "",
                "title": fax.title,
                "original_title": fax.title,
                "subject": fax.cover.get("cover_page_to"),
                "message": fax.cover.get("cover_page_message"),
                "metadata": {},
                "created_at": fax.created_at,
                "is_complete": fax.status_code == "success",
                "is_declined": False,
                "has_error": event_type in FAILURE_EVENTS.values(),
                "files_url": fax.files_url(self.base_url),
                "cc_email_addresses": [],
                "final_copy_uri": f"/v3/transmission/final_copy/{fax.fax_id}",
                "template_ids": [],
                "custom_fields": [],
                "attachments": [],
                "response_data": [],
                "signatures": [],
            },
        }
        body, content_type = multipart({"json": json.dumps(payload)})
        return CallbackHTTP(headers={"content-type": content_type}, body=body)

    def status_callback(
        self, provider_fax_id: str, status: str, reason: str | None = None
    ) -> CallbackHTTP:
        if status == "failed":
            event_type = FAILURE_EVENTS[reason or ""]
        elif status in EVENTS:
            event_type = EVENTS[status]
        else:
            raise NotImplementedError(f"Dropbox Sign sends no callback for {status!r}")
        fax = self.state.faxes.get(provider_fax_id) or Fax(
            provider_fax_id, "12125550123", ACCOUNT_EMAIL, []
        )
        fax.status_code = "success" if event_type == "fax_sent" else fax.status_code
        fax.sent_at = int(time.time())
        return self.event_callback(event_type, fax)

    def inbound_callback(self, from_number: str, to_number: str, pdf: bytes) -> CallbackHTTP:
        fax = Fax(
            fax_id=secrets.token_hex(20),
            recipient=to_number.lstrip("+"),
            sender=from_number.lstrip("+"),
            files=[pdf],
            title="Received fax",
            status_code="success",
            sent_at=int(time.time()),
        )
        self.state.faxes[fax.fax_id] = fax
        return self.event_callback("fax_received", fax)

    def forged(self, callback: CallbackHTTP) -> CallbackHTTP:
        """Same payload, but the event_hash signed with a key that is not ours."""
        sent = RecordedRequest("POST", "/", {}, callback.headers, callback.body)
        payload = json.loads(sent.form()["json"][0])
        event = payload["event"]
        event["event_hash"] = event_hash(
            "not-the-api-key", event["event_time"], event["event_type"]
        )
        body, content_type = multipart({"json": json.dumps(payload)})
        return CallbackHTTP(headers={"content-type": content_type}, body=body)


@contextlib.contextmanager
def make_harness() -> Iterator[DropboxSignHarness]:
    state = DropboxSignState()
    recorder = Recorder(build_app(state))
    with serve(recorder) as url:
        yield DropboxSignHarness(state, recorder, url)
