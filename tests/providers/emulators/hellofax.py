"""A HelloFax / Dropbox Fax v1 API on loopback, from seed 000 and PROVIDERS.md.

Faithful where the seed is explicit: Basic auth, `/v1/Accounts/{guid}` with its callback URL
fields, `Transmissions?To=…&From=…` with `file`/`file[]`/`file[N]` parts and the `CoverPage*`
fields, status codes T/P/S/E/H with error codes, the 429 past the pending limit, and the
deletion of a transmission once its final callback went out (a later GET is 404).
Inferred: the error body shape (`{"error": {"error_msg", "error_name"}}`, as in the rest of the
HelloSign family) and the inbound callback's file part.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from pypdf import PdfReader
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.providers.emulators._callbacks import CallsBack
from tests.providers.harness import CallbackHTTP, RecordedRequest, Recorder, serve

USERNAME = "fax@example.com"
PASSWORD = "s3cret-password"
ACCOUNT_GUID = "15da1c48b10c96a903eb1bac3d592fbed24ebc35"
FAX_LINE = "12125550100"
PENDING_MESSAGE = (
    "Please wait. You already have at least {limit} transmissions that are currently pending "
    "or transmitting."
)

# Common model → (StatusCode, ErrorCode), per the PROVIDERS.md status table.
PROGRESS_CODES = {"submitted": "P", "sending": "T", "delivered": "S"}
FAILURE_CODES: dict[str, tuple[str, str | None]] = {
    "busy": ("E", "B"),
    "no_answer": ("E", "N"),
    "bad_number": ("E", "A"),
    "disconnected": ("E", "D"),
    "blocked_destination": ("E", "L"),
    "file_error": ("E", None),
    "on_hold": ("H", None),
    "unknown": ("E", "U"),
}


def error(status: int, message: str, name: str = "bad_request") -> JSONResponse:
    return JSONResponse({"error": {"error_msg": message, "error_name": name}}, status_code=status)


def multipart(
    fields: dict[str, str], files: dict[str, tuple[str, bytes, str]] | None = None
) -> tuple[bytes, str]:
    """A multipart/form-data body as a provider's callback would carry it."""
    boundary = secrets.token_hex(12)
    chunks = []
    for name, value in fields.items():
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
        chunks.append(head.encode() + value.encode() + b"\r\n")
    for name, (filename, data, content_type) in (files or {}).items():
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
            f'filename="{filename}"\r\nContent-Type: {content_type}\r\n\r\n'
        )
        chunks.append(head.encode() + data + b"\r\n")
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), f"multipart/form-data; boundary={boundary}"


def count_pages(data: bytes) -> int:
    try:
        return len(PdfReader(io.BytesIO(data)).pages)
    except Exception:
        return 1


@dataclass
class Transmission:
    guid: str
    to: str
    from_: str
    files: list[bytes]
    cover: dict[str, str]
    status_code: str = "P"
    error_code: str | None = None
    is_inbound: bool = False
    created_at: int = field(default_factory=lambda: int(time.time()))
    updated_at: int = field(default_factory=lambda: int(time.time()))
    deleted: bool = False

    @property
    def pages(self) -> int:
        return sum(count_pages(f) for f in self.files) + (1 if self.cover else 0)

    def as_json(self) -> dict[str, Any]:
        return {
            "Guid": self.guid,
            "To": self.to,
            "From": self.from_,
            "IsInbound": self.is_inbound,
            "StatusCode": self.status_code,
            "ErrorCode": self.error_code,
            "CreatedAt": str(self.created_at),
            "UpdatedAt": str(self.updated_at),
            "Uri": f"/v1/Accounts/{ACCOUNT_GUID}/Transmissions/{self.guid}",
            "NumPagesBilled": self.pages,
        }


@dataclass
class HelloFaxState:
    pending_limit: int = 200
    account: dict[str, Any] = field(
        default_factory=lambda: {
            "Guid": ACCOUNT_GUID,
            "Uri": f"/v1/Accounts/{ACCOUNT_GUID}",
            "EmailAddress": USERNAME,
            "DefaultInboundFaxCallbackUrl": None,
            "DefaultOutboundFaxCallbackUrl": None,
        }
    )
    transmissions: dict[str, Transmission] = field(default_factory=dict)

    def pending(self) -> int:
        return sum(1 for t in self.transmissions.values() if t.status_code in {"P", "T"})


def _authorized(request: Request) -> bool:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        user, _, password = base64.b64decode(value).decode().partition(":")
    except ValueError:
        return False
    return secrets.compare_digest(f"{user}:{password}", f"{USERNAME}:{PASSWORD}")


def build_app(state: HelloFaxState) -> Starlette:
    def guard(request: Request) -> Response | None:
        if not _authorized(request):
            return error(401, "Unauthorized: bad username or password", "unauthorized")
        if request.path_params["account"] != ACCOUNT_GUID:
            return error(404, "Account not found", "not_found")
        return None

    async def account(request: Request) -> Response:
        if (refused := guard(request)) is not None:
            return refused
        if request.method == "POST":
            async with request.form() as form:
                for key in ("DefaultInboundFaxCallbackUrl", "DefaultOutboundFaxCallbackUrl"):
                    if key in form:
                        state.account[key] = str(form[key])
        return JSONResponse({"Account": state.account})

    async def fax_lines(request: Request) -> Response:
        if (refused := guard(request)) is not None:
            return refused
        line = {"Number": FAX_LINE, "Uri": f"/v1/Accounts/{ACCOUNT_GUID}/FaxLines/{FAX_LINE}"}
        return JSONResponse({"FaxLines": [line]})

    async def send(request: Request) -> Response:
        if (refused := guard(request)) is not None:
            return refused
        async with request.form() as form:
            values = [*request.query_params.multi_items(), *form.multi_items()]
            numbers = [str(v) for k, v in values if k == "To" or k.startswith("To[")]
            sender = next((str(v) for k, v in values if k == "From"), FAX_LINE)
            files = [
                await v.read()
                for k, v in form.multi_items()
                if isinstance(v, UploadFile) and (k == "file" or k.startswith("file["))
            ]
            cover = {
                k: str(form[k])
                for k in ("CoverPageTo", "CoverPageFrom", "CoverPageMessage")
                if form.get(k)
            }
        if not files:
            return error(400, "No file was uploaded: send it as the multipart field 'file'")
        if not numbers:
            return error(400, "Missing required parameter: To")
        for number in numbers:
            if not number.isdigit() or len(number) < 10:
                return error(400, f"Invalid fax number: {number}")
        if state.pending() + len(numbers) > state.pending_limit:
            return error(429, PENDING_MESSAGE.format(limit=state.pending_limit), "exceeded_rate")
        created = []
        for number in numbers:
            guid = secrets.token_hex(20)
            state.transmissions[guid] = Transmission(guid, number, sender, files, cover)
            created.append(state.transmissions[guid].as_json())
        if len(created) == 1:
            return JSONResponse({"Transmission": created[0]})
        return JSONResponse({"Transmissions": created})

    async def transmissions(request: Request) -> Response:
        if (refused := guard(request)) is not None:
            return refused
        live = [t.as_json() for t in state.transmissions.values() if not t.deleted]
        page = max(1, int(request.query_params.get("Page", "1")))
        size = max(1, int(request.query_params.get("PageSize", "20")))
        return JSONResponse(
            {
                "Transmissions": live[(page - 1) * size : page * size],
                "Page": page,
                "PageSize": size,
                "NumPages": max(1, -(-len(live) // size)),
            }
        )

    async def transmission(request: Request) -> Response:
        if (refused := guard(request)) is not None:
            return refused
        found = state.transmissions.get(request.path_params["guid"])
        if found is None or found.deleted:
            return error(404, "Transmission not found", "not_found")
        return JSONResponse({"Transmission": found.as_json()})

    base = "/v1/Accounts/{account}"
    return Starlette(
        routes=[
            Route(base, account, methods=["GET", "POST"]),
            Route(f"{base}/FaxLines", fax_lines, methods=["GET"]),
            Route(f"{base}/Transmissions", send, methods=["POST"]),
            Route(f"{base}/Transmissions", transmissions, methods=["GET"]),
            Route(f"{base}/Transmissions/{{guid}}", transmission, methods=["GET"]),
        ]
    )


class HelloFaxHarness(CallsBack):
    provider_type = "hellofax"
    supported_failures = tuple(FAILURE_CODES)

    def __init__(self, state: HelloFaxState, recorder: Recorder, url: str) -> None:
        self.state = state
        self.recorder = recorder
        self.base_url = f"{url}/v1"

    @property
    def requests(self) -> list[RecordedRequest]:
        return self.recorder.requests

    def provider_config(self, callback_token: str) -> dict[str, Any]:
        return {
            "type": "hellofax",
            "base_url": self.base_url,
            "username": USERNAME,
            "password": PASSWORD,
            "account_guid": ACCOUNT_GUID,
            "callback_token": callback_token,
        }

    def fail_next(
        self, status: int, body: Any = None, headers: dict[str, str] | None = None, count: int = 1
    ) -> None:
        # HelloFax's 429 names the pending limit and carries no rate-limit header.
        self.recorder.fail_next(status, body, headers, count)

    def hang_next(self, seconds: float) -> None:
        self.recorder.hang_next(seconds)

    def error_body(self, message: str) -> Any:
        return {"error": {"error_msg": message, "error_name": "bad_request"}}

    def set_status(self, guid: str, status_code: str, error_code: str | None = None) -> None:
        found = self.state.transmissions[guid]
        found.status_code, found.error_code = status_code, error_code
        found.updated_at = int(time.time())

    def settle(self, guid: str, status: str, reason: str | None = None) -> None:
        """The transmission ends without a callback reaching anyone (polling sees it)."""
        if status == "failed":
            self.set_status(guid, *FAILURE_CODES[reason or "unknown"])
        else:
            self.set_status(guid, PROGRESS_CODES[status])

    def registered_callback_url(self, inbound: bool) -> str | None:
        """The account's callback URL (`POST /Accounts/{guid}`, as `providers setup` sets it)."""
        key = "DefaultInboundFaxCallbackUrl" if inbound else "DefaultOutboundFaxCallbackUrl"
        url = self.state.account.get(key)
        return str(url) if url else None

    def transaction_callback(
        self, record: dict[str, Any], pdf: bytes | None = None, file_field: str = "file"
    ) -> CallbackHTTP:
        """The multipart POST HelloFax makes: one field `json` (plus the PDF if inbound)."""
        files = {file_field: ("fax.pdf", pdf, "application/pdf")} if pdf is not None else None
        body, content_type = multipart({"json": json.dumps({"Transaction": record})}, files)
        return CallbackHTTP(headers={"content-type": content_type}, body=body)

    def status_callback(
        self, provider_fax_id: str, status: str, reason: str | None = None
    ) -> CallbackHTTP:
        if status == "failed":
            code, error_code = FAILURE_CODES[reason or "unknown"]
        else:
            code, error_code = PROGRESS_CODES[status], None
        found = self.state.transmissions.get(provider_fax_id)
        if found is None:
            found = Transmission(provider_fax_id, "12125550123", FAX_LINE, [], {})
        found.status_code, found.error_code = code, error_code
        found.updated_at = int(time.time())
        if code in {"S", "E"}:
            found.deleted = True  # gone from the API once the final callback went out
        return self.transaction_callback(found.as_json())

    def inbound_callback(self, from_number: str, to_number: str, pdf: bytes) -> CallbackHTTP:
        received = Transmission(
            secrets.token_hex(20),
            to=to_number.lstrip("+"),
            from_=from_number.lstrip("+"),
            files=[pdf],
            cover={},
            status_code="S",
            is_inbound=True,
        )
        return self.transaction_callback(received.as_json(), pdf)

    def forged(self, callback: CallbackHTTP) -> CallbackHTTP:
        return CallbackHTTP(callback.headers, callback.body, {**callback.query, "token": "forged"})


@contextlib.contextmanager
def make_harness() -> Iterator[HelloFaxHarness]:
    state = HelloFaxState()
    recorder = Recorder(build_app(state))
    with serve(recorder) as url:
        yield HelloFaxHarness(state, recorder, url)
