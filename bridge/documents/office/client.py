"""Asking the managed LibreOffice for one conversion; runs in any process (pool workers).

The endpoint is a plain value (picklable) naming the helpers' Unix sockets and the spool
directory both sides can read, so a spawned document worker needs nothing but this module.
With several helpers, a free one is found by a non-blocking `flock` on its lock file; when all
are busy the caller queues on one of them.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# What can go wrong, as the helper names it; the pipeline turns each into words.
PASSWORD = "password"
TIMEOUT = "timeout"
CRASHED = "crashed"
DAMAGED = "damaged"
UNAVAILABLE = "unavailable"

_STARTING_S = 90.0  # how long a client waits for a helper that is (re)starting


@dataclass(frozen=True)
class OfficeEndpoint:
    sockets: tuple[str, ...]
    spool: str
    timeout_s: float


class OfficeFailure(Exception):
    def __init__(self, error: str, detail: str = "") -> None:
        super().__init__(f"{error}: {detail}" if detail else error)
        self.error = error
        self.detail = detail


@dataclass(frozen=True)
class OfficeResult:
    pdf: bytes
    family: str  # TextDocument, SpreadsheetDocument, PresentationDocument, WebDocument
    macros: bool


def office_convert(
    endpoint: OfficeEndpoint,
    data: bytes,
    kind: str,
    extra_files: dict[str, bytes] | None = None,
    save_as: tuple[str, str] | None = None,
) -> OfficeResult:
    """`data` (of detected `kind`) as PDF; `extra_files` land beside it (an HTML page's images).

    Raises OfficeFailure. A crash during the conversion is retried once: the helper has
    already started a fresh LibreOffice, and the document may not be what killed the last one.
    `save_as` (export filter, password) saves in another format instead (tools and tests).
    """
    for attempt in (1, 2):
        try:
            return _convert_once(endpoint, data, kind, extra_files or {}, save_as)
        except OfficeFailure as exc:
            if exc.error != CRASHED or attempt == 2:
                raise
    raise AssertionError("unreachable")


def _convert_once(
    endpoint: OfficeEndpoint,
    data: bytes,
    kind: str,
    extra_files: dict[str, bytes],
    save_as: tuple[str, str] | None,
) -> OfficeResult:
    Path(endpoint.spool).mkdir(parents=True, exist_ok=True)
    job = Path(tempfile.mkdtemp(prefix="job-", dir=endpoint.spool))
    try:
        source, target = job / f"document.{kind}", job / "document.pdf"
        source.write_bytes(data)
        for name, content in extra_files.items():
            (job / name).write_bytes(content)
        message: dict[str, Any] = {
            "op": "convert",
            "input": str(source),
            "output": str(target),
            "kind": kind,
        }
        if save_as is not None:
            message["filter"], message["password"] = save_as
        with _helper(endpoint) as path:
            reply = request(path, message, timeout_s=endpoint.timeout_s * 2 + 30)
        if not reply.get("ok"):
            raise OfficeFailure(str(reply.get("error") or DAMAGED), str(reply.get("detail") or ""))
        if not target.is_file():
            raise OfficeFailure(DAMAGED, "no PDF was written")
        return OfficeResult(
            target.read_bytes(), str(reply.get("family", "")), bool(reply.get("macros"))
        )
    finally:
        shutil.rmtree(job, ignore_errors=True)


@contextlib.contextmanager
def _helper(endpoint: OfficeEndpoint) -> Iterator[str]:
    """A helper socket to use, holding its lock: a free one if any, else the first."""
    handles = []
    try:
        for path in endpoint.sockets:
            handle = open(path + ".lock", "a+b")
            handles.append(handle)
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue
            yield path
            return
        fcntl.flock(handles[0], fcntl.LOCK_EX)
        yield endpoint.sockets[0]
    finally:
        for handle in handles:
            handle.close()


def request(path: str, message: dict[str, Any], *, timeout_s: float) -> dict[str, Any]:
    """One JSON line to the helper at `path`, one back; OfficeFailure(UNAVAILABLE) when no
    helper answers (after waiting for one that is starting), CRASHED when it dies mid-way."""
    deadline = time.monotonic() + _STARTING_S
    while True:
        client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            client.connect(path)
            break
        except OSError as exc:
            client.close()
            if time.monotonic() > deadline:
                raise OfficeFailure(UNAVAILABLE, str(exc)) from exc
            time.sleep(0.1)
    with client:
        client.settimeout(timeout_s)
        try:
            client.sendall(json.dumps(message).encode() + b"\n")
            with client.makefile("rb") as stream:
                line = stream.readline()
        except TimeoutError as exc:
            raise OfficeFailure(TIMEOUT, "the helper did not answer") from exc
        except OSError as exc:
            raise OfficeFailure(CRASHED, str(exc)) from exc
    if not line:
        raise OfficeFailure(CRASHED, "the helper closed the connection")
    reply = json.loads(line)
    if not isinstance(reply, dict):
        raise OfficeFailure(CRASHED, "the helper's answer made no sense")
    return reply


def spool_dir(base: str) -> str:
    path = os.path.join(base, "spool")
    os.makedirs(path, exist_ok=True)
    return path
