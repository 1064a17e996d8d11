"""`faxbridge preview`: the SMTP pipeline (cover policy included) without sending anything."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import getaddresses
from pathlib import Path

from bridge.config import Config
from bridge.documents import merge_pdfs, prepare_document, render_cover
from bridge.models import CoverNote
from bridge.numbers import NumberError, format_for_people, parse_number
from bridge.smtp.intake import document_options


def preview(config: Config, raw: bytes, output: Path, faxbox_name: str | None = None) -> str:
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
    doc = prepare_document(raw, document_options(faxbox))
    message = doc.message
    pdfs = [doc.pdf]
    pages = doc.pages
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
        pdfs.insert(0, render_cover(note))
        pages += 1
    output.write_bytes(merge_pdfs(pdfs) if len(pdfs) > 1 else pdfs[0])
    lines = [
        f"{output}: {pages} page(s) for faxbox {faxbox.name}"
        + (" (cover page included)" if doc.wants_cover else "")
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
