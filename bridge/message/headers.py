"""Header values as text: raw 8-bit bytes, RFC 2047 words, RFC 2231 file names, addresses.

The stdlib parser runs with the `compat32` policy because it keeps raw values; decoding is done
here, where a failure can be contained. Every function falls back to the raw value (or "")
instead of raising: a bad header must never cost a fax.
"""

from __future__ import annotations

import codecs
import re
from email.header import decode_header
from email.message import Message
from email.utils import collapse_rfc2231_value, getaddresses

_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
MAX_HEADER_CHARS = 16384  # a longer value is cut: no real header is this long
MAX_ADDRESS_CHARS = 4096  # address parsing is slow on hostile input; names need far less


def decode_text(data: bytes, charset: str | None) -> str:
    """Bytes → text: BOM, then the declared charset, then UTF-8, then Windows-1252 (never fails)."""
    for bom, codec in _BOMS:
        if data.startswith(bom):
            return data.decode(codec, errors="replace")
    for candidate in (charset, "utf-8"):
        if candidate:
            try:
                return data.decode(candidate)
            except (LookupError, UnicodeDecodeError, ValueError):
                continue
    return data.decode("cp1252", errors="replace")


def header(msg: Message, name: str) -> str:
    """The first raw value of a header, unfolded and with 8-bit bytes decoded; "" if absent."""
    for key, value in msg.raw_items():
        if key.lower() == name:
            text = str(value)[:MAX_HEADER_CHARS]
            return fix_8bit(re.sub(r"\r?\n[ \t]", " ", text)).strip()
    return ""


def fix_8bit(value: str) -> str:
    """Raw UTF-8 (or Latin-1) header bytes arrive as surrogate escapes; make them text."""
    if not any("\udc80" <= ch <= "\udcff" for ch in value):
        return value
    return decode_text(value.encode("utf-8", "surrogateescape"), "utf-8")


def decode_words(value: str) -> str:
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
    text = "".join(out)
    return " ".join(fix_8bit(text).split())


def addresses(*values: str) -> list[tuple[str, str]]:
    """(display name, address) pairs; [] if the headers cannot be made sense of."""
    try:
        pairs = getaddresses([v[:MAX_ADDRESS_CHARS] for v in values if v])
    except Exception:
        return []
    return [(decode_words(name), address.strip()) for name, address in pairs]


def disposition(part: Message) -> str | None:
    return header(part, "content-disposition").split(";", 1)[0].strip().lower() or None


def filename(part: Message) -> str | None:
    """RFC 2231 (continuations, charsets) by the stdlib; RFC 2047 words, raw 8-bit bytes
    and paths here."""
    name = _stdlib_filename(part)
    if name and "\ufffd" in name:  # raw 8-bit bytes, which compat32 turns into U+FFFD
        decoded = Message()
        for key in ("content-disposition", "content-type"):
            if value := header(part, key):
                decoded[key] = value
        name = _stdlib_filename(decoded) or name
    if not name:
        return None
    name = decode_words(fix_8bit(str(name)[:MAX_HEADER_CHARS]))
    name = re.split(r"[/\\]", name)[-1]
    name = "".join(ch for ch in name if ch.isprintable()).strip()
    return name[:255] or None


def _stdlib_filename(part: Message) -> str | None:
    try:
        name = part.get_filename()
    except Exception:
        return None
    return str(name) if name else None


def param(part: Message, name: str) -> str | None:
    """A Content-Type parameter as plain text, or None (RFC 2231 values are decoded)."""
    try:
        value = part.get_param(name)
    except Exception:
        return None
    if value is None:
        return None
    try:
        return collapse_rfc2231_value(value)
    except Exception:
        return None
