"""Build test e-mails with real PDF attachments."""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import make_msgid

from fpdf import FPDF


def make_pdf(label: str = "page", pages: int = 1) -> bytes:
    pdf = FPDF(format="letter")
    pdf.set_font("helvetica", size=24)
    for number in range(1, pages + 1):
        pdf.add_page()
        pdf.cell(text=f"{label} {number}")
    return bytes(pdf.output())


def fax_mail(
    to: str | list[str] = "12125550123@fax.localhost",
    sender: str = "alice@example.com",
    subject: str = "Contract",
    body: str = "Please sign page 2.",
    pdf_pages: int = 1,
    headers: dict[str, str] | None = None,
) -> EmailMessage:
    message = EmailMessage()
    message["From"] = f"Alice Example <{sender}>"
    message["To"] = ", ".join(to) if isinstance(to, list) else to
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain="example.com")
    for key, value in (headers or {}).items():
        message[key] = value
    message.set_content(body)
    if pdf_pages:
        message.add_attachment(
            make_pdf("doc", pdf_pages),
            maintype="application",
            subtype="pdf",
            filename="contract.pdf",
        )
    return message
