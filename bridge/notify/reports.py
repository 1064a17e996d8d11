"""Delivery reports: the e-mail a sender gets once the fax network has the last word on a fax.

A report is an RFC 3464 delivery status notification (`multipart/report;
report-type=delivery-status`) so that mail clients, ticket systems and scripts that understand
bounces understand it too. Its parts, in the order RFC 6522 prescribes:

1. for people: what happened in plain words, what the bridge tried and what to do next — a
   `text/plain` part, or `multipart/mixed` of that text and the fax PDF when `attach_fax` is on
   (RFC 6522 allows any type for the first part but only two or three parts, so the PDF rides
   inside it rather than as a fourth part);
2. for machines: `message/delivery-status` with RFC 3463 status codes;
3. the original message's header block (`text/rfc822-headers`), so the sender can tell which mail
   it was.

Nothing here does I/O: the outbox stores the built message before a transport sends it.
`build_inbound_email` lives in `bridge.notify.inbound` and is re-exported here.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage, MIMEPart
from email.utils import format_datetime

from bridge.config import FaxboxConfig
from bridge.models import FailureReason, JobStatus
from bridge.notify._mime import (
    angle_id,
    aware,
    format_number,
    human_duration,
    human_time,
    new_message,
    one_line,
    plural,
    safe_filename,
    text_part,
)
from bridge.notify.inbound import InboundMail, build_inbound_email

__all__ = [
    "DeliveryOutcome",
    "InboundMail",
    "build_delivery_report",
    "build_inbound_email",
    "report_recipients",
    "report_subject",
]

_NULL_SENDERS = frozenset({"", "<>"})

# What a subject line says after "failed: ".
_SUBJECT_WORDS = {
    FailureReason.BUSY: "line busy",
    FailureReason.NO_ANSWER: "no answer",
    FailureReason.BAD_NUMBER: "not a fax number",
    FailureReason.DISCONNECTED: "call disconnected",
    FailureReason.BLOCKED_DESTINATION: "destination blocked",
    FailureReason.FILE_ERROR: "document not accepted",
    FailureReason.ON_HOLD: "on hold at the provider",
    FailureReason.REJECTED: "refused by the provider",
    FailureReason.PROVIDER_ERROR: "fax provider unavailable",
    FailureReason.EXPIRED: "timed out",
    FailureReason.UNKNOWN: "unknown error",
}

# RFC 3463 enhanced codes. The report is only sent once the bridge has given up, so every failure
# is class 5 even where the cause (busy, no answer) is transient by nature. X.4.1 is defined as
# "not answered because the remote system was busy, or otherwise unable to take a call".
_STATUS_CODES = {
    FailureReason.BUSY: "5.4.1",
    FailureReason.NO_ANSWER: "5.4.1",
    FailureReason.BAD_NUMBER: "5.1.1",
    FailureReason.DISCONNECTED: "5.4.2",
    FailureReason.BLOCKED_DESTINATION: "5.7.1",
    FailureReason.FILE_ERROR: "5.6.0",
    FailureReason.ON_HOLD: "5.3.0",
    FailureReason.REJECTED: "5.7.0",
    FailureReason.PROVIDER_ERROR: "5.4.0",
    FailureReason.EXPIRED: "5.4.7",
    FailureReason.UNKNOWN: "5.0.0",
}

# The one thing the sender can do about it.
_ADVICE = {
    FailureReason.BUSY: "Please send the fax again later.",
    FailureReason.NO_ANSWER: "Please check that the receiving fax machine is switched on and "
    "connected, then send the fax again.",
    FailureReason.BAD_NUMBER: "Please check the number: it did not answer as a fax machine "
    "(it may be a voice line or out of service).",
    FailureReason.DISCONNECTED: "The call dropped part-way through, often because of a poor "
    "line. Sending the fax again usually works.",
    FailureReason.BLOCKED_DESTINATION: "This destination may not be faxed from here. Please ask "
    "your fax administrator.",
    FailureReason.FILE_ERROR: "Please send the document again as a plain PDF.",
    FailureReason.ON_HOLD: "Your fax administrator needs to check the fax provider account.",
    FailureReason.REJECTED: "Your fax administrator can look into the provider's reason below.",
    FailureReason.PROVIDER_ERROR: "Please send the fax again later. If it keeps happening, tell "
    "your fax administrator.",
    FailureReason.EXPIRED: "Please send the fax again later.",
    FailureReason.UNKNOWN: "If it happens again, please tell your fax administrator and quote "
    "the fax ID below.",
}


@dataclass(frozen=True)
class DeliveryOutcome:
    """What the store knows about a finished fax job: everything a report says, nothing more."""

    job_id: str
    attempt_id: str
    faxbox: str
    to_number: str  # E.164
    to_name: str  # may be ""
    status: JobStatus  # DELIVERED, FAILED, CANCELLED or UNKNOWN
    reason: FailureReason | None
    provider: str  # provider key in the config
    provider_code: str | None
    provider_text: str | None  # the provider's own message
    pages: int  # pages transmitted / to transmit, cover included
    attempts: int  # tries the bridge made
    history: list[tuple[datetime, str, str]]  # (when, status, detail), oldest first
    submitted_at: datetime
    finished_at: datetime
    sender: str  # envelope sender of the original mail (the report's recipient)
    original_headers: bytes  # header block of the original message
    original_message_id: str | None
    original_subject: str
    document_pdf: bytes | None  # the fax as transmitted
    recipient_address: str = ""  # the RCPT TO address as given, e.g. 12125550123@fax.example.com
    dials: int = 0  # times the fax was dialled (handed to the provider), redials included
    provider_redialled: bool = False  # the provider redialled by itself (its count, if given)
    possible_duplicate: bool = False  # re-sent once without being able to rule out a first copy
    late: bool = False  # a final word that came after an "outcome unknown" report


def report_recipients(
    sender: str, faxbox: FaxboxConfig, status: JobStatus
) -> tuple[list[str], list[str]]:
    """(to, cc) of the report on one job; both empty means no report is sent.

    The sender only when the faxbox wants that and the sender can be written to: never the null
    sender (no backscatter, RFC 3834) nor an address that is no address. The faxbox `admin` gets
    a copy of failures only. Nobody is named twice.
    """
    to: list[str] = []
    address = _report_address(sender)
    if faxbox.reports.to_sender and address:
        to.append(address)
    extra = list(faxbox.reports.cc)
    if status in (JobStatus.FAILED, JobStatus.UNKNOWN) and faxbox.admin:
        extra.append(faxbox.admin)
    seen = {a.lower() for a in to}
    cc: list[str] = []
    for candidate in extra:
        candidate = candidate.strip()
        if candidate and candidate.lower() not in seen:
            seen.add(candidate.lower())
            cc.append(candidate)
    return to, cc


def _report_address(sender: str) -> str | None:
    address = sender.strip()
    if address in _NULL_SENDERS:
        return None
    if address.startswith("<") and address.endswith(">"):
        address = address[1:-1].strip()
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain or any(c.isspace() or c in "<>" for c in address):
        return None
    return address


def report_subject(outcome: DeliveryOutcome) -> str:
    """`Fax to +1 212-555-0123 delivered (3 pages)` / `… failed: line busy` / `… cancelled`."""
    number = format_number(outcome.to_number)
    if outcome.status is JobStatus.DELIVERED:
        return f"Fax to {number} delivered ({plural(outcome.pages, 'page')})"
    if outcome.status is JobStatus.UNKNOWN:
        return f"Fax to {number}: outcome unknown"
    if outcome.status is JobStatus.CANCELLED:
        return f"Fax to {number} cancelled"
    if outcome.reason is None:
        return f"Fax to {number} failed"
    return f"Fax to {number} failed: {_SUBJECT_WORDS[outcome.reason]}"


def build_delivery_report(
    outcome: DeliveryOutcome,
    *,
    mail_from: str,
    hostname: str,
    to: list[str],
    cc: list[str],
    attach_fax: bool,
) -> EmailMessage:
    """The report as an RFC 3464 DSN; `hostname` names the Reporting-MTA and the Message-ID.

    With an empty `to`, the copies in `cc` become the addressees (an admin-only report).
    Raises ValueError when nobody at all is to receive it.
    """
    message = new_message(
        mail_from=mail_from,
        hostname=hostname,
        to=to or cc,
        cc=cc if to else [],
        subject=report_subject(outcome),
        auto_submitted="auto-replied",
    )
    if outcome.original_message_id:
        original = angle_id(outcome.original_message_id)
        message["In-Reply-To"] = original
        message["References"] = original
    message["MIME-Version"] = "1.0"
    message.add_header("Content-Type", "multipart/report", report_type="delivery-status")

    with_fax = attach_fax and outcome.document_pdf is not None
    human = text_part(_human_text(outcome, with_fax=with_fax))
    if with_fax:
        assert outcome.document_pdf is not None
        human.add_attachment(
            outcome.document_pdf,
            maintype="application",
            subtype="pdf",
            filename=_fax_filename(outcome),
        )
    message.set_payload(
        [human, _status_part(outcome, hostname), _headers_part(outcome.original_headers)]
    )
    return message


def _human_text(outcome: DeliveryOutcome, *, with_fax: bool) -> str:
    number = format_number(outcome.to_number)
    whom = f"{number} ({one_line(outcome.to_name)})" if outcome.to_name.strip() else number
    duration = human_duration(
        (aware(outcome.finished_at) - aware(outcome.submitted_at)).total_seconds()
    )
    paragraphs: list[str] = []
    if outcome.late:
        paragraphs.append(
            "This follows an earlier message that said the outcome of this fax was unknown: "
            "the fax service has now given its final word."
        )
    if outcome.status is JobStatus.DELIVERED:
        paragraphs.append(
            f"Your fax to {whom} was delivered: {plural(outcome.pages, 'page')} in {duration}."
        )
    elif outcome.status is JobStatus.UNKNOWN:
        paragraphs.append(
            f"The fax service never said whether your fax to {whom} arrived, and the fax "
            f"bridge stopped waiting after {duration}."
        )
        said = _provider_said(outcome)
        if said:
            paragraphs.append(f"Why: {said}")
        paragraphs.append(
            "Please ask the recipient whether it arrived before you send it again, so that "
            "they do not get it twice. If the fax service reports later, you will get "
            "another message."
        )
    else:
        verb = "was cancelled" if outcome.status is JobStatus.CANCELLED else "could not be sent"
        why = f": {outcome.reason.in_words}." if outcome.reason else "."
        paragraphs.append(f"Your fax to {whom} {verb}{why}")
        said = _provider_said(outcome)
        if said:
            paragraphs.append(f"The fax service said: {said}")
        if outcome.reason in (FailureReason.BUSY, FailureReason.NO_ANSWER):
            paragraphs.append(_tried(outcome))
        if outcome.reason and outcome.status is JobStatus.FAILED:
            paragraphs.append(_ADVICE[outcome.reason])
    if outcome.possible_duplicate:
        paragraphs.append(
            "Note: the fax had to be sent again without the fax service being able to say "
            "whether an earlier try had already gone through, so the recipient may get it twice."
        )
    text = "\n\n".join(textwrap.fill(p, width=76) for p in paragraphs) + "\n\n"

    rows = [("Fax ID", outcome.job_id), ("To", whom)]
    if outcome.original_subject.strip():
        rows.append(("Subject", one_line(outcome.original_subject)))
    rows += [
        ("Pages", str(outcome.pages)),
        ("Submitted", human_time(outcome.submitted_at)),
        ("Finished", human_time(outcome.finished_at)),
        ("Duration", duration),
        _tries_row(outcome),
    ]
    text += "".join(f"  {label + ':':<11} {value}\n" for label, value in rows)

    if outcome.history:
        text += "\nWhat the fax bridge did:\n"
        for when, status, detail in outcome.history:
            text += f"  {human_time(when)}  {status:<10} {one_line(detail)}".rstrip() + "\n"

    attached = "The headers of your original message"
    attached += " and the fax as it was transmitted are attached." if with_fax else " are attached."
    return text + "\n" + textwrap.fill(attached, width=76) + "\n"


def _tried(outcome: DeliveryOutcome) -> str:
    """What was tried, for a busy or unanswered line: `The line was busy on each of 3 tries.`"""
    what = (
        "The receiving line was busy"
        if outcome.reason is FailureReason.BUSY
        else ("Nobody answered")
    )
    by = " (the fax service redialled by itself)" if outcome.provider_redialled else ""
    if outcome.dials > 1:
        return f"{what} on each of {outcome.dials} tries{by}."
    if outcome.provider_redialled:
        return f"{what}; the fax service was asked to redial and did not get through."
    return f"{what} on the one try that was made (no redial is set for this)."


def _tries_row(outcome: DeliveryOutcome) -> tuple[str, str]:
    """Dials where the fax reached the provider; else the attempts to reach the provider."""
    if outcome.dials:
        return "Tries", str(outcome.dials)
    return "Attempts", str(outcome.attempts)


def _provider_said(outcome: DeliveryOutcome) -> str:
    text = one_line(outcome.provider_text or "")
    code = one_line(outcome.provider_code or "")
    if text and code:
        return f'"{text}" (code {code})'
    if text:
        return f'"{text}"'
    return f"code {code}" if code else ""


def _status_part(outcome: DeliveryOutcome, hostname: str) -> MIMEPart:
    """The machine-readable `message/delivery-status`: one per-message and one per-recipient block.

    Fields stay ASCII (RFC 3464 has no encoded words); the provider's text in full is in the human
    part. `X-Fax-*` are extension fields as RFC 3464 §3 allows.
    """
    per_message = MIMEPart()
    per_message["Reporting-MTA"] = f"dns; {hostname}"
    per_message["X-Fax-Attempt-ID"] = outcome.attempt_id
    per_message["Arrival-Date"] = format_datetime(aware(outcome.submitted_at))

    per_recipient = MIMEPart()
    domain = outcome.recipient_address.rpartition("@")[2] or hostname
    if outcome.recipient_address:
        per_recipient["Original-Recipient"] = f"rfc822; {_ascii(outcome.recipient_address)}"
    per_recipient["Final-Recipient"] = f"rfc822; {outcome.to_number}@{domain}"
    delivered = outcome.status is JobStatus.DELIVERED
    unknown = outcome.status is JobStatus.UNKNOWN
    # Outcome unknown: RFC 3464 "delayed" with 4.4.7 (delivery time expired), never "failed"
    # (a sender's script would re-send, and the recipient may already have the fax).
    per_recipient["Action"] = "delivered" if delivered else "delayed" if unknown else "failed"
    if delivered:
        per_recipient["Status"] = "2.0.0"
    elif unknown:
        per_recipient["Status"] = "4.4.7"
    else:
        per_recipient["Status"] = _STATUS_CODES[outcome.reason] if outcome.reason else "5.0.0"
    diagnostic = " ".join(
        _ascii(x) for x in (outcome.provider_code, outcome.provider_text) if x and x.strip()
    )
    if diagnostic:
        per_recipient["Diagnostic-Code"] = f"X-Fax; {diagnostic}"
    per_recipient["Last-Attempt-Date"] = format_datetime(aware(outcome.finished_at))
    per_recipient["X-Fax-Job-ID"] = outcome.job_id
    per_recipient["X-Fax-Provider"] = outcome.provider
    per_recipient["X-Fax-Pages"] = str(outcome.pages)
    per_recipient["X-Fax-Attempts"] = str(outcome.attempts)
    per_recipient["X-Fax-Tries"] = str(outcome.dials)
    if outcome.reason and not delivered:
        per_recipient["X-Fax-Reason"] = outcome.reason.value

    part = MIMEPart()
    part["Content-Type"] = "message/delivery-status"
    part.set_payload([per_message, per_recipient])
    return part


def _ascii(text: str) -> str:
    return one_line(text).encode("ascii", "replace").decode("ascii")[:900]


def _headers_part(original_headers: bytes) -> MIMEPart:
    """The original header block; undecodable bytes (raw 8-bit headers) become U+FFFD."""
    text = original_headers.decode("utf-8", "replace").replace("\r\n", "\n").rstrip("\n")
    return text_part(text + "\n", subtype="rfc822-headers")


def _fax_filename(outcome: DeliveryOutcome) -> str:
    stamp = aware(outcome.finished_at).strftime("%Y%m%d-%H%M%S")
    return safe_filename(f"fax-{outcome.to_number}-{stamp}.pdf", fallback="fax.pdf")
