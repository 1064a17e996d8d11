"""The size limit admins think in: documents, decoded (smtp.max_attachment_mb)."""

from __future__ import annotations

import os
from collections.abc import Callable
from email.message import EmailMessage
from email.policy import SMTP

from bridge.config import Config
from tests.bridge_runner import BridgeThread
from tests.helpers import smtp_client, wait_for
from tests.messages import fax_mail, make_pdf


def padded_pdf(size: int) -> bytes:
    """A real one-page PDF made `size` bytes long with a comment (what a big scan weighs)."""
    pdf = make_pdf("scan")
    return (
        pdf
        + b"%"
        + os.urandom((size - len(pdf)) // 2).hex().encode()[: size - len(pdf) - 2]
        + b"\n"
    )


def with_pdf(size: int, name: str = "scan.pdf") -> EmailMessage:
    message = fax_mail(subject="Scan", pdf_pages=0)
    message.add_attachment(padded_pdf(size), maintype="application", subtype="pdf", filename=name)
    return message


def test_the_default_takes_a_30_mb_scan_and_advertises_a_size_to_match(
    make_config: Callable[..., Config],
) -> None:
    smtp = make_config().smtp
    assert smtp.max_attachment_mb == 30
    scan = with_pdf(30 * 1024 * 1024).as_bytes(policy=SMTP)  # as a mail client encodes it
    assert len(scan) <= smtp.size_limit < len(scan) + 3 * 1024 * 1024


def test_documents_over_the_limit_get_552_naming_the_file_and_the_limit(
    make_config: Callable[..., Config], start_bridge: Callable[[Config], BridgeThread]
) -> None:
    bridge = start_bridge(make_config(smtp={"max_attachment_mb": 1}))
    limit = bridge.config.smtp.size_limit
    with smtp_client(bridge.smtp_address) as client:
        assert client.esmtp_features["size"] == str(limit)
        # Just under the limit: faxed.
        assert (
            client.sendmail(
                "alice@example.com", ["12125550123@fax.localhost"], with_pdf(900_000).as_bytes()
            )
            == {}
        )
        client.mail("alice@example.com")
        client.rcpt("12125550123@fax.localhost")
        code, text = client.data(with_pdf(1_300_000, "big scan.pdf").as_bytes(policy=SMTP))
    reply = f"{code} {text.decode()}"
    assert reply == ('552 5.3.4 "big scan.pdf" is 1.2 MB once decoded; the limit is 1.0 MB'), reply
    rows = wait_for(lambda: bridge.store.smtplog.recent(outcome="rejected", limit=1) or None)
    assert rows[0]["reply"] == reply
    assert rows[0]["subject"] == "Scan"
    assert [a["filename"] for a in rows[0]["attachments"]] == ["big scan.pdf"]


def test_several_attachments_count_together(
    make_config: Callable[..., Config], start_bridge: Callable[[Config], BridgeThread]
) -> None:
    bridge = start_bridge(make_config(smtp={"max_attachment_mb": 1}))
    message = with_pdf(600_000, "part1.pdf")
    message.add_attachment(
        padded_pdf(700_000), maintype="application", subtype="pdf", filename="part2.pdf"
    )
    with smtp_client(bridge.smtp_address) as client:
        client.mail("alice@example.com")
        client.rcpt("12125550123@fax.localhost")
        code, text = client.data(message.as_bytes(policy=SMTP))
    assert f"{code} {text.decode()}" == (
        '552 5.3.4 The attachments are 1.2 MB together ("part2.pdf" 0.7 MB) once decoded; '
        "the limit is 1.0 MB"
    )
