"""A client that sends a message again (no reply seen, a scanner's resend) gets it faxed once."""

from __future__ import annotations

import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from email.policy import SMTP
from typing import Any

from bridge.config import Config
from tests.bridge_runner import BridgeThread
from tests.fixtures_office import order_docx
from tests.helpers import smtp_client, wait_for
from tests.messages import fax_mail

TO = "12125550123@fax.localhost"


def send(bridge: BridgeThread, data: bytes, sender: str = "alice@example.com") -> tuple[int, str]:
    with smtp_client(bridge.smtp_address) as client:
        client.mail(sender)
        client.rcpt(TO)
        code, text = client.data(data)
    return code, text.decode()


def attempts(bridge: BridgeThread, count: int) -> list[dict[str, Any]]:
    def logged() -> list[dict[str, Any]] | None:
        rows = bridge.store.smtplog.recent(outcome="accepted", limit=10)
        return sorted(rows, key=lambda r: r["created"]) if len(rows) >= count else None

    return wait_for(logged)


def test_the_same_message_sent_twice_is_faxed_once(bridge: BridgeThread) -> None:
    data = fax_mail(subject="Resent").as_bytes(policy=SMTP)
    code, first = send(bridge, data)
    assert code == 250, first
    # The second copy comes through a relay, which adds its trace header on top.
    relayed = b"Received: from mta.example.com by fax.localhost; Mon, 7 Dec 2026\r\n" + data
    code, again = send(bridge, relayed)
    earlier, repeat = attempts(bridge, 2)
    assert code == 250
    assert again == (
        f"2.0.0 Already queued as {earlier['id']} (a repeat of the same message; not faxed again)"
    )
    assert earlier["fax_ids"] and repeat["fax_ids"] == []
    assert repeat["subject"] == "Resent"
    assert repeat["notes"] == [
        f"a repeat of attempt {earlier['id']} (same Message-ID, sender, recipients and body, "
        "0 min earlier): not faxed again"
    ]
    assert len(bridge.store.jobs.recent()) == 1


def test_copies_arriving_at_once_are_faxed_once(bridge: BridgeThread) -> None:
    data = fax_mail(subject="Twice at once", pdf_pages=3).as_bytes(policy=SMTP)
    with ThreadPoolExecutor(2) as pool:
        replies = list(pool.map(lambda _: send(bridge, data), range(2)))
    assert [code for code, _ in replies] == [250, 250]
    assert sum("Already queued as" in text for _, text in replies) == 1
    attempts(bridge, 2)
    assert len(bridge.store.jobs.recent()) == 1


def test_a_scanner_reusing_its_message_id_for_new_pages_is_faxed_each_time(
    bridge: BridgeThread,
) -> None:
    """Some MFPs send every scan with the same Message-ID: another body is another fax."""
    first = fax_mail(subject="Scan", headers={}, pdf_pages=1)
    second = fax_mail(subject="Scan", pdf_pages=2)
    del second["Message-ID"]
    second["Message-ID"] = first["Message-ID"]
    for message in (first, second):
        code, text = send(bridge, message.as_bytes(policy=SMTP))
        assert code == 250 and text.startswith("2.0.0 Queued as"), text
    assert len(bridge.store.jobs.recent()) == 2


def test_another_sender_with_the_same_message_is_faxed(bridge: BridgeThread) -> None:
    data = fax_mail().as_bytes(policy=SMTP)
    send(bridge, data, sender="alice@example.com")
    code, text = send(bridge, data, sender="bob@example.com")
    assert code == 250 and text.startswith("2.0.0 Queued as"), text
    assert len(bridge.store.jobs.recent()) == 2


def test_a_message_without_message_id_is_never_taken_for_a_repeat(bridge: BridgeThread) -> None:
    message = fax_mail()
    del message["Message-ID"]
    data = message.as_bytes(policy=SMTP)
    for _ in range(2):
        code, text = send(bridge, data)
        assert code == 250 and text.startswith("2.0.0 Queued as"), text
    assert len(bridge.store.jobs.recent()) == 2


def test_a_window_of_zero_faxes_every_copy(
    make_config: Callable[..., Config], start_bridge: Callable[[Config], BridgeThread]
) -> None:
    bridge = start_bridge(make_config(smtp={"duplicate_window": 0}))
    data = fax_mail().as_bytes(policy=SMTP)
    for _ in range(2):
        code, text = send(bridge, data)
        assert code == 250 and text.startswith("2.0.0 Queued as"), text
    assert len(bridge.store.jobs.recent()) == 2


def test_a_client_that_hangs_up_before_the_reply_has_its_message_taken_once(
    bridge: BridgeThread,
) -> None:
    """The sender's client gives up while a Word file converts, then sends the mail again."""
    message = fax_mail(subject="Impatient", pdf_pages=0)
    message.add_attachment(
        order_docx(),
        maintype="application",
        subtype="vnd.openxmlformats-officedocument.wordprocessingml.document",
        filename="order.docx",
    )
    data = message.as_bytes(policy=SMTP)
    with smtp_client(bridge.smtp_address) as client:
        client.mail("alice@example.com")
        client.rcpt(TO)
        client.putcmd("data")
        assert client.getreply()[0] == 354
        client.send(re.sub(rb"(?m)^\.", b"..", data) + b"\r\n.\r\n")
        assert client.sock is not None
        client.sock.close()  # gone before the bridge could answer
        client.sock = None

    def noted() -> dict[str, Any] | None:
        rows = bridge.store.smtplog.recent(outcome="accepted", limit=1)
        return rows[0] if rows and rows[0]["notes"] else None

    record = wait_for(noted, timeout_s=60)
    assert record["notes"] == [
        "the client hung up or timed out before the reply; it never saw: "
        f"250 2.0.0 Queued as {record['id']} (fax {record['fax_ids'][0]})"
    ]
    assert len(bridge.store.jobs.recent()) == 1
    code, text = send(bridge, data)
    assert (code, text) == (
        250,
        f"2.0.0 Already queued as {record['id']} (a repeat of the same message; not faxed again)",
    )
    assert len(bridge.store.jobs.recent()) == 1
