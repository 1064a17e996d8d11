"""Retention: finished business older than the limit goes, rows and files; the rest stays."""

from __future__ import annotations

from collections.abc import Callable
from email.policy import SMTP

import sqlalchemy as sa

from bridge.config import Config
from bridge.store.schema import fax_jobs, mail_outbox, smtplog
from tests.bridge_runner import BridgeThread
from tests.helpers import smtp_client, wait_for
from tests.messages import fax_mail


def send(bridge: BridgeThread, number: str) -> None:
    with smtp_client(bridge.smtp_address) as client:
        client.mail("alice@example.com")
        client.rcpt(f"{number}@fax.localhost")
        assert client.data(fax_mail().as_bytes(policy=SMTP))[0] == 250


def age_everything(bridge: BridgeThread, days: int) -> None:
    """Pretend every row was written `days` ago."""
    with bridge.store.db.begin() as conn:
        for table, columns in (
            (smtplog, ("created",)),
            (fax_jobs, ("created", "updated", "finished_at")),
            (mail_outbox, ("created", "updated")),
        ):
            conn.execute(
                table.update().values(
                    {c: table.c[c] - sa.text(f"interval '{days} days'") for c in columns}
                    if bridge.store.db.is_postgres
                    else {c: sa.func.datetime(table.c[c], f"-{days} days") for c in columns}
                )
            )


def test_purge_removes_old_finished_jobs_attempts_and_files_but_keeps_the_rest(
    make_config: Callable[..., Config], start_bridge: Callable[[Config], BridgeThread]
) -> None:
    bridge = start_bridge(make_config(storage={"retention_days": 30}))
    send(bridge, "12125550123")
    wait_for(lambda: [m for m in bridge.store.outbox.recent() if m["status"] == "sent"])
    data_dir = bridge.config.storage.data_dir
    files_before = {p for p in data_dir.rglob("*") if p.is_file() and "messages" in p.parts}
    assert files_before
    age_everything(bridge, 40)
    send(bridge, "12125550124")  # recent: must survive
    removed = bridge.store.purge(30)
    assert removed == 1
    jobs = bridge.store.jobs.recent()
    assert [j["to"] for j in jobs] == ["+12125550124"]
    assert [r["fax_ids"] for r in bridge.store.smtplog.recent()] == [[jobs[0]["id"]]]
    assert not any(p.exists() for p in files_before)
    assert all(m["ref"].startswith(jobs[0]["id"]) for m in bridge.store.outbox.recent())
