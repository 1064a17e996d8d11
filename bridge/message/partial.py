"""message/partial (RFC 2046 §5.2.2): a message split into numbered pieces, put back together.

Canon (and old Outlook Express) split a large scan into several e-mails, each of type
`message/partial; id="…"; number=N; total=T`. Each e-mail arrives in its own SMTP transaction,
so a lone piece can only be refused, with advice on the scanner setting to change. When all
pieces are inside one message (someone forwarded them together), they are joined following
§5.2.2.1: the first piece's outer headers (less Content-*, Subject, Message-ID, Encrypted and
MIME-Version) followed by those very fields of the enclosed message, then the joined body.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import compat32

from bridge.message.headers import param

SPLIT_ADVICE = "set the scanner's maximum e-mail size higher or turn off splitting"
MAX_PIECES = 500
_ENCLOSED_FIELDS = frozenset({"subject", "message-id", "encrypted", "mime-version"})
_BLANK_LINE_RE = re.compile(rb"\r?\n\r?\n")


@dataclass(frozen=True)
class Fragment:
    id: str
    number: int
    total: int | None
    body: bytes
    headers: list[tuple[str, str]]  # the enclosing message's own headers (used from piece 1)


def fragment_of(part: Message) -> Fragment | None:
    """The piece a (renamed) message/partial part carries, or None if its parameters are bad."""
    ident = param(part, "id")
    number, total = _int(param(part, "number")), _int(param(part, "total"))
    if not ident or number is None or not 1 <= number <= MAX_PIECES:
        return None
    if total is not None and not number <= total <= MAX_PIECES:
        return None
    try:
        body = part.get_payload(decode=True)
    except Exception:
        body = None
    return Fragment(
        id=ident,
        number=number,
        total=total,
        body=body if isinstance(body, bytes) else b"",
        headers=[(str(k), str(v)) for k, v in part.raw_items()],
    )


def split_reason(total: int | None) -> str:
    """Why a message made of pieces that are not all here cannot be faxed."""
    count = f"{total} messages" if total else "several messages"
    return f"the scan was split into {count} (message/partial); {SPLIT_ADVICE}"


@dataclass
class Fragments:
    """Pieces met so far, by id; `add` hands back the whole message when the last one arrives."""

    groups: dict[str, dict[int, Fragment]] = field(default_factory=dict)
    done: set[str] = field(default_factory=set)

    def add(self, piece: Fragment) -> bytes | None:
        if piece.id in self.done:
            return None
        group = self.groups.setdefault(piece.id, {})
        group.setdefault(piece.number, piece)
        total = _total(group)
        if total is None or any(n not in group for n in range(1, total + 1)):
            return None
        self.done.add(piece.id)
        del self.groups[piece.id]
        return reassemble([group[n] for n in range(1, total + 1)])

    def missing(self) -> list[str]:
        """One reason per set that is still incomplete."""
        return [split_reason(_total(group)) for group in self.groups.values()]


def reassemble(pieces: list[Fragment]) -> bytes:
    """The original message from its pieces, in order (RFC 2046 §5.2.2.1)."""
    body = b"".join(piece.body for piece in pieces)
    match = _BLANK_LINE_RE.search(body)
    head, rest = (body[: match.start()], body[match.end() :]) if match else (body, b"")
    try:
        enclosed = BytesHeaderParser(policy=compat32).parsebytes(head + b"\r\n\r\n").raw_items()
    except Exception:
        enclosed = iter(())
    lines = [_line(k, v) for k, v in pieces[0].headers if not _enclosed_field(k)]
    lines += [_line(k, v) for k, v in enclosed if _enclosed_field(k)]
    return b"".join(lines) + b"\r\n" + rest


def _enclosed_field(name: str) -> bool:
    lower = name.lower()
    return lower.startswith("content-") or lower in _ENCLOSED_FIELDS


def _line(name: str, value: str) -> bytes:
    return f"{name}: {value}\r\n".encode("utf-8", "surrogateescape")


def _total(group: dict[int, Fragment]) -> int | None:
    totals = [piece.total for piece in group.values() if piece.total is not None]
    return max(totals) if totals else None


def _int(value: str | None) -> int | None:
    try:
        return int((value or "").strip())
    except ValueError:
        return None
