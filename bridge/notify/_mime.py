"""Small pieces both kinds of outgoing mail share: headers, text parts, numbers, times, filenames.

Kept apart from the two builders so that each of them reads as "what this mail says" and the rules
that make any mail well-formed (7-bit safe bodies, RFC 2047 headers, names Windows accepts) live in
one place.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.message import EmailMessage, MIMEPart
from email.utils import format_datetime, make_msgid

import phonenumbers

UNKNOWN_NUMBER = "unknown number"

# Characters Windows refuses in file names, plus every control character.
_REFUSED_IN_FILENAMES = re.compile(r'[<>:"/\\|?*\x00-\x1f\x7f]')
_RESERVED_STEMS = frozenset(
    {"CON", "PRN", "AUX", "NUL"}
    | {f"COM{i}" for i in range(1, 10)}
    | {f"LPT{i}" for i in range(1, 10)}
)
_MAX_FILENAME_CHARS = 180
_WHITESPACE = re.compile(r"\s+")


def format_number(number: str) -> str:
    """E.164 → the way people write it (`+1 212-555-0123`); anything unparsable stays as given.

    Providers report withheld caller IDs as "", "anonymous" or similar; those read as what they are.
    """
    number = number.strip()
    if not number:
        return UNKNOWN_NUMBER
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return number
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def aware(moment: datetime) -> datetime:
    """The store may hand back naive datetimes; they are UTC by the bridge's convention."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def human_time(moment: datetime) -> str:
    return aware(moment).strftime("%Y-%m-%d %H:%M:%S %Z").rstrip()


def human_duration(seconds: float) -> str:
    total = max(0, round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {secs} s"
    return f"{secs} s"


def plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def one_line(text: str) -> str:
    """Provider texts arrive with newlines and tabs; in a header or table row they must not."""
    return _WHITESPACE.sub(" ", text).strip()


def safe_filename(name: str, *, fallback: str) -> str:
    """A file name every mail client can save: no characters or names that Windows refuses."""
    name = _REFUSED_IN_FILENAMES.sub("_", name).strip().rstrip(". ")
    if not name:
        return fallback
    stem, dot, ext = name.rpartition(".")
    if not dot:
        stem, ext = name, ""
    if stem.split(".")[0].upper() in _RESERVED_STEMS:
        name = "_" + name
    if len(name) > _MAX_FILENAME_CHARS:
        keep = _MAX_FILENAME_CHARS - (len(ext) + 1 if dot else 0)
        name = stem[:keep] + (f".{ext}" if dot else "")
    return name


def angle_id(message_id: str) -> str:
    """Message-IDs are stored with or without their angle brackets; headers need them."""
    message_id = message_id.strip()
    if not message_id.startswith("<"):
        message_id = f"<{message_id}>"
    return message_id


def text_part(text: str, subtype: str = "plain") -> MIMEPart:
    """A UTF-8 text part that stays 7-bit on the wire (quoted-printable only when it must)."""
    part = MIMEPart()
    part.set_content(text, subtype=subtype, cte=None if text.isascii() else "quoted-printable")
    return part


def new_message(
    *,
    mail_from: str,
    hostname: str,
    to: list[str],
    cc: list[str],
    subject: str,
    auto_submitted: str,
) -> EmailMessage:
    """The header block every mail the bridge writes starts with.

    `Auto-Submitted` (RFC 3834) stops vacation responders and other bridges from answering, and
    `X-Auto-Response-Suppress` does the same for Exchange, which ignores RFC 3834.
    """
    if not to:
        raise ValueError("an e-mail needs at least one recipient")
    message = EmailMessage()
    message["From"] = mail_from
    message["To"] = ", ".join(to)
    if cc:
        message["Cc"] = ", ".join(cc)
    message["Subject"] = subject
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = make_msgid(domain=hostname)
    message["Auto-Submitted"] = auto_submitted
    message["X-Auto-Response-Suppress"] = "All"
    return message
