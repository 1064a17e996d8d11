"""`faxbridge preview`: the SMTP pipeline (cover policy included) without sending anything.

The same converters as the bridge (LibreOffice is started for the one message), the same
cover page, and with `--fax-resolution` the pages as the receiving machine prints them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import getaddresses
from pathlib import Path

from bridge.config import Config
from bridge.converters import running_converters
from bridge.documents import fax_pdf, prepare_document
from bridge.documents.export import fax_resolution_pdf
from bridge.models import CoverNote
from bridge.numbers import NumberError, format_for_people, parse_number
from bridge.smtp.intake import document_options


def preview(
    config: Config,
    raw: bytes,
    output: Path,
    faxbox_name: str | None = None,
    fax_resolution: bool = False,
) -> str:
    """Write the fax `raw` would become to `output`; return a summary for the terminal."""
    if faxbox_name:
        try:
            faxbox = config.faxbox(faxbox_name)
        except KeyError as exc:
            names = ", ".join(b.name for b in config.faxboxes) or "none"
            raise ValueError(f"no faxbox {faxbox_name!r} (configured: {names})") from exc
    elif config.faxboxes:
        faxbox = config.faxboxes[0]
    else:
        raise ValueError("the configuration has no faxbox")
    with running_converters(config, raw) as converters:
        options = document_options(
            faxbox, None, converters, config.smtp.size_limit, config.smtp.max_attachment_bytes
        )
        doc = prepare_document(raw, options)
    message = doc.message
    pages = doc.pages
    note = None
    if doc.wants_cover:
        to_name, to_number = _first_recipient(raw, faxbox.default_region, message.to_names)
        note = CoverNote(
            to_name=to_name,
            to_number=to_number,
            from_name=message.from_name or message.from_address,
            from_number=format_for_people(faxbox.caller_id) if faxbox.caller_id else "",
            subject=doc.cover_subject,
            notes=doc.cover_notes,
            date=datetime.now(UTC),
            pages=doc.pages + 1,
        )
        pages += 1
    pdf = fax_pdf(doc, note)
    output.write_bytes(fax_resolution_pdf(pdf) if fax_resolution else pdf)
    lines = [
        f"{output}: {pages} page(s) for faxbox {faxbox.name}"
        + (" (cover page included)" if doc.wants_cover else "")
        + (", at fax resolution (1-bit, 204x196 dpi)" if fax_resolution else "")
    ]
    for item in doc.attachments:
        used = f"used, {item.pages} page(s)" if item.used else f"skipped: {item.reason}"
        lines.append(f"  {item.filename or '(unnamed)'} [{item.detected_type or '?'}] {used}")
    return "\n".join(lines)


def _first_recipient(raw: bytes, region: str, names: dict[str, str]) -> tuple[str, str]:
    from email.parser import BytesHeaderParser
    from email.policy import default

    headers = BytesHeaderParser(policy=default).parsebytes(raw)
    for name, address in getaddresses([str(v) for v in headers.get_all("To", [])]):
        local = address.rpartition("@")[0]
        try:
            number = format_for_people(parse_number(local, region).e164)
        except NumberError:
            continue
        return names.get(address.lower(), name), number
    return "", ""
