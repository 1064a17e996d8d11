"""The database is unavailable just as the provider answers a send: the outcome is written once
the database is back, not dropped (the job would sit `submitting` for a whole lease, then be
claimed again as if the bridge had crashed)."""

from __future__ import annotations

import sqlite3
import time
from collections import Counter
from email.policy import SMTP
from pathlib import Path

from bridge.store import Store
from tests.bridge_process import start_bridge_process
from tests.crash_kit import mfax_config, sends_per_job
from tests.helpers import smtp_client, wait_for
from tests.messages import fax_mail
from tests.providers.emulators.mfax import make_harness

TO = "12125550177@fax.localhost"


def test_a_send_outcome_the_database_refused_is_written_when_it_is_back(tmp_path: Path) -> None:
    db_path = tmp_path / "faxbridge.db"
    url = f"sqlite:///{db_path}"
    with make_harness() as harness:
        data = mfax_config(tmp_path, url, harness)
        data["storage"]["statement_timeout_s"] = 0.5  # a locked database fails fast
        bridge = start_bridge_process(data, tmp_path, "bridge")
        store = Store(url, tmp_path / "var")
        try:
            bridge.wait_ready()
            harness.hang_next(2.0)  # the provider answers 2 s after the request
            with smtp_client(bridge.smtp_address) as client:
                client.sendmail("alice@example.com", [TO], fax_mail(to=TO).as_bytes(policy=SMTP))
            wait_for(lambda: sum(sends_per_job(harness).values()) == 1, what="the send")
            # Another process holds the write lock while the answer comes back, and 2 s more.
            locker = sqlite3.connect(db_path, isolation_level=None)
            locker.execute("BEGIN IMMEDIATE")
            time.sleep(4.0)
            locker.execute("ROLLBACK")
            released = time.monotonic()
            locker.close()
            job = wait_for(
                lambda: (j := store.jobs.recent()) and j[0]["provider_fax_id"] and j[0],
                timeout_s=10,  # the lease is 30 s: a dropped outcome would still be pending
                what="the send's outcome to be written",
            )
            took = time.monotonic() - released
            record = store.jobs.get(job["id"])
        finally:
            store.close()
            bridge.stop()
    assert record is not None
    statuses = Counter(h["status"] for h in record["history"])
    assert statuses["submitting"] == 1, record["history"]  # never claimed again
    assert record["attempts"] == 1
    assert sends_per_job(harness) == {job["id"]: 1}
    log = bridge.log.read_text()
    assert "cannot record the outcome yet" in log
    assert "Task exception was never retrieved" not in log
    assert took < 6.0  # the retry interval is capped at 5 s
