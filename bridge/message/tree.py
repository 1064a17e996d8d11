"""The MIME tree: parsing it safely, repairing broken boundaries, and walking it in order.

Hostile or broken structure is dealt with here, before anyone looks at content: a tree nested
too deeply (the stdlib parser recurses, and so would every walk), a multipart whose boundary is
missing or wrong (the delimiter actually used in the body is found and the part re-parsed),
and message/partial fragments (their bodies are kept byte for byte, see `partial.py`).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from email import message_from_bytes
from email.message import Message
from email.policy import compat32

from bridge.message.headers import disposition, filename

MAX_NESTING = 40  # multipart and attached-message levels; real mail needs about ten
MAX_LEAVES = 1000  # parts in one message; a 200-page fax of JPEG pages needs 200

# message/partial bodies are pieces of a message that must not be parsed on their own: before
# parsing, their type is renamed to an opaque one so the parser keeps the body as it is.
PARTIAL_TYPE = "application/x-faxbridge-partial"
INNER_TYPES = frozenset({"message/rfc822", "message/global"})
_PARTIAL_RE = re.compile(rb"^(content-type:[ \t]*(?:\r?\n[ \t]+)?)message/partial", re.I | re.M)
_DELIMITER_RE = re.compile(r"--([!-~]{1,100})")
_ANY_DELIMITER_RE = re.compile(r"^--[!-~][^\r\n]*", re.M)
_HEADER_LINE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,60}:")


def parse_bytes(raw: bytes) -> Message | None:
    """The parsed tree, or None when it is too deeply nested for the stdlib parser."""
    if b"message/partial" in raw.lower():
        raw = _PARTIAL_RE.sub(rb"\1" + PARTIAL_TYPE.encode(), raw)
    try:
        return message_from_bytes(raw, policy=compat32)
    except RecursionError:
        return None


def too_deep(msg: Message) -> bool:
    """Nested deeper than MAX_NESTING, counted without recursion."""
    stack = [(msg, 0)]
    while stack:
        part, depth = stack.pop()
        if depth > MAX_NESTING:
            return True
        stack.extend((sub, depth + 1) for sub in subparts(part))
    return False


def repair(msg: Message) -> Message:
    """Re-parse every multipart whose boundary is missing or matches nothing, using the
    delimiter its body really uses. A multipart with no delimiter at all is plain text."""
    if _broken(msg):
        msg = _reparse(msg)
    stack = [(msg, 0)]
    while stack:
        part, depth = stack.pop()
        if not part.is_multipart() or depth > MAX_NESTING:
            continue
        payload = part.get_payload()
        if not isinstance(payload, list):
            continue
        for number, sub in enumerate(payload):
            if isinstance(sub, Message) and _broken(sub):
                payload[number] = sub = _reparse(sub)
            if isinstance(sub, Message) and _encoded_message(sub):
                _decode_message(sub)
            if isinstance(sub, Message):
                stack.append((sub, depth + 1))
    return msg


def _encoded_message(part: Message) -> bool:
    encoding = str(part.get("content-transfer-encoding", "")).strip().lower()
    return part.get_content_type() in INNER_TYPES and encoding in ("base64", "quoted-printable")


def _decode_message(part: Message) -> None:
    """An attached e-mail sent base64-encoded (against RFC 2046, but some clients do): the
    parser took the encoded text for the e-mail; decode it and parse again."""
    inner = next(iter(subparts(part)), None)
    if inner is None:
        return
    try:
        encoded = inner.as_bytes() if inner.keys() else str(inner.get_payload()).encode()
        carrier = Message()
        carrier["Content-Transfer-Encoding"] = str(part["content-transfer-encoding"])
        carrier.set_payload(encoded.decode("ascii", "surrogateescape"))
        decoded = carrier.get_payload(decode=True)
        fixed = parse_bytes(decoded) if isinstance(decoded, bytes) else None
    except Exception:
        return
    if fixed is not None and not too_deep(fixed):
        part.set_payload([fixed])
        del part["content-transfer-encoding"]


def subparts(part: Message) -> list[Message]:
    """The parts in a multipart (or the e-mail in a message/* part); [] for a leaf. A leaf's
    `get_payload()` is never called for this: with 8-bit bytes in it, the stdlib decodes them
    in the declared charset and raises ValueError on a name like "utf-8\\0"."""
    if not part.is_multipart():
        return []
    return [sub for sub in part.get_payload() if isinstance(sub, Message)]


def raw_text(part: Message) -> str:
    """A leaf's body as the parser kept it (8-bit bytes as surrogate escapes); "" if none."""
    try:
        data = part.get_payload(decode=True)
    except Exception:
        return ""
    return data.decode("ascii", "surrogateescape") if isinstance(data, bytes) else ""


def broken_multipart(part: Message) -> bool:
    """A multipart the parser could not split (after `repair`: no usable delimiter)."""
    return part.get_content_maintype() == "multipart" and not part.is_multipart()


def _broken(part: Message) -> bool:
    return broken_multipart(part) and bool(raw_text(part))


def _reparse(part: Message) -> Message:
    body = raw_text(part)
    token = guess_boundary(body)
    if token is None:
        if not _ANY_DELIMITER_RE.search(body):
            # "multipart" in name only: the body is all there is, a text or a bare file
            encoding = str(part.get("content-transfer-encoding", "")).strip().lower()
            part.set_type("application/octet-stream" if encoding == "base64" else "text/plain")
        elif not _ANY_DELIMITER_RE.sub("", body).strip():
            part.set_payload([])  # nothing but delimiters: an empty multipart
        return part
    try:
        fixed = message_from_bytes(_with_boundary(part, token), policy=compat32)
    except Exception:
        return part
    return fixed if fixed.is_multipart() else part


def _with_boundary(part: Message, token: str) -> bytes:
    """The part's raw bytes again, its Content-Type naming `token` as the boundary."""
    content_type = Message()
    content_type["Content-Type"] = part.get_content_type()
    for name, value in part.get_params(failobj=[])[1:]:
        if name.lower() != "boundary" and isinstance(value, str):
            content_type.set_param(name, value)
    content_type.set_param("boundary", token)
    lines = [
        f"{name}: {value}\r\n".encode("utf-8", "surrogateescape")
        for name, value in part.raw_items()
        if name.lower() != "content-type"
    ]
    lines.append(f"Content-Type: {content_type['Content-Type']}\r\n".encode())
    raw = part.get_payload(decode=True)
    return b"".join(lines) + b"\r\n" + (raw if isinstance(raw, bytes) else b"")


def guess_boundary(body: str) -> str | None:
    """The delimiter the body uses: the `--token` line most often followed by a header."""
    counts: Counter[str] = Counter()
    lines = body.splitlines()
    for number, line in enumerate(lines[:-1]):
        if not line.startswith("--"):
            continue
        match = _DELIMITER_RE.fullmatch(line.rstrip())
        if match and _HEADER_LINE_RE.match(lines[number + 1]):
            counts[match.group(1)] += 1
    return counts.most_common(1)[0][0] if counts else None


def inner_message(part: Message) -> Message | None:
    """The e-mail inside a message/rfc822 (or message/global) part, else None."""
    if part.get_content_type() not in INNER_TYPES:
        return None
    return next(iter(subparts(part)), None)


def is_leaf(part: Message) -> bool:
    """Not a container we look into: fragments and message/* reports count as leaves."""
    if part.get_content_type() == PARTIAL_TYPE or inner_message(part) is not None:
        return True
    if part.get_content_maintype() == "message" and part.get_content_type() not in INNER_TYPES:
        return True
    return not part.is_multipart()


def leaves(msg: Message) -> Iterator[Message]:
    """Leaf parts in order; an attached message is yielded whole (the caller recurses)."""
    stack = [msg]
    while stack:
        part = stack.pop()
        if is_leaf(part):
            yield part
            continue
        stack.extend(reversed(subparts(part)))


def walk(msg: Message) -> Iterator[Message]:
    """Every part of this message (not of attached ones), without recursion."""
    stack = [msg]
    while stack:
        part = stack.pop()
        yield part
        if not is_leaf(part):
            stack.extend(reversed(subparts(part)))


def body_leaves(msg: Message) -> tuple[list[Message], list[Message]]:
    """The inline text/plain and text/html leaves that make up the message text.

    Follows `EmailMessage.get_body`: attachments and named parts are never the text, only the
    start part of multipart/related is, attached messages are not descended into. Several
    plain pieces (Apple Mail splits the text around inline attachments) are all body.
    """
    plain: list[Message] = []
    html: list[Message] = []
    stack = [msg]
    while stack:
        part = stack.pop()
        if disposition(part) == "attachment":
            continue
        ctype = part.get_content_type()
        if ctype in ("text/plain", "text/html"):
            if filename(part) is None:
                (plain if ctype == "text/plain" else html).append(part)
            continue
        subs = subparts(part) if part.get_content_maintype() == "multipart" else []
        if not subs:
            continue
        if part.get_content_subtype() == "related":
            start = part.get_param("start")
            starts = [p for p in subs if isinstance(start, str) and p.get("content-id") == start]
            subs = [(starts or subs)[0]]
        stack.extend(reversed(subs))
    return plain, html
