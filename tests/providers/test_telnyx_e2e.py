"""Telnyx end to end: mail in through swaks, the emulator as Telnyx, the bridge's own worker,
Ed25519-signed webhooks POSTed over HTTP to the URL the fax carried (`webhook_url`) or the fax
application's (set by `providers setup`). What a sender or an admin notices: what reached
Telnyx, the job's status and history, the report and the inbound mail."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from bridge.config import Config
from tests.bridge_runner import BridgeThread
from tests.helpers import wait_for
from tests.messages import make_pdf
from tests.providers.emulators.telnyx import CONNECTION_ID, TelnyxHarness, make_harness
from tests.providers.harness import RecordedRequest
from tests.test_end_to_end import final_job, maildir_messages
from tests.test_provider_e2e import (
    CALLBACK_TOKEN,
    SUBJECT,
    TO,
    page_texts,
    provider_faxbox_config,
    register_callbacks,
    send_scan,
    submitted_job,
)

pytestmark = pytest.mark.swaks
CALLER_ID = "+12125550100"  # the faxbox's caller_id and inbound number
CALLER = "+12125550199"


@pytest.fixture
def emulator() -> Iterator[TelnyxHarness]:
    with make_harness() as running:
        yield running


@pytest.fixture
def bridge(
    emulator: TelnyxHarness,
    make_config: Callable[..., Config],
    start_bridge: Callable[[Config], BridgeThread],
) -> BridgeThread:
    config = provider_faxbox_config(make_config, emulator)  # type: ignore[arg-type]
    lines = register_callbacks(config, emulator)  # type: ignore[arg-type]
    assert any("now sends webhooks to" in line for line in lines), lines
    return start_bridge(config)


def _upload(emulator: TelnyxHarness) -> RecordedRequest | None:
    return next((r for r in emulator.requests if (r.method, r.path) == ("POST", "/v2/faxes")), None)


def _history(bridge: BridgeThread, job_id: str) -> list[dict[str, Any]]:
    job = bridge.store.jobs.get(job_id)
    assert job is not None
    return list(job["history"])


@pytest.mark.parametrize(
    ("outcome", "reason", "code", "subject"),
    [
        ("delivered", None, "fax.delivered", "Fax to +1 212-555-0123 delivered (3 pages)"),
        ("failed", "busy", "user_busy", "Fax to +1 212-555-0123 failed: line busy"),
    ],
    ids=["delivered", "busy"],
)
def test_mail_goes_out_through_telnyx_and_its_signed_webhooks_bring_the_report(
    bridge: BridgeThread,
    emulator: TelnyxHarness,
    tmp_path: Path,
    outcome: str,
    reason: str | None,
    code: str,
    subject: str,
) -> None:
    send_scan(bridge, tmp_path)
    job = submitted_job(bridge)

    # What Telnyx got: one upload, our cover page first, from the faxbox's caller ID, and the
    # bridge's callback URL as the fax's own webhook_url.
    upload = wait_for(lambda: _upload(emulator), what="the upload to reach Telnyx")
    form = upload.form()
    assert (form["connection_id"], form["to"], form["from"]) == ([CONNECTION_ID], [TO], [CALLER_ID])
    assert form["webhook_url"] == [
        f"{bridge.config.http.public_url}/callbacks/telnyx?token={CALLBACK_TOKEN}"
    ]
    [contents] = upload.files()
    texts = page_texts(contents.data)
    assert len(texts) == 3 and SUBJECT in texts[0]
    assert "scan 1" in texts[1] and "scan 2" in texts[2]
    assert job["provider_fax_id"] in emulator.state.faxes

    # Progress as Telnyx reports it: queued, then sending.
    assert emulator.complete(job["provider_fax_id"], "submitted").status_code == 200
    assert emulator.complete(job["provider_fax_id"], "sending").status_code == 200
    wait_for(
        lambda: bridge.store.jobs.get(job["id"])["status"] == "sending",  # type: ignore[index]
        what="the job to be sending",
    )

    reply = emulator.complete(job["provider_fax_id"], outcome, reason)
    assert reply.status_code == 200, reply.text

    job = final_job(bridge, TO)
    assert (job["status"], job["reason"], job["provider_code"]) == (outcome, reason, code)
    assert job["history"][-1]["detail"].startswith(f"callback: {outcome}")
    (report,) = maildir_messages(bridge)
    assert report["To"] == "scanner@example.com"
    assert report["Subject"] == subject


def test_forged_and_replayed_webhooks_get_401_or_403_and_change_nothing(
    bridge: BridgeThread, emulator: TelnyxHarness, tmp_path: Path
) -> None:
    send_scan(bridge, tmp_path)
    job = submitted_job(bridge)
    genuine = emulator.status_callback(job["provider_fax_id"], "delivered")
    replayed = emulator.signed(genuine.body, at=time.time() - 900)  # Telnyx's key, too old

    for bad in (emulator.forged(genuine), replayed):
        reply = emulator.post(bad)
        assert reply.status_code in (401, 403), reply.text
    after = bridge.store.jobs.get(job["id"])
    assert after is not None
    assert after["status"] not in ("delivered", "failed")
    assert all(h["status"] != "delivered" for h in after["history"])
    assert bridge.store.outbox.recent() == []

    assert emulator.post(genuine).status_code == 200
    assert final_job(bridge, TO)["status"] == "delivered"


def test_fax_received_is_fetched_from_media_url_and_mailed_to_the_faxbox(
    bridge: BridgeThread, emulator: TelnyxHarness
) -> None:
    pdf = make_pdf("from the clinic", 2)

    reply = emulator.deliver_inbound(CALLER, CALLER_ID, pdf)

    assert reply.status_code == 200, reply.text
    (mail,) = maildir_messages(bridge)
    assert isinstance(mail, EmailMessage)
    assert mail["To"] == ", ".join(bridge.config.faxboxes[0].inbound.email_to)  # the faxbox's
    assert mail["Subject"].startswith("Fax from +1 212-555-0199")
    (part,) = list(mail.iter_attachments())
    assert (part.get_content_type(), part.get_content()) == ("application/pdf", pdf)
    downloads = [r for r in emulator.requests if r.path.startswith("/faxes-prod/")]
    assert len(downloads) == 1 and "authorization" not in downloads[0].headers
    (fax,) = bridge.store.inbound.recent()
    assert (fax["from"], fax["to"], fax["faxbox"]) == (CALLER, CALLER_ID, "main")


def test_without_webhooks_polling_finds_the_fax_delivered(
    emulator: TelnyxHarness,
    make_config: Callable[..., Config],
    start_bridge: Callable[[Config], BridgeThread],
    tmp_path: Path,
) -> None:
    config = provider_faxbox_config(make_config, emulator, status_poll_s=0.3)  # type: ignore[arg-type]
    bridge = start_bridge(config)  # no `providers setup`, and no webhook is ever sent
    send_scan(bridge, tmp_path)
    job = submitted_job(bridge)

    emulator.settle(job["provider_fax_id"], "delivered")

    job = final_job(bridge, TO)
    assert (job["status"], job["provider_code"]) == ("delivered", "fax.delivered")
    assert job["history"][-1]["detail"].startswith("status poll: delivered")
    (report,) = maildir_messages(bridge)
    assert report["Subject"] == "Fax to +1 212-555-0123 delivered (3 pages)"


def test_a_webhook_for_a_fax_the_bridge_never_sent_is_kept_and_answered_200(
    bridge: BridgeThread, emulator: TelnyxHarness
) -> None:
    # "Receiving Webhooks": a non-200 answer sends the webhook to the failover URL, never again
    # to ours, so a 404 would lose it. A fax someone sent from the portal on the same account:
    elsewhere = emulator.state.new_fax("outbound", to=TO, **{"from": CALLER_ID})
    # It reaches the bridge at the URL `providers setup` gave the fax application.

    reply = emulator.post(emulator.status_callback(elsewhere["id"], "delivered"))

    assert reply.status_code == 200, reply.text
    [kept] = bridge.store.callbacks.recent(provider="telnyx")
    assert "names no fax job of this bridge" in kept["reason"]
    assert bridge.store.jobs.recent(status="delivered") == []


def test_a_send_whose_answer_was_lost_is_found_by_client_state_and_not_sent_twice(
    emulator: TelnyxHarness,
    make_config: Callable[..., Config],
    start_bridge: Callable[[Config], BridgeThread],
    tmp_path: Path,
) -> None:
    # Telnyx accepts the upload, but its answer comes after the bridge stopped waiting.
    config = provider_faxbox_config(make_config, emulator, timeout_s=0.5)  # type: ignore[arg-type]
    register_callbacks(config, emulator)  # type: ignore[arg-type]
    emulator.answer_late(2.0)
    bridge = start_bridge(config)
    send_scan(bridge, tmp_path)

    job = submitted_job(bridge)
    uploads = [r for r in emulator.requests if (r.method, r.path) == ("POST", "/v2/faxes")]
    assert len(uploads) == 1
    details = [h["detail"] for h in job["history"]]
    assert any("the provider may have the fax" in d for d in details), details
    assert any(f"found at telnyx as {job['provider_fax_id']}" in d for d in details), details
    assert not any("possible duplicate" in d for d in details), details

    assert emulator.complete(job["provider_fax_id"], "delivered").status_code == 200
    final = final_job(bridge, TO)
    assert (final["status"], final["possible_duplicate"]) == ("delivered", False)
