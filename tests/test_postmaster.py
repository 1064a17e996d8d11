"""postmaster@ and abuse@ of every fax domain (RFC 5321 §4.5.1, RFC 2142), over a real socket.

They are accepted at RCPT even from the null sender, never faxed, logged, and forwarded through
the mail outbox (here to a capture relay) with the original envelope sender.
"""

from __future__ import annotations

from collections.abc import Callable
from email.policy import SMTP
from typing import Any

from bridge.config import Config
from tests import smtp_capture as capture_fixtures
from tests.bridge_runner import BridgeThread
from tests.helpers import reply_text, smtp_client, wait_for
from tests.messages import fax_mail
from tests.smtp_capture import CaptureServer

smtp_capture = capture_fixtures.smtp_capture

StartBridge = Callable[[Config], BridgeThread]
POSTMASTER = "postmaster@office.localhost"


def relayed(make_config: Callable[..., Config], relay: CaptureServer, **smtp: Any) -> Config:
    return make_config(
        smtp=smtp,
        mail={"transport": "smtp", "smtp": {"host": relay.host, "port": relay.port}},
    )


def last_attempt(bridge: BridgeThread) -> dict[str, Any]:
    rows: list[dict[str, Any]] = wait_for(
        lambda: bridge.store.smtplog.recent(limit=1), what="an smtplog record"
    )
    return rows[0]


def bounce(to: str) -> bytes:
    """What an MTA sends back for a fax it could not deliver: null sender, Auto-Submitted."""
    return (
        "From: MAILER-DAEMON@mx.example.com\r\n"
        f"To: {to}\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        "Message-ID: <bounce-1@mx.example.com>\r\n"
        "Auto-Submitted: auto-replied\r\n"
        "\r\n"
        "The mail system could not deliver your message.\r\n"
    ).encode()


def test_a_bounce_to_postmaster_is_accepted_logged_and_forwarded_not_faxed(
    make_config: Callable[..., Config],
    start_bridge: StartBridge,
    smtp_capture: Callable[..., CaptureServer],
) -> None:
    relay = smtp_capture()
    bridge = start_bridge(relayed(make_config, relay))
    with smtp_client(bridge.smtp_address) as client:
        client.mail("")
        rcpt = reply_text(client.rcpt("PostMaster@fax.localhost"))
        data = reply_text(client.data(bounce("postmaster@fax.localhost")))

    assert rcpt == "250 2.1.5 Recipient OK, forwarded to the postmaster of fax.localhost"
    record = last_attempt(bridge)
    assert data == f"250 2.0.0 Queued as {record['id']} (forwarded to the postmaster)"
    assert record["outcome"] == "accepted"
    assert record["fax_ids"] == []

    assert record["subject"] == "Undelivered Mail Returned to Sender"
    assert record["message_id"] == "<bounce-1@mx.example.com>"
    assert record["recipients"][0]["forwarded_to"] == [POSTMASTER]
    assert f"PostMaster@fax.localhost: not faxed, forwarded to {POSTMASTER}" in record["notes"]
    assert bridge.store.jobs.recent() == []

    (mail,) = wait_for(lambda: relay.envelopes, what="the forwarded mail at the relay")
    assert mail.mail_from == "<>"  # a bounce stays a bounce: nobody answers it
    assert mail.rcpt_tos == [POSTMASTER]
    assert mail.data.startswith(b"Received: from client.example.com ([127.0.0.1])\r\n")
    assert mail.message["Message-ID"] == "<bounce-1@mx.example.com>"
    assert mail.message.get_content().startswith("The mail system could not deliver")
    # The relay has it; the outbox marks it sent right after (poll: not before).
    wait_for(
        lambda: (
            [r["status"] for r in bridge.store.outbox.recent() if r["kind"] == "forward"]
            == ["sent"]
        ),
        what="the forward marked sent",
    )


def test_abuse_mail_with_a_fax_recipient_forwards_once_and_faxes_the_number(
    make_config: Callable[..., Config],
    start_bridge: StartBridge,
    smtp_capture: Callable[..., CaptureServer],
) -> None:
    relay = smtp_capture()
    bridge = start_bridge(relayed(make_config, relay))
    to = ["abuse@fax.localhost", "12125550123@fax.localhost"]
    with smtp_client(bridge.smtp_address) as client:
        client.mail("alice@example.com")
        for address in to:
            assert reply_text(client.rcpt(address)).startswith("250 2.1.5")
        data = reply_text(client.data(fax_mail(to=to).as_bytes(policy=SMTP)))

    record = last_attempt(bridge)
    (job_id,) = record["fax_ids"]
    assert data == (
        f"250 2.0.0 Queued as {record['id']} (fax {job_id}; forwarded to the postmaster)"
    )
    assert [j["to"] for j in bridge.store.jobs.recent()] == ["+12125550123"]
    forwarded = wait_for(
        lambda: [m for m in relay.envelopes if m.rcpt_tos == [POSTMASTER]],
        what="the forwarded mail",
    )
    assert [m.mail_from for m in forwarded] == ["alice@example.com"]
    assert forwarded[0].message["Subject"] == "Contract"


def test_the_faxbox_admin_is_the_postmaster_when_none_is_configured(
    make_config: Callable[..., Config],
    start_bridge: StartBridge,
    smtp_capture: Callable[..., CaptureServer],
) -> None:
    relay = smtp_capture()
    config = relayed(make_config, relay, postmaster_to=[])
    data = config.model_dump(by_alias=True)
    data["faxboxes"][0]["admin"] = "it@office.localhost"
    bridge = start_bridge(type(config).model_validate(data))
    with smtp_client(bridge.smtp_address) as client:
        client.mail("alice@example.com")
        assert reply_text(client.rcpt("postmaster@fax.localhost")).startswith("250 2.1.5")
        client.data(b"Subject: hello\r\n\r\nhi\r\n")
    (mail,) = wait_for(lambda: relay.envelopes, what="the forwarded mail")
    assert mail.rcpt_tos == ["it@office.localhost"]


def test_without_a_postmaster_address_postmaster_is_refused_saying_so(
    make_config: Callable[..., Config], start_bridge: StartBridge
) -> None:
    bridge = start_bridge(make_config(smtp={"postmaster_to": []}))
    with smtp_client(bridge.smtp_address) as client:
        client.mail("")
        reply = reply_text(client.rcpt("postmaster@fax.localhost"))
    assert reply == (
        "550 5.1.1 <postmaster@fax.localhost>: no postmaster address is configured for "
        "fax.localhost (smtp.postmaster_to)"
    )
    record = last_attempt(bridge)
    assert record["outcome"] == "rejected"


def test_other_names_from_the_null_sender_are_still_refused(bridge: BridgeThread) -> None:
    with smtp_client(bridge.smtp_address) as client:
        client.mail("")
        assert reply_text(client.rcpt("12125550123@fax.localhost")) == (
            "550 5.7.1 Mail from the null sender is not faxed"
        )
        assert reply_text(client.rcpt("postmaster@example.org")) == (
            "550 5.7.1 Mail from the null sender is not faxed"
        )
