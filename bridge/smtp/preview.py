"""A preview recipient's answer, built in a document worker: the fax it would be, by mail."""

from __future__ import annotations

from bridge.config import Config
from bridge.documents import PreparedDocument, fax_pdf
from bridge.documents.export import fax_resolution_pdf
from bridge.errors import DocumentError
from bridge.models import CoverNote
from bridge.notify.preview import PreviewMail, preview_mail_bytes
from bridge.smtp.policy import Recipient
from bridge.store import Attempt


def preview_row(
    config: Config,
    attempt: Attempt,
    recipient: Recipient,
    doc: PreparedDocument,
    note: CoverNote | None,
) -> bytes:
    """The rendered preview mail (RFC 5322 bytes) to the envelope sender."""
    pdf = fax_pdf(doc, note)
    try:
        as_received: bytes | None = fax_resolution_pdf(pdf)
    except DocumentError:  # no Ghostscript: the exact PDF alone still answers the question
        as_received = None
    mail = PreviewMail(
        attempt_id=attempt.id,
        faxbox=recipient.faxbox.name,
        to_number=recipient.e164,
        pages=doc.pages + (1 if doc.wants_cover else 0),
        cover=doc.wants_cover,
        attachments=[a.as_dict() for a in doc.attachments],
        original_subject=doc.message.subject,
        original_message_id=doc.message.message_id,
        pdf=pdf,
        fax_resolution_pdf=as_received,
    )
    return preview_mail_bytes(
        mail,
        mail_from=config.mail.from_,
        hostname=config.smtp.hostname,
        to=(attempt.mail_from or "").strip("<>"),
    )
