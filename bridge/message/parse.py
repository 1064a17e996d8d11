"""MIME → ParsedMessage: the human text, the parts that may be documents, the parts set aside.

Pure and forgiving. Real mail is malformed in every way a client can think of, and a bad header
must never cost a fax, so each step falls back to the raw value instead of raising. What makes
a message unreadable as a whole (nesting too deep, a broken multipart, a scan split into
several e-mails) is reported in `problems`, one sentence each, and the message is refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import compat32

from bridge.message.headers import addresses, decode_words, disposition, filename, header
from bridge.message.partial import Fragments, fragment_of, reassemble
from bridge.message.text import (
    html_cids,
    html_to_text,
    join,
    leaf_text,
    norm_cid,
    signature_cids,
)
from bridge.message.tree import (
    MAX_LEAVES,
    MAX_NESTING,
    PARTIAL_TYPE,
    body_leaves,
    broken_multipart,
    inner_message,
    leaves,
    parse_bytes,
    raw_text,
    repair,
    too_deep,
    walk,
)

SIGNATURE_TYPES = frozenset(
    {"application/pkcs7-signature", "application/x-pkcs7-signature", "application/pgp-signature"}
)

# Why a part was set aside; the pipeline prefixes the part's name ('"logo.png": …').
REASON_SIGNATURE = "a digital signature, not a document"
REASON_PGP_CONTROL = "PGP encryption control data, not a document"
REASON_LOGO = "an image shown inside the HTML text (e.g. a signature logo)"
REASON_HTML_VERSION = "the HTML version of the message text"
REASON_INNER_TEXT = "the text of an attached e-mail (only its attachments are faxed)"
REASON_EMPTY = "empty attachment"
REASON_FRAGMENT = "a piece of a message split into several e-mails (message/partial)"
REASON_REPORT = "a report about an e-mail, not a document"
REASON_EXTERNAL = "only a reference to a file stored elsewhere; the file itself was not sent"

# Why a whole message cannot be read.
PROBLEM_TOO_DEEP = f"the message is nested more than {MAX_NESTING} levels deep"
PROBLEM_TOO_MANY = f"the message has more than {MAX_LEAVES} parts"
PROBLEM_BAD_FRAGMENT = "a piece of a split message (message/partial) has no valid id or number"

_MAX_INNER = 8  # nested message/rfc822 levels; deeper ones are not looked into


@dataclass(frozen=True)
class MessagePart:
    filename: str | None
    content_type: str
    data: bytes
    content_id: str | None
    disposition: str | None
    charset: str | None = None  # declared charset, for text attachments
    index: int = 0  # position among the message's leaf parts, so reports keep message order
    in_html: bool = False  # an image the HTML-only body shows in place (`cid:`), not a logo


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
    body_html: str = ""  # the HTML markup itself, when body_text came from HTML
    problems: list[str] = field(default_factory=list)  # each makes the message unfaxable


def parse_message(raw: bytes) -> ParsedMessage:
    """Parse one RFC 5322 message. Never raises on malformed input: best effort throughout."""
    msg = parse_bytes(raw)
    if msg is None or too_deep(msg):
        headers = BytesHeaderParser(policy=compat32).parsebytes(raw)
        return _parsed(headers, _Walk(problems=[PROBLEM_TOO_DEEP]))
    msg = repair(msg)
    if msg.get_content_type() == PARTIAL_TYPE:  # a message sent as one single piece
        piece = fragment_of(msg)
        whole = parse_bytes(reassemble([piece])) if piece and piece.total == 1 else None
        if whole is not None and not too_deep(whole):
            msg = repair(whole)
    walk = _Walk()
    walk.visit(msg, depth=0)
    walk.problems += walk.fragments.missing()
    return _parsed(msg, walk)


def parse_headers(raw: bytes) -> ParsedMessage:
    """Only the header fields (Subject, From, Message-ID …), cheaply: for the smtplog row of a
    message that is refused before, or instead of, being parsed whole."""
    return _parsed(BytesHeaderParser(policy=compat32).parsebytes(raw), _Walk())


def _parsed(msg: Message, walk: _Walk) -> ParsedMessage:
    from_name, from_address = next(iter(addresses(header(msg, "from"))), ("", ""))
    to_names: dict[str, str] = {}
    for name, address in addresses(header(msg, "to"), header(msg, "cc")):
        if name and address:
            to_names[address.lower()] = name
    return ParsedMessage(
        message_id=" ".join(header(msg, "message-id").split()) or None,
        subject=decode_words(header(msg, "subject")),
        from_name=from_name,
        from_address=from_address,
        to_names=to_names,
        auto_submitted=header(msg, "auto-submitted").lower() or None,
        body_text=walk.body_text,
        parts=walk.parts,
        ignored=walk.ignored,
        ignored_reasons=walk.ignored_reasons,
        body_type=walk.body_type,
        body_html=walk.body_html,
        problems=list(dict.fromkeys(walk.problems)),
    )


@dataclass
class _Walk:
    """One pass over the MIME tree, in message order, sorting leaves into body/parts/ignored."""

    cids: set[str] = field(default_factory=set)
    parts: list[MessagePart] = field(default_factory=list)
    ignored: list[MessagePart] = field(default_factory=list)
    ignored_reasons: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    fragments: Fragments = field(default_factory=Fragments)
    body_text: str = ""
    body_type: str = "text/plain"
    body_html: str = ""
    signature_cids: set[str] = field(default_factory=set)
    count: int = 0

    def visit(self, msg: Message, depth: int) -> None:
        self.cids |= html_cids(walk(msg))
        plain, html = body_leaves(msg)
        plain_text = join(leaf_text(p) for p in plain)
        if depth > 0:  # an attached e-mail: its text is not ours to fax
            body: set[int] = set()
            aside = {id(p): REASON_INNER_TEXT for p in (*plain, *html)}
        elif plain_text or not html:
            self.body_text = plain_text
            body = {id(p) for p in plain}
            aside = {id(p): REASON_HTML_VERSION for p in html}
        else:
            markup = [leaf_text(p) for p in html]
            self.body_text = join(html_to_text(m) for m in markup)
            self.body_type = "text/html"
            self.body_html = "\n".join(markup)
            self.signature_cids = set().union(*(signature_cids(m) for m in markup))
            body = {id(p) for p in (*plain, *html)}
            aside = {}
        for leaf in leaves(msg):
            if self.count >= MAX_LEAVES:
                self.problems.append(PROBLEM_TOO_MANY)
                return
            inner = inner_message(leaf)
            if inner is not None:
                if depth < _MAX_INNER:
                    self.visit(inner, depth + 1)
                continue
            self.count += 1
            if id(leaf) in body:
                continue
            if leaf.get_content_type() == PARTIAL_TYPE:
                self._fragment(leaf, depth)
            elif broken_multipart(leaf):
                if raw_text(leaf):
                    self.problems.append(_broken(leaf))
            else:
                part = _make_part(leaf, self.count)
                reason = aside.get(id(leaf)) or self._why_ignored(part)
                if reason is None and self._shown_in_html(part):
                    part = replace(part, in_html=True)
                self._add(part, reason)

    def _add(self, part: MessagePart, reason: str | None) -> None:
        if reason is None:
            self.parts.append(part)
        else:
            self.ignored.append(part)
            self.ignored_reasons.append(reason)

    def _fragment(self, leaf: Message, depth: int) -> None:
        piece = fragment_of(leaf)
        data = piece.body if piece else b""
        part = MessagePart(None, "message/partial", data, None, None, index=self.count)
        self._add(part, REASON_FRAGMENT)
        if piece is None:
            self.problems.append(PROBLEM_BAD_FRAGMENT)
            return
        whole = self.fragments.add(piece)
        msg = parse_bytes(whole) if whole is not None else None
        if msg is None:
            return
        if too_deep(msg):
            self.problems.append(PROBLEM_TOO_DEEP)
        elif depth < _MAX_INNER:
            self.visit(repair(msg), depth + 1)

    def _shown_in_html(self, part: MessagePart) -> bool:
        return bool(self.body_html) and norm_cid(part.content_id) in self.cids

    def _why_ignored(self, part: MessagePart) -> str | None:
        ctype = part.content_type
        if ctype in SIGNATURE_TYPES:
            return REASON_SIGNATURE
        if ctype == "application/pgp-encrypted":
            return REASON_PGP_CONTROL
        if ctype == "message/external-body":
            return REASON_EXTERNAL
        if ctype.startswith("message/"):
            return REASON_REPORT
        if ctype.startswith("image/") and norm_cid(part.content_id) in self.cids:
            if self.body_html and norm_cid(part.content_id) not in self.signature_cids:
                return None  # shown in the HTML-only body: the pipeline places or pages it
            return REASON_LOGO
        if not part.data:
            return REASON_EMPTY
        return None


def _make_part(leaf: Message, index: int) -> MessagePart:
    try:
        data = leaf.get_payload(decode=True)
    except Exception:
        data = b""
    kind = disposition(leaf)
    try:
        charset = leaf.get_content_charset()
    except Exception:
        charset = None
    return MessagePart(
        filename=filename(leaf),
        content_type=leaf.get_content_type(),
        data=data if isinstance(data, bytes) else b"",
        content_id=header(leaf, "content-id").strip("<> \t")[:500] or None,
        disposition=kind if kind in ("attachment", "inline") else None,
        charset=charset,
        index=index,
    )


def _broken(part: Message) -> str:
    return (
        f"the message's MIME structure is broken: a {part.get_content_type()} part has no"
        " boundary that matches its body"
    )
