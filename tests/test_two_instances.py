"""Two bridge processes on one PostgreSQL share the queue: each fax sent once, each report once.

Both serve the same `storage.url` and `data_dir`, on their own ports. Each one's
`http.public_url` names the *other*, so every simulator callback lands on the process that did
not send the fax: the worst case of a load balancer in front of several replicas.
"""

from __future__ import annotations

import mailbox
import os
import re
import signal
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from email.policy import SMTP
from pathlib import Path
from typing import Any

import pytest

from bridge.store import Store
from tests.bridge_process import BridgeProcess, start_bridge_process
from tests.conftest import base_config
from tests.crash_kit import Settler, callback_url, mfax_config, sends_per_job
from tests.helpers import smtp_client, wait_for
from tests.messages import fax_mail
from tests.providers.emulators.mfax import make_harness

FAXES_PER_BRIDGE = 30
SENDING = re.compile(r"job (\w+): sending to")


def shared_configs(tmp_path: Path, db_url: str) -> tuple[dict[str, Any], dict[str, Any]]:
    first, second = base_config(tmp_path, db_url), base_config(tmp_path, db_url)
    assert first["storage"] == second["storage"] and first["mail"] == second["mail"]
    first["http"]["public_url"], second["http"]["public_url"] = (
        second["http"]["public_url"],
        first["http"]["public_url"],
    )
    for data in (first, second):
        data["worker"] = {"concurrency": 8, "poll_interval_s": 0.1, "backoff_s": 0.2}
        # Callbacks only (no polling fallback within the test), so they must cross over.
        data["providers"]["sim"].update(delay_s=0.5, status_poll_s=300)
    return first, second


def send_faxes(bridge: BridgeProcess, numbers: list[str]) -> list[str]:
    """One mail per number over one connection; returns the Message-IDs."""
    message_ids = []
    with smtp_client(bridge.smtp_address) as client:
        for number in numbers:
            message = fax_mail(to=f"{number}@fax.localhost", sender="alice@example.com")
            client.sendmail(
                "alice@example.com", [f"{number}@fax.localhost"], message.as_bytes(policy=SMTP)
            )
            message_ids.append(str(message["Message-ID"]))
    return message_ids


def test_two_bridges_send_every_fax_once_and_mail_every_report_once(
    tmp_path: Path, db_url: str
) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip(
            "two bridge processes share a queue through PostgreSQL only; "
            "set FAXBRIDGE_TEST_DB=postgresql://… (make test does)"
        )
    first_data, second_data = shared_configs(tmp_path, db_url)
    first = start_bridge_process(first_data, tmp_path, "first")
    second = start_bridge_process(second_data, tmp_path, "second")
    bridges = (first, second)
    try:
        for bridge in bridges:
            bridge.wait_ready()
        numbers = [f"1212555{n:04d}" for n in range(200, 200 + 2 * FAXES_PER_BRIDGE)]
        with ThreadPoolExecutor(2) as pool:
            batches = pool.map(
                send_faxes, bridges, [numbers[:FAXES_PER_BRIDGE], numbers[FAXES_PER_BRIDGE:]]
            )
            message_ids = [mid for batch in batches for mid in batch]
        total = len(numbers)

        store = Store(db_url, tmp_path / "var")
        try:
            jobs = wait_for(
                lambda: (
                    (rows := store.jobs.recent(limit=1000))
                    and len(rows) == total
                    and all(j["status"] == "delivered" for j in rows)
                    and rows
                ),
                timeout_s=90,
                what=f"{total} faxes delivered",
            )
            maildir = mailbox.Maildir(tmp_path / "var" / "mail", create=False)
            wait_for(lambda: len(maildir) >= total, timeout_s=60, what=f"{total} reports")
        finally:
            store.close()
        for bridge in bridges:
            bridge.process.send_signal(signal.SIGTERM)
        for bridge in bridges:
            assert bridge.process.wait(60) == 0
    finally:
        for bridge in bridges:
            bridge.stop()

    # Each fax was claimed and handed to the provider exactly once ...
    store = Store(db_url, tmp_path / "var")
    try:
        for job in jobs:
            history = [h for h in store.jobs.get(job["id"])["history"]]  # type: ignore[index]
            statuses = Counter(h["status"] for h in history)
            assert statuses["submitting"] == 1, history
            assert statuses["submitted"] == 1, history
            assert statuses["delivered"] == 1, history
            assert job["attempts"] == 1
            (delivered,) = [h for h in history if h["status"] == "delivered"]
            assert delivered["detail"].startswith("callback:")  # via the other process
        outbox = store.outbox.recent(limit=1000)
        assert len(outbox) == total
        assert {(m["status"], m["attempts"]) for m in outbox} == {("sent", 1)}
    finally:
        store.close()
    sent_files = list((tmp_path / "var" / "simulator" / "sent").glob("*.pdf"))
    assert sorted(p.stem for p in sent_files) == sorted(f"sim-{j['id']}" for j in jobs)

    # ... by one process or the other, and both took their share.
    sent_by = [set(SENDING.findall(bridge.log.read_text())) for bridge in bridges]
    assert not sent_by[0] & sent_by[1]
    assert sent_by[0] | sent_by[1] == {j["id"] for j in jobs}
    assert all(sent_by), [len(s) for s in sent_by]

    # Every report was mailed once, in reply to the mail that asked for the fax.
    maildir = mailbox.Maildir(tmp_path / "var" / "mail", create=False)
    in_reply_to = Counter(str(maildir[key]["In-Reply-To"]) for key in maildir.keys())
    assert sum(in_reply_to.values()) == total
    assert set(in_reply_to) == set(message_ids)
    assert max(in_reply_to.values()) == 1


def test_kill_9_of_one_bridge_with_faxes_in_flight_the_other_sends_each_once(
    tmp_path: Path, db_url: str
) -> None:
    """Issue "Faults" point 9, small: 24 faxes on two bridges, one killed while its sends and
    reports are in flight. The survivor takes over its leases (6 s here; 30 s by default),
    asks the provider about each cut-off send, and every fax reaches the provider once (counted
    at the mFax emulator) and every report is mailed once. bench/crash_recovery.py runs 200."""
    if not db_url.startswith("postgresql"):
        pytest.skip("two bridge processes share a queue through PostgreSQL only")
    with make_harness() as harness:
        configs = [mfax_config(tmp_path, db_url, harness) for _ in range(2)]
        for data in configs:
            data["worker"]["lease_s"] = 6
            data["mail"]["lease_s"] = 6
        bridges = [start_bridge_process(data, tmp_path, f"b{n}") for n, data in enumerate(configs)]
        live = list(bridges)
        settler = Settler(harness, lambda: [callback_url(b.http_url) for b in live], 1.0)
        store = Store(db_url, tmp_path / "var")
        try:
            for bridge in bridges:
                bridge.wait_ready()
            settler.start()
            numbers = [f"1212557{n:04d}" for n in range(24)]
            with ThreadPoolExecutor(4) as pool:
                batches = pool.map(
                    send_faxes, [*bridges, *bridges], [numbers[i::4] for i in range(4)]
                )
                message_ids = [mid for batch in batches for mid in batch]
            harness.hang_next(3.0)  # the next send stalls: one is in flight at the kill
            wait_for(lambda: harness.recorder._delay_s == 0, what="a send to stall")
            os.kill(bridges[0].process.pid, signal.SIGKILL)
            bridges[0].process.wait(30)
            live.remove(bridges[0])
            unfinished = Counter(j["status"] for j in store.jobs.recent(limit=100))
            assert unfinished["delivered"] < len(numbers), "the kill came too late"

            wait_for(
                lambda: (
                    Counter(j["status"] for j in store.jobs.recent(limit=100))["delivered"]
                    == len(numbers)
                ),
                timeout_s=90,
                what="every fax delivered",
            )
            maildir = mailbox.Maildir(tmp_path / "var" / "mail", create=False)
            wait_for(lambda: len(maildir) >= len(numbers), timeout_s=60, what="every report")
            jobs = {j["id"] for j in store.jobs.recent(limit=100)}
        finally:
            settler.halt.set()
            store.close()
            for bridge in bridges:
                bridge.stop()
    sends = sends_per_job(harness)
    assert set(sends) == jobs and set(sends.values()) == {1}, sends
    in_reply_to = Counter(str(maildir[key]["In-Reply-To"]) for key in maildir.keys())
    assert set(in_reply_to) == set(message_ids)
    assert set(in_reply_to.values()) == {1}
    sent_by = [set(SENDING.findall(bridge.log.read_text())) for bridge in bridges]
    assert sent_by[1] - sent_by[0], "the survivor sent its own share"
    print(f"kill -9 with {dict(unfinished)}; sends by bridge {[len(s) for s in sent_by]}")
