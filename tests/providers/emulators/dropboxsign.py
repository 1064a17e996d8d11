"""A Dropbox Sign fax API v3 on loopback, rebuilt from the official material.

Routes follow hellosign/hellosign-openapi @ad21451 `openapi.yaml` (paths, FaxSendRequest,
FaxResponse, ErrorResponse, the X-RateLimit headers) and the examples it references
(`examples/json/Fax*.json`, `examples/json/Error*Response.json`, `test_fixtures/Fax*.json`).
Callbacks are built in `_dropboxsign_events` from the official fax event examples
(`examples/json/EventCallbackFax*.json`) and the help.dropbox.com sample. Where the sources say
nothing, each route says what it chose.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import re
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

from tests.providers.emulators import _dropboxsign_events as events
from tests.providers.emulators._callbacks import CallsBack
from tests.providers.harness import CallbackHTTP, RecordedRequest, Recorder, serve

API_KEY = "c4f1e0a9b2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9"
ACCOUNT_EMAIL = "me@dropboxsign.com"  # examples/json/FaxGetResponse.json `sender`
FAX_LINES = ["12125550100"]  # test_fixtures/FaxLineListResponse.json writes `14155557897`
RATE_LIMIT = 100  # components/headers X-RateLimit-Limit example
RATE_LIMIT_RESET_S = 30
# FaxResponseTransmission.status_code enum (openapi.yaml) + `on_hold`, `error_file` (the
# api/reference/fax page's tables): what `GET /fax/{id}` shows once a fax has ended.
STATUS_CODES = {"sending": "transmitting", "delivered": "success"}
FAILURE_CODES = {
    "busy": "error_busy",
    "no_answer": "error_no_answer",
    "bad_number": "error_bad_destination",
    "blocked_destination": "error_bad_destination",  # "The line has been banned"
    "disconnected": "error_disconnected",
    "on_hold": "on_hold",
    "file_error": "error_file",
    "unknown": "error_unknown",
}
# The official fax event for each outcome (examples/json/EventCallbackFax*.json); the others
# (transmitting, bad number, file error, unknown) have no event in any official source.
EVENTS = {
    ("delivered", None): "fax_sent",
    ("failed", "busy"): "fax_busy",
    ("failed", "no_answer"): "fax_no_answer",
    ("failed", "disconnected"): "fax_disconnected",
    ("failed", "blocked_destination"): "fax_blacklisted",
    ("failed", "on_hold"): "fax_on_hold",
}
_E164 = re.compile(r"^\+[1-9]\d{7,14}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def error(status: int, message: str, name: str) -> JSONResponse:
    """ErrorResponse: `{"error": {"error_msg", "error_name"}}` (examples/json/Error4XX…)."""
    body = {"error": {"error_msg": message, "error_name": name}}
    return JSONResponse(body, status_code=status, headers=rate_limit_headers())


def rate_limit_headers(remaining: int = RATE_LIMIT - 1) -> dict[str, str]:
    """On every answer (components/headers): X-Ratelimit-Reset is "the Unix time" of reset."""
    return {
        "X-RateLimit-Limit": str(RATE_LIMIT),
        "X-RateLimit-Remaining": str(remaining),
        "X-Ratelimit-Reset": str(int(time.time()) + RATE_LIMIT_RESET_S),
    }


@dataclass
class Fax:
    fax_id: str
    recipient: str
    leg_sender: str | None
    files: list[bytes]
    base_url: str = ""
    title: str = ""
    cover: dict[str, str] = field(default_factory=dict)
    test_mode: bool = False
    status_code: str = "transmitting"  # test_fixtures/FaxResponse.json right after a send
    created_at: int = field(default_factory=lambda: int(time.time()))
    sent_at: int | None = None
    # The files_url segment is not the fax id (examples/json/FaxGetResponse.json).
    file_id: str = field(default_factory=lambda: secrets.token_hex(20))

    def files_url(self) -> str:
        return f"{self.base_url}/fax/files/{self.file_id}"

    def as_json(self) -> dict[str, Any]:
        """FaxResponse, keyed as examples/json/FaxGetResponse.json: `sender` is the account's
        e-mail address; the leg names recipient (and sender, when one was given)."""
        leg: dict[str, Any] = {"recipient": self.recipient, "status_code": self.status_code}
        if self.leg_sender:
            leg["sender"] = self.leg_sender
        if self.sent_at is not None:
            leg["sent_at"] = self.sent_at
        return {
            "fax_id": self.fax_id,
            "title": self.title,
            "original_title": self.title,
            "subject": self.cover.get("cover_page_to"),
            "message": self.cover.get("cover_page_message"),
            "metadata": {},
            "created_at": self.created_at,
            "sender": ACCOUNT_EMAIL,
            "transmissions": [leg],
            "files_url": self.files_url(),
            # test_fixtures/FaxResponse.json: the final copy is named by the fax id.
            "final_copy_uri": f"/v3/transmission/final_copy/{self.fax_id}",
        }


@dataclass
class DropboxSignState:
    base_url: str = ""
    faxes: dict[str, Fax] = field(default_factory=dict)
    lines: list[str] = field(default_factory=lambda: list(FAX_LINES))
    answer_delay_s: float = 0.0  # the next send is kept at once, but answered this much later


def _authorized(request: Request) -> bool:
    """securitySchemes.api_key: HTTP basic, the API key as user name, no password."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        decoded = base64.b64decode(value).decode()
    except ValueError:
        return False
    return secrets.compare_digest(decoded, f"{API_KEY}:")


def _valid_recipient(value: str) -> bool:
    """FaxSendRequest.recipient: "a phone number in E.164 format or email address"; the
    official examples send digits without `+` (examples/json/FaxSendRequest.json), so both."""
    return bool(_E164.match(value) or re.fullmatch(r"[1-9]\d{9,14}", value) or _EMAIL.match(value))


async def _send_fields(request: Request) -> tuple[dict[str, Any], list[bytes], bool]:
    """FaxSendRequest as JSON or multipart/form-data (both in the /fax/send requestBody)."""
    if request.headers.get("content-type", "").startswith("application/json"):
        body = dict(await request.json())
        return body, [], bool(body.get("file_urls") or body.get("file_url"))
    fields: dict[str, Any] = {}
    files: list[bytes] = []
    urls = False
    async with request.form() as form:
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                if key == "files" or key.startswith("files["):  # `files[]`, `files[0]` (curl)
                    files.append(await value.read())
            elif key.startswith("file_url"):  # `file_urls[]`; test_fixtures say `file_url`
                urls = True
            else:
                fields.setdefault(key, value)
    return fields, files, urls


def build_app(state: DropboxSignState) -> Starlette:
    def answer(body: Any, status: int = 200) -> JSONResponse:
        return JSONResponse(body, status_code=status, headers=rate_limit_headers())

    def refused(request: Request) -> Response | None:
        if _authorized(request):
            return None  # examples/json/Error401Response.json
        return error(401, "Unauthorized user. No credentials supplied.", "unauthorized")

    # POST /fax/send (openapi.yaml paths./fax/send, operationId faxSend): 200 FaxGetResponse.
    async def send(request: Request) -> Response:
        if (no := refused(request)) is not None:
            return no
        fields, files, urls = await _send_fields(request)
        recipient = str(fields.get("recipient") or fields.get("to") or "")  # seed: `to`
        if not recipient:
            return error(400, "Parameter recipient is required", "bad_request")
        if not _valid_recipient(recipient):
            return error(400, f"Invalid recipient: {recipient}", "bad_request")
        if bool(files) == urls:  # "requires either files or file_urls[], but not both"
            return error(400, "Either files[] or file_urls[] is required", "bad_request")
        sender = fields.get("sender") or fields.get("from")
        fax = Fax(
            fax_id=secrets.token_hex(20),
            recipient=recipient,
            leg_sender=str(sender) if sender else None,
            files=files,
            base_url=state.base_url,
            title=str(fields.get("title") or ""),
            cover={k: str(v) for k, v in fields.items() if k.startswith("cover_page_")},
            test_mode=str(fields.get("test_mode", "0")).lower() in {"1", "true"},
        )
        state.faxes[fax.fax_id] = fax
        if state.answer_delay_s:
            delay, state.answer_delay_s = state.answer_delay_s, 0.0
            await asyncio.sleep(delay)
        return answer({"fax": fax.as_json()})

    # GET and DELETE /fax/{fax_id} (faxGet 200 FaxGetResponse; faxDelete 204, no body;
    # 404 examples/json/Error404Response.json).
    async def one_fax(request: Request) -> Response:
        if (no := refused(request)) is not None:
            return no
        fax = state.faxes.get(request.path_params["fax_id"])
        if fax is None:
            return error(404, "Not found.", "not_found")
        if request.method == "DELETE":
            del state.faxes[fax.fax_id]
            return Response(status_code=204, headers=rate_limit_headers())
        return answer({"fax": fax.as_json()})

    def page_params(request: Request) -> tuple[int, int] | Response:
        """`page` (min 1) and `page_size` ("between 1 and 100", default 20)."""
        try:
            page = int(request.query_params.get("page", "1"))
            size = int(request.query_params.get("page_size", "20"))
        except ValueError:
            return error(400, "page and page_size must be integers", "bad_request")
        if page < 1 or not 1 <= size <= 100:
            return error(400, "page_size must be between 1 and 100", "bad_request")
        return page, size

    def listing(key: str, rows: list[Any], page: int, size: int) -> JSONResponse:
        info = {"num_pages": max(1, -(-len(rows) // size)), "num_results": len(rows)}
        chunk = rows[(page - 1) * size : page * size]
        return answer({"list_info": {**info, "page": page, "page_size": size}, key: chunk})

    # GET /fax/list (faxList, FaxListResponse). The order is undocumented: newest first here.
    async def list_faxes(request: Request) -> Response:
        if (no := refused(request)) is not None:
            return no
        paging = page_params(request)
        if isinstance(paging, Response):
            return paging
        faxes = sorted(state.faxes.values(), key=lambda f: f.created_at, reverse=True)
        return listing("faxes", [f.as_json() for f in faxes], *paging)

    # GET /fax/files/{fax_id} (faxFiles): application/pdf. Also answers the files_url segment,
    # since the examples' files_url (…/fax/files/<other id>) must be downloadable too.
    async def files(request: Request) -> Response:
        if (no := refused(request)) is not None:
            return no
        wanted = request.path_params["fax_id"]
        fax = state.faxes.get(wanted) or next(
            (f for f in state.faxes.values() if f.file_id == wanted), None
        )
        if fax is None or not fax.files:
            return error(404, "Not found.", "not_found")
        return Response(fax.files[0], media_type="application/pdf", headers=rate_limit_headers())

    # GET /fax_line/list (faxLineList, FaxLineListResponse; test_fixtures/FaxLineListResponse).
    async def fax_lines(request: Request) -> Response:
        if (no := refused(request)) is not None:
            return no
        paging = page_params(request)
        if isinstance(paging, Response):
            return paging
        account = {"account_id": events.ACCOUNT_ID, "email_address": ACCOUNT_EMAIL}
        now = int(time.time())
        rows = [
            {"number": n, "created_at": now, "updated_at": now, "accounts": [account]}
            for n in state.lines
        ]
        return listing("fax_lines", rows, *paging)

    return Starlette(
        routes=[
            Route("/v3/fax/send", send, methods=["POST"]),
            Route("/v3/fax/list", list_faxes, methods=["GET"]),
            Route("/v3/fax/files/{fax_id}", files, methods=["GET"]),
            Route("/v3/fax_line/list", fax_lines, methods=["GET"]),
            Route("/v3/fax/{fax_id}", one_fax, methods=["GET", "DELETE"]),
        ]
    )


class DropboxSignHarness(CallsBack):
    provider_type = "dropboxsign"
    # The failures an official fax event reports (EVENTS).
    supported_failures = tuple(str(reason) for status, reason in EVENTS if status == "failed")

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

    def answer_late(self, seconds: float) -> None:
        """The next send is accepted at once, but its answer comes `seconds` later."""
        self.state.answer_delay_s = seconds

    def error_body(self, message: str) -> Any:
        return {"error": {"error_msg": message, "error_name": "bad_request"}}

    def _finish(self, fax_id: str, status: str, reason: str | None) -> Fax:
        fax = self.state.faxes.get(fax_id) or Fax(fax_id, "12125550123", None, [], self.base_url)
        if status == "failed":
            fax.status_code = FAILURE_CODES[reason or "unknown"]
        elif status in STATUS_CODES:
            fax.status_code = STATUS_CODES[status]
        else:
            raise NotImplementedError(f"Dropbox Sign has no status code for {status!r}")
        fax.sent_at = int(time.time())
        return fax

    def settle(self, fax_id: str, status: str, reason: str | None = None) -> None:
        """The fax ends without a callback reaching anyone (`GET /fax/{id}` shows it)."""
        self._finish(fax_id, status, reason)

    def status_callback(
        self, provider_fax_id: str, status: str, reason: str | None = None
    ) -> CallbackHTTP:
        """The official fax event for the outcome, as examples/json/EventCallbackFax*.json."""
        name = EVENTS.get((status, reason))
        if name is None:
            raise NotImplementedError(f"Dropbox Sign has no fax event for {status!r} {reason!r}")
        return events.official_event(API_KEY, name, self._finish(provider_fax_id, status, reason))

    def inbound_callback(self, from_number: str, to_number: str, pdf: bytes) -> CallbackHTTP:
        """examples/json/EventCallbackFaxReceived.json: `fax_received`, a `transmission` with no
        numbers; `GET /fax/{id}` has them (digits, the account's e-mail as `sender`)."""
        fax = Fax(
            fax_id=secrets.token_hex(20),
            recipient=to_number.lstrip("+"),
            leg_sender=from_number.lstrip("+"),
            files=[pdf],
            base_url=self.base_url,
            title="Fax received",
            status_code="success",
            sent_at=int(time.time()),
        )
        self.state.faxes[fax.fax_id] = fax
        return events.official_event(API_KEY, "fax_received", fax)

    def unclassifiable_callback(self) -> CallbackHTTP:
        """`callback_test` (OpenAPI event enum), as examples/json/EventCallbackCallbackTest.json."""
        return events.callback_test(API_KEY)

    def forged(self, callback: CallbackHTTP) -> CallbackHTTP:
        """Same payload, but the event_hash signed with a key that is not ours."""
        sent = RecordedRequest("POST", "/", {}, callback.headers, callback.body)
        payload = json.loads(sent.form()["json"][0])
        event = payload["event"]
        event["event_hash"] = events.event_hash(
            "not-the-api-key", event["event_time"], event["event_type"]
        )
        return events.as_callback(payload)


@contextlib.contextmanager
def make_harness() -> Iterator[DropboxSignHarness]:
    state = DropboxSignState()
    recorder = Recorder(build_app(state))
    with serve(recorder) as url:
        yield DropboxSignHarness(state, recorder, url)
