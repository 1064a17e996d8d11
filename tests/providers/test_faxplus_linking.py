"""Fax.Plus: issue 9's findings, each against the emulator built from Fax.Plus's material.

A fax record's comment is plain text; webhooks name the fax by `hook.id` and the faxing session
by `data.id`; the sent-fax listing is paged by time window, bounded; Fax.Plus redials itself;
cancel, delete and the account's lines.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from bridge.config import FaxPlusConfig
from bridge.errors import PermanentProviderError
from bridge.models import JobStatus, OutboundFax, Redial, RedialPolicy
from bridge.providers import faxplus_lookup
from bridge.providers.base import ProviderContext
from bridge.providers.faxplus import FaxPlusProvider
from tests.providers.conftest import CALLBACK_TOKEN, callback_request
from tests.providers.emulators._faxplus_state import now_text
from tests.providers.emulators.faxplus import FaxPlusHarness, make_harness
from tests.providers.harness import CallbackHTTP, RecordedRequest
from tests.providers.pdfs import make_pdf

JOB = "0190f2a1b3c4d5e6f"
ACCOUNT = "/v3/accounts/self"


@pytest.fixture
def harness() -> Iterator[FaxPlusHarness]:
    with make_harness() as running:
        yield running


@pytest.fixture
async def provider(harness: FaxPlusHarness) -> AsyncIterator[FaxPlusProvider]:
    config = FaxPlusConfig.model_validate(harness.provider_config(CALLBACK_TOKEN))
    context = ProviderContext(public_url="http://127.0.0.1:9/bridge", data_dir=Path("."))
    async with httpx.AsyncClient() as client:
        yield FaxPlusProvider("faxplus", config, client, context)


def make_fax(
    tmp_path: Path, *, job_id: str = JOB, round: int = 0, redial: RedialPolicy | None = None
) -> OutboundFax:
    document = tmp_path / f"{job_id}-{round}.pdf"
    document.write_bytes(make_pdf("the document"))
    return OutboundFax(
        job_id=job_id,
        to="+12125550123",
        caller_id="+12125550100",
        document=document,
        pages=1,
        cover=None,
        cover_pdf=None,
        callback_url="",
        round=round,
        redial=redial or RedialPolicy(),
    )


def paths(requests: list[RecordedRequest], method: str = "GET") -> list[str]:
    return [r.path for r in requests if r.method == method]


def edited(callback: CallbackHTTP, **hook: Any) -> CallbackHTTP:
    body = json.loads(callback.body)
    body["hook"].update(hook)
    return CallbackHTTP(headers=callback.headers, body=json.dumps(body).encode())


# -- linking a webhook to our job ------------------------------------------------------------
async def test_fax_sent_webhook_links_the_job_from_the_fax_records_plain_text_comment(
    harness: FaxPlusHarness, provider: FaxPlusProvider, tmp_path: Path
) -> None:
    outbox_id = (await provider.send(make_fax(tmp_path))).provider_fax_id
    callback = harness.raw_callback(outbox_id, "success")
    [(fax_id, record)] = harness.state.faxes.items()
    assert record["comment"] == f"faxbridge job {JOB}"  # a string: the tags stayed behind

    result = await provider.parse_callback(await callback_request(callback))

    [update] = result.updates
    assert (update.job_id, update.round, update.status) == (JOB, 0, JobStatus.DELIVERED)
    assert update.provider_fax_id == fax_id != outbox_id  # the store adopts the fax's id
    assert f"{ACCOUNT}/faxes/{fax_id}" in paths(harness.requests)


async def test_a_redialled_fax_is_linked_through_hook_id_when_data_id_names_the_session(
    harness: FaxPlusHarness, provider: FaxPlusProvider, tmp_path: Path
) -> None:
    outbox_id = (await provider.send(make_fax(tmp_path))).provider_fax_id
    callback = harness.raw_callback(outbox_id, "success", redialled=True)
    body = json.loads(callback.body)
    session, fax_id = body["data"]["id"], body["hook"]["id"]
    assert session != fax_id  # concepts/webhook: "the fax is being retried"

    [update] = (await provider.parse_callback(await callback_request(callback))).updates

    assert (update.job_id, update.provider_fax_id) == (JOB, fax_id)
    looked = paths(harness.requests)
    assert looked.index(f"{ACCOUNT}/faxes/{session}") < looked.index(f"{ACCOUNT}/faxes/{fax_id}")


async def test_a_webhook_whose_ids_name_no_record_is_linked_by_destination_and_start_time(
    harness: FaxPlusHarness, provider: FaxPlusProvider, tmp_path: Path
) -> None:
    outbox_id = (await provider.send(make_fax(tmp_path))).provider_fax_id
    harness.state.complete("someone-else", "success")  # same minute, another destination
    harness.state.faxes[next(reversed(harness.state.faxes))]["to"] = "+12125550999"
    callback = edited(harness.raw_callback(outbox_id, "success", redialled=True), id="f" * 24)

    [update] = (await provider.parse_callback(await callback_request(callback))).updates

    assert update.job_id == JOB
    [listing] = [r for r in harness.requests if r.path == f"{ACCOUNT}/faxes"]
    assert listing.query["category"] == ["sent"]


async def test_a_webhook_for_a_fax_of_someone_elses_has_no_job_and_says_so(
    harness: FaxPlusHarness, provider: FaxPlusProvider, caplog: pytest.LogCaptureFixture
) -> None:
    callback = harness.raw_callback("sent-from-the-web-app", "success")

    with caplog.at_level(logging.WARNING):
        [update] = (await provider.parse_callback(await callback_request(callback))).updates

    assert (update.job_id, update.status) == (None, JobStatus.DELIVERED)
    assert "carries no reference of ours" in caplog.text


async def test_a_busy_dial_that_fax_plus_will_redial_is_not_the_end_of_the_job(
    harness: FaxPlusHarness, provider: FaxPlusProvider, tmp_path: Path
) -> None:
    outbox_id = (await provider.send(make_fax(tmp_path))).provider_fax_id
    callback = harness.redial_callback(outbox_id, "failed_user_busy")

    [update] = (await provider.parse_callback(await callback_request(callback))).updates

    assert (update.status, update.reason, update.job_id) == (JobStatus.SUBMITTED, None, JOB)
    assert update.provider_text == "The destination was busy; Fax.Plus redials"


@pytest.mark.parametrize("event", ["fax_page_received", "fax_sent"])
async def test_a_webhook_the_bridge_cannot_read_is_kept_with_a_warning(
    harness: FaxPlusHarness,
    provider: FaxPlusProvider,
    caplog: pytest.LogCaptureFixture,
    event: str,
) -> None:
    callback = harness.unclassifiable_callback()  # fax_page_received: one streamed page
    if event == "fax_sent":  # a fax_sent without a status
        callback = edited(callback, event="fax_sent")

    with caplog.at_level(logging.WARNING):
        result = await provider.parse_callback(await callback_request(callback))

    assert result.updates == [] and result.inbound == []
    [kept] = result.unclassified
    assert kept.event == event and kept.provider_fax_id
    assert kept.reason in caplog.text
    assert provider.retries_refused_callbacks is False  # an unknown fax is kept, answered 200


async def test_an_inbound_fax_is_named_by_hook_id_so_its_file_and_record_can_be_reached(
    harness: FaxPlusHarness, provider: FaxPlusProvider
) -> None:
    pdf = make_pdf("received")
    callback = harness.inbound_callback("+13343041234", "+12125550100", pdf)
    body = json.loads(callback.body)
    fax_id = body["hook"]["id"]
    body["data"]["id"] = "e" * 24  # a session id of its own, which no record is filed under
    callback = CallbackHTTP(headers=callback.headers, body=json.dumps(body).encode())

    [inbound] = (await provider.parse_callback(await callback_request(callback))).inbound

    assert inbound.provider_fax_id == fax_id
    assert (inbound.from_number, inbound.to_number) == ("+13343041234", "+12125550100")
    assert await provider.fetch_document(inbound) == pdf
    await provider.delete(inbound.provider_fax_id, inbound=True)
    assert harness.state.deleted == [fax_id]


# -- polling and find: the sent faxes, paged by time window ------------------------------------
def spread(harness: FaxPlusHarness, count: int, every: timedelta) -> None:
    """`count` sent faxes of someone else's, one each `every` back from now."""
    now = datetime.now(UTC)
    for i in range(count):
        harness.state.seed_sent(1, now - every * i, comment="sent by a colleague")


async def test_status_finds_a_sent_fax_many_pages_back_with_a_bounded_walk(
    harness: FaxPlusHarness, provider: FaxPlusProvider, tmp_path: Path
) -> None:
    outbox_id = (await provider.send(make_fax(tmp_path))).provider_fax_id
    sent = harness.state.complete(outbox_id, "failed_no_answer").record
    sent["start_time"] = now_text(datetime.now(UTC) - timedelta(hours=5))
    spread(harness, 130, timedelta(seconds=40))  # 130 newer faxes: more than two pages of 50
    start = len(harness.requests)

    update = await provider.status(outbox_id, job_id=JOB)

    assert update is not None
    assert (update.provider_fax_id, update.job_id) == (sent["id"], JOB)
    assert update.status is JobStatus.FAILED
    listings = [r for r in harness.requests[start:] if r.path == f"{ACCOUNT}/faxes"]
    assert 3 <= len(listings) <= faxplus_lookup.MAX_REQUESTS
    assert all({"after", "before"} <= set(r.query) for r in listings)


async def test_find_reads_the_outbox_and_the_sent_faxes_by_the_comment_text(
    harness: FaxPlusHarness, provider: FaxPlusProvider, tmp_path: Path
) -> None:
    first = (await provider.send(make_fax(tmp_path))).provider_fax_id
    harness.settle(first, "failed", "busy")  # round 0 sent: a fax record, plain comment
    spread(harness, 60, timedelta(seconds=30))
    again = (await provider.send(make_fax(tmp_path, round=1))).provider_fax_id  # in the outbox

    lookup = await provider.find(make_fax(tmp_path, round=1))

    assert lookup.certain
    assert [(f.round, f.status) for f in lookup.faxes] == [
        (1, JobStatus.SUBMITTED),
        (0, JobStatus.FAILED),
    ]
    assert lookup.faxes[0].provider_fax_id == again
    assert f"{ACCOUNT}/outbox" in paths(harness.requests)


async def test_a_walk_that_hits_its_bound_says_so_and_find_is_not_certain(
    harness: FaxPlusHarness,
    provider: FaxPlusProvider,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(faxplus_lookup, "MAX_REQUESTS", 3)
    spread(harness, 200, timedelta(seconds=15))
    start = len(harness.requests)

    with caplog.at_level(logging.WARNING):
        lookup = await provider.find(make_fax(tmp_path, job_id="0190f2a1b3c4d5eff"))

    assert (lookup.certain, lookup.faxes) == (False, ())
    assert "read 3 pages" in lookup.detail and "read 3 pages" in caplog.text
    listings = [r for r in harness.requests[start:] if r.path == f"{ACCOUNT}/faxes"]
    assert len(listings) == 3


# -- native redial ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("policy", "retry"),
    [
        (RedialPolicy(), {"count": 2, "delay": 5}),  # busy: 3 dials 5 minutes apart
        (RedialPolicy(busy=Redial(2, 90.0), no_answer=Redial(1, 60.0)), {"count": 1, "delay": 2}),
        (
            RedialPolicy(busy=Redial(6, 7200.0), no_answer=Redial(2, 60.0)),
            {"count": 2, "delay": 29},
        ),
        (RedialPolicy(busy=Redial(1, 300.0), no_answer=Redial(1, 300.0)), None),
    ],
)
async def test_send_asks_fax_plus_to_redial_as_the_faxbox_policy_says(
    harness: FaxPlusHarness,
    provider: FaxPlusProvider,
    tmp_path: Path,
    policy: RedialPolicy,
    retry: dict[str, int] | None,
) -> None:
    outbox_id = (await provider.send(make_fax(tmp_path, redial=policy))).provider_fax_id

    [sent] = [r for r in harness.requests if r.method == "POST" and r.path.endswith("/outbox")]
    assert sent.json().get("options") == ({"retry": retry} if retry else None)
    assert harness.state.outbox[outbox_id]["retry"] == (retry or {})
    assert provider.redials_natively  # so the bridge does not redial on top


# -- cancel, delete, lines -------------------------------------------------------------------
async def test_cancel_deletes_the_outbox_fax_and_refuses_once_it_was_sent(
    harness: FaxPlusHarness, provider: FaxPlusProvider, tmp_path: Path
) -> None:
    queued = (await provider.send(make_fax(tmp_path))).provider_fax_id
    sent = (await provider.send(make_fax(tmp_path, round=1))).provider_fax_id
    harness.settle(sent, "delivered")

    await provider.cancel(queued)
    with pytest.raises(PermanentProviderError, match="cannot be cancelled"):
        await provider.cancel(sent)

    assert paths(harness.requests, "DELETE") == [
        f"{ACCOUNT}/outbox/{queued}",
        f"{ACCOUNT}/outbox/{sent}",
    ]
    assert harness.state.deleted == [queued] and queued not in harness.state.outbox


async def test_delete_removes_a_sent_or_received_fax_and_its_file_and_is_idempotent(
    harness: FaxPlusHarness, provider: FaxPlusProvider, tmp_path: Path
) -> None:
    outbox_id = (await provider.send(make_fax(tmp_path))).provider_fax_id
    fax_id = harness.state.complete(outbox_id, "success").record["id"]
    inbound = await provider.parse_callback(
        await callback_request(harness.inbound_callback("+13343041234", "+12125550100", b"%PDF"))
    )
    [received] = inbound.inbound

    await provider.delete(fax_id)
    await provider.delete(fax_id)  # gone already: done
    await provider.delete(received.provider_fax_id, inbound=True)

    assert harness.state.deleted == [fax_id, received.provider_fax_id]
    assert harness.state.faxes == {} and harness.state.documents == {}


async def test_fax_lines_are_the_accounts_numbers_without_cancelled_or_unverified_ones(
    harness: FaxPlusHarness, provider: FaxPlusProvider
) -> None:
    assert await provider.fax_lines() == ["+12125550100"]
    assert paths(harness.requests) == [f"{ACCOUNT}/numbers"]


def test_a_fax_plus_fax_is_forgotten_only_after_two_hours() -> None:
    assert FaxPlusProvider.forgotten_grace_s == 2 * 3600.0
