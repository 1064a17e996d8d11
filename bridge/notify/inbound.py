"""Inbound fax e-mails: a received fax as a mail with the document attached.

The subject and the attachment's file name come from templates (`str.format` fields, listed in
`build_inbound_email`) so a front desk can sort and save faxes its own way. A template that does
not render falls back to the default rather than losing the fax, and every file name is made safe
for Windows, where most of these attachments get saved.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from typing import Any

from bridge.notify._mime import (
    UNKNOWN_NUMBER,
    format_number,
    human_time,
    new_message,
    one_line,
    safe_filename,
)

log = logging.getLogger(__name__)

DEFAULT_FILENAME_TEMPLATE = "fax-{from}-{received:%Y%m%d-%H%M%S}.{ext}"
DEFAULT_SUBJECT_TEMPLATE = "Fax from {number} ({pages} pages)"

_CONTENT_TYPES = {"pdf": ("application", "pdf"), "tiff": ("image", "tiff")}
# A parenthesised group that mentions {pages}: dropped from the subject when the count is unknown.
_PAGES_GROUP = re.compile(r"\s*\([^()]*\{pages(?:[:!][^{}]*)?\}[^()]*\)")


@dataclass(frozen=True)
class InboundMail:
    """One received fax, as much as the provider told us."""

    faxbox: str
    from_number: str  # E.164, or whatever the provider gave for a withheld caller ID
    to_number: str  # E.164
    pages: int | None
    received: datetime
    remote_station_id: str | None
    document: bytes  # PDF, or TIFF when format == "tiff"
    format: str  # "pdf" | "tiff"


def build_inbound_email(
    fax: InboundMail,
    *,
    mail_from: str,
    hostname: str,
    to: list[str],
    filename_template: str = DEFAULT_FILENAME_TEMPLATE,
    subject_template: str = DEFAULT_SUBJECT_TEMPLATE,
) -> EmailMessage:
    """The mail to the faxbox's `inbound.email_to`, with the fax attached.

    Template fields: `{number}` / `{from_number}` (caller, written for people: `+1 212-555-0199`),
    `{from}` (caller, E.164 or "unknown"), `{to}` (E.164), `{to_number}` (for people), `{faxbox}`,
    `{pages}`, `{received}` (a datetime: `{received:%Y-%m-%d}`), `{station}` (remote station id or
    ""), `{ext}` ("pdf" / "tiff"). With an unknown page count the subject's parenthesised
    `({pages} pages)` is left out; with one page it reads "1 page".

    Raises ValueError for an unknown `format` or when `to` is empty.
    """
    if fax.format not in _CONTENT_TYPES:
        raise ValueError(f"inbound fax format must be pdf or tiff, not {fax.format!r}")
    fields = _fields(fax)
    filename = inbound_filename(fax, filename_template, fields=fields)
    message = new_message(
        mail_from=mail_from,
        hostname=hostname,
        to=to,
        cc=[],
        subject=inbound_subject(fax, subject_template, fields=fields),
        auto_submitted="auto-generated",
    )
    body = _body(fax, filename)
    message.set_content(body, cte=None if body.isascii() else "quoted-printable")
    maintype, subtype = _CONTENT_TYPES[fax.format]
    message.add_attachment(fax.document, maintype=maintype, subtype=subtype, filename=filename)
    for part in message.iter_attachments():
        del part["MIME-Version"]  # EmailMessage.add_attachment copies it into the part
    return message


def inbound_subject(
    fax: InboundMail,
    template: str = DEFAULT_SUBJECT_TEMPLATE,
    *,
    fields: dict[str, Any] | None = None,
) -> str:
    fields = fields or _fields(fax)

    def fit(template: str) -> str:
        if fax.pages is None:
            return _PAGES_GROUP.sub("", template)
        if fax.pages == 1:
            return template.replace("{pages} pages", "{pages} page")
        return template

    subject = one_line(_render(fit(template), fit(DEFAULT_SUBJECT_TEMPLATE), fields, "subject"))
    return subject or f"Fax from {fields['number']}"


def inbound_filename(
    fax: InboundMail,
    template: str = DEFAULT_FILENAME_TEMPLATE,
    *,
    fields: dict[str, Any] | None = None,
) -> str:
    """`fax-+12125550199-20240501-101500.pdf` by default; always ends in the format's extension."""
    fields = fields or _fields(fax)
    name = _render(template, DEFAULT_FILENAME_TEMPLATE, fields, "file name")
    ext = f".{fax.format}"
    if not name.lower().endswith(ext):
        name += ext
    return safe_filename(name, fallback=f"fax{ext}")


def _fields(fax: InboundMail) -> dict[str, Any]:
    caller = format_number(fax.from_number)
    return {
        "number": caller,
        "from_number": caller,
        "from": fax.from_number.strip() if caller != UNKNOWN_NUMBER else "unknown",
        "to": fax.to_number,
        "to_number": format_number(fax.to_number),
        "faxbox": fax.faxbox,
        "pages": fax.pages if fax.pages is not None else "?",
        "received": fax.received,
        "station": one_line(fax.remote_station_id or ""),
        "ext": fax.format,
    }


def _render(template: str, default: str, fields: dict[str, Any], what: str) -> str:
    try:
        return template.format(**fields)
    except (KeyError, IndexError, ValueError, AttributeError, TypeError) as exc:
        log.warning(
            "inbound fax %s template %r does not render (%s); using the default",
            what,
            template,
            exc,
        )
        return default.format(**fields)


def _body(fax: InboundMail, filename: str) -> str:
    caller = format_number(fax.from_number)
    rows = [
        ("From", caller),
        ("To", f"{format_number(fax.to_number)} (faxbox {fax.faxbox})"),
        ("Pages", str(fax.pages) if fax.pages is not None else "not reported by the provider"),
        ("Received", human_time(fax.received)),
    ]
    if fax.remote_station_id and fax.remote_station_id.strip():
        rows.append(("Station ID", one_line(fax.remote_station_id)))
    table = "".join(f"  {label + ':':<11} {value}\n" for label, value in rows)
    return (
        f"You have received a fax from {caller}.\n\n{table}\nThe fax is attached as {filename}.\n"
    )
