"""Reading DATA the way Postfix does (`smtpd_forbid_bare_newline = normalize`).

aiosmtpd reads DATA a line at a time, each line until CRLF; a message sent with bare LF line
endings (curl uploads, raw scripts, some devices) is then one endless "line" and gets a
misleading `500 Line too long`. Here DATA is read in large chunks, and:
- it ends only on `<CR><LF>.<CR><LF>` (or a first line of `.<CR><LF>`): `<LF>.<LF>`,
  `<CR><LF>.<LF>` and `<LF>.<CR><LF>` are message content, so SMTP smuggling stays impossible;
- bare LF line endings are accepted and become CRLF, as if the client had sent them;
- dot-stuffing is undone (RFC 5321 §4.5.2), the size limit counts the bytes as sent;
- a line longer than `smtp.max_line_octets` is refused with an RFC 3463 code after the whole
  message was read (RFC 5321 §4.2.5: reply only at the end of DATA);
- past `SPOOL_AT` bytes the message goes to an anonymous file under the spool directory while
  it arrives, so many slow senders of big scans cost disk, not memory (a file with no name: a
  crash leaves nothing behind). A disk too full to spool to is answered 452 4.3.1 at the end.
"""

from __future__ import annotations

import asyncio
import re
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from bridge.store.space import os_error_is_full

_END = b"\r\n.\r\n"
_DOT_LINE = b".\r\n"
_BARE_LF = re.compile(rb"(?<!\r)\n")
# Bytes taken from the socket per read while no `.<CR><LF>` shows up.
CHUNK = 256 * 1024
# A message that grows past this while it arrives is kept on disk until its end-of-data.
SPOOL_AT = 1024 * 1024


@dataclass(frozen=True)
class LongLine:
    number: int  # 1-based, counted in the message as received
    octets: int  # including its line ending


@dataclass(frozen=True)
class Data:
    """One message's DATA as received: the content, or why it cannot be taken."""

    content: bytes  # CRLF line endings, dot-stuffing undone; empty when too big or too long
    size: int  # bytes as sent, terminating `.<CR><LF>` excluded
    too_big: bool = False
    long_line: LongLine | None = None
    bare_lf: int = 0  # line endings that were a bare LF
    spool_error: str | None = None  # why the message could not be spooled
    spool_full: bool = False  # ... because the disk (or quota) is full


class _Received:
    """The bytes of one message so far: in memory, then in an unnamed spool file."""

    def __init__(self, spool_dir: Path | None) -> None:
        self.memory = bytearray()
        self.file: IO[bytes] | None = None
        self.spool_dir = spool_dir
        self.tail = b""  # the last bytes, wherever the rest is
        self.failed: str | None = None
        self.full = False
        self.keeping = True

    def add(self, chunk: bytes) -> None:
        self.tail = (self.tail + chunk)[-len(_END) :]
        if not self.keeping:
            return
        if self.file is None:
            self.memory += chunk
            if len(self.memory) > SPOOL_AT and self.spool_dir is not None:
                self._spool(bytes(self.memory))
                self.memory = bytearray()
            return
        self._spool(chunk)

    def _spool(self, data: bytes) -> None:
        try:
            if self.file is None:
                assert self.spool_dir is not None
                self.spool_dir.mkdir(parents=True, exist_ok=True)
                self.file = tempfile.TemporaryFile(dir=self.spool_dir)
            self.file.write(data)
        except OSError as exc:
            self.failed = f"cannot spool the message under {self.spool_dir}: {exc.strerror}"
            self.full = os_error_is_full(exc)
            self.discard()

    def content(self) -> bytes:
        if self.file is None:
            return bytes(self.memory)
        self.file.seek(0)
        data = self.file.read()
        self.drop()
        return data

    def discard(self) -> None:
        """Keep nothing more of this message (too big, or nowhere to put it)."""
        self.keeping = False
        self.drop()

    def drop(self) -> None:
        self.memory = bytearray()
        if self.file is not None:
            self.file.close()
            self.file = None


async def read_data(
    reader: asyncio.StreamReader,
    *,
    size_limit: int | None,
    max_line_octets: int,
    on_progress: Callable[[], object] | None = None,
    spool_dir: Path | None = None,
    before_loading: Callable[[int], Awaitable[object]] | None = None,
) -> Data | None:
    """Read one message from `reader`, up to its end-of-data line; None if the client left.

    `on_progress` (a callable) runs after every chunk, e.g. to push back an idle timeout;
    `before_loading(size)` is awaited before a spooled message is read into memory (a budget).
    """
    received = _Received(spool_dir)
    size = 0
    too_big = False
    saved = _widen(reader, CHUNK)
    try:
        while True:
            try:
                chunk = await reader.readuntil(_DOT_LINE)
                ended = True
            except asyncio.LimitOverrunError as exc:
                chunk = await reader.read(exc.consumed)
                ended = False
            except asyncio.IncompleteReadError:
                return None
            if on_progress is not None:
                on_progress()
            size += len(chunk)
            received.add(chunk)
            if not too_big and size_limit and size - len(_DOT_LINE) > size_limit:
                too_big = True
                received.discard()
            if ended and (received.tail.endswith(_END) or size == len(_DOT_LINE)):
                break
        size -= len(_DOT_LINE)
        if too_big:
            return Data(b"", size, too_big=True)
        if received.failed is not None:
            return Data(b"", size, spool_error=received.failed, spool_full=received.full)
        if received.file is not None and before_loading is not None:
            await before_loading(size)
        content = received.content()
    finally:
        received.drop()
        _widen(reader, saved)
    return finish(content[: -len(_DOT_LINE)], size, max_line_octets)


def finish(data: bytes, size: int, max_line_octets: int) -> Data:
    """Normalise line endings, check line lengths, undo dot-stuffing."""
    bare = len(_BARE_LF.findall(data)) if b"\n" in data else 0
    if bare:
        data = _BARE_LF.sub(b"\r\n", data)
    if len(data) > max_line_octets - 2:
        long_line = _first_long_line(data, max_line_octets)
        if long_line is not None:
            return Data(b"", size, long_line=long_line, bare_lf=bare)
    if data.startswith(b"."):
        data = data[1:]
    data = data.replace(b"\r\n.", b"\r\n")
    return Data(data, size, bare_lf=bare)


def _first_long_line(data: bytes, max_line_octets: int) -> LongLine | None:
    for number, line in enumerate(data.split(b"\r\n"), start=1):
        if len(line) + 2 > max_line_octets:
            return LongLine(number, len(line) + 2)
    return None


def _widen(reader: asyncio.StreamReader, limit: int) -> int:
    """Set the reader's buffer limit (asyncio has no public setter); return the old one.

    aiosmtpd sizes it for command lines; DATA wants big reads, commands must stay short."""
    old: int = reader._limit  # type: ignore[attr-defined]
    reader._limit = limit  # type: ignore[attr-defined]
    return old
