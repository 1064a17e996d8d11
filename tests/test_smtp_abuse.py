"""No open relay, no toll fraud, no smuggling: hostile SMTP gets clear replies and a log entry."""

from __future__ import annotations

import smtplib
import socket
import time
from collections.abc import Callable
from email.policy import SMTP
from typing import Any

import pytest

from bridge.config import Config
from tests.bridge_runner import BridgeThread
from tests.helpers import reply_text, smtp_client, wait_for
from tests.messages import fax_mail


def raw_session(bridge: BridgeThread, payload: bytes, read_s: float = 3.0) -> list[str]:
    """Send `payload` in one write (pipelined) and collect every reply line until EOF."""
    with socket.create_connection(bridge.smtp_address, timeout=read_s) as sock:
        sock.sendall(payload)
        data = b""
        deadline = time.monotonic() + read_s
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                break
            data += chunk
    return data.decode(errors="replace").splitlines()


@pytest.mark.parametrize(
    ("rcpt", "reply"),
    [
        (
            "<12125550123@example.org>",
            "550 5.7.1 Relaying denied: example.org is not a fax domain here",
        ),
        (
            "<12125550123@fax.localhost.example.org>",
            "550 5.7.1 Relaying denied: fax.localhost.example.org is not a fax domain here",
        ),
        (
            "<12125550123%example.org@fax.localhost>",
            '550 5.1.3 "12125550123%example.org" is not a valid fax number',
        ),
        (
            "<@fax.localhost:12125550123@example.org>",
            '550 5.1.3 "@fax.localhost:12125550123@example.org" is not a valid fax address',
        ),
        ('<"12125550123"@fax.localhost>', '550 5.1.3 ""12125550123"" is not a valid fax number'),
        (
            '<"12125550123@example.org"@fax.localhost>',
            '550 5.1.3 ""12125550123@example.org"" is not a valid fax number',
        ),
        (
            "<12125550123!example.org@fax.localhost>",
            '550 5.1.3 "12125550123!example.org" is not a valid fax number',
        ),
    ],
    ids=[
        "foreign",
        "suffix",
        "percent-hack",
        "source-route",
        "quoted",
        "quoted-address",
        "bang-path",
    ],
)
def test_relay_tricks_are_refused(bridge: BridgeThread, rcpt: str, reply: str) -> None:
    with smtp_client(bridge.smtp_address) as client:
        client.mail("alice@example.com")
        assert reply_text(client.docmd(f"RCPT TO:{rcpt}")) == reply
    assert bridge.store.jobs.recent() == []


def test_case_tricks_only_reach_our_own_domain(bridge: BridgeThread) -> None:
    with smtp_client(bridge.smtp_address) as client:
        client.mail("alice@example.com")
        assert client.docmd("RCPT TO:<12125550123@FAX.LocalHost>")[0] == 250
        assert client.docmd("RCPT TO:<12125550123@Example.ORG>")[0] == 550


@pytest.mark.parametrize(
    ("number", "e164"),
    [
        ("19005550123", "+19005550123"),
        ("+449090901234", "+449090901234"),
        ("0033892681234", "+33892681234"),
    ],
    ids=["us-900", "uk-premium", "fr-0892"],
)
def test_toll_fraud_destinations_are_refused(bridge: BridgeThread, number: str, e164: str) -> None:
    with smtp_client(bridge.smtp_address) as client:
        client.mail("alice@example.com")
        reply = reply_text(client.docmd(f"RCPT TO:<{number}@fax.localhost>"))
    assert reply == (
        f"550 5.7.1 Faxing to {e164} is not allowed for faxbox main: "
        f"{e164} is a premium-rate or shared-cost number"
    )


def test_per_sender_rate_limit_answers_450_with_the_limit_in_words(
    make_config: Callable[..., Config], start_bridge: Callable[[Config], BridgeThread]
) -> None:
    box = {
        "name": "main",
        "domains": ["fax.localhost"],
        "provider": "sim",
        "rate_limit": {"per_sender_per_hour": 2},
    }
    bridge = start_bridge(make_config(faxboxes=[box]))
    with smtp_client(bridge.smtp_address) as client:
        client.mail("alice@example.com")
        assert client.rcpt("12125550121@fax.localhost")[0] == 250
        client.data(fax_mail().as_bytes(policy=SMTP))
        client.mail("alice@example.com")
        assert client.rcpt("12125550122@fax.localhost")[0] == 250
        reply = reply_text(client.rcpt("12125550123@fax.localhost"))
        assert reply == (
            "450 4.7.1 alice@example.com has sent 2 faxes in the last hour; the limit is 2 per "
            "hour, please try again later"
        )
        client.rset()
        client.mail("bob@example.com")
        assert client.rcpt("12125550123@fax.localhost")[0] == 250


def test_per_faxbox_rate_limit_answers_450(
    make_config: Callable[..., Config], start_bridge: Callable[[Config], BridgeThread]
) -> None:
    box = {
        "name": "main",
        "domains": ["fax.localhost"],
        "provider": "sim",
        "rate_limit": {"per_faxbox_per_hour": 1},
    }
    bridge = start_bridge(make_config(faxboxes=[box]))
    with smtp_client(bridge.smtp_address) as client:
        client.mail("alice@example.com")
        assert client.rcpt("12125550121@fax.localhost")[0] == 250
        assert reply_text(client.rcpt("12125550122@fax.localhost")) == (
            "450 4.7.1 Faxbox main has sent 1 faxes in the last hour; the limit is 1 per hour, "
            "please try again later"
        )


def test_bare_lf_smuggling_stays_content_of_the_one_message(bridge: BridgeThread) -> None:
    """`<LF>.<LF>` does not end DATA: the "second message" is text of the first, as behind
    Postfix with smtpd_forbid_bare_newline = normalize; its recipient gets nothing."""
    smuggled = (
        b"Subject: first\r\n\r\nhello\n.\nMAIL FROM:<evil@example.org>\r\n"
        b"RCPT TO:<12125550199@fax.localhost>\r\nDATA\r\nSubject: smuggled\r\n\r\nx\r\n"
    )
    lines = raw_session(
        bridge,
        b"EHLO evil.example\r\nMAIL FROM:<alice@example.com>\r\n"
        b"RCPT TO:<12125550123@fax.localhost>\r\nDATA\r\n" + smuggled + b".\r\nQUIT\r\n",
    )
    assert sum(1 for line in lines if line.startswith("354")) == 1
    assert sum(1 for line in lines if line.startswith("250 2.0.0")) == 1
    jobs = wait_for(lambda: bridge.store.jobs.recent() or None, what="the one job")
    assert [job["to"] for job in jobs] == ["+12125550123"]
    record = wait_for(lambda: bridge.store.smtplog.recent(outcome="accepted", limit=1) or None)[0]
    assert record["subject"] == "first"
    assert record["notes"] == [
        "2 bare LF line ending(s) taken as CRLF, as Postfix's smtpd_forbid_bare_newline = "
        "normalize does"
    ]


@pytest.mark.parametrize("ending", [b"\r\n.\n", b"\n.\r\n", b"\n.\n"])
def test_only_crlf_dot_crlf_ends_the_message(bridge: BridgeThread, ending: bytes) -> None:
    lines = raw_session(
        bridge,
        b"EHLO evil.example\r\nMAIL FROM:<alice@example.com>\r\n"
        b"RCPT TO:<12125550123@fax.localhost>\r\nDATA\r\n"
        b"Subject: one\r\n\r\nbody" + ending + b"MAIL FROM:<evil@example.org>\r\n.\r\nQUIT\r\n",
    )
    # One transaction only: the dot line was data.
    assert sum(1 for line in lines if line.startswith("354")) == 1
    assert sum(1 for line in lines if line.startswith("250 2.0.0")) == 1
    assert not any(line.startswith("250 2.1.0") and "evil" in line for line in lines)


def test_pipelined_garbage_gets_500s_and_one_log_entry(bridge: BridgeThread) -> None:
    lines = raw_session(
        bridge,
        b"EHLO x.example\r\nGARBAGE\r\n\xff\xfe\r\nMAIL\r\nRCPT TO:<1@x>\r\nQUIT\r\n",
    )
    assert lines[0].startswith("220 ")
    assert lines[-1].startswith("221 ")
    assert sum(1 for line in lines if line[:1] == "5") >= 3
    record: dict[str, Any] = wait_for(
        lambda: (rows := bridge.store.smtplog.recent(limit=1)) and rows[0]
    )
    assert record["outcome"] == "rejected"
    assert any("GARBAGE" in error for error in record["errors"])
    with smtp_client(bridge.smtp_address) as client:
        assert client.noop()[0] == 250


def test_idle_client_is_told_and_logged(
    make_config: Callable[..., Config], start_bridge: Callable[[Config], BridgeThread]
) -> None:
    bridge = start_bridge(make_config(smtp={"timeout_s": 0.5}))
    lines = raw_session(bridge, b"EHLO slow.example\r\nMAIL FROM:<alice@example.com>\r\n")
    assert lines[-1] == "421 4.4.2 fax.localhost Idle for 0.5 seconds, closing connection"
    record: dict[str, Any] = wait_for(
        lambda: (rows := bridge.store.smtplog.recent(limit=1)) and rows[0]
    )
    assert record["outcome"] == "rejected"
    assert record["from"] == "alice@example.com"
    assert record["error"] == "fax.localhost Idle for 0.5 seconds, closing connection"


def test_connections_past_the_limit_get_421_and_a_log_row(
    make_config: Callable[..., Config], start_bridge: Callable[[Config], BridgeThread]
) -> None:
    bridge = start_bridge(make_config(smtp={"max_connections_per_client": 2}))
    host, port = bridge.smtp_address
    held = [smtplib.SMTP(host, port, timeout=30) for _ in range(2)]
    try:
        with pytest.raises(smtplib.SMTPConnectError) as refused:
            smtplib.SMTP(host, port, timeout=30)
        assert refused.value.smtp_code == 421
        assert refused.value.smtp_error.decode() == (
            "4.7.0 fax.localhost has 2 connections open from your address, its limit; "
            "try again later"
        )
        rows = wait_for(lambda: bridge.store.smtplog.recent(outcome="rejected", limit=1) or None)
        assert rows[0]["reply"].startswith("421 4.7.0 fax.localhost has 2 connections open")
    finally:
        for client in held:
            client.quit()
    wait_for(lambda: not bridge.bridge.handler.sessions, what="the held sessions to close")
    with smtplib.SMTP(host, port, timeout=30) as again:  # freed once the others hung up
        assert again.noop()[0] == 250
