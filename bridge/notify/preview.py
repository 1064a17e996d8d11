"""The answer to a mail sent to `preview+<number>@<fax domain>`: the fax it would have become.

For people without a shell (`faxbridge preview` does the same on the command line): the exact
PDF that would be transmitted, cover page included; the same pages as a receiving machine
prints them (1-bit, 204x196 dpi), so faint grey and tiny print show up before a real send;
the page count; and what became of every part of the mail. Nothing is faxed.

Built once at intake and kept in the durable outbox, like reports, so a relay outage delays
the answer but never loses it.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from bridge.notify._mime import (
    angle_id,
    format_number,
    new_message,
    one_line,
    plural,
    safe_filename,
)


@dataclass(frozen=True)
class PreviewMail:
    attempt_id: str
    faxbox: str
    to_number: str  # E.164
    pages: int  # cover included
    cover: bool
    attachments: list[dict[str, Any]]  # the smtplog's per-part decisions
    original_subject: str
    original_message_id: str | None
    pdf: bytes  # exactly what would be transmitted
    fax_resolution_pdf: bytes | None  # the same at fax resolution, when Ghostscript is here


def preview_subject(mail: PreviewMail) -> str:
    return f"Fax preview for {format_number(mail.to_number)}: {plural(mail.pages, 'page')}"


def build_preview_mail(
    mail: PreviewMail, *, mail_from: str, hostname: str, to: str
) -> EmailMessage:
    message = new_message(
        mail_from=mail_from,
        hostname=hostname,
        to=[to],
        cc=[],
        subject=preview_subject(mail),
        auto_submitted="auto-replied",
    )
    if mail.original_message_id:
        message["In-Reply-To"] = angle_id(mail.original_message_id)
        message["References"] = angle_id(mail.original_message_id)
    message.set_content(_text(mail), cte="quoted-printable")
    stem = safe_filename(f"fax-preview-{mail.to_number}", fallback="fax-preview")
    message.add_attachment(mail.pdf, maintype="application", subtype="pdf", filename=f"{stem}.pdf")
    if mail.fax_resolution_pdf is not None:
        message.add_attachment(
            mail.fax_resolution_pdf,
            maintype="application",
            subtype="pdf",
            filename=f"{stem}-as-received.pdf",
        )
    return message


def _text(mail: PreviewMail) -> str:
    number = format_number(mail.to_number)
    cover = " including the cover page" if mail.cover else " (no cover page)"
    paragraphs = [
        f"This is a preview: nothing was faxed. Sent to {number}, your message would be a fax "
        f"of {plural(mail.pages, 'page')}{cover}.",
        "The attached PDF is exactly what would be transmitted."
        + (
            ' The one ending in "-as-received" shows the same pages as the receiving fax '
            "machine prints them (black and white, 204 x 196 dpi): check that nothing faint "
            "or small is lost."
            if mail.fax_resolution_pdf is not None
            else ""
        ),
        f"To send it, write to {mail.to_number.lstrip('+')} at the same fax domain instead "
        "of the preview address.",
    ]
    text = "\n\n".join(textwrap.fill(p, width=76) for p in paragraphs) + "\n\n"
    rows = ["What became of each part of your message:"]
    for item in mail.attachments:
        name = one_line(str(item.get("filename") or "(message text)"))
        kind = item.get("detected_type") or "?"
        if item.get("used"):
            pages = int(item.get("pages") or 0)
            fate = f"faxed, {plural(pages, 'page')}" if pages else "faxed (in the message text)"
        else:
            fate = "not faxed: " + one_line(str(item.get("reason") or ""))
        rows.append(f"  - {name} [{kind}]: {fate}")
    if mail.cover:
        rows.append("  - cover page: 1 page")
    text += "\n".join(rows) + "\n\n"
    text += f"Reference: {mail.attempt_id} (faxbox {mail.faxbox})\n"
    return text


def preview_mail_bytes(mail: PreviewMail, *, mail_from: str, hostname: str, to: str) -> bytes:
    import email.policy

    built = build_preview_mail(mail, mail_from=mail_from, hostname=hostname, to=to)
    return built.as_bytes(policy=email.policy.SMTP)
