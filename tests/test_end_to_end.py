"""E-mail in, fax out, report back: the whole path on the simulator, over real sockets."""

from __future__ import annotations

import email
import email.policy
import mailbox
import shutil
import subprocess
from collections.abc import Callable
from email.message import EmailMessage
from email.policy import SMTP
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader

from bridge.config import Config
from tests.bridge_runner import BridgeThread
from tests.helpers import smtp_client, wait_for
from tests.messages import fax_mail, make_pdf


def send(bridge: BridgeThread, message: EmailMessage, to: list[str], sender: str) -> str:
    with smtp_client(bridge.smtp_address) as client:
        client.mail(sender)
        for address in to:
            client.rcpt(address)
        code, text = client.data(message.as_bytes(policy=SMTP))
    assert code == 250, text
    return text.decode()


def final_job(bridge: BridgeThread, to: str) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        for job in bridge.store.jobs.recent():
            if job["to"] == to and job["status"] in ("delivered", "failed"):
                return bridge.store.jobs.get(job["id"])
        return None

    return wait_for(probe, timeout_s=30, what=f"a final status for {to}")


def maildir_messages(bridge: BridgeThread, count: int = 1) -> list[EmailMessage]:
    path = Path(bridge.config.mail.maildir)

    def probe() -> list[EmailMessage] | None:
        # All three: the mailer makes them one after another, and Maildir reads each.
        if not all((path / sub).is_dir() for sub in ("tmp", "new", "cur")):
            return None
        box = mailbox.Maildir(path, create=False)
        found = [
            email.message_from_bytes(box.get_bytes(key), policy=email.policy.default)
            for key in box.keys()
        ]
        return found if len(found) >= count else None

    messages = wait_for(probe, timeout_s=30, what=f"{count} mail(s) in the Maildir")
    return [m for m in messages if isinstance(m, EmailMessage)]


def sent_pdf(bridge: BridgeThread, job: dict[str, Any]) -> PdfReader:
    path = bridge.config.storage.data_dir / "simulator" / "sent" / f"{job['provider_fax_id']}.pdf"
    return PdfReader(BytesIO(path.read_bytes()))


def test_mail_becomes_a_delivered_fax_and_a_report(bridge: BridgeThread) -> None:
    message = fax_mail(to='"Jane Doe" <12125550123@fax.localhost>', pdf_pages=2)
    send(bridge, message, ["12125550123@fax.localhost"], "alice@example.com")

    job = final_job(bridge, "+12125550123")
    assert job["status"] == "delivered"
    assert job["pages"] == 3
    assert [h["status"] for h in job["history"]] == [
        "queued",
        "submitting",
        "submitted",
        "sending",
        "delivered",
    ]
    fax = sent_pdf(bridge, job)
    assert len(fax.pages) == 3
    cover = fax.pages[0].extract_text()
    assert "Jane Doe" in cover
    assert "Contract" in cover
    assert "Please sign page 2." in cover
    assert "doc 1" in fax.pages[1].extract_text()

    (report,) = maildir_messages(bridge)
    assert report["To"] == "alice@example.com"
    assert report["Subject"] == "Fax to +1 212-555-0123 delivered (3 pages)"
    assert report["Auto-Submitted"] == "auto-replied"
    assert report["In-Reply-To"] == message["Message-ID"]


def test_each_recipient_of_one_mail_gets_a_cover_with_its_own_name_and_number(
    bridge: BridgeThread,
) -> None:
    to = ['"Jane Doe" <12125550123@fax.localhost>', '"Bob Roe" <12125550124@fax.localhost>']
    message = fax_mail(to=to, pdf_pages=1)
    send(bridge, message, ["12125550123@fax.localhost", "12125550124@fax.localhost"], "a@x.org")

    covers = {
        number: sent_pdf(bridge, final_job(bridge, number)).pages[0].extract_text()
        for number in ("+12125550123", "+12125550124")
    }
    assert "To: Jane Doe\nTo fax: +1 212-555-0123\n" in covers["+12125550123"]
    assert "To: Bob Roe\nTo fax: +1 212-555-0124\n" in covers["+12125550124"]
    assert "Bob" not in covers["+12125550123"] and "Jane" not in covers["+12125550124"]
    for cover in covers.values():
        assert "Pages: 2 (including this cover page)" in cover
        assert "Please sign page 2." in cover


def test_busy_line_ends_failed_with_a_report_that_says_so(bridge: BridgeThread) -> None:
    send(
        bridge,
        fax_mail(to="12125550001@fax.localhost"),
        ["12125550001@fax.localhost"],
        "alice@example.com",
    )
    job = final_job(bridge, "+12125550001")
    assert job["status"] == "failed"
    assert job["reason"] == "busy"
    assert job["provider_text"] == "The line was busy"
    (report,) = maildir_messages(bridge)
    assert report["Subject"] == "Fax to +1 212-555-0001 failed: line busy"
    human = report.get_body(("plain",))
    assert human is not None
    assert "busy" in human.get_content()


def test_provider_unavailable_is_retried_with_backoff_then_delivered(bridge: BridgeThread) -> None:
    send(
        bridge,
        fax_mail(to="12125550005@fax.localhost"),
        ["12125550005@fax.localhost"],
        "alice@example.com",
    )
    job = final_job(bridge, "+12125550005")
    assert job["status"] == "delivered"
    assert job["attempts"] == 3
    details = [h["detail"] for h in job["history"] if h["status"] == "queued"][1:]
    assert len(details) == 2
    assert all("HTTP 503" in d and "next try in" in d for d in details)


def test_giving_up_after_max_attempts_fails_as_provider_error(
    make_config: Callable[..., Config], start_bridge: Callable[[Config], BridgeThread]
) -> None:
    bridge = start_bridge(make_config(worker={"max_attempts": 2}))
    send(
        bridge,
        fax_mail(to="12125550005@fax.localhost"),
        ["12125550005@fax.localhost"],
        "alice@example.com",
    )
    job = final_job(bridge, "+12125550005")
    assert job["status"] == "failed"
    assert job["reason"] == "provider_error"
    assert job["attempts"] == 2
    (report,) = maildir_messages(bridge)
    assert report["Subject"].startswith("Fax to +1 212-555-0005 failed")


def test_fax_to_an_own_inbound_number_arrives_as_inbound_mail(bridge: BridgeThread) -> None:
    send(
        bridge,
        fax_mail(to="12125550100@fax.localhost"),
        ["12125550100@fax.localhost"],
        "alice@example.com",
    )
    assert final_job(bridge, "+12125550100")["status"] == "delivered"
    messages = maildir_messages(bridge, count=2)
    inbound = next(m for m in messages if m["To"] == "frontdesk@office.localhost")
    assert inbound["Subject"].startswith("Fax from +1 212-555-0100")
    attachment = next(iter(inbound.iter_attachments()))
    assert attachment.get_content_type() == "application/pdf"
    assert len(PdfReader(BytesIO(attachment.get_content())).pages) == 2
    faxes = wait_for(lambda: bridge.store.inbound.recent(), what="an inbound fax record")
    assert faxes[0]["from"] == "+12125550100"
    wait_for(lambda: bridge.store.inbound.recent()[0]["emailed"], what="emailed flag")


def test_text_only_mail_is_faxed_as_a_text_page(bridge: BridgeThread) -> None:
    message = fax_mail(subject="", body="Hello fax world.\nSecond line.", pdf_pages=0)
    send(bridge, message, ["12125550123@fax.localhost"], "alice@example.com")
    job = final_job(bridge, "+12125550123")
    fax = sent_pdf(bridge, job)
    assert len(fax.pages) == 1
    assert "Hello fax world." in fax.pages[0].extract_text()


def test_reports_are_not_sent_when_to_sender_is_off(
    make_config: Callable[..., Config], start_bridge: Callable[[Config], BridgeThread]
) -> None:
    config = make_config(
        faxboxes=[
            {
                "name": "main",
                "domains": ["fax.localhost"],
                "provider": "sim",
                "reports": {"to_sender": False},
            }
        ]
    )
    bridge = start_bridge(config)
    send(bridge, fax_mail(), ["12125550123@fax.localhost"], "alice@example.com")
    final_job(bridge, "+12125550123")
    outbox = wait_for(
        lambda: [m for m in bridge.store.outbox.recent() if m["status"] != "pending"],
        what="the outbox row to settle",
    )
    assert outbox[0]["status"] == "skipped"
    assert not list((Path(bridge.config.mail.maildir) / "new").glob("*"))


@pytest.mark.swaks
def test_swaks_sends_a_pdf_and_gets_250(bridge: BridgeThread, tmp_path: Path) -> None:
    swaks = shutil.which("swaks")
    assert swaks, "swaks is installed by `make test` (Debian package swaks)"
    pdf = tmp_path / "scan.pdf"
    pdf.write_bytes(make_pdf("scan", 2))
    host, port = bridge.smtp_address
    result = subprocess.run(
        [
            swaks,
            "--server",
            host,
            "--port",
            str(port),
            "--from",
            "scanner@example.com",
            "--to",
            "12125550123@fax.localhost",
            "--h-Subject",
            "Scan from MFP",
            "--body",
            "Scanned pages attached.",
            "--attach-type",
            "application/pdf",
            "--attach-name",
            "scan.pdf",
            "--attach",
            f"@{pdf}",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    replies = [line for line in result.stdout.splitlines() if line.startswith("<-  250 2.0.0")]
    assert len(replies) == 1 and "Queued as" in replies[0]
    job = final_job(bridge, "+12125550123")
    assert job["status"] == "delivered"
    assert job["pages"] == 3
    (report,) = maildir_messages(bridge)
    assert report["To"] == "scanner@example.com"
