"""Stop the bridge mid-queue (SIGTERM or kill -9), start it again: every fax ends once."""

from __future__ import annotations

import mailbox
import os
import signal
import subprocess
import sys
from contextlib import ExitStack, closing
from email.policy import SMTP
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from bridge.config import parse_config
from bridge.store import Store
from tests.conftest import base_config
from tests.helpers import smtp_client, wait_for
from tests.messages import fax_mail

NUMBERS = [f"1212555{n:04d}@fax.localhost" for n in range(110, 118)]


def start(config_path: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "bridge", "serve", "-c", str(config_path)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def wait_ready(http_url: str, process: subprocess.Popen[bytes]) -> None:
    def probe() -> bool:
        assert process.poll() is None, "the bridge exited"
        try:
            return httpx.get(f"{http_url}/readyz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(probe, timeout_s=60, what="the bridge to be ready")


@pytest.mark.parametrize("how", ["kill -9", "SIGTERM"])
def test_restart_mid_queue_delivers_every_accepted_fax_exactly_once(
    tmp_path: Path, db_url: str, how: str
) -> None:
    data: dict[str, Any] = base_config(tmp_path, db_url)
    # The default lease (30 s): a send cut off by kill -9 is freed at once by the restarted
    # bridge (same host, dead pid), not waited out.
    data["worker"] = {"concurrency": 1, "poll_interval_s": 0.2, "backoff_s": 0.2}
    data["providers"]["sim"].update(delay_s=1.0, status_poll_s=1)
    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump(data))
    config = parse_config(data)
    http_url = data["http"]["public_url"]
    log = tmp_path / "bridge.log"

    process = start(config_path, log)
    stores = ExitStack()
    try:
        wait_ready(http_url, process)
        host, port = config.smtp.listen.split(":")
        accepted = 0
        with smtp_client((host, int(port))) as client:
            for n in range(3):
                client.mail(f"sender{n}@example.com")
                for address in NUMBERS:
                    client.rcpt(address)
                code, _ = client.data(fax_mail(to=NUMBERS).as_bytes(policy=SMTP))
                assert code == 250
                accepted += len(NUMBERS)
        if how == "kill -9":
            os.kill(process.pid, signal.SIGKILL)
        else:
            process.send_signal(signal.SIGTERM)
        assert process.wait(30) in (-signal.SIGKILL, 0)

        store = stores.enter_context(closing(Store(config.storage.url, config.storage.data_dir)))
        unfinished = [j for j in store.jobs.recent() if j["status"] != "delivered"]
        assert unfinished, "the queue should still be busy when the bridge stops"

        process = start(config_path, log)
        wait_ready(http_url, process)
        jobs = wait_for(
            lambda: (
                (rows := store.jobs.recent(limit=1000))
                and all(j["status"] == "delivered" for j in rows)
                and rows
            ),
            timeout_s=60,
            what="every job to be delivered",
        )
        assert len(jobs) == accepted
        for job in jobs:
            history = store.jobs.get(job["id"])["history"]  # type: ignore[index]
            assert [h["status"] for h in history].count("delivered") == 1
        sent = list((config.storage.data_dir / "simulator" / "sent").glob("*.pdf"))
        assert len(sent) == accepted  # one provider submission per job, none twice

        def reports() -> list[str]:
            box = mailbox.Maildir(config.mail.maildir, create=False)
            return [str(box[key]["In-Reply-To"]) + str(box[key]["Subject"]) for key in box.keys()]

        mails = wait_for(lambda: len(r := reports()) >= accepted and r, timeout_s=60)
        assert len(mails) == accepted
        assert len(set(mails)) == accepted  # one report per job, none twice
    finally:
        stores.close()
        if process.poll() is None:
            process.terminate()
            process.wait(30)
