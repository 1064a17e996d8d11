"""A HelloFax / Dropbox Fax v1 API on loopback, rebuilt from the help.dropbox.com v1 pages.

Each route names the page it follows (SETUP, SEND, CALLBACKS, MIGRATION: see
`_hellofax_records`). Faithful where the pages are explicit: Basic auth with the account's
username and password, `/v1/Accounts/{guid}` and its two callback URL fields, `/FaxLines` with a
`Number` per line, `Transmissions?To=…&From=…` with `file`, `file[]` or `file[N]` parts (and
`To[N]` form fields), the `CoverPage*` fields, the `Transaction` record with its status letters,
paging by `Page`/`PageSize` with `…PageUri` links, the 429 past 200 pending, and the removal of
a fax once it has been sent successfully.
"""

from __future__ import annotations

import base64
import contextlib
import json
import secrets
import time
from collections.abc import Iterator
from typing import Any

from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from tests.providers.emulators._callbacks import CallsBack
from tests.providers.emulators._hellofax_records import (
    ACCOUNT_GUID,
    FAILURE_CODES,
    FAX_LINE,
    LINE_NUMBER,
    PASSWORD,
    PENDING_MESSAGE,
    PROGRESS_CODES,
    USERNAME,
    HelloFaxState,
    Letters,
    Transmission,
    error_body,
    multipart,
    v3_style_event,
)
from tests.providers.harness import CallbackHTTP, RecordedRequest, Recorder, serve

__all__ = [
    "ACCOUNT_GUID",
    "FAX_LINE",
    "PASSWORD",
    "USERNAME",
    "HelloFaxHarness",
    "HelloFaxState",
    "Transmission",
    "make_harness",
]


def error(status: int, message: str, name: str = "bad_request") -> JSONResponse:
    return JSONResponse(error_body(message, name), status_code=status)


def _authorized(request: Request) -> bool:
    # SETUP step 3: `curl -u "[your username]:[your password]"`, i.e. HTTP Basic.
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        user, _, password = base64.b64decode(value).decode().partition(":")
    except ValueError:
        return False
    return secrets.compare_digest(f"{user}:{password}", f"{USERNAME}:{PASSWORD}")


def _page_uri(page: int, size: int) -> str:
    return f"/v1/Accounts/{ACCOUNT_GUID}/Transmissions?Page={page}&PageSize={size}"


def build_app(state: HelloFaxState) -> Starlette:
    def guard(request: Request) -> Response | None:
        if not _authorized(request):
            return error(401, "Unauthorized: bad username or password", "unauthorized")
        if request.path_params["account"] != ACCOUNT_GUID:
            return error(404, "Account not found", "not_found")
        return None

    # SETUP steps 3 and 4: GET answers "a JSON representation of your account settings"
    # ([inferred] wrapper `Account`); POST sets DefaultInboundFaxCallbackUrl and
    # DefaultOutboundFaxCallbackUrl as form fields (`curl -d`).
    async def account(request: Request) -> Response:
        if (refused := guard(request)) is not None:
            return refused
        if request.method == "POST":
            async with request.form() as form:
                for key in ("DefaultInboundFaxCallbackUrl", "DefaultOutboundFaxCallbackUrl"):
                    if key in form:
                        state.account[key] = str(form[key])
        return JSONResponse({"Account": state.account})

    # SETUP step 5 and "List the FaxLines you have bought" (GET …/FaxLines); SEND note A: each
    # line has a "Number"; SETUP's DELETE example names a line by ten digits. The list's
    # wrapper is [inferred]. MIGRATION spells the path `/FaxLine` (served when asked).
    async def fax_lines(request: Request) -> Response:
        if (refused := guard(request)) is not None:
            return refused
        if not request.url.path.endswith(f"/{state.fax_lines_path}"):
            return error(404, "Not found", "not_found")
        if state.lines_failures:
            status, message = state.lines_failures.pop(0)
            return error(status, message, "unavailable")
        number = LINE_NUMBER  # ten digits, as in `FaxLines/2132935579`
        line = {"Number": number, "Uri": f"/v1/Accounts/{ACCOUNT_GUID}/FaxLines/{number}"}
        return JSONResponse({"FaxLines": [line]})

    # SETUP step 8 / SEND: `POST …/Transmissions?To=…[&From=…]` with `-F file=@…`; note A:
    # From takes "the format of" the `Number` /FaxLines returns (a From in any other spelling
    # is refused here [inferred: the page does not say what HelloFax does with one]); note B:
    # `file[]`, `file[N]` and `To[N]` arrays; note C: CoverPageTo/From/Message; note E: the
    # 429 past 200 pending. The answer holds the Transmission GUID (SETUP "How to check fax
    # statuses" 1); its record is the `Transaction` CALLBACKS shows [inferred wrapper, as
    # SETUP says the callback holds "everything you'd get in the response"].
    async def send(request: Request) -> Response:
        if (refused := guard(request)) is not None:
            return refused
        async with request.form() as form:
            values = [*request.query_params.multi_items(), *form.multi_items()]
            numbers = [str(v) for k, v in values if k == "To" or k.startswith("To[")]
            sender = next((str(v) for k, v in values if k == "From"), None)
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
        if sender is not None and sender != LINE_NUMBER:
            return error(400, f"From {sender} is not one of your fax lines")
        for number in numbers:
            # "[phone number in all digits]" (SEND note B).
            if not number.isdigit() or len(number) < 10:
                return error(400, f"Invalid fax number: {number}")
        if state.pending() + len(numbers) > state.pending_limit:
            return error(429, PENDING_MESSAGE.format(limit=state.pending_limit), "exceeded_rate")
        created = []
        for number in numbers:
            guid = secrets.token_hex(20)
            # Transactions spell the caller eleven digits (CALLBACKS: "From":"14154847140").
            state.transmissions[guid] = Transmission(guid, number, FAX_LINE, files, cover)
            created.append(state.transmissions[guid].as_json())
        if len(created) == 1:
            return JSONResponse({"Transaction": created[0]})
        return JSONResponse({"Transactions": created})

    # SETUP "How to check fax statuses" 1: all transmissions when the GUID is left out, "paged
    # … Page and PageSize … FirstPageUri, NextPageUri, PreviousPageUri, and LastPageUri". The
    # list's key is [inferred].
    async def listing(request: Request) -> Response:
        if (refused := guard(request)) is not None:
            return refused
        records = sorted(state.transmissions.values(), key=lambda t: t.created_at, reverse=True)
        page = max(1, int(request.query_params.get("Page", "1")))
        size = max(1, int(request.query_params.get("PageSize", "20")))
        last = max(1, -(-len(records) // size))
        return JSONResponse(
            {
                "Transactions": [t.as_json() for t in records[(page - 1) * size : page * size]],
                "Page": page,
                "PageSize": size,
                "NumPages": last,
                "FirstPageUri": _page_uri(1, size),
                "NextPageUri": _page_uri(page + 1, size) if page < last else None,
                "PreviousPageUri": _page_uri(page - 1, size) if page > 1 else None,
                "LastPageUri": _page_uri(last, size),
            }
        )

    # SETUP "How to check fax statuses": GET …/Transmissions/[Transmission GUID]; the callback
    # "contains everything you'd get in the response" to it, so it is the `Transaction`
    # record. Gone once sent successfully (note D): 404.
    async def transmission(request: Request) -> Response:
        if (refused := guard(request)) is not None:
            return refused
        found = state.transmissions.get(request.path_params["guid"])
        if found is None:
            return error(404, "Transmission not found", "not_found")
        return JSONResponse({"Transaction": found.as_json()})

    base = "/v1/Accounts/{account}"
    return Starlette(
        routes=[
            Route(base, account, methods=["GET", "POST"]),
            Route(f"{base}/FaxLines", fax_lines, methods=["GET"]),
            Route(f"{base}/FaxLine", fax_lines, methods=["GET"]),
            Route(f"{base}/Transmissions", send, methods=["POST"]),
            Route(f"{base}/Transmissions", listing, methods=["GET"]),
            Route(f"{base}/Transmissions/{{guid}}", transmission, methods=["GET"]),
        ]
    )


class _Recorder(Recorder):
    """`fail_next`/`hang_next` aim at the next call that is not the fax line listing: `send`
    reads the listing first (to spell `From`), and a test failing "the next call" means the
    transmission. The listing fails through `HelloFaxHarness.fail_lines_next`."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = str(scope.get("path", ""))
        if scope["type"] != "http" or not path.endswith(("/FaxLines", "/FaxLine")):
            await super().__call__(scope, receive, send)
            return
        failures, delay = self._failures, self._delay_s
        self._failures, self._delay_s = [], 0.0
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._failures, self._delay_s = failures + self._failures, delay or self._delay_s


class HelloFaxHarness(CallsBack):
    provider_type = "hellofax"
    # On hold is a StatusCode of its own, not E: no callback announces it (SETUP step 8).
    supported_failures = tuple(r for r in FAILURE_CODES["setup"] if r != "on_hold")

    def __init__(self, state: HelloFaxState, recorder: Recorder, url: str) -> None:
        self.state = state
        self.recorder = recorder
        self.requests: list[RecordedRequest] = recorder.requests  # the recorder's own list
        self.base_url = f"{url}/v1"
        # Which page's status letters callbacks use (SETUP: B/H; SEND: R/O).
        self.letters: Letters = "setup"

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
        # SETUP note E: HelloFax's 429 carries only its message; no rate-limit header.
        self.recorder.fail_next(status, body, headers, count)

    def hang_next(self, seconds: float) -> None:
        self.recorder.hang_next(seconds)

    def fail_lines_next(self, status: int, message: str) -> None:
        """Make the next fax line listing answer `status` (the others spare it)."""
        self.state.lines_failures.append((status, message))

    def error_body(self, message: str) -> Any:
        return error_body(message)

    def codes(self, status: str, reason: str | None = None) -> tuple[str, str | None]:
        if status == "failed":
            return FAILURE_CODES[self.letters][reason or "unknown"]
        return PROGRESS_CODES[status], None

    def set_status(self, guid: str, status_code: str, error_code: str | None = None) -> None:
        found = self.state.transmissions[guid]
        found.status_code, found.error_code = status_code, error_code
        found.updated_at = int(time.time())

    def settle(self, guid: str, status: str, reason: str | None = None) -> None:
        """The transmission ends but its callback reaches nobody. Polling sees a failure; a
        fax sent successfully is gone at once (SETUP note D), so polling gets a 404."""
        self.set_status(guid, *self.codes(status, reason))
        self.state.remove_if_sent(guid)

    def forget(self, guid: str) -> None:
        """HelloFax removed the fax (sent) and its callback never reached the bridge."""
        self.state.transmissions.pop(guid, None)

    def registered_callback_url(self, inbound: bool) -> str | None:
        """The account's callback URL (`POST /Accounts/{guid}`, as `providers setup` sets it)."""
        key = "DefaultInboundFaxCallbackUrl" if inbound else "DefaultOutboundFaxCallbackUrl"
        url = self.state.account.get(key)
        return str(url) if url else None

    def transaction_callback(
        self, record: Transmission, pdf: bytes | None = None, file_field: str = "file"
    ) -> CallbackHTTP:
        """CALLBACKS: a multipart POST with one field `json` (plus the PDF if inbound; that
        part's name is [inferred], so tests vary it)."""
        files = {file_field: ("fax.pdf", pdf, "application/pdf")} if pdf is not None else None
        body, content_type = multipart({"json": record.callback_json()}, files)
        return CallbackHTTP(headers={"content-type": content_type}, body=body)

    def status_callback(
        self, provider_fax_id: str, status: str, reason: str | None = None
    ) -> CallbackHTTP:
        # SETUP step 8: a POST to the callback URL "once the fax's StatusCode becomes E … or
        # S", and at no other letter; P and T are seen only by polling. (On hold, H/O, is no
        # E either: polling alone sees it, and so does this emulator.)
        if status in {"submitted", "sending"} or (status, reason) == ("failed", "on_hold"):
            raise NotImplementedError(f"HelloFax posts no callback for {status} {reason or ''}")
        found = self.state.transmissions.get(provider_fax_id)
        if found is None:
            found = Transmission(provider_fax_id, "12125550123", FAX_LINE, [], {})
        found.status_code, found.error_code = self.codes(status, reason)
        found.updated_at = int(time.time())
        callback = self.transaction_callback(found)
        self.state.remove_if_sent(provider_fax_id)
        return callback

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
        # SETUP note D: received faxes stay on HelloFax's servers.
        self.state.transmissions[received.guid] = received
        return self.transaction_callback(received, pdf)

    def unclassifiable_callback(self) -> CallbackHTTP:
        """CALLBACKS' v3 style event, which names no v1 Transaction."""
        body, content_type = multipart({"json": json.dumps(v3_style_event())})
        return CallbackHTTP(headers={"content-type": content_type}, body=body)

    def forged(self, callback: CallbackHTTP) -> CallbackHTTP:
        return CallbackHTTP(callback.headers, callback.body, {**callback.query, "token": "forged"})


@contextlib.contextmanager
def make_harness() -> Iterator[HelloFaxHarness]:
    state = HelloFaxState()
    recorder = _Recorder(build_app(state))
    with serve(recorder) as url:
        yield HelloFaxHarness(state, recorder, url)
