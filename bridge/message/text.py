"""The words of a text part: charset, format=flowed, and HTML turned into readable lines."""

from __future__ import annotations

import re
from collections.abc import Iterable
from email.message import Message
from html.parser import HTMLParser
from urllib.parse import unquote

from bridge.message.headers import decode_text

MAX_HTML_CHARS = 2_000_000  # beyond this an HTML body is not worth the parser's time
_CID_RE = re.compile(r"cid:([^\s\"'<>)]{1,500})", re.IGNORECASE)


def leaf_text(part: Message) -> str:
    """A text part's content as str, line ends normalised, format=flowed unwrapped."""
    try:
        data = part.get_payload(decode=True)
        charset = part.get_content_charset()
    except Exception:
        return ""
    if not isinstance(data, bytes):
        return ""
    text = decode_text(data, charset).replace("\r\n", "\n").replace("\r", "\n")
    try:
        flowed = str(part.get_param("format") or "").lower() == "flowed"
        delsp = str(part.get_param("delsp") or "").lower() == "yes"
    except Exception:
        flowed = delsp = False
    return unflow(text, delsp=delsp) if flowed else text


def unflow(text: str, *, delsp: bool) -> str:
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


def join(texts: Iterable[str]) -> str:
    return "\n\n".join(t.strip() for t in texts if t.strip())


def html_cids(parts: Iterable[Message]) -> set[str]:
    """Content-IDs the HTML text shows inline (`<img src="cid:…">`): logos, not documents."""
    cids: set[str] = set()
    for part in parts:
        if part.get_content_type() == "text/html":
            cids.update(norm_cid(unquote(m)) for m in _CID_RE.findall(leaf_text(part)))
    return cids


def signature_cids(markup: str) -> set[str]:
    """Content-IDs of images inside a signature block (an element whose id or class says
    "signature": Outlook's `id="Signature"`, Gmail's `gmail_signature`, Thunderbird's
    `moz-signature`, Apple Mail's `AppleMailSignature`): logos, never faxed."""
    finder = _SignatureImages()
    try:
        finder.feed(markup[:MAX_HTML_CHARS])
        finder.close()
    except Exception:
        pass
    return finder.cids


class _SignatureImages(HTMLParser):
    _VOID = frozenset("area base br col embed hr img input link meta source track wbr".split())

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.cids: set[str] = set()
        self.depth = 0  # elements open inside the signature block; 0 = outside it

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "img" and self.depth:
            match = _CID_RE.match(values.get("src") or "")
            if match:
                self.cids.add(norm_cid(unquote(match.group(1))))
        if tag in self._VOID:
            return
        if self.depth:
            self.depth += 1
        elif "signature" in f"{values.get('id') or ''} {values.get('class') or ''}".lower():
            self.depth = 1

    def handle_endtag(self, tag: str) -> None:
        if self.depth and tag not in self._VOID:
            self.depth -= 1


def norm_cid(cid: str | None) -> str:
    return (cid or "").strip().strip("<>").strip().lower()


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
        parser.feed(markup[:MAX_HTML_CHARS])
        parser.close()
    except Exception:
        pass
    text = "".join(parser.out).replace("\xa0", " ")
    lines = [re.sub(r"[ \t]+", " ", line).strip() for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
