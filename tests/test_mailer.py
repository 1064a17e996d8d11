"""Mail transports against a real Maildir and a real SMTP server on a loopback port."""

from __future__ import annotations

import asyncio
import email
import email.policy
import ssl
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any, cast

import pytest

from bridge.config import MailConfig, RelayConfig
from bridge.errors import ConfigError
from bridge.models import FailureReason, JobStatus
from bridge.notify import (
    DeliveryOutcome,
    InboundMail,
    MailDeliveryError,
    MaildirMailer,
    MemoryMailer,
    SMTPRelayMailer,
    as_smtp_bytes,
    build_delivery_report,
    build_inbound_email,
    make_mailer,
)
from tests import smtp_capture as capture_fixtures
from tests.smtp_capture import CaptureServer, SelfSignedCert, free_port

# The shared fixtures, bound here so pytest finds them (a conftest.py may do the same).
smtp_capture = capture_fixtures.smtp_capture
tls_cert = capture_fixtures.tls_cert

Capture = Callable[..., CaptureServer]


def message(subject: str = "Fax to +1 212-555-0123 delivered (1 page)") -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "Fax Brücke <fax-noreply@example.com>"
    msg["To"] = "alice@example.com"
    msg["Subject"] = subject
    msg["Message-ID"] = "<m1@fax.example.com>"
    msg.set_content("Grüße\n.leading dot survives dot-stuffing\n")
    return msg


def relay(server: CaptureServer, **changes: Any) -> RelayConfig:
    return RelayConfig(host=server.host, port=server.port, timeout_s=5, **changes)


def parse(data: bytes) -> EmailMessage:
    return email.message_from_bytes(data, policy=email.policy.default)


# Maildir


async def test_maildir_writes_the_message_into_new(tmp_path: Path) -> None:
    mailer = MaildirMailer(tmp_path / "var" / "mail")
    where = await mailer.send(message(), sender="fax@example.com", recipients=["alice@example.com"])
    (written,) = (tmp_path / "var" / "mail" / "new").iterdir()
    assert where == str(written)
    data = written.read_bytes()
    assert data == (
        b"Return-Path: <fax@example.com>\r\nX-Envelope-To: alice@example.com\r\n"
        + as_smtp_bytes(message())
    )
    parsed = parse(data)
    assert parsed["Subject"] == "Fax to +1 212-555-0123 delivered (1 page)"
    assert {p.name for p in (tmp_path / "var" / "mail").iterdir()} == {"tmp", "new", "cur"}


async def test_maildir_records_the_null_sender_and_all_recipients(tmp_path: Path) -> None:
    mailer = MaildirMailer(tmp_path)
    raw = as_smtp_bytes(message())
    await mailer.send(raw, sender="", recipients=["a@example.com", "b@example.com"])
    (written,) = (tmp_path / "new").iterdir()
    parsed = parse(written.read_bytes())
    assert parsed["Return-Path"] == "<>"
    assert parsed["X-Envelope-To"] == "a@example.com, b@example.com"


async def test_maildir_delivers_the_same_stored_mail_once_however_often_it_is_sent(
    tmp_path: Path,
) -> None:
    """A bridge killed after writing the file but before recording "sent" sends it again."""
    mailer = MaildirMailer(tmp_path)
    raw = as_smtp_bytes(message())
    first = await mailer.send(raw, sender="", recipients=["a@example.com"])
    again = await mailer.send(raw, sender="", recipients=["a@example.com"])
    assert again == first
    assert len(list((tmp_path / "new").iterdir())) == 1
    # A mail reader moves what it has seen to cur/ and adds flags: still delivered.
    seen = tmp_path / "cur" / f"{Path(first).name}:2,S"
    Path(first).rename(seen)
    assert await mailer.send(raw, sender="", recipients=["a@example.com"]) == str(seen)
    assert list((tmp_path / "new").iterdir()) == []
    assert list((tmp_path / "tmp").iterdir()) == []
    # Another message, or the same one to another envelope, is a mail of its own.
    await mailer.send(raw, sender="", recipients=["b@example.com"])
    assert len(list((tmp_path / "new").iterdir())) == 1


async def test_maildir_that_cannot_be_written_is_a_transient_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(MailDeliveryError) as caught:
        await MaildirMailer(tmp_path / "file" / "mail").send(
            message(), sender="", recipients=["a@example.com"]
        )
    assert caught.value.permanent is False
    assert "cannot write to Maildir" in caught.value.reply


# SMTP relay: plain


async def test_relay_delivers_over_plain_smtp(smtp_capture: Capture) -> None:
    server = smtp_capture()
    mailer = SMTPRelayMailer(relay(server))
    where = await mailer.send(
        message(), sender="fax@example.com", recipients=["alice@example.com", "bob@example.com"]
    )
    assert where.startswith("250 2.0.0 Ok: queued as 1")
    (got,) = server.envelopes
    assert got.mail_from == "fax@example.com"
    assert got.rcpt_tos == ["alice@example.com", "bob@example.com"]
    assert got.tls is False
    assert got.data.count(b"\n") == got.data.count(b"\r\n")
    parsed = got.message
    assert parsed["From"].addresses[0].display_name == "Fax Brücke"
    assert ".leading dot survives dot-stuffing" in cast(str, parsed.get_content())


async def test_relay_sends_reports_from_the_null_sender(smtp_capture: Capture) -> None:
    server = smtp_capture()
    await SMTPRelayMailer(relay(server)).send(message(), sender="", recipients=["a@example.com"])
    assert server.envelopes[0].mail_from == "<>"


async def test_relay_sends_stored_bytes_unchanged(smtp_capture: Capture) -> None:
    server = smtp_capture()
    raw = as_smtp_bytes(message())
    await SMTPRelayMailer(relay(server)).send(raw, sender="f@x.org", recipients=["a@example.com"])
    assert server.envelopes[0].data.rstrip(b"\r\n") == raw.rstrip(b"\r\n")


async def test_relay_delivers_a_report_and_an_inbound_mail_intact(smtp_capture: Capture) -> None:
    server = smtp_capture()
    mailer = SMTPRelayMailer(relay(server))
    at = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
    outcome = DeliveryOutcome(
        job_id="j1", attempt_id="a1", faxbox="main", to_number="+12125550123", to_name="",
        status=JobStatus.FAILED, reason=FailureReason.NO_ANSWER, provider="sim",
        provider_code=None, provider_text="no answer", pages=2, attempts=5, history=[],
        submitted_at=at, finished_at=at, sender="alice@example.com",
        original_headers=b"Subject: x\r\n", original_message_id="<o@x>", original_subject="x",
        document_pdf=b"%PDF-1.4 report",
    )  # fmt: skip
    report = build_delivery_report(
        outcome, mail_from="f@example.com", hostname="fax.example.com",
        to=["alice@example.com"], cc=[], attach_fax=True,
    )  # fmt: skip
    fax = InboundMail(
        faxbox="main", from_number="+12125550199", to_number="+12125550100", pages=1,
        received=at, remote_station_id=None, document=b"%PDF-1.4 inbound", format="pdf",
    )  # fmt: skip
    inbound = build_inbound_email(
        fax, mail_from="f@example.com", hostname="fax.example.com", to=["desk@example.com"]
    )
    await mailer.send(report, sender="", recipients=["alice@example.com"])
    await mailer.send(inbound, sender="f@example.com", recipients=["desk@example.com"])
    got_report, got_inbound = (m.message for m in server.envelopes)
    assert got_report["Subject"] == "Fax to +1 212-555-0123 failed: no answer"
    assert got_report.get_content_type() == "multipart/report"
    pdfs = [p.get_content() for p in got_report.walk() if p.get_content_type() == "application/pdf"]
    assert pdfs == [b"%PDF-1.4 report"]
    assert got_inbound["Subject"] == "Fax from +1 212-555-0199 (1 page)"
    (attachment,) = got_inbound.iter_attachments()
    assert attachment.get_content() == b"%PDF-1.4 inbound"


# TLS


async def test_relay_upgrades_with_starttls_and_verifies_the_certificate(
    smtp_capture: Capture, tls_cert: SelfSignedCert
) -> None:
    server = smtp_capture(tls_cert=tls_cert, require_starttls=True)
    mailer = SMTPRelayMailer(relay(server, starttls=True), tls_context=tls_cert.client_context())
    await mailer.send(message(), sender="f@example.com", recipients=["a@example.com"])
    assert server.envelopes[0].tls is True


async def test_relay_with_an_untrusted_certificate_is_transient(
    smtp_capture: Capture, tls_cert: SelfSignedCert
) -> None:
    server = smtp_capture(tls_cert=tls_cert, require_starttls=True)
    mailer = SMTPRelayMailer(relay(server, starttls=True))  # system CAs do not know it
    with pytest.raises(MailDeliveryError) as caught:
        await mailer.send(message(), sender="f@example.com", recipients=["a@example.com"])
    assert caught.value.permanent is False
    assert "certificate" in caught.value.reply
    assert server.envelopes == []


async def test_relay_that_requires_starttls_refuses_plain_mail_transiently(
    smtp_capture: Capture, tls_cert: SelfSignedCert
) -> None:
    server = smtp_capture(tls_cert=tls_cert, require_starttls=True)
    with pytest.raises(MailDeliveryError) as caught:
        await SMTPRelayMailer(relay(server)).send(
            message(), sender="f@example.com", recipients=["a@example.com"]
        )
    assert caught.value.permanent is False
    assert caught.value.reply.startswith("530")


async def test_relay_over_implicit_tls(smtp_capture: Capture, tls_cert: SelfSignedCert) -> None:
    server = smtp_capture(tls_cert=tls_cert, implicit_tls=True)
    mailer = SMTPRelayMailer(relay(server, tls=True), tls_context=tls_cert.client_context())
    await mailer.send(message(), sender="f@example.com", recipients=["a@example.com"])
    assert server.envelopes[0].tls is True


def test_tls_and_starttls_together_are_a_config_error() -> None:
    with pytest.raises(ConfigError, match="exclude each other"):
        SMTPRelayMailer(RelayConfig(tls=True, starttls=True))


# AUTH


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
async def test_relay_authenticates(smtp_capture: Capture, mechanism: str) -> None:
    other = {"PLAIN": "LOGIN", "LOGIN": "PLAIN"}[mechanism]
    server = smtp_capture(users={"fax": "s3cret"}, auth_required=True, exclude_mechanisms=[other])
    mailer = SMTPRelayMailer(relay(server, username="fax", password="s3cret"))
    await mailer.send(message(), sender="f@example.com", recipients=["a@example.com"])
    assert server.logins == [(mechanism, "fax")]
    assert server.envelopes[0].auth_user == "fax"


async def test_relay_auth_after_starttls(smtp_capture: Capture, tls_cert: SelfSignedCert) -> None:
    server = smtp_capture(
        tls_cert=tls_cert, require_starttls=True, users={"fax": "pw"}, auth_require_tls=True
    )
    mailer = SMTPRelayMailer(
        relay(server, starttls=True, username="fax", password="pw"),
        tls_context=tls_cert.client_context(),
    )
    await mailer.send(message(), sender="f@example.com", recipients=["a@example.com"])
    assert server.envelopes[0].tls is True
    assert server.envelopes[0].auth_user == "fax"


async def test_wrong_password_is_transient_and_carries_the_reply(smtp_capture: Capture) -> None:
    server = smtp_capture(users={"fax": "s3cret"}, auth_required=True)
    mailer = SMTPRelayMailer(relay(server, username="fax", password="wrong"))
    with pytest.raises(MailDeliveryError) as caught:
        await mailer.send(message(), sender="f@example.com", recipients=["a@example.com"])
    assert caught.value.permanent is False
    assert "535" in caught.value.reply
    assert server.envelopes == []


# Refusals and outages


async def test_550_is_permanent_and_carries_the_reply(smtp_capture: Capture) -> None:
    server = smtp_capture(refuse_rcpt="550 5.1.1 user unknown")
    with pytest.raises(MailDeliveryError) as caught:
        await SMTPRelayMailer(relay(server)).send(
            message(), sender="f@example.com", recipients=["nobody@example.com"]
        )
    assert caught.value.permanent is True
    assert caught.value.reply == "550 5.1.1 user unknown <nobody@example.com>"


async def test_554_at_data_is_permanent(smtp_capture: Capture) -> None:
    server = smtp_capture(refuse_data="554 5.6.0 content rejected")
    with pytest.raises(MailDeliveryError) as caught:
        await SMTPRelayMailer(relay(server)).send(
            message(), sender="f@example.com", recipients=["a@example.com"]
        )
    assert caught.value.permanent is True
    assert caught.value.reply == "554 5.6.0 content rejected"


async def test_451_is_transient_and_the_retry_goes_through(smtp_capture: Capture) -> None:
    server = smtp_capture(refuse_data="451 4.3.0 try again later")
    mailer = SMTPRelayMailer(relay(server))
    with pytest.raises(MailDeliveryError) as caught:
        await mailer.send(message(), sender="f@example.com", recipients=["a@example.com"])
    assert caught.value.permanent is False
    assert caught.value.reply == "451 4.3.0 try again later"
    server.refuse_data = None
    await mailer.send(message(), sender="f@example.com", recipients=["a@example.com"])
    assert len(server.envelopes) == 1


async def test_partly_refused_recipients_still_count_as_sent(smtp_capture: Capture) -> None:
    server = smtp_capture(refuse_recipients={"gone@example.com": "550 5.1.1 no such user"})
    where = await SMTPRelayMailer(relay(server)).send(
        message(), sender="f@example.com", recipients=["a@example.com", "gone@example.com"]
    )
    assert server.envelopes[0].rcpt_tos == ["a@example.com"]
    assert "refused: 550 5.1.1 no such user <gone@example.com>" in where


async def test_connection_refused_is_transient() -> None:
    mailer = SMTPRelayMailer(RelayConfig(host="127.0.0.1", port=free_port(), timeout_s=5))
    with pytest.raises(MailDeliveryError) as caught:
        await mailer.send(message(), sender="f@example.com", recipients=["a@example.com"])
    assert caught.value.permanent is False
    assert caught.value.reply.startswith("relay 127.0.0.1:")


@pytest.fixture
async def silent_server() -> AsyncIterator[int]:
    """Accepts connections and never says a word."""

    async def ignore(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()
        writer.close()

    server = await asyncio.start_server(ignore, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()


async def test_a_relay_that_never_answers_times_out_transiently(silent_server: int) -> None:
    mailer = SMTPRelayMailer(RelayConfig(host="127.0.0.1", port=silent_server, timeout_s=0.3))
    with pytest.raises(MailDeliveryError) as caught:
        await mailer.send(message(), sender="f@example.com", recipients=["a@example.com"])
    assert caught.value.permanent is False
    assert "timed out" in caught.value.reply.lower()


async def test_relay_down_then_up_on_the_same_port(smtp_capture: Capture) -> None:
    server = smtp_capture()
    server.stop()
    mailer = SMTPRelayMailer(relay(server))
    with pytest.raises(MailDeliveryError) as caught:
        await mailer.send(message(), sender="f@example.com", recipients=["a@example.com"])
    assert caught.value.permanent is False
    server.start()
    await mailer.send(message(), sender="f@example.com", recipients=["a@example.com"])
    assert len(await server.wait_for(1)) == 1


async def test_no_recipients_is_permanent(tmp_path: Path) -> None:
    for mailer in (MaildirMailer(tmp_path), SMTPRelayMailer(RelayConfig(port=free_port()))):
        with pytest.raises(MailDeliveryError) as caught:
            await mailer.send(message(), sender="f@example.com", recipients=[])
        assert caught.value.permanent is True


# Choosing a transport


def test_make_mailer_follows_the_transport(tmp_path: Path) -> None:
    maildir = make_mailer(MailConfig(transport="maildir", maildir=tmp_path))
    assert isinstance(maildir, MaildirMailer) and maildir.path == tmp_path
    relay_mailer = make_mailer(MailConfig(transport="smtp", smtp=RelayConfig(port=2525)))
    assert isinstance(relay_mailer, SMTPRelayMailer) and relay_mailer.relay.port == 2525


async def test_memory_mailer_keeps_mail_and_plays_outages() -> None:
    mailer = MemoryMailer(fail_with=[MailDeliveryError("451 later", permanent=False)])
    async with mailer:
        with pytest.raises(MailDeliveryError):
            await mailer.send(message(), sender="", recipients=["a@example.com"])
        assert await mailer.send(message(), sender="", recipients=["a@example.com"]) == "memory #1"
    assert mailer.outbox[0].recipients == ["a@example.com"]
    assert parse(mailer.outbox[0].data)["Message-ID"] == "<m1@fax.example.com>"


def test_capture_server_client_context_verifies_hostnames(tls_cert: SelfSignedCert) -> None:
    context = tls_cert.client_context()
    assert context.verify_mode is ssl.CERT_REQUIRED and context.check_hostname
