"""The durable mail outbox against a real SMTP relay on a socket (an aiosmtpd capture server).

Reports and inbound-fax mails leave through `mail.transport: smtp`; when the relay is down or
refusing for now, they wait in the outbox and arrive once, exactly once, when it is back, even
across a restart of the bridge; a permanent refusal is recorded with the relay's own words.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from io import BytesIO
from typing import Any

import pytest
from pypdf import PdfReader

from bridge.config import Config
from tests import smtp_capture as capture_fixtures
from tests.bridge_runner import BridgeThread
from tests.helpers import wait_for
from tests.messages import fax_mail
from tests.smtp_capture import CapturedMail, CaptureServer
from tests.test_end_to_end import send

smtp_capture = capture_fixtures.smtp_capture

Capture = Callable[..., CaptureServer]
StartBridge = Callable[[Config], BridgeThread]

DELIVERED = "+12125550123"
BUSY = "+12125550001"  # the simulator's busy line
OWN_NUMBER = "+12125550100"  # faxbox main's inbound number: the fax comes back as inbound mail
NUMBERS = [DELIVERED, BUSY, OWN_NUMBER]
EXPECTED_MAILS = 4  # three reports and one inbound fax


def relay_config(make_config: Callable[..., Config], relay: CaptureServer) -> Config:
    return make_config(
        mail={
            "transport": "smtp",
            "smtp": {"host": relay.host, "port": relay.port, "timeout_s": 5},
            "backoff_s": 0.2,
        }
    )


def send_three_faxes(bridge: BridgeThread) -> EmailMessage:
    """One mail to a number that answers, a busy one and the faxbox's own inbound number."""
    addresses = [f"{n.lstrip('+')}@fax.localhost" for n in NUMBERS]
    message = fax_mail(to=addresses, pdf_pages=2)
    send(bridge, message, addresses, "alice@example.com")
    return message


def finished_jobs(bridge: BridgeThread) -> dict[str, dict[str, Any]]:
    def probe() -> dict[str, dict[str, Any]] | None:
        jobs = {j["to"]: j for j in bridge.store.jobs.recent()}
        done = all(jobs.get(n, {}).get("status") in ("delivered", "failed") for n in NUMBERS)
        return jobs if done else None

    return wait_for(probe, timeout_s=30, what="all three faxes to finish")


def outbox_rows(bridge: BridgeThread, check: Callable[[dict[str, Any]], bool], what: str) -> Any:
    """Wait until the outbox holds every expected mail and each passes `check`."""

    def probe() -> list[dict[str, Any]] | None:
        rows = bridge.store.outbox.recent()
        ok = len(rows) == EXPECTED_MAILS and all(check(r) for r in rows)
        return rows if ok else None

    return wait_for(probe, timeout_s=30, what=what)


def message_ids(mails: list[CapturedMail]) -> Counter[str]:
    return Counter(str(m.message["Message-ID"]) for m in mails)


def test_reports_and_inbound_mail_arrive_over_smtp_well_formed(
    smtp_capture: Capture, make_config: Callable[..., Config], start_bridge: StartBridge
) -> None:
    relay = smtp_capture()
    bridge = start_bridge(relay_config(make_config, relay))
    original = send_three_faxes(bridge)
    finished_jobs(bridge)
    outbox_rows(bridge, lambda r: r["status"] == "sent", "every mail to be sent")

    mails = relay.envelopes
    assert len(mails) == EXPECTED_MAILS
    assert set(message_ids(mails).values()) == {1}
    for mail in mails:
        assert b"\n" not in mail.data.replace(b"\r\n", b""), "bare LF on the wire"
        parsed = mail.message
        assert parsed["Message-ID"].endswith("@fax.localhost>")
        assert parsed["Date"] and parsed["From"] == "Fax Bridge <fax-noreply@office.localhost>"
        assert parsedate_to_datetime(parsed["Date"]).tzinfo is not None

    reports = {m.message["Subject"]: m for m in mails if m.rcpt_tos == ["alice@example.com"]}
    assert set(reports) == {
        "Fax to +1 212-555-0123 delivered (3 pages)",
        "Fax to +1 212-555-0001 failed: line busy",
        "Fax to +1 212-555-0100 delivered (3 pages)",
    }
    for report in reports.values():
        assert report.mail_from == "<>"  # reports go from the null sender: no bounce loops
        parsed = report.message
        assert parsed["Auto-Submitted"] == "auto-replied"
        assert parsed["In-Reply-To"] == original["Message-ID"]
        assert parsed.get_content_type() == "multipart/report"
        assert parsed.get_param("report-type") == "delivery-status"
        kinds = [part.get_content_type() for part in parsed.iter_parts()]
        assert kinds == ["multipart/mixed", "message/delivery-status", "text/rfc822-headers"]

    (inbound,) = [m for m in mails if m.rcpt_tos == ["frontdesk@office.localhost"]]
    assert inbound.mail_from == "fax-noreply@office.localhost"
    parsed = inbound.message
    assert parsed["Subject"] == "Fax from +1 212-555-0100 (3 pages)"
    assert parsed["Auto-Submitted"] == "auto-generated"
    (attachment,) = list(parsed.iter_attachments())
    assert attachment.get_content_type() == "application/pdf"
    assert len(PdfReader(BytesIO(attachment.get_content())).pages) == 3


@pytest.mark.parametrize("outage", ["nothing listening", "451 at MAIL"])
def test_relay_outage_loses_nothing_and_sends_every_mail_once(
    smtp_capture: Capture,
    make_config: Callable[..., Config],
    start_bridge: StartBridge,
    outage: str,
) -> None:
    relay = smtp_capture()
    if outage == "nothing listening":
        relay.stop()
        symptom = f"relay {relay.host}:{relay.port}"
    else:
        relay.refuse_mail = "451 4.3.0 Try again later"
        symptom = "451 4.3.0 Try again later"
    bridge = start_bridge(relay_config(make_config, relay))
    send_three_faxes(bridge)
    finished_jobs(bridge)

    waiting = outbox_rows(
        bridge,
        lambda r: r["status"] == "pending" and r["attempts"] >= 1 and bool(r["last_error"]),
        "every mail to wait in the outbox with its error",
    )
    assert all(symptom in r["last_error"] for r in waiting), [r["last_error"] for r in waiting]
    assert relay.envelopes == []

    relay.refuse_mail = None
    relay.start()
    sent = outbox_rows(bridge, lambda r: r["status"] == "sent", "every mail to be sent")
    assert all(r["last_error"] is None for r in sent)
    assert len(relay.envelopes) == EXPECTED_MAILS
    assert set(message_ids(relay.envelopes).values()) == {1}
    assert sorted(m.rcpt_tos[0] for m in relay.envelopes) == [
        "alice@example.com",
        "alice@example.com",
        "alice@example.com",
        "frontdesk@office.localhost",
    ]


def test_a_permanent_refusal_fails_the_mail_with_the_relay_reply(
    smtp_capture: Capture, make_config: Callable[..., Config], start_bridge: StartBridge
) -> None:
    relay = smtp_capture(refuse_rcpt="550 5.1.1 Mailbox unavailable")
    bridge = start_bridge(relay_config(make_config, relay))
    send(bridge, fax_mail(), ["12125550123@fax.localhost"], "alice@example.com")

    def failed() -> dict[str, Any] | None:
        rows = bridge.store.outbox.recent()
        return rows[0] if rows and rows[0]["status"] == "failed" else None

    row = wait_for(failed, timeout_s=30, what="the report to fail for good")
    assert row["kind"] == "report"
    assert row["attempts"] == 1  # a 5xx is not retried
    assert "550 5.1.1 Mailbox unavailable" in row["last_error"]
    assert "alice@example.com" in row["last_error"]
    assert relay.envelopes == []


def test_restarting_with_mail_pending_loses_nothing(
    smtp_capture: Capture, make_config: Callable[..., Config], start_bridge: StartBridge
) -> None:
    relay = smtp_capture()
    relay.stop()
    config = relay_config(make_config, relay)
    first = start_bridge(config)
    send_three_faxes(first)
    finished_jobs(first)
    pending = outbox_rows(
        first,
        lambda r: r["status"] == "pending" and bool(r["last_error"]),
        "every mail to wait in the outbox",
    )
    first.stop()

    relay.start()
    second = start_bridge(config)
    sent = outbox_rows(second, lambda r: r["status"] == "sent", "every mail to be sent")
    assert {r["id"] for r in sent} == {r["id"] for r in pending}
    assert len(relay.envelopes) == EXPECTED_MAILS
    assert set(message_ids(relay.envelopes).values()) == {1}
    wait_for(
        lambda: all(f["emailed"] for f in second.store.inbound.recent()),
        what="the inbound fax marked as e-mailed",
    )
