"""Fax.Plus through the whole bridge: what a sender and an admin notice.

A mail goes in over SMTP (swaks), the bridge sends it to the Fax.Plus emulator, and the
emulator posts its webhooks to the bridge's URL the way `providers setup` registered it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bridge.config import Config
from tests.bridge_runner import BridgeThread
from tests.providers.emulators.faxplus import FaxPlusHarness, make_harness
from tests.test_end_to_end import final_job, maildir_messages
from tests.test_provider_e2e import (
    TO,
    provider_faxbox_config,
    register_callbacks,
    send_scan,
    submitted_job,
)

pytestmark = pytest.mark.swaks


@pytest.fixture
def emulator() -> Iterator[FaxPlusHarness]:
    with make_harness() as running:
        yield running


def bridge_for(
    emulator: FaxPlusHarness,
    make_config: Callable[..., Config],
    start_bridge: Callable[[Config], BridgeThread],
    redial: dict[str, Any] | None = None,
) -> BridgeThread:
    config = provider_faxbox_config(make_config, emulator)  # type: ignore[arg-type]
    if redial is not None:
        config.faxboxes[0] = config.faxboxes[0].model_copy(
            update={"redial": type(config.faxboxes[0].redial).model_validate(redial)}
        )
    register_callbacks(config, emulator)  # type: ignore[arg-type]
    return start_bridge(config)


def outbox_posts(emulator: FaxPlusHarness) -> list[dict[str, Any]]:
    return [
        r.json() for r in emulator.requests if r.method == "POST" and r.path.endswith("/outbox")
    ]


def test_a_redialled_fax_is_left_to_fax_plus_and_its_webhooks_end_the_job(
    emulator: FaxPlusHarness,
    make_config: Callable[..., Config],
    start_bridge: Callable[[Config], BridgeThread],
    tmp_path: Path,
) -> None:
    redial = {"busy": {"tries": 3, "interval": 60}, "no_answer": {"tries": 1}}
    bridge = bridge_for(emulator, make_config, start_bridge, redial)
    send_scan(bridge, tmp_path)
    job = submitted_job(bridge)
    outbox_id = job["provider_fax_id"]

    # A busy first dial: the fax stays in Fax.Plus's outbox, to be redialled there.
    reply = emulator.post(emulator.redial_callback(outbox_id, "failed_user_busy"))
    assert reply.status_code == 200, reply.text
    during = bridge.store.jobs.get(job["id"])
    assert during is not None and during["status"] == "submitted"

    # Then the redial goes through: `data.id` is a new session id, `hook.id` the fax.
    reply = emulator.post(emulator.raw_callback(outbox_id, "success", redialled=True))
    assert reply.status_code == 200, reply.text
    final = final_job(bridge, TO)
    assert (final["status"], final["provider_code"]) == ("delivered", "success")
    assert final["provider_fax_id"] in emulator.state.faxes  # the sent fax's id, adopted
    [sent] = outbox_posts(emulator)  # the bridge never redialled on top of Fax.Plus
    assert sent["options"] == {"retry": {"count": 2, "delay": 1}}
    (report,) = maildir_messages(bridge)
    assert report["Subject"] == "Fax to +1 212-555-0123 delivered (3 pages)"


def test_an_outbox_answer_without_an_id_is_looked_up_and_adopted_not_refused_or_resent(
    emulator: FaxPlusHarness,
    make_config: Callable[..., Config],
    start_bridge: Callable[[Config], BridgeThread],
    tmp_path: Path,
) -> None:
    emulator.state.answers_without_ids = 1
    bridge = bridge_for(emulator, make_config, start_bridge)
    send_scan(bridge, tmp_path)

    job = submitted_job(bridge)

    [outbox_id] = emulator.state.outbox
    assert job["provider_fax_id"] == outbox_id
    assert len(outbox_posts(emulator)) == 1
    details = [h["detail"] for h in job["history"]]
    assert any("named no id" in d for d in details), details
    assert any(f"found at faxplus as {outbox_id}" in d for d in details), details
    assert job["status"] != "failed" and not job["possible_duplicate"]
    assert emulator.complete(outbox_id, "delivered").status_code == 200
    assert final_job(bridge, TO)["status"] == "delivered"


def test_a_webhook_for_a_fax_sent_elsewhere_is_kept_and_answered_200(
    emulator: FaxPlusHarness,
    make_config: Callable[..., Config],
    start_bridge: Callable[[Config], BridgeThread],
) -> None:
    bridge = bridge_for(emulator, make_config, start_bridge)

    reply = emulator.post(emulator.raw_callback("sent-from-the-web-app", "success"))

    assert reply.status_code == 200, reply.text
    [kept] = bridge.store.callbacks.recent(provider="faxplus")  # kept before the reply
    assert "names no fax job of this bridge" in kept["reason"]
    assert bridge.store.jobs.recent() == []
