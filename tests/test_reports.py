"""Delivery reports and inbound-fax mails, read back the way a mail client would read them."""

from __future__ import annotations

import email
import email.policy
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage, MIMEPart
from typing import Any, cast

import pytest

from bridge.config import FaxboxConfig
from bridge.models import FailureReason, JobStatus
from bridge.notify.reports import (
    DeliveryOutcome,
    InboundMail,
    build_delivery_report,
    build_inbound_email,
    report_recipients,
)

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
SUBMITTED = datetime(2024, 5, 1, 10, 0, 0, tzinfo=UTC)
ORIGINAL_HEADERS = (
    b"From: Alice Example <alice@example.com>\r\n"
    b"To: Jane Doe <12125550123@fax.example.com>\r\n"
    b"Subject: Quarterly contract\r\n"
    b"Message-ID: <orig-1@mua.example.com>\r\n"
    b"\r\n"
)


def outcome(**changes: Any) -> DeliveryOutcome:
    base = DeliveryOutcome(
        job_id="job-42",
        attempt_id="att-7",
        faxbox="main",
        to_number="+12125550123",
        to_name="Jane Doe",
        status=JobStatus.DELIVERED,
        reason=None,
        provider="sim",
        provider_code=None,
        provider_text=None,
        pages=3,
        attempts=1,
        history=[
            (SUBMITTED, "queued", "accepted from alice@example.com"),
            (SUBMITTED + timedelta(seconds=5), "submitted", "provider fax id sim-99"),
        ],
        submitted_at=SUBMITTED,
        finished_at=SUBMITTED + timedelta(minutes=2, seconds=13),
        sender="alice@example.com",
        original_headers=ORIGINAL_HEADERS,
        original_message_id="<orig-1@mua.example.com>",
        original_subject="Quarterly contract",
        document_pdf=PDF,
        recipient_address="12125550123@fax.example.com",
    )
    return replace(base, **changes)


def failed(reason: FailureReason = FailureReason.BUSY, **changes: Any) -> DeliveryOutcome:
    defaults: dict[str, Any] = {
        "provider_code": "17",
        "provider_text": "Line busy after 3 tries",
        "attempts": 3,
    }
    return outcome(status=JobStatus.FAILED, reason=reason, **{**defaults, **changes})


def report(o: DeliveryOutcome, **kwargs: Any) -> EmailMessage:
    options: dict[str, Any] = {
        "mail_from": "Fax Bridge <fax-noreply@example.com>",
        "hostname": "fax.example.com",
        "to": ["alice@example.com"],
        "cc": [],
        "attach_fax": True,
    }
    options.update(kwargs)
    return reparse(build_delivery_report(o, **options))


def reparse(message: EmailMessage) -> EmailMessage:
    raw = message.as_bytes(policy=email.policy.SMTP)
    return email.message_from_bytes(raw, policy=email.policy.default)


def text_of(part: MIMEPart) -> str:
    """Decoded text with the wire's CRLF turned back into newlines."""
    return cast(str, part.get_content()).replace("\r\n", "\n")


def human_text(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    return text_of(body)


def status_blocks(message: EmailMessage) -> list[EmailMessage]:
    (part,) = [p for p in message.walk() if p.get_content_type() == "message/delivery-status"]
    return cast(list[EmailMessage], part.get_payload())


def attachments(message: EmailMessage) -> list[EmailMessage]:
    return [p for p in message.walk() if p.get_content_disposition() == "attachment"]


def inbound(**changes: Any) -> InboundMail:
    base = InboundMail(
        faxbox="main",
        from_number="+12125550199",
        to_number="+12125550100",
        pages=2,
        received=datetime(2024, 5, 1, 10, 15, 0, tzinfo=UTC),
        remote_station_id="ACME CORP",
        document=PDF,
        format="pdf",
    )
    return replace(base, **changes)


def inbound_mail(fax: InboundMail, **kwargs: Any) -> EmailMessage:
    options: dict[str, Any] = {
        "mail_from": "Fax Bridge <fax-noreply@example.com>",
        "hostname": "fax.example.com",
        "to": ["frontdesk@example.com", "office@example.com"],
    }
    options.update(kwargs)
    return reparse(build_inbound_email(fax, **options))


def faxbox(**changes: Any) -> FaxboxConfig:
    return FaxboxConfig(name="main", domains=["fax.example.com"], provider="sim", **changes)


# Delivery reports: what the sender sees


def test_delivered_report_subject_names_number_and_pages() -> None:
    assert report(outcome())["Subject"] == "Fax to +1 212-555-0123 delivered (3 pages)"


def test_delivered_report_subject_says_page_for_one_page() -> None:
    assert report(outcome(pages=1))["Subject"] == "Fax to +1 212-555-0123 delivered (1 page)"


@pytest.mark.parametrize(
    ("reason", "words"),
    [
        (FailureReason.BUSY, "line busy"),
        (FailureReason.NO_ANSWER, "no answer"),
        (FailureReason.BAD_NUMBER, "not a fax number"),
        (FailureReason.DISCONNECTED, "call disconnected"),
        (FailureReason.PROVIDER_ERROR, "fax provider unavailable"),
    ],
)
def test_failed_report_subject_says_why_in_short_words(reason: FailureReason, words: str) -> None:
    assert report(failed(reason))["Subject"] == f"Fax to +1 212-555-0123 failed: {words}"


def test_every_failure_reason_has_subject_words_and_a_status_code() -> None:
    for reason in FailureReason:
        message = report(failed(reason))
        assert message["Subject"].startswith("Fax to +1 212-555-0123 failed: ")
        assert str(status_blocks(message)[1]["Status"]).startswith("5.")


def test_report_is_an_rfc3464_multipart_report_in_order() -> None:
    message = report(outcome())
    assert message.get_content_type() == "multipart/report"
    assert message.get_param("report-type") == "delivery-status"
    parts = cast(list[EmailMessage], message.get_payload())
    assert [p.get_content_type() for p in parts] == [
        "multipart/mixed",  # the human text with the fax PDF beside it
        "message/delivery-status",
        "text/rfc822-headers",
    ]


def test_delivered_report_text_names_number_pages_and_duration() -> None:
    text = human_text(report(outcome()))
    assert "Your fax to +1 212-555-0123 (Jane Doe) was delivered: 3 pages in 2 min 13 s." in text
    assert "Fax ID:" in text and "job-42" in text
    assert "Subject:    Quarterly contract" in text


def test_failed_report_text_gives_reason_provider_text_and_history() -> None:
    text = human_text(report(failed(FailureReason.BUSY)))
    assert "could not be sent: the line was busy." in text
    assert '"Line busy after 3 tries" (code 17)' in text
    assert "Please send the fax again later" in text
    assert "Attempts:   3" in text
    assert "What the fax bridge did:" in text
    assert "2024-05-01 10:00:05 UTC  submitted  provider fax id sim-99" in text


def test_delivery_status_fields_for_a_delivered_fax() -> None:
    per_message, per_recipient = status_blocks(report(outcome()))
    assert per_message["Reporting-MTA"] == "dns; fax.example.com"
    assert per_message["Arrival-Date"] == "Wed, 01 May 2024 10:00:00 +0000"
    assert per_recipient["Original-Recipient"] == "rfc822; 12125550123@fax.example.com"
    assert per_recipient["Final-Recipient"] == "rfc822; +12125550123@fax.example.com"
    assert per_recipient["Action"] == "delivered"
    assert per_recipient["Status"] == "2.0.0"
    assert per_recipient["Diagnostic-Code"] is None
    assert per_recipient["X-Fax-Job-ID"] == "job-42"


@pytest.mark.parametrize(
    ("reason", "status"),
    [
        (FailureReason.BUSY, "5.4.1"),
        (FailureReason.NO_ANSWER, "5.4.1"),
        (FailureReason.BAD_NUMBER, "5.1.1"),
        (FailureReason.DISCONNECTED, "5.4.2"),
        (FailureReason.EXPIRED, "5.4.7"),
    ],
)
def test_delivery_status_fields_for_a_failed_fax(reason: FailureReason, status: str) -> None:
    _, per_recipient = status_blocks(report(failed(reason)))
    assert per_recipient["Action"] == "failed"
    assert per_recipient["Status"] == status
    assert per_recipient["Diagnostic-Code"] == "X-Fax; 17 Line busy after 3 tries"


def test_diagnostic_code_stays_one_ascii_line() -> None:
    message = report(failed(provider_text="Ligne occupée\r\nréessayez", provider_code=None))
    _, per_recipient = status_blocks(message)
    assert per_recipient["Diagnostic-Code"] == "X-Fax; Ligne occup?e r?essayez"
    assert '"Ligne occupée réessayez"' in human_text(message)


def test_final_recipient_falls_back_to_reporting_host() -> None:
    _, per_recipient = status_blocks(report(outcome(recipient_address="")))
    assert per_recipient["Final-Recipient"] == "rfc822; +12125550123@fax.example.com"
    assert per_recipient["Original-Recipient"] is None


def test_report_carries_the_original_header_block() -> None:
    message = report(outcome())
    (part,) = [p for p in message.walk() if p.get_content_type() == "text/rfc822-headers"]
    content = text_of(part)
    assert "Subject: Quarterly contract\n" in content
    assert "Message-ID: <orig-1@mua.example.com>" in content
    assert not content.endswith("\n\n")


def test_report_attaches_the_fax_as_transmitted() -> None:
    (pdf,) = attachments(report(outcome()))
    assert pdf.get_content_type() == "application/pdf"
    assert pdf.get_filename() == "fax-+12125550123-20240501-100213.pdf"
    assert pdf.get_content() == PDF


def test_report_without_attach_fax_has_no_document() -> None:
    message = report(outcome(), attach_fax=False)
    assert attachments(message) == []
    assert cast(list[EmailMessage], message.get_payload())[0].get_content_type() == "text/plain"
    assert "fax as it was transmitted" not in human_text(message)


def test_report_without_a_stored_document_has_no_attachment() -> None:
    assert attachments(report(outcome(document_pdf=None))) == []


def test_report_headers_thread_under_the_original_and_stop_autoreplies() -> None:
    message = report(outcome())
    assert message["In-Reply-To"] == "<orig-1@mua.example.com>"
    assert message["References"] == "<orig-1@mua.example.com>"
    assert message["Auto-Submitted"] == "auto-replied"
    assert message["From"] == "Fax Bridge <fax-noreply@example.com>"
    assert message["To"] == "alice@example.com"
    assert str(message["Message-ID"]).endswith("@fax.example.com>")
    assert message["Date"].datetime is not None


def test_message_id_without_brackets_is_bracketed_and_absent_one_is_left_out() -> None:
    assert report(outcome(original_message_id="x@y"))["In-Reply-To"] == "<x@y>"
    message = report(outcome(original_message_id=None))
    assert message["In-Reply-To"] is None and message["References"] is None


def test_report_to_admin_only_addresses_the_copies() -> None:
    message = report(failed(), to=[], cc=["admin@example.com"])
    assert message["To"] == "admin@example.com"
    assert message["Cc"] is None


def test_report_with_nobody_to_send_to_is_refused() -> None:
    with pytest.raises(ValueError):
        build_delivery_report(
            outcome(), mail_from="f@example.com", hostname="h", to=[], cc=[], attach_fax=True
        )


def test_non_ascii_names_are_encoded_on_the_wire_and_read_back() -> None:
    o = outcome(to_name="Jürgen Müller")
    built = build_delivery_report(
        o,
        mail_from="Fax Brücke <fax@example.com>",
        hostname="fax.example.com",
        to=["alice@example.com"],
        cc=[],
        attach_fax=False,
    )
    raw = built.as_bytes(policy=email.policy.SMTP)
    assert raw.isascii()
    assert b"=?utf-8?" in raw
    message = reparse(built)
    assert message["From"].addresses[0].display_name == "Fax Brücke"
    assert "(Jürgen Müller)" in human_text(message)
    body = message.get_body(preferencelist=("plain",))
    assert body is not None and body.get_content_charset() == "utf-8"


def test_report_lines_end_in_crlf_on_the_wire() -> None:
    raw = build_delivery_report(
        failed(), mail_from="f@example.com", hostname="h", to=["a@b.c"], cc=[], attach_fax=True
    ).as_bytes(policy=email.policy.SMTP)
    assert raw.count(b"\n") == raw.count(b"\r\n")
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))


# Who gets a report


@pytest.mark.parametrize("sender", ["", "<>", "  <>  "])
def test_null_sender_never_gets_a_report(sender: str) -> None:
    to, cc = report_recipients(sender, faxbox(), JobStatus.FAILED)
    assert to == [] and cc == []


def test_sender_gets_the_report_and_admin_a_copy_of_failures() -> None:
    box = faxbox(admin="admin@example.com")
    assert report_recipients("alice@example.com", box, JobStatus.FAILED) == (
        ["alice@example.com"],
        ["admin@example.com"],
    )
    assert report_recipients("alice@example.com", box, JobStatus.DELIVERED) == (
        ["alice@example.com"],
        [],
    )


def test_report_cc_applies_without_duplicates_and_to_sender_can_be_off() -> None:
    box = faxbox(
        admin="Ops@Example.com",
        reports={"to_sender": False, "cc": ["ops@example.com", "log@example.com"]},
    )
    assert report_recipients("alice@example.com", box, JobStatus.FAILED) == (
        [],
        ["ops@example.com", "log@example.com"],
    )


def test_bracketed_sender_is_unwrapped_and_junk_is_dropped() -> None:
    assert report_recipients("<alice@example.com>", faxbox(), JobStatus.DELIVERED)[0] == [
        "alice@example.com"
    ]
    assert report_recipients("MAILER-DAEMON", faxbox(), JobStatus.DELIVERED)[0] == []


# Inbound fax mails


def test_inbound_subject_names_caller_and_pages() -> None:
    assert inbound_mail(inbound())["Subject"] == "Fax from +1 212-555-0199 (2 pages)"


def test_inbound_subject_with_one_page_or_unknown_count() -> None:
    assert inbound_mail(inbound(pages=1))["Subject"] == "Fax from +1 212-555-0199 (1 page)"
    assert inbound_mail(inbound(pages=None))["Subject"] == "Fax from +1 212-555-0199"


def test_inbound_subject_for_a_withheld_caller_id() -> None:
    assert inbound_mail(inbound(from_number=""))["Subject"] == "Fax from unknown number (2 pages)"


def test_inbound_body_lists_from_to_pages_received_and_station() -> None:
    message = inbound_mail(inbound())
    text = human_text(message)
    assert "From:       +1 212-555-0199" in text
    assert "To:         +1 212-555-0100 (faxbox main)" in text
    assert "Pages:      2" in text
    assert "Received:   2024-05-01 10:15:00 UTC" in text
    assert "Station ID: ACME CORP" in text
    assert "Station ID" not in human_text(inbound_mail(inbound(remote_station_id=None)))


def test_inbound_mail_attaches_the_pdf_with_the_default_name() -> None:
    message = inbound_mail(inbound())
    (pdf,) = attachments(message)
    assert pdf.get_content_type() == "application/pdf"
    assert pdf.get_filename() == "fax-+12125550199-20240501-101500.pdf"
    assert pdf.get_content() == PDF
    assert message["To"] == "frontdesk@example.com, office@example.com"
    assert message["Auto-Submitted"] == "auto-generated"
    assert str(message["Message-ID"]).endswith("@fax.example.com>")


def test_inbound_tiff_is_attached_as_image_tiff() -> None:
    (tiff,) = attachments(inbound_mail(inbound(format="tiff", document=b"II*\x00data")))
    assert tiff.get_content_type() == "image/tiff"
    assert tiff.get_filename() == "fax-+12125550199-20240501-101500.tiff"
    assert tiff.get_content() == b"II*\x00data"


def test_inbound_filename_has_no_characters_windows_refuses() -> None:
    fax = inbound(remote_station_id='ACME "HQ" <1/2>\\|?*:\x07')
    (pdf,) = attachments(inbound_mail(fax, filename_template="{station}.{ext}"))
    assert pdf.get_filename() == "ACME _HQ_ _1_2_______.pdf"


def test_inbound_filename_avoids_reserved_names_and_keeps_its_extension() -> None:
    (pdf,) = attachments(inbound_mail(inbound(), filename_template="con"))
    assert pdf.get_filename() == "_con.pdf"


def test_inbound_templates_that_do_not_render_fall_back_to_defaults() -> None:
    message = inbound_mail(inbound(), subject_template="Fax {nope}", filename_template="{x")
    assert message["Subject"] == "Fax from +1 212-555-0199 (2 pages)"
    assert attachments(message)[0].get_filename() == "fax-+12125550199-20240501-101500.pdf"


def test_inbound_custom_subject_template() -> None:
    message = inbound_mail(inbound(), subject_template="[{faxbox}] {pages}p from {from} to {to}")
    assert message["Subject"] == "[main] 2p from +12125550199 to +12125550100"


def test_inbound_mail_is_crlf_and_7bit_on_the_wire() -> None:
    built = build_inbound_email(
        inbound(remote_station_id="Büro"), mail_from="f@example.com", hostname="h", to=["a@b.c"]
    )
    raw = built.as_bytes(policy=email.policy.SMTP)
    assert raw.isascii()
    assert raw.count(b"\n") == raw.count(b"\r\n")
    assert "Station ID: Büro" in human_text(reparse(built))


def test_inbound_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError):
        build_inbound_email(inbound(format="gif"), mail_from="f@x.y", hostname="h", to=["a@b.c"])


def test_plain_ascii_report_text_stays_readable_on_the_wire() -> None:
    raw = build_delivery_report(
        failed(), mail_from="f@example.com", hostname="h", to=["a@b.c"], cc=[], attach_fax=True
    ).as_bytes(policy=email.policy.SMTP)
    assert b"Content-Transfer-Encoding: 7bit" in raw
    assert b"could not be sent: the line was busy." in raw


def test_inbound_attachment_part_has_no_stray_mime_version() -> None:
    (pdf,) = attachments(inbound_mail(inbound()))
    assert pdf["MIME-Version"] is None


def test_cancelled_report_says_so_without_advice() -> None:
    message = report(outcome(status=JobStatus.CANCELLED))
    assert message["Subject"] == "Fax to +1 212-555-0123 cancelled"
    assert "Your fax to +1 212-555-0123 (Jane Doe) was cancelled." in human_text(message)
    assert status_blocks(message)[1]["Action"] == "failed"


def test_naive_store_times_are_read_as_utc() -> None:
    naive = SUBMITTED.replace(tzinfo=None)
    message = report(outcome(submitted_at=naive, finished_at=naive + timedelta(hours=1, minutes=2)))
    assert "in 1 h 2 min." in human_text(message)
    assert status_blocks(message)[0]["Arrival-Date"] == "Wed, 01 May 2024 10:00:00 +0000"


def test_busy_report_says_how_many_tries_were_made() -> None:
    text = human_text(report(failed(FailureReason.BUSY, dials=3)))
    assert "The receiving line was busy on each of 3 tries." in text
    assert "Tries:      3" in text
    _, per_recipient = status_blocks(report(failed(FailureReason.BUSY, dials=3)))
    assert per_recipient["X-Fax-Tries"] == "3"


def test_busy_report_names_the_provider_redialling_by_itself() -> None:
    message = report(failed(FailureReason.NO_ANSWER, dials=2, provider_redialled=True))
    text = " ".join(human_text(message).split())
    assert "Nobody answered on each of 2 tries (the fax service redialled by itself)." in text


def test_single_try_busy_report_does_not_claim_each_time() -> None:
    text = human_text(report(failed(FailureReason.BUSY, dials=1)))
    assert "each time" not in text and "each of" not in text
    assert "busy on the one try that was made" in text


def test_unknown_outcome_report_tells_the_sender_to_check_before_resending() -> None:
    message = report(
        outcome(
            status=JobStatus.UNKNOWN,
            reason=FailureReason.EXPIRED,
            provider_code="expired",
            provider_text="no final word from the provider within 24 h",
        )
    )
    assert message["Subject"] == "Fax to +1 212-555-0123: outcome unknown"
    text = " ".join(human_text(message).split())
    assert "never said whether your fax to +1 212-555-0123 (Jane Doe) arrived" in text
    assert "no final word from the provider within 24 h" in text
    assert "ask the recipient whether it arrived before you send it again" in text
    _, per_recipient = status_blocks(message)
    assert (per_recipient["Action"], per_recipient["Status"]) == ("delayed", "4.4.7")


def test_late_final_word_after_unknown_says_it_follows_up() -> None:
    text = human_text(report(outcome(late=True)))
    assert text.startswith("This follows an earlier message that said the outcome")
    assert "was delivered" in text


def test_possible_duplicate_is_told_to_the_sender() -> None:
    text = " ".join(human_text(report(outcome(possible_duplicate=True))).split())
    assert "the recipient may get it twice" in text
