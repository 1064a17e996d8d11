"""HelloFax v1 end to end: mail in through swaks, the emulator as HelloFax, the bridge's own
worker, callbacks over HTTP. What a sender or an admin notices: the job's status and history,
the reply HelloFax gets to its callback, the report."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bridge.config import Config
from bridge.providers.hellofax import HelloFaxProvider
from tests.bridge_runner import BridgeThread
from tests.helpers import wait_for
from tests.providers.emulators.hellofax import HelloFaxHarness, Transmission, make_harness
from tests.test_end_to_end import final_job, maildir_messages
from tests.test_provider_e2e import (
    TO,
    provider_faxbox_config,
    register_callbacks,
    send_scan,
    submitted_job,
)

pytestmark = pytest.mark.swaks

MAX_ATTEMPTS = 2


@pytest.fixture
def emulator() -> Iterator[HelloFaxHarness]:
    with make_harness() as running:
        yield running


def _sends(emulator: HelloFaxHarness) -> int:
    return sum(
        1 for r in emulator.requests if (r.method, r.path[-14:]) == ("POST", "/Transmissions")
    )


def _job(bridge: BridgeThread) -> dict[str, Any]:
    [row] = bridge.store.jobs.recent()
    job = bridge.store.jobs.get(row["id"])
    assert job is not None
    return job


def test_the_200_pending_limit_never_fails_the_job_however_often_it_comes(
    emulator: HelloFaxHarness,
    make_config: Callable[..., Config],
    start_bridge: Callable[[Config], BridgeThread],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # HelloFax's 429 names no wait; ours is shortened so the test sees many in a row.
    monkeypatch.setattr(HelloFaxProvider, "rate_limit_wait_s", 0.1)
    config = provider_faxbox_config(make_config, emulator)
    config = config.model_copy(
        update={
            "worker": config.worker.model_copy(
                update={"max_attempts": MAX_ATTEMPTS, "backoff_s": 0.1}
            )
        }
    )
    register_callbacks(config, emulator)
    emulator.state.pending_limit = 0  # "You already have at least 0 transmissions …"
    bridge = start_bridge(config)
    send_scan(bridge, tmp_path)

    wait_for(
        lambda: _sends(emulator) >= MAX_ATTEMPTS + 2,
        timeout_s=30,
        what="HelloFax to refuse more sends than max_attempts allows",
    )
    job = _job(bridge)
    # Waiting for the next try, or at it this very moment: never given up on.
    assert job["status"] in ("queued", "submitting"), job
    details = [h["detail"] for h in job["history"]]
    limited = [d for d in details if d.startswith("rate-limited:")]
    assert len(limited) >= MAX_ATTEMPTS + 1, details
    assert "transmissions that are currently pending" in limited[0]
    assert not any("gave up" in d for d in details), details

    emulator.state.pending_limit = 200  # the queue at HelloFax drained
    job = submitted_job(bridge)
    assert emulator.complete(job["provider_fax_id"], "delivered").status_code == 200

    job = final_job(bridge, TO)
    assert (job["status"], job["provider_code"]) == ("delivered", "S")
    assert job["attempts"] <= MAX_ATTEMPTS
    (report,) = maildir_messages(bridge)
    assert report["Subject"] == "Fax to +1 212-555-0123 delivered (3 pages)"


def test_a_fax_hellofax_removed_while_its_callback_was_lost_ends_unknown_after_the_grace(
    emulator: HelloFaxHarness,
    make_config: Callable[..., Config],
    start_bridge: Callable[[Config], BridgeThread],
    tmp_path: Path,
) -> None:
    # No callback URL registered: HelloFax's callbacks cannot reach the bridge.
    config = provider_faxbox_config(make_config, emulator, status_poll_s=0.2, forgotten_grace_s=0.5)
    config = config.model_copy(
        update={"worker": config.worker.model_copy(update={"sweep_interval_s": 0.2})}
    )
    bridge = start_bridge(config)
    send_scan(bridge, tmp_path)
    guid = submitted_job(bridge)["provider_fax_id"]

    emulator.forget(guid)  # sent, so removed (SETUP note D)

    def ended() -> dict[str, Any] | None:
        job = _job(bridge)
        return job if job["status"] == "unknown" else None

    job = wait_for(ended, timeout_s=30, what="the forgotten job to end as unknown")
    assert job is not None
    assert job["reason"] == "expired"
    details = [h["detail"] for h in job["history"]]
    assert any(f"no longer knows fax {guid}" in d for d in details), details
    assert not any(h["status"] == "failed" for h in job["history"])


def test_callbacks_the_adapter_cannot_read_are_answered_200_and_kept(
    emulator: HelloFaxHarness,
    make_config: Callable[..., Config],
    start_bridge: Callable[[Config], BridgeThread],
) -> None:
    config = provider_faxbox_config(make_config, emulator)
    register_callbacks(config, emulator)
    bridge = start_bridge(config)

    # The v3 style event (CALLBACKS' note), and an inbound notice whose PDF part is missing.
    event_reply = emulator.post(emulator.unclassifiable_callback())
    record = Transmission("f" * 40, "12125550100", "12125550199", [], {}, is_inbound=True)
    stripped = emulator.transaction_callback(record)  # no file part
    inbound_reply = emulator.post(stripped, inbound=True)

    assert (event_reply.status_code, inbound_reply.status_code) == (200, 200)
    assert event_reply.text == "Hello API Event Received"  # else Dropbox Sign sends it again
    kept = bridge.store.callbacks.recent(provider="hellofax")
    reasons = " | ".join(k["reason"] for k in kept)
    assert "transmission_disconnected" in reasons
    assert "without its document" in reasons and "from 12125550199" in reasons
    assert bridge.store.inbound.recent() == []


def test_a_send_whose_answer_was_lost_is_sent_again_as_a_possible_duplicate(
    emulator: HelloFaxHarness,
    make_config: Callable[..., Config],
    start_bridge: Callable[[Config], BridgeThread],
    tmp_path: Path,
) -> None:
    config = provider_faxbox_config(make_config, emulator, timeout_s=0.5)
    config = config.model_copy(
        update={"worker": config.worker.model_copy(update={"backoff_s": 0.1})}
    )
    register_callbacks(config, emulator)
    emulator.hang_next(1.5)  # HelloFax takes the fax; its answer comes too late
    bridge = start_bridge(config)
    send_scan(bridge, tmp_path)

    job = submitted_job(bridge)

    assert _sends(emulator) == 2
    assert job["possible_duplicate"] is True
    details = [h["detail"] for h in job["history"]]
    assert any("keeps no reference of ours" in d for d in details), details
    assert emulator.complete(job["provider_fax_id"], "delivered").status_code == 200
    assert final_job(bridge, TO)["status"] == "delivered"
