"""What every provider emulator offers the shared contract suite.

Each `tests/providers/emulators/<type>.py` defines `make_harness() -> EmulatorHarness` (a
context manager) and the contract suite in `test_contract.py` runs against all of them. An
emulator is a real HTTP server on a free loopback port, built from the seed and PROVIDERS.md.
"""

from __future__ import annotations

import contextlib
import json as _json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any, Protocol
from urllib.parse import parse_qs

import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send


@dataclass
class FilePart:
    name: str
    filename: str | None
    content_type: str
    data: bytes


@dataclass
class RecordedRequest:
    """One request an emulator received, exactly as it came over the wire."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: bytes

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")

    def json(self) -> Any:
        return _json.loads(self.body)

    def parts(self) -> list[FilePart]:
        """The parts of a multipart body (form-data or mixed), in order."""
        head = f"Content-Type: {self.content_type}\r\n\r\n".encode()
        message = BytesParser(policy=HTTP).parsebytes(head + self.body)
        out = []
        for part in message.iter_parts():
            out.append(
                FilePart(
                    name=part.get_param("name", header="content-disposition") or "",
                    filename=part.get_filename(),
                    content_type=part.get_content_type(),
                    data=part.get_payload(decode=True) or b"",
                )
            )
        return out

    def form(self) -> dict[str, list[str]]:
        """Form fields (urlencoded, or the non-file parts of multipart/form-data)."""
        if self.content_type.startswith("application/x-www-form-urlencoded"):
            return parse_qs(self.body.decode(), keep_blank_values=True)
        fields: dict[str, list[str]] = {}
        for part in self.parts():
            if part.filename is None:
                fields.setdefault(part.name, []).append(part.data.decode())
        return fields

    def files(self) -> list[FilePart]:
        return [p for p in self.parts() if p.filename is not None]


@dataclass
class CallbackHTTP:
    """A callback as the provider would POST it to the bridge."""

    headers: dict[str, str]
    body: bytes
    query: dict[str, str] = field(default_factory=dict)  # besides the bridge's own `token`


class EmulatorHarness(Protocol):
    """Conventions the contract suite relies on:

    - `supported_failures`: the FailureReason values (`"busy"`, `"no_answer"` …) for which
      `status_callback(..., "failed", reason)` yields a callback; the suite checks each one.
    - `status_callback` raises `NotImplementedError` for a common status the provider never
      reports (e.g. Dropbox Sign has no `submitted`); that case is skipped, not failed.
    - A `CallbackHTTP.query` never holds the bridge's `token`: the suite adds the configured one
      unless the query already has a `token` (that is how `forged` breaks token auth).
    - `fail_next(429)` without `headers` answers with the provider's own rate-limit headers
      (`Retry-After`, `X-Ratelimit-Reset` …, or none if the provider sends none).
    - `error_body(message)` is the body the provider answers an error with, carrying `message`.
    """

    provider_type: str
    base_url: str
    requests: list[RecordedRequest]
    supported_failures: tuple[str, ...]

    def error_body(self, message: str) -> Any:
        """The provider's error response body (JSON value or text) saying `message`."""

    def provider_config(self, callback_token: str) -> dict[str, Any]:
        """The provider block for the bridge's config (type, base_url, credentials …)."""

    def fail_next(
        self, status: int, body: Any = None, headers: dict[str, str] | None = None, count: int = 1
    ) -> None:
        """Make the next `count` API calls answer with this status, body and headers."""

    def hang_next(self, seconds: float) -> None:
        """Make the next API call answer only after `seconds` (for timeout tests)."""

    def status_callback(
        self, provider_fax_id: str, status: str, reason: str | None = None
    ) -> CallbackHTTP:
        """The callback the provider sends when fax `provider_fax_id` reaches `status`
        (common model: submitted|sending|delivered|failed; `reason` a FailureReason value)."""

    def inbound_callback(self, from_number: str, to_number: str, pdf: bytes) -> CallbackHTTP:
        """The callback announcing an inbound fax whose document is `pdf`."""

    def forged(self, callback: CallbackHTTP) -> CallbackHTTP:
        """The same callback with its authentication broken."""

    # Optional: `unclassifiable_callback() -> CallbackHTTP`, an authenticated callback of a
    # kind the provider documents (or may send) that carries no news the bridge can act on;
    # the contract suite checks the adapter keeps it (`CallbackResult.unclassified`).


class Recorder:
    """ASGI middleware that records every request and can inject failures."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.requests: list[RecordedRequest] = []
        self._failures: list[tuple[int, bytes, dict[str, str]]] = []
        self._delay_s = 0.0

    def fail_next(
        self, status: int, body: Any = None, headers: dict[str, str] | None = None, count: int = 1
    ) -> None:
        if body is None:
            raw = b""
        elif isinstance(body, bytes):
            raw = body
        elif isinstance(body, str):
            raw = body.encode()
        else:
            raw = _json.dumps(body).encode()
            headers = {"content-type": "application/json", **(headers or {})}
        self._failures.extend([(status, raw, headers or {})] * count)

    def hang_next(self, seconds: float) -> None:
        self._delay_s = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        chunks = []
        more = True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        self.requests.append(
            RecordedRequest(
                method=scope["method"],
                path=scope["path"],
                query=parse_qs(scope["query_string"].decode(), keep_blank_values=True),
                headers={k.decode().lower(): v.decode() for k, v in scope["headers"]},
                body=body,
            )
        )
        if self._delay_s:
            import asyncio

            delay, self._delay_s = self._delay_s, 0.0
            await asyncio.sleep(delay)
        if self._failures:
            status, raw, headers = self._failures.pop(0)
            await send(
                {
                    "type": "http.response.start",
                    "status": status,
                    "headers": [(k.encode(), v.encode()) for k, v in headers.items()],
                }
            )
            await send({"type": "http.response.body", "body": raw})
            return

        sent = False

        async def replay() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def serve(app: ASGIApp) -> Iterator[str]:
    """Run `app` on uvicorn in a thread on a free loopback port; yield its base URL."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("emulator did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
