"""A message sent again is not faxed again.

A client that loses the connection after DATA, or whose timeout is shorter than our conversion,
never sees the 250 and sends the same message once more (RFC 5321 §4.5.4.1 has it retry); so do
a scanner's "resend" and a relay's queue. Faxing it twice costs money and confuses the
recipient. Such a repeat carries the same Message-ID, envelope and body; headers a relay adds on
the way (Received, its own trace) differ, so they are not part of the key. A message without a
Message-ID has nothing that tells a retry from a second fax of the same page, so it is never
taken for a repeat.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from email.parser import BytesHeaderParser
from email.policy import default as default_policy


def repeat_key(raw: bytes, sender: str | None, recipients: Iterable[str]) -> str | None:
    """Digest of Message-ID, envelope sender, envelope recipients and body; None without an id."""
    headers = BytesHeaderParser(policy=default_policy).parsebytes(raw)
    message_id = str(headers.get("Message-ID", "") or "").strip().lower()
    if not message_id:
        return None
    end = raw.find(b"\r\n\r\n")
    # Trailing line ends differ between clients' ways of ending DATA; they carry nothing.
    body = raw[end + 4 :].rstrip(b"\r\n") if end >= 0 else b""
    parts = [
        message_id,
        (sender or "").lower(),
        ",".join(sorted(address.lower() for address in recipients)),
        hashlib.sha256(body).hexdigest(),
    ]
    return hashlib.sha256("\n".join(parts).encode("utf-8")).hexdigest()


class InFlight:
    """Serialises messages with one key in this process: a repeat that arrives while the first
    copy is still being converted waits for its outcome instead of racing it into a second job.
    (Across bridge processes the smtplog lookup is what holds; the window for a race there is
    the few milliseconds of a commit.)"""

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}
        self._users: dict[str, int] = {}

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._users[key] = self._users.get(key, 0) + 1
        try:
            async with lock:
                yield
        finally:
            self._users[key] -= 1
            if not self._users[key]:
                del self._users[key], self._locks[key]
