"""Fax.Plus: the fresh audit's findings, each against the emulator built from Fax.Plus's material.

Status meanings from apidoc.fax.plus/concepts/fax, both spellings of the upload answer
(docs/FilesApi.md, docs/FilePath.md), an inbound fax still being received, every id getFile
takes (docs/WebhookCallbackData.md, docs/Fax.md), the listing's window edges, rate limits.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from bridge.config import FaxPlusConfig
from bridge.errors import PermanentProviderError, TransientProviderError
from bridge.models import FailureReason, JobStatus, OutboundFax, RedialPolicy
from bridge.providers.base import ProviderContext
from bridge.providers.faxplus import FaxPlusProvider
from bridge.providers.faxplus_lookup import CLOCK_SKEW, FIRST_WINDOW
from bridge.store.db import new_id
from tests.providers.conftest import CALLBACK_TOKEN, callback_request
from tests.providers.emulators._faxplus_state import now_text
from tests.providers.emulators.faxplus import FaxPlusHarness, make_harness
from tests.providers.harness import CallbackHTTP
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


@pytest.fixture
def fax(tmp_path: Path) -> OutboundFax:
    document = tmp_path / "document.pdf"
    document.write_bytes(make_pdf("the document"))
    return OutboundFax(
        job_id=JOB,
        to="+12125550123",
        caller_id="+12125550100",
        document=document,
        pages=1,
        cover=None,
        cover_pdf=None,
        callback_url="",
        redial=RedialPolicy(),
    )


def rewritten(callback: CallbackHTTP, **data: object) -> CallbackHTTP:
    body = json.loads(callback.body)
    body["data"].update(data)
    return CallbackHTTP(headers=callback.headers, body=json.dumps(body).encode())


# -- what each status means ------------------------------------------------------------------
async def test_normal_clearing_is_the_busy_line_fax_plus_says_it_is_and_is_redialled(
    harness: FaxPlusHarness, provider: FaxPlusProvider, fax: OutboundFax
) -> None:
    """apidoc.fax.plus/concepts/fax: `failed_normal_clearing` "Destination was busy. Wait and
    retry." A dial that Fax.Plus will redial (still in the outbox) is not the end."""
    outbox_id = (await provider.send(fax)).provider_fax_id

    redialling = harness.redial_callback(outbox_id, "failed_normal_clearing")
    (update,) = (await provider.parse_callback(await callback_request(redialling))).updates
    assert (update.status, update.job_id) == (JobStatus.SUBMITTED, JOB)
    assert update.provider_text == "The destination was busy; Fax.Plus redials"

    final = harness.raw_callback(outbox_id, "failed_normal_clearing")
    (update,) = (await provider.parse_callback(await callback_request(final))).updates
    assert (update.status, update.reason) == (JobStatus.FAILED, FailureReason.BUSY)


async def test_a_record_whose_description_repeats_the_code_is_explained_in_words(
    harness: FaxPlusHarness, provider: FaxPlusProvider, fax: OutboundFax
) -> None:
    outbox_id = (await provider.send(fax)).provider_fax_id
    record = harness.state.complete(outbox_id, "failed_no_answer").record
    record["description"] = "failed_no_answer"

    update = await provider.status(record["id"])

    assert update is not None
    assert (update.reason, update.provider_text) == (
        FailureReason.NO_ANSWER,
        "No answer at the destination",
    )


async def test_in_progress_is_never_read_as_a_failure(
    harness: FaxPlusHarness, provider: FaxPlusProvider, fax: OutboundFax
) -> None:
    """`in_progress` (apidoc.fax.plus/concepts/fax) is still under way wherever it shows up."""
    outbox_id = (await provider.send(fax)).provider_fax_id
    record = harness.state.complete(outbox_id, "in_progress").record

    update = await provider.status(record["id"])

    assert update is not None and (update.status, update.reason) == (JobStatus.SENDING, None)


# -- the upload answer -----------------------------------------------------------------------
async def test_an_upload_answer_naming_file_path_is_sent_on(
    harness: FaxPlusHarness, provider: FaxPlusProvider, fax: OutboundFax
) -> None:
    """docs/FilesApi.md upload_file: "you would receive a `file_path`" (FilePath.md: `path`)."""
    harness.state.files["/transient-named-file-path.pdf"] = make_pdf("the document")
    harness.fail_next(200, {"file_path": "/transient-named-file-path.pdf"})

    result = await provider.send(fax)

    assert harness.requests[-1].json()["files"] == ["/transient-named-file-path.pdf"]
    assert result.provider_fax_id in harness.state.outbox


# -- inbound ---------------------------------------------------------------------------------
async def test_a_fax_still_being_received_is_kept_and_its_final_webhook_recorded(
    harness: FaxPlusHarness, provider: FaxPlusProvider
) -> None:
    pdf = make_pdf("arriving")
    final = harness.inbound_callback("+13343041234", "+12125550100", pdf)
    streaming = rewritten(final, status="in_progress")

    early = await provider.parse_callback(await callback_request(streaming))
    assert early.inbound == [] and early.updates == []
    [kept] = early.unclassified
    assert "still being received" in kept.reason

    [inbound] = (await provider.parse_callback(await callback_request(final))).inbound
    assert await provider.fetch_document(inbound) == pdf


async def test_an_inbound_file_is_fetched_by_its_file_id_when_no_fax_id_names_it(
    harness: FaxPlusHarness, provider: FaxPlusProvider
) -> None:
    """docs/Fax.md: `file` is the "Fax file ID for the getFile handle"."""
    pdf = make_pdf("received")
    callback = harness.inbound_callback("+13343041234", "+12125550100", pdf)
    body = json.loads(callback.body)
    body["hook"]["id"], body["data"]["id"] = "a" * 24, "b" * 24  # ids getFile does not take
    callback = CallbackHTTP(headers=callback.headers, body=json.dumps(body).encode())
    file_id = body["data"]["file"].removesuffix(".tiff")

    [inbound] = (await provider.parse_callback(await callback_request(callback))).inbound

    assert await provider.fetch_document(inbound) == pdf
    tried = [r.path for r in harness.requests if r.path.startswith(f"{ACCOUNT}/files/")]
    assert tried == [f"{ACCOUNT}/files/{name}" for name in ("a" * 24, "b" * 24, file_id)]


async def test_an_inbound_fax_with_no_file_under_any_id_is_a_permanent_error(
    harness: FaxPlusHarness, provider: FaxPlusProvider
) -> None:
    callback = harness.inbound_callback("+13343041234", "+12125550100", make_pdf("gone"))
    harness.state.documents.clear()

    [inbound] = (await provider.parse_callback(await callback_request(callback))).inbound

    with pytest.raises(PermanentProviderError, match="no file for inbound fax") as caught:
        await provider.fetch_document(inbound)
    assert caught.value.code == "404"
    assert len([r for r in harness.requests if "/files/" in r.path]) == 3  # id, file, file.tiff


# -- the sent-fax listing's window edges -----------------------------------------------------
async def test_a_fax_on_a_window_edge_is_found_whichever_way_after_is_read(
    harness: FaxPlusHarness, provider: FaxPlusProvider, fax: OutboundFax
) -> None:
    """docs/FaxesApi.md does not say whether `after` takes in its own second: served here as
    exclusive, a fax started on the first window's lower edge must still be found."""
    harness.state.after_exclusive = True
    edge = datetime.now(UTC).replace(microsecond=0) + CLOCK_SKEW - FIRST_WINDOW
    for k in range(-3, 4):  # one of them on the edge, whatever second the walk starts in
        harness.state.seed_sent(
            1, edge + timedelta(seconds=k), comment=f"faxbridge job {JOB}-r{k + 3}"
        )

    lookup = await provider.find(fax)

    assert lookup.certain
    assert sorted(f.round for f in lookup.faxes if f.round is not None) == list(range(7))


# -- rate limits -----------------------------------------------------------------------------
@pytest.mark.parametrize("which", ["upload", "outbox"])
async def test_a_429_while_sending_is_rate_limited_never_an_attempt(
    harness: FaxPlusHarness, provider: FaxPlusProvider, fax: OutboundFax, which: str
) -> None:
    if which == "outbox":
        harness.state.files["/transient-ok.pdf"] = make_pdf("the document")
        harness.fail_next(200, {"path": "/transient-ok.pdf"})
    harness.fail_next(429, {"error": "too_many_requests", "description": "Slow down"})

    with pytest.raises(TransientProviderError) as caught:
        await provider.send(fax)

    assert caught.value.rate_limited and not caught.value.maybe_sent
    assert caught.value.retry_after_s == 30  # the emulator's Retry-After
    assert harness.state.outbox == {}


async def test_a_429_on_a_status_poll_is_rate_limited(
    harness: FaxPlusHarness, provider: FaxPlusProvider, fax: OutboundFax
) -> None:
    outbox_id = (await provider.send(fax)).provider_fax_id
    harness.fail_next(429, {"error": "too_many_requests"})

    with pytest.raises(TransientProviderError) as caught:
        await provider.status(outbox_id, job_id=JOB)

    assert caught.value.rate_limited
    assert await provider.status(outbox_id, job_id=JOB) is not None


# -- webhooks for faxes of someone else's ----------------------------------------------------
async def test_a_webhook_for_a_colleagues_fax_is_not_searched_for(
    harness: FaxPlusHarness, provider: FaxPlusProvider
) -> None:
    """`fax_sent` covers the whole account (web app, colleagues): a fax record without our
    reference answers the question; no listing is walked for it."""
    for i in range(120):
        harness.state.seed_sent(1, datetime.now(UTC) - timedelta(minutes=i), comment="by hand")
    callback = harness.raw_callback("sent-from-the-web-app", "success")

    [update] = (await provider.parse_callback(await callback_request(callback))).updates

    assert update.job_id is None
    assert [r.path for r in harness.requests if r.path == f"{ACCOUNT}/faxes"] == []


async def test_a_webhook_naming_no_record_is_looked_for_only_around_its_start_time(
    harness: FaxPlusHarness, provider: FaxPlusProvider, fax: OutboundFax
) -> None:
    outbox_id = (await provider.send(fax)).provider_fax_id
    sent = harness.raw_callback(outbox_id, "success")
    body = json.loads(sent.body)
    started = datetime.now(UTC).replace(microsecond=0) - timedelta(days=3)
    harness.state.faxes[body["hook"]["id"]]["start_time"] = now_text(started)
    body["hook"]["id"] = body["data"]["id"] = "c" * 24  # ids no record is filed under
    body["data"]["start_time"] = now_text(started)
    callback = CallbackHTTP(headers=sent.headers, body=json.dumps(body).encode())

    [update] = (await provider.parse_callback(await callback_request(callback))).updates

    assert update.job_id == JOB
    listings = [r for r in harness.requests if r.path == f"{ACCOUNT}/faxes"]
    assert listings and all(
        now_text(started - timedelta(hours=2, seconds=1)) <= r.query["after"][0]
        and r.query["before"][0] <= now_text(started + timedelta(minutes=10))
        for r in listings
    )


# -- no further back than the job ------------------------------------------------------------
async def test_polling_a_job_reads_the_sent_faxes_no_further_back_than_the_job(
    harness: FaxPlusHarness, provider: FaxPlusProvider, fax: OutboundFax
) -> None:
    """A fax Fax.Plus lost sight of is polled every `status_poll_s` for its grace period:
    each poll reads only the sent faxes since the job was created (its id tells when)."""
    for i in range(300):  # three busy days of colleagues' faxes before this job
        harness.state.seed_sent(1, datetime.now(UTC) - timedelta(minutes=15 + i * 15))
    job = new_id()
    born = datetime.now(UTC).replace(microsecond=0)
    queued = OutboundFax(**{**fax.__dict__, "job_id": job})
    outbox_id = (await provider.send(queued)).provider_fax_id
    harness.state.outbox.pop(outbox_id)  # gone, and no sent fax carries the job's reference
    start = len(harness.requests)

    assert await provider.status(outbox_id, job_id=job) is None
    lookup = await provider.find(queued)

    assert (lookup.certain, lookup.faxes) == (True, ())
    listings = [r for r in harness.requests[start:] if r.path == f"{ACCOUNT}/faxes"]
    assert len(listings) == 2  # one window each
    oldest = now_text(born - CLOCK_SKEW - timedelta(seconds=2))
    assert all(r.query["after"][0] >= oldest for r in listings)
