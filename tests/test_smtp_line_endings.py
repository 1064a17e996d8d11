"""DATA as Postfix reads it: bare LF lines taken, long lines refused with a code, dots undone."""

from __future__ import annotations

from collections.abc import Callable
from email.policy import SMTP
from typing import Any

import pytest

from bridge.config import Config
from bridge.explain import explain
from bridge.smtp.data import finish
from tests.bridge_runner import BridgeThread
from tests.helpers import reply_text, smtp_client, wait_for
from tests.messages import fax_mail


def _accepted(bridge: BridgeThread) -> dict[str, Any]:
    rows = wait_for(lambda: bridge.store.smtplog.recent(outcome="accepted", limit=1) or None)
    return rows[0]


def test_a_message_with_bare_lf_line_endings_is_faxed(bridge: BridgeThread) -> None:
    """curl --upload-file, raw scripts and some devices send LF only."""
    message = fax_mail(subject="Sent with LF").as_bytes(policy=SMTP).replace(b"\r\n", b"\n")
    with smtp_client(bridge.smtp_address) as client:
        client.mail("alice@example.com")
        client.rcpt("12125550123@fax.localhost")
        client.putcmd("data")
        assert client.getreply()[0] == 354
        client.send(message + b"\r\n.\r\n")  # what curl appends
        code, text = client.getreply()
    assert code == 250, text
    record = _accepted(bridge)
    assert record["subject"] == "Sent with LF"
    lines = message.count(b"\n")
    assert record["notes"] == [
        f"{lines} bare LF line ending(s) taken as CRLF, as Postfix's "
        "smtpd_forbid_bare_newline = normalize does"
    ]
    (path,) = bridge.config.storage.data_dir.glob(f"messages/*/*/*/{record['id']}.eml")
    stored = path.read_bytes()
    assert b"\n" not in stored.replace(b"\r\n", b""), "the stored message keeps a bare LF"
    job = wait_for(lambda: bridge.store.jobs.recent() or None)[0]
    assert job["pages"] >= 1
    steps = explain(bridge.config, bridge.store, record["id"]).steps
    assert f"On receipt: {lines} bare LF line ending(s) taken as CRLF, as Postfix's " in "\n".join(
        steps
    )


def test_a_long_header_line_is_taken_by_default(bridge: BridgeThread) -> None:
    subject = "x" * 20_000
    message = fax_mail()
    data = message.as_bytes(policy=SMTP).replace(
        b"Subject: Contract\r\n", f"Subject: {subject}\r\n".encode()
    )
    with smtp_client(bridge.smtp_address) as client:
        client.mail("alice@example.com")
        client.rcpt("12125550123@fax.localhost")
        code, _ = client.data(data)
    assert code == 250
    assert _accepted(bridge)["subject"].startswith("x" * 1000)


def test_a_line_past_the_limit_gets_500_5_5_2_and_the_connection_goes_on(
    make_config: Callable[..., Config], start_bridge: Callable[[Config], BridgeThread]
) -> None:
    bridge = start_bridge(make_config(smtp={"max_line_octets": 1000}))
    data = (
        fax_mail()
        .as_bytes(policy=SMTP)
        .replace(b"Subject: Contract\r\n", b"Subject: " + b"y" * 1500 + b"\r\n")
    )
    line = data.split(b"\r\n").index(b"Subject: " + b"y" * 1500) + 1
    with smtp_client(bridge.smtp_address) as client:
        client.mail("alice@example.com")
        client.rcpt("12125550123@fax.localhost")
        code, text = client.data(data)
        assert (code, text.decode()) == (
            500,
            f"5.5.2 Line {line} of the message is 1511 octets long; this server takes at most "
            "1000 per line",
        )
        client.mail("alice@example.com")  # the next transaction is served
        client.rcpt("12125550123@fax.localhost")
        assert client.data(fax_mail().as_bytes(policy=SMTP))[0] == 250
    record = wait_for(lambda: bridge.store.smtplog.recent(outcome="rejected", limit=1) or None)[0]
    assert record["reply"].startswith(f"500 5.5.2 Line {line} of the message is 1511 octets")
    assert record["size"] == len(data)


def test_data_after_every_recipient_was_refused_repeats_the_refusal(bridge: BridgeThread) -> None:
    with smtp_client(bridge.smtp_address) as client:
        client.mail("alice@example.com")
        assert client.rcpt("sales@fax.localhost")[0] == 550
        code, text = client.docmd("DATA")
    assert (code, text.decode()) == (
        554,
        '5.5.1 No valid recipients: "sales" is not a valid fax number',
    )


@pytest.mark.parametrize(
    ("sent", "content"),
    [
        (b"..leading dot\r\nx\r\n", b".leading dot\r\nx\r\n"),
        (b"a\r\n..b\r\n...c\r\n", b"a\r\n.b\r\n..c\r\n"),
        (b"a\n..b\n", b"a\r\n.b\r\n"),  # bare-LF lines are unstuffed too
        (b"a\n.\r\nb\r\n", b"a\r\n\r\nb\r\n"),  # `<LF>.<CR><LF>` is data: a stuffed empty line
        (b"", b""),
    ],
)
def test_dot_stuffing_is_undone_after_line_endings_are_normalised(
    sent: bytes, content: bytes
) -> None:
    data = finish(sent, len(sent), 1000)
    assert data.content == content


def test_the_protocol_s_own_refusals_carry_enhanced_codes(bridge: BridgeThread) -> None:
    with smtp_client(bridge.smtp_address) as client:
        assert reply_text(client.docmd("RCPT TO:<12125550123@fax.localhost>")) == (
            "503 5.5.1 Error: need MAIL command"
        )
        assert reply_text(client.docmd("X" * 2000)) == "500 5.5.2 Command line too long"
        assert reply_text(client.docmd("STARTTLS")) == "454 4.7.0 TLS not available"
    record = wait_for(lambda: bridge.store.smtplog.recent(limit=1) or None)[0]
    assert "TLS not available" in record["errors"]
