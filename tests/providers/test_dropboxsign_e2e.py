"""Dropbox Sign end to end: a whole bridge, the emulator POSTing the callbacks the official
material shows, and what the sender and the admin then see (job status, history, kept
callbacks, the reply Dropbox Sign wants)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bridge.config import Config
from tests.bridge_runner import BridgeThread
from tests.helpers import wait_for
from tests.providers.emulators import _dropboxsign_events as events
from tests.providers.emulators.dropboxsign import API_KEY, DropboxSignHarness, make_harness
from tests.test_end_to_end import final_job, maildir_messages
from tests.test_provider_e2e import (
    TO,
    provider_faxbox_config,
    register_callbacks,
    send_scan,
    submitted_job,
)

pytestmark = pytest.mark.swaks
REPLY = "Hello API Event Received"


@pytest.fixture
def emulator() -> Iterator[DropboxSignHarness]:
    with make_harness() as running:
        yield running


@pytest.fixture
def bridge(
    emulator: DropboxSignHarness,
    make_config: Callable[..., Config],
    start_bridge: Callable[[Config], BridgeThread],
) -> BridgeThread:
    config = provider_faxbox_config(make_config, emulator)  # type: ignore[arg-type]
    register_callbacks(config, emulator)  # type: ignore[arg-type]
    return start_bridge(config)


def test_the_official_disconnected_sample_ends_the_job_and_gets_its_reply(
    bridge: BridgeThread, emulator: DropboxSignHarness, tmp_path: Path
) -> None:
    send_scan(bridge, tmp_path)
    job = submitted_job(bridge)
    [(fax_id, fax)] = emulator.state.faxes.items()
    assert job["provider_fax_id"] == fax_id
    assert fax.recipient == TO  # E.164, as FaxSendRequest says

    fax.status_code = "error_disconnected"
    reply = emulator.post(events.sample_callback(API_KEY, fax))

    assert (reply.status_code, reply.text) == (200, REPLY)
    job = final_job(bridge, TO)
    assert (job["status"], job["reason"]) == ("failed", "disconnected")
    assert job["provider_code"] == "transmission_disconnected"
    assert job["history"][-1]["detail"].startswith("callback: failed")
    (report,) = maildir_messages(bridge)
    assert report["Subject"].startswith("Fax to +1 212-555-0123 failed")


def test_the_official_fax_sent_event_delivers_and_the_purge_deletes_that_very_fax(
    emulator: DropboxSignHarness,
    make_config: Callable[..., Config],
    start_bridge: Callable[[Config], BridgeThread],
    tmp_path: Path,
) -> None:
    # examples/json/EventCallbackFaxSent.json names the fax only by its URLs; the job must keep
    # the fax_id the send gave, or `delete_after_delivery` would delete some other id (a 404,
    # "gone already") and leave the document at Dropbox Sign.
    config = provider_faxbox_config(make_config, emulator)  # type: ignore[arg-type]
    data = config.model_dump(by_alias=True, mode="json")
    data["faxboxes"][0]["delete_after_delivery"] = True
    data["worker"]["sweep_interval_s"] = 0.2
    config = Config.model_validate(data)
    register_callbacks(config, emulator)  # type: ignore[arg-type]
    bridge = start_bridge(config)
    send_scan(bridge, tmp_path)
    job = submitted_job(bridge)
    [fax_id] = emulator.state.faxes

    reply = emulator.complete(fax_id, "delivered")

    assert (reply.status_code, reply.text) == (200, REPLY)
    job = final_job(bridge, TO)
    assert (job["status"], job["provider_code"], job["provider_fax_id"]) == (
        "delivered",
        "fax_sent",
        fax_id,
    )
    (report,) = maildir_messages(bridge)
    assert report["Subject"].startswith("Fax to +1 212-555-0123 delivered")
    wait_for(lambda: not emulator.state.faxes, what="the fax to be deleted at Dropbox Sign")
    assert ("DELETE", f"/v3/fax/{fax_id}") in [(r.method, r.path) for r in emulator.requests]


def test_a_callback_without_fax_news_is_kept_for_explain_and_answered(
    bridge: BridgeThread, emulator: DropboxSignHarness
) -> None:
    reply = emulator.post(emulator.unclassifiable_callback())

    assert (reply.status_code, reply.text) == (200, REPLY)

    def kept_callbacks() -> list[dict[str, Any]]:
        return bridge.store.callbacks.recent(provider="dropboxsign")

    [kept] = wait_for(kept_callbacks, what="the callback to be kept")
    assert kept["event"] == "callback_test"
    assert "no fax" in kept["reason"]


def test_a_send_whose_answer_was_lost_is_found_by_its_title_not_sent_twice(
    emulator: DropboxSignHarness,
    make_config: Callable[..., Config],
    start_bridge: Callable[[Config], BridgeThread],
    tmp_path: Path,
) -> None:
    config = provider_faxbox_config(make_config, emulator, timeout_s=0.5)  # type: ignore[arg-type]
    register_callbacks(config, emulator)  # type: ignore[arg-type]
    emulator.answer_late(2.0)
    bridge = start_bridge(config)
    send_scan(bridge, tmp_path)

    job = submitted_job(bridge)

    sends = [r for r in emulator.requests if (r.method, r.path) == ("POST", "/v3/fax/send")]
    assert len(sends) == 1, "the fax went to Dropbox Sign twice"
    [fax_id] = emulator.state.faxes
    assert job["provider_fax_id"] == fax_id
    details = [h["detail"] for h in job["history"]]
    assert any(f"found at dropboxsign as {fax_id}" in d for d in details), details
    assert any(r.path == "/v3/fax/list" for r in emulator.requests)
    assert emulator.complete(fax_id, "delivered").status_code == 200
    assert final_job(bridge, TO)["status"] == "delivered"
