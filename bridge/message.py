"""MIME → ParsedMessage: the human text, the parts that may be documents, the parts set aside.

Pure and forgiving. Real mail is malformed in every way a client can think of, and a bad header
must never cost a fax, so each step falls back to the raw value instead of raising. The stdlib
parser runs with the `compat32` policy because it keeps raw values; decoding (RFC 2047, RFC 2231,
8-bit headers) is done here, where a failure can be contained.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.header import decode_header
from email.message import Message
from email.policy import compat32
from email.utils import getaddresses
from html.parser import HTMLParser
from urllib.parse import unquote

SIGNATURE_TYPES = frozenset(
    {"application/pkcs7-signature", "application/x-pkcs7-signature", "application/pgp-signature"}
)
TNEF_TYPES = frozenset({"application/ms-tnef", "application/vnd.ms-tnef"})

# Why a part was set aside; the pipeline prefixes the part's name ('"logo.png": …').
REASON_SIGNATURE = "a digital signature, not a document"
REASON_PGP_CONTROL = "PGP encryption control data, not a document"
REASON_LOGO = "an image shown inside the HTML text (e.g. a signature logo)"
REASON_HTML_VERSION = "the HTML version of the message text"
REASON_INNER_TEXT = "the text of an attached e-mail (only its attachments are faxed)"
REASON_TNEF = "Outlook winmail.dat (TNEF) is not supported yet"
REASON_EMPTY = "empty attachment"

_MAX_DEPTH = 8  # nested message/rfc822 levels; deeper ones are not looked into
_CID_RE = re.compile(r"cid:([^\s\"'<>)]+)", re.IGNORECASE)
_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


@dataclass(frozen=True)
class MessagePart:
    filename: str | None
    content_type: str
    data: bytes
    content_id: str | None
    disposition: str | None
    charset: str | None = None  # declared charset, for text attachments
    index: int = 0  # position among the message's leaf parts, so reports keep message order


@dataclass(frozen=True)
class ParsedMessage:
    message_id: str | None
    subject: str
    from_name: str
    from_address: str
    to_names: dict[str, str]
    auto_submitted: str | None
    body_text: str
    parts: list[MessagePart]
    ignored: list[MessagePart]
    ignored_reasons: list[str]
    body_type: str = "text/plain"  # the type body_text came from (text/plain or text/html)


def decode_text(data: bytes, charset: str | None) -> str:
    """Bytes → text: BOM, then the declared charset, then UTF-8, then Windows-1252 (never fails)."""
    for bom, codec in _BOMS:
        if data.startswith(bom):
            return data.decode(codec, errors="replace")
    for candidate in (charset, "utf-8"):
        if candidate:
            try:
                return data.decode(candidate)
            except (LookupError, UnicodeDecodeError):
                continue
    return data.decode("cp1252", errors="replace")


def parse_message(raw: bytes) -> ParsedMessage:
    """Parse one RFC 5322 message. Never raises on malformed input: best effort throughout."""
    msg = message_from_bytes(raw, policy=compat32)
    walk = _Walk(cids=_html_cids(msg))
    walk.visit(msg, depth=0)
    from_name, from_address = next(iter(_addresses(_header(msg, "from"))), ("", ""))
    to_names: dict[str, str] = {}
    for name, address in _addresses(_header(msg, "to"), _header(msg, "cc")):
        if name and address:
            to_names[address.lower()] = name
    return ParsedMessage(
        message_id=" ".join(_header(msg, "message-id").split()) or None,
        subject=_decode_words(_header(msg, "subject")),
        from_name=from_name,
        from_address=from_address,
        to_names=to_names,
        auto_submitted=_header(msg, "auto-submitted").lower() or None,
        body_text=walk.body_text,
        parts=walk.parts,
        ignored=walk.ignored,
        ignored_reasons=walk.ignored_reasons,
        body_type=walk.body_type,
    )


@dataclass
class _Walk:
    """One pass over the MIME tree, in message order, sorting leaves into body/parts/ignored."""

    cids: set[str]
    parts: list[MessagePart] = field(default_factory=list)
    ignored: list[MessagePart] = field(default_factory=list)
    ignored_reasons: list[str] = field(default_factory=list)
    body_text: str = ""
    body_type: str = "text/plain"
    count: int = 0

    def visit(self, msg: Message, depth: int) -> None:
        plain, html = _body_leaves(msg)
        plain_text = _join(_leaf_text(p) for p in plain)
        if depth > 0:  # an attached e-mail: its text is not ours to fax
            body: set[int] = set()
            aside = {id(p): REASON_INNER_TEXT for p in (*plain, *html)}
        elif plain_text or not html:
            self.body_text = plain_text
            body = {id(p) for p in plain}
            aside = {id(p): REASON_HTML_VERSION for p in html}
        else:
            self.body_text = _join(html_to_text(_leaf_text(p)) for p in html)
            self.body_type = "text/html"
            body = {id(p) for p in (*plain, *html)}
            aside = {}
        for leaf in _leaves(msg):
            inner = _inner_message(leaf)
            if inner is not None:
                if depth < _MAX_DEPTH:
                    self.visit(inner, depth + 1)
                continue
            self.count += 1
            if id(leaf) in body:
                continue
            part = _make_part(leaf, self.count)
            reason = aside.get(id(leaf)) or self._why_ignored(part)
            if reason is None:
                self.parts.append(part)
            else:
                self.ignored.append(part)
                self.ignored_reasons.append(reason)

    def _why_ignored(self, part: MessagePart) -> str | None:
        if part.content_type in SIGNATURE_TYPES:
            return REASON_SIGNATURE
        if part.content_type == "application/pgp-encrypted":
            return REASON_PGP_CONTROL
        if part.content_type in TNEF_TYPES or (part.filename or "").lower() == "winmail.dat":
            return REASON_TNEF
        if part.content_type.startswith("image/") and _norm_cid(part.content_id) in self.cids:
            return REASON_LOGO
        if not part.data:
            return REASON_EMPTY
        return None


def _leaves(msg: Message) -> Iterator[Message]:
    """Leaf parts in order; an attached message is yielded whole (the caller recurses)."""
    payload = msg.get_payload()
    if _inner_message(msg) is not None or not msg.is_multipart() or not isinstance(payload, list):
        yield msg
        return
    for sub in payload:
        if isinstance(sub, Message):
            yield from _leaves(sub)


def _inner_message(part: Message) -> Message | None:
    payload = part.get_payload() if part.get_content_type() == "message/rfc822" else None
    if isinstance(payload, list) and payload and isinstance(payload[0], Message):
        return payload[0]
    return None


def _body_leaves(msg: Message) -> tuple[list[Message], list[Message]]:
    """The inline text/plain and text/html leaves that make up the message text.

    Follows `EmailMessage.get_body`: attachments and named parts are never the text, only the
    start part of multipart/related is, attached messages are not descended into. Several
    plain pieces (Apple Mail splits the text around inline attachments) are all body.
    """
    plain: list[Message] = []
    html: list[Message] = []

    def find(part: Message) -> None:
        if _disposition(part) == "attachment":
            return
        ctype = part.get_content_type()
        if ctype in ("text/plain", "text/html"):
            if _filename(part) is None:
                (plain if ctype == "text/plain" else html).append(part)
            return
        payload = part.get_payload() if part.get_content_maintype() == "multipart" else None
        if not isinstance(payload, list) or not payload:
            return
        subs = [p for p in payload if isinstance(p, Message)]
        if part.get_content_subtype() == "related" and subs:
            start = part.get_param("start")
            starts = [p for p in subs if isinstance(start, str) and p.get("content-id") == start]
            find((starts or subs)[0])
            return
        for sub in subs:
            find(sub)

    find(msg)
    return plain, html


def _make_part(leaf: Message, index: int) -> MessagePart:
    try:
        data = leaf.get_payload(decode=True)
    except Exception:
        data = b""
    disposition = _disposition(leaf)
    return MessagePart(
        filename=_filename(leaf),
        content_type=leaf.get_content_type(),
        data=data if isinstance(data, bytes) else b"",
        content_id=_header(leaf, "content-id").strip("<> \t") or None,
        disposition=disposition if disposition in ("attachment", "inline") else None,
        charset=leaf.get_content_charset(),
        index=index,
    )


def _disposition(part: Message) -> str | None:
    return _header(part, "content-disposition").split(";", 1)[0].strip().lower() or None


def _filename(part: Message) -> str | None:
    """RFC 2231 (continuations, charsets) by the stdlib; RFC 2047 words and paths here."""
    try:
        name = part.get_filename()
    except Exception:
        name = None
    if not name:
        return None
    name = _decode_words(_fix_8bit(str(name)))
    name = re.split(r"[/\\]", name)[-1]
    name = "".join(ch for ch in name if ch.isprintable()).strip()
    return name or None


def _leaf_text(part: Message) -> str:
    try:
        data = part.get_payload(decode=True)
        charset = part.get_content_charset()
    except Exception:
        return ""
    if not isinstance(data, bytes):
        return ""
    text = decode_text(data, charset).replace("\r\n", "\n").replace("\r", "\n")
    if str(part.get_param("format") or "").lower() == "flowed":
        text = _unflow(text, delsp=str(part.get_param("delsp") or "").lower() == "yes")
    return text


def _unflow(text: str, *, delsp: bool) -> str:
    """RFC 3676: join soft line breaks (a trailing space) so the text wraps on the page."""
    out: list[str] = []
    pending = ""
    for line in text.split("\n"):
        if line.startswith(" "):
            line = line[1:]
        if line.endswith(" ") and line != "-- ":
            pending += line[:-1] if delsp else line
        else:
            out.append(pending + line)
            pending = ""
    if pending:
        out.append(pending)
    return "\n".join(out)


def _join(texts: Iterable[str]) -> str:
    return "\n\n".join(t.strip() for t in texts if t.strip())


def _html_cids(msg: Message) -> set[str]:
    """Content-IDs the HTML text shows inline (`<img src="cid:…">`): logos, not documents."""
    cids: set[str] = set()
    for part in msg.walk():
        if part.get_content_type() == "text/html":
            cids.update(_norm_cid(unquote(m)) for m in _CID_RE.findall(_leaf_text(part)))
    return cids


def _norm_cid(cid: str | None) -> str:
    return (cid or "").strip().strip("<>").strip().lower()


# --- headers -------------------------------------------------------------------------------


def _header(msg: Message, name: str) -> str:
    """The first raw value of a header, unfolded and with 8-bit bytes decoded; "" if absent."""
    for key, value in msg.raw_items():
        if key.lower() == name:
            return _fix_8bit(re.sub(r"\r?\n[ \t]", " ", str(value))).strip()
    return ""


def _fix_8bit(value: str) -> str:
    """Raw UTF-8 (or Latin-1) header bytes arrive as surrogate escapes; make them text."""
    if not any("\udc80" <= ch <= "\udcff" for ch in value):
        return value
    return decode_text(value.encode("utf-8", "surrogateescape"), "utf-8")


def _decode_words(value: str) -> str:
    """RFC 2047 encoded words → text, whitespace collapsed; the raw value if they are broken."""
    if "=?" not in value:
        return " ".join(value.split())
    try:
        chunks = decode_header(value)
    except Exception:
        return " ".join(value.split())
    out: list[str] = []
    for chunk, charset in chunks:
        if isinstance(chunk, str):
            out.append(chunk)
        elif charset is None:
            out.append(chunk.decode("raw-unicode-escape", errors="replace"))
        else:
            out.append(decode_text(chunk, charset))
    return " ".join("".join(out).split())


def _addresses(*values: str) -> list[tuple[str, str]]:
    try:
        pairs = getaddresses([v for v in values if v])
    except Exception:
        return []
    return [(_decode_words(name), address.strip()) for name, address in pairs]


# --- HTML → text ---------------------------------------------------------------------------

_BLOCK_TAGS = frozenset(
    "address article aside blockquote div dl dt dd footer form h1 h2 h3 h4 h5 h6 header hr "
    "ol p pre section table tr ul".split()
)
_PARAGRAPH_TAGS = frozenset({"p", "table", "blockquote", "ul", "ol"})
_SKIP_TAGS = frozenset({"script", "style", "head", "title", "template"})


class _HtmlText(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP_TAGS:
            self.skip += 1
        elif tag == "br":
            self.out.append("\n")
        elif tag == "li":
            self.out.append("\n• ")
        elif tag in ("td", "th"):
            self.out.append("\t")
        elif tag in _BLOCK_TAGS:
            self.out.append("\n\n" if tag in _PARAGRAPH_TAGS else "\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS:
            self.skip = max(0, self.skip - 1)
        elif tag in _BLOCK_TAGS:
            self.out.append("\n\n" if tag in _PARAGRAPH_TAGS else "\n")

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.out.append(re.sub(r"\s+", " ", data))


def html_to_text(markup: str) -> str:
    """Readable text from an HTML body: blocks become lines, scripts and styles vanish."""
    parser = _HtmlText()
    try:
        parser.feed(markup)
        parser.close()
    except Exception:
        pass
    text = "".join(parser.out).replace("\xa0", " ")
    lines = [re.sub(r"[ \t]+", " ", line).strip() for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
