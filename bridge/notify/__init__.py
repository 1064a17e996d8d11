"""Outgoing e-mail: delivery reports and inbound faxes (what they say), and the transports that
deliver them (Maildir, SMTP relay). The durable outbox between the two lives in the store."""

from __future__ import annotations

from bridge.notify.inbound import InboundMail, build_inbound_email
from bridge.notify.mailer import (
    MailDeliveryError,
    MaildirMailer,
    Mailer,
    MemoryMailer,
    SMTPRelayMailer,
    as_smtp_bytes,
    make_mailer,
)
from bridge.notify.reports import (
    DeliveryOutcome,
    build_delivery_report,
    report_recipients,
    report_subject,
)

__all__ = [
    "DeliveryOutcome",
    "InboundMail",
    "MailDeliveryError",
    "MaildirMailer",
    "Mailer",
    "MemoryMailer",
    "SMTPRelayMailer",
    "as_smtp_bytes",
    "build_delivery_report",
    "build_inbound_email",
    "make_mailer",
    "report_recipients",
    "report_subject",
]
