"""kill -9 while a provider is taking a fax: after the restart the bridge asks the provider,
adopts the fax it took, and never sends it twice (issue "Provider fidelity" point 6).

The provider stalls 12 s before it takes the fax, well inside the adapter's default 30 s
timeout: the restarted bridge asks at once, finds nothing yet, asks again every few seconds
and adopts the fax as soon as the provider has it, long before the 35 s in which the cut-off
request could still arrive have passed (issue "Faults" point 1: within 30 s of the restart).
"""

from __future__ import annotations

import os
import signal
import time
from email.policy import SMTP
from pathlib import Path
from typing import Any

import yaml

from bridge.config import parse_config
from bridge.store import Store
from tests.conftest import base_config
from tests.helpers import smtp_client, wait_for
from tests.messages import fax_mail
from tests.providers.emulators.mfax import make_harness
from tests.test_restart import start, wait_ready

TOKEN = "crash-test-token-5e2"
TO = "12125550123@fax.localhost"
STALL_S = 12.0


def sends(harness: Any) -> int:
    return sum(1 for r in harness.requests if (r.method, r.path) == ("POST", "/v1/faxes"))


def test_a_fax_the_provider_took_while_the_bridge_died_is_adopted_not_sent_again(
    tmp_path: Path, db_url: str
) -> None:
    with make_harness() as harness:
        data: dict[str, Any] = base_config(tmp_path, db_url)
        # The default lease (30 s): the restarted bridge frees its dead predecessor's at once.
        data["worker"] = {"poll_interval_s": 0.2}
        data["providers"] = {"mfax": harness.provider_config(TOKEN)}  # timeout_s: 30
        data["faxboxes"][0]["provider"] = "mfax"
        config_path = tmp_path / "config.yaml"
        config_path.write_text(yaml.safe_dump(data))
        config = parse_config(data)
        harness.callback_target = f"{data['http']['public_url']}/callbacks/mfax?token={TOKEN}"
        log = tmp_path / "bridge.log"
        store = Store(config.storage.url, config.storage.data_dir)
        process = start(config_path, log)
        try:
            wait_ready(data["http"]["public_url"], process)
            harness.hang_next(STALL_S)  # Documo takes the fax, but only 12 s after the request
            host, port = config.smtp.listen.split(":")
            with smtp_client((host, int(port))) as client:
                client.mail("alice@example.com")
                client.rcpt(TO)
                code, _ = client.data(fax_mail(to=TO).as_bytes(policy=SMTP))
            assert code == 250
            wait_for(lambda: sends(harness) == 1, what="the send to reach the provider")
            os.kill(process.pid, signal.SIGKILL)  # mid-send: no answer was ever read
            process.wait(30)
            [job] = store.jobs.recent()
            assert job["status"] == "submitting"

            process = start(config_path, log)
            restarted = time.monotonic()
            wait_ready(data["http"]["public_url"], process)
            adopted = wait_for(
                lambda: (j := store.jobs.get(job["id"])) and j["provider_fax_id"] and j,
                timeout_s=30,
                what="the job to adopt the fax the provider took",
            )
            assert time.monotonic() - restarted < 30

            assert sends(harness) == 1  # asked, never sent again
            assert len(harness.state.faxes) == 1
            details = [h["detail"] for h in adopted["history"]]
            assert any("previous send was interrupted" in d for d in details), details
            assert any("found at mfax as" in d and "not sent again" in d for d in details)
            # Each look that came too early was a wait, not a send, and counted no attempt.
            early = [d for d in details if "has no fax for this job yet" in d]
            lookups = [r for r in harness.requests if r.path == "/v1/fax/history"]
            assert len(lookups) == len(early) + 1
            assert adopted["attempts"] == 1
            assert not adopted["possible_duplicate"]
            assert harness.complete(adopted["provider_fax_id"], "delivered").status_code == 200
            done = wait_for(
                lambda: (j := store.jobs.get(job["id"])) and j["status"] == "delivered" and j,
                what="delivery",
            )
            assert [h["status"] for h in done["history"]].count("delivered") == 1
        finally:
            store.close()
            if process.poll() is None:
                process.terminate()
                process.wait(30)
