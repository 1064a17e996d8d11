"""SIGTERM is graceful: no new connections, open transactions and sends finish, exit 0."""

from __future__ import annotations

import re
import signal
import time
from email.policy import SMTP
from pathlib import Path
from typing import Any

from bridge.store import Store
from tests.bridge_process import BridgeProcess, connection_refused, start_bridge_process
from tests.conftest import base_config
from tests.helpers import smtp_client, wait_for
from tests.messages import fax_mail
from tests.providers.emulators import kazoo

TO = "12125550123@fax.localhost"


def bridge_with(tmp_path: Path, db_url: str, grace_s: float, **sections: Any) -> BridgeProcess:
    data = base_config(tmp_path, db_url)
    data["smtp"]["shutdown_grace_s"] = grace_s
    data.update(sections)
    return start_bridge_process(data, tmp_path, "bridge").wait_ready()


def stored(bridge: BridgeProcess) -> Store:
    return Store(bridge.config.storage.url, bridge.config.storage.data_dir)


def test_a_message_in_the_middle_of_data_at_sigterm_is_still_accepted(
    tmp_path: Path, db_url: str
) -> None:
    bridge = bridge_with(tmp_path, db_url, grace_s=10)
    raw = fax_mail(to=TO).as_bytes(policy=SMTP)
    payload = re.sub(rb"(?m)^\.", b"..", raw)  # dot-stuffing, as smtplib would
    client = smtp_client(bridge.smtp_address)
    try:
        client.mail("alice@example.com")
        client.rcpt(TO)
        client.putcmd("data")
        assert client.getreply()[0] == 354
        client.send(payload[: len(payload) // 2])

        signalled = time.monotonic()
        bridge.process.send_signal(signal.SIGTERM)
        wait_for(
            lambda: connection_refused(bridge.smtp_address),
            timeout_s=5,
            what="the SMTP listener to close",
        )
        assert bridge.process.poll() is None, "the bridge left before the message was in"

        client.send(payload[len(payload) // 2 :] + b".\r\n")
        code, text = client.getreply()
        assert code == 250, text
        accepted_reply = f"250 {text.decode()}"
        code, text = client.getreply()  # then it says why it hangs up
        assert code == 421
        assert b"shutting down" in text
        assert bridge.process.wait(15) == 0
        assert time.monotonic() - signalled < 10  # within the grace period
    finally:
        client.close()
        bridge.stop()

    store = stored(bridge)  # a new process's view: the accepted fax is durable
    try:
        (job,) = store.jobs.recent()
        assert job["to"] == "+12125550123"
        attempt = store.smtplog.get(job["attempt_id"])
        assert attempt is not None
        assert attempt["outcome"] == "accepted"
        assert attempt["reply"] == accepted_reply
    finally:
        store.close()


def test_idle_sessions_are_hung_up_at_once_and_stalled_ones_after_the_grace_period(
    tmp_path: Path, db_url: str
) -> None:
    grace_s = 3.0
    bridge = bridge_with(tmp_path, db_url, grace_s=grace_s)
    idle = smtp_client(bridge.smtp_address)  # said EHLO, then nothing
    stalled = smtp_client(bridge.smtp_address)
    try:
        stalled.mail("bob@example.com")
        stalled.rcpt(TO)  # and never DATA

        signalled = time.monotonic()
        bridge.process.send_signal(signal.SIGTERM)
        code, text = idle.getreply()
        idle_hung_up_s = time.monotonic() - signalled
        assert code == 421
        assert b"shutting down" in text
        code, _ = stalled.getreply()
        stalled_hung_up_s = time.monotonic() - signalled
        assert code == 421
        assert bridge.process.wait(15) == 0

        assert idle_hung_up_s < 1.5
        assert grace_s - 0.5 < stalled_hung_up_s < grace_s + 3
    finally:
        idle.close()
        stalled.close()
        bridge.stop()

    store = stored(bridge)
    try:
        (attempt,) = store.smtplog.recent()
        assert attempt["from"] == "bob@example.com"
        assert attempt["outcome"] == "aborted"
        assert attempt["error"] == "the bridge shut down before the client finished"
        assert store.jobs.recent() == []
    finally:
        store.close()


def test_a_send_in_flight_at_sigterm_finishes_and_is_recorded(tmp_path: Path, db_url: str) -> None:
    with kazoo.make_harness() as provider:
        data = base_config(tmp_path, db_url)
        data["providers"] = {"kz": provider.provider_config("callback-token-5150")}
        data["faxboxes"][0]["provider"] = "kz"
        bridge = start_bridge_process(data, tmp_path, "bridge").wait_ready()
        try:
            before = len(provider.requests)
            provider.hang_next(3)  # the provider takes 3 s to answer the fax
            with smtp_client(bridge.smtp_address) as client:
                client.sendmail("alice@example.com", [TO], fax_mail(to=TO).as_bytes(policy=SMTP))
            wait_for(lambda: len(provider.requests) > before, what="the fax to reach the provider")

            signalled = time.monotonic()
            bridge.process.send_signal(signal.SIGTERM)
            assert bridge.process.wait(30) == 0
            assert time.monotonic() - signalled > 2  # it waited for the provider's answer
        finally:
            bridge.stop()

    store = stored(bridge)
    try:
        (job,) = store.jobs.recent()
        assert job["status"] == "submitted"
        assert job["provider_fax_id"]
        history = store.jobs.get(job["id"])["history"]  # type: ignore[index]
        assert [h["status"] for h in history] == ["queued", "submitting", "submitted"]
    finally:
        store.close()
