"""Kazoo searched and tidied: reconciliation by our custom field, redials, privacy, lines."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from bridge.errors import NotSupportedByProvider, TransientProviderError
from bridge.models import FailureReason, JobStatus, Redial, RedialPolicy
from bridge.providers import kazoo_lookup
from bridge.providers.kazoo_records import GREGORIAN_OFFSET_S
from tests.cli_runner import assert_error, run_cli, write_config
from tests.providers.conftest import MakeFax, MakeProvider, ToRequest
from tests.providers.emulators._kazoo_fax_worker import FAILURES
from tests.providers.emulators.kazoo import KazooHarness, make_harness
from tests.providers.harness import RecordedRequest
from tests.providers.pdfs import make_pdf


@pytest.fixture(scope="module")
def harness() -> Iterator[KazooHarness]:
    with make_harness() as running:
        yield running


def calls_since(harness: KazooHarness, start: int) -> list[RecordedRequest]:
    return harness.requests[start:]


def days_ago_id(days: float, serial: int) -> str:
    """A job id as `store.db.new_id` makes them, for a job accepted `days` ago."""
    return f"{int((time.time() - days * 86_400) * 1000):011x}{serial:06x}"


# -- find --------------------------------------------------------------------------------
async def test_find_asks_kazoo_by_our_field_in_outgoing_and_the_outbox(
    harness: KazooHarness, make_provider: MakeProvider, make_fax: MakeFax
) -> None:
    provider = make_provider()
    fax = make_fax()
    first = (await provider.send(fax)).provider_fax_id
    harness.finish(first, "failed", "busy")
    again = replace(fax, round=1)
    second = (await provider.send(again)).provider_fax_id
    await provider.send(make_fax())  # another job
    start = len(harness.requests)

    lookup = await provider.find(again)

    assert lookup.certain
    assert [(f.provider_fax_id, f.round, f.status) for f in lookup.faxes] == [
        (second, 1, JobStatus.SUBMITTED),
        (first, 0, JobStatus.FAILED),
    ]
    assert {f.job_id for f in lookup.faxes} == {fax.job_id}
    assert (lookup.faxes[1].reason, lookup.faxes[1].tries) == (FailureReason.BUSY, 3)
    listings = [r for r in calls_since(harness, start) if r.path.endswith(("/outgoing", "/outbox"))]
    assert [r.path.rsplit("/", 1)[1] for r in listings] == ["outgoing", "outbox"]
    for request in listings:
        assert request.query["filter_faxbridge_job_id"] == [fax.job_id]
    span = listings[1].query
    created_from, created_to = int(span["created_from"][0]), int(span["created_to"][0])
    assert created_to - created_from <= 31 * 86_400  # Crossbar's maximum_range
    assert created_from <= int(time.time()) + GREGORIAN_OFFSET_S - 60


async def test_find_reads_every_page_kazoo_lists(
    harness: KazooHarness,
    make_provider: MakeProvider,
    make_fax: MakeFax,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(kazoo_lookup, "PAGE_SIZE", 2)
    provider = make_provider()
    fax = make_fax()
    sent = [(await provider.send(replace(fax, round=n))).provider_fax_id for n in range(5)]
    for fax_id in sent[:3]:
        harness.finish(fax_id, "delivered")
    start = len(harness.requests)

    lookup = await provider.find(fax)

    assert sorted(f.provider_fax_id for f in lookup.faxes) == sorted(sent)
    assert sorted(f.round or 0 for f in lookup.faxes) == [0, 1, 2, 3, 4]
    pages = [r for r in calls_since(harness, start) if r.path.endswith("/outbox")]
    assert len(pages) == 2 and "start_key" in pages[1].query


async def test_find_looks_back_no_further_than_the_job_and_says_when_it_cannot(
    harness: KazooHarness, make_provider: MakeProvider, make_fax: MakeFax
) -> None:
    provider = make_provider()
    start = len(harness.requests)
    recent = await provider.find(make_fax(job_id=days_ago_id(9, 1)))
    spans = [r.query for r in calls_since(harness, start) if r.path.endswith("/outbox")]
    start = len(harness.requests)
    ancient = await provider.find(make_fax(job_id=days_ago_id(60, 2)))

    assert (recent.certain, recent.faxes) == (True, ())
    oldest = min(int(s["created_from"][0]) for s in spans) - GREGORIAN_OFFSET_S
    assert abs(oldest - (time.time() - 9 * 86_400 - 600)) < 120  # the job's age, no more
    assert len(spans) == 2  # 7-day windows
    assert (ancient.certain, ancient.faxes) == (False, ())
    assert "searched back to" in ancient.detail
    spans = [r.query for r in calls_since(harness, start) if r.path.endswith("/outbox")]
    oldest = min(int(s["created_from"][0]) for s in spans) - GREGORIAN_OFFSET_S
    assert oldest >= time.time() - 36 * 86_400


# -- native redial -------------------------------------------------------------------------
async def test_kazoo_redials_itself_and_the_dials_are_reported(
    harness: KazooHarness, make_provider: MakeProvider, make_fax: MakeFax, to_request: ToRequest
) -> None:
    provider = make_provider()
    assert provider.redials_natively
    policy = RedialPolicy(busy=Redial(3, 300), no_answer=Redial(2, 600))
    fax_id = (await provider.send(replace(make_fax(), redial=policy))).provider_fax_id

    assert harness.dial(fax_id, FAILURES["busy"]) is None  # fax_worker: pending again
    waiting = await provider.status(fax_id)
    assert harness.dial(fax_id, FAILURES["busy"]) is None
    notice = harness.dial(fax_id, FAILURES["busy"])
    assert notice is not None
    (update,) = (await provider.parse_callback(await to_request(harness.notify(notice)))).updates

    assert waiting is not None
    assert (waiting.status, waiting.provider_code, waiting.tries) == (
        JobStatus.SUBMITTED,
        "pending",
        1,
    )
    assert (update.status, update.reason, update.tries) == (JobStatus.FAILED, FailureReason.BUSY, 3)


# -- cancel, delete ------------------------------------------------------------------------
async def test_kazoo_cannot_cancel_a_queued_fax(
    make_provider: MakeProvider, make_fax: MakeFax
) -> None:
    provider = make_provider()
    fax_id = (await provider.send(make_fax())).provider_fax_id
    with pytest.raises(NotSupportedByProvider):
        await provider.cancel(fax_id)


async def test_delete_removes_the_sent_document_then_the_record_for_good(
    harness: KazooHarness, make_provider: MakeProvider, make_fax: MakeFax
) -> None:
    provider = make_provider()
    fax_id = (await provider.send(make_fax())).provider_fax_id
    harness.finish(fax_id, "delivered")
    outbox_id = harness.outbox(fax_id)["_id"]
    start = len(harness.requests)

    await provider.delete(fax_id)
    await provider.delete(fax_id)  # idempotent

    assert outbox_id not in harness.state.modb and outbox_id not in harness.state.attachments
    attachment, record = calls_since(harness, start)[:2]
    assert (attachment.method, attachment.path.rsplit("/faxes/", 1)[1]) == (
        "DELETE",
        f"outbox/{outbox_id}/attachment",
    )
    assert (record.method, record.query) == ("DELETE", {"should_soft_delete": ["false"]})
    assert await provider.status(fax_id) is None


async def test_a_fax_still_in_the_queue_is_deleted_later(
    harness: KazooHarness, make_provider: MakeProvider, make_fax: MakeFax
) -> None:
    provider = make_provider()
    fax_id = (await provider.send(make_fax())).provider_fax_id
    with pytest.raises(TransientProviderError):
        await provider.delete(fax_id)
    assert fax_id in harness.state.faxes_db


async def test_delete_removes_a_received_fax_and_its_document(
    harness: KazooHarness, make_provider: MakeProvider, to_request: ToRequest
) -> None:
    provider = make_provider()
    callback = harness.inbound_callback("+13105550199", "+12125550100", make_pdf("INBOUND"))
    (fax,) = (await provider.parse_callback(await to_request(callback))).inbound

    await provider.delete(fax.provider_fax_id, inbound=True)

    assert fax.provider_fax_id not in harness.state.modb
    assert fax.provider_fax_id not in harness.state.attachments


# -- fax lines -----------------------------------------------------------------------------
async def test_fax_lines_are_the_numbers_kazoo_lets_a_fax_carry(
    harness: KazooHarness, make_provider: MakeProvider
) -> None:
    states = {"+12125550101": "reserved", "+12125550102": "available",
              "+12125550103": "port_in", "+12125550104": "deleted"}  # fmt: skip
    for number, state in states.items():
        harness.state.numbers[number] = {"state": state, "features": []}
    many = {f"+1646555{n:04d}": {"state": "in_service"} for n in range(120)}
    harness.state.numbers.update(many)
    start = len(harness.requests)

    lines = await make_provider().fax_lines()

    assert lines is not None
    assert {"+12125550100", "+12125550101", "+12125550103"} <= set(lines)
    assert not {"+12125550102", "+12125550104"} & set(lines)
    assert set(many) <= set(lines)
    pages = calls_since(harness, start)
    assert len(pages) == 2 and pages[1].query["start_key"] == [sorted(harness.state.numbers)[100]]


async def test_a_number_still_being_ported_in_is_no_fax_line(
    harness: KazooHarness, make_provider: MakeProvider
) -> None:
    # cb_phone_numbers lists an unfinished port request's numbers as `port_in`, but
    # fax_worker's caller-ID check (knm_numbers:lookup_account) does not know them yet.
    harness.state.port_requests["+12125550177"] = "submitted"
    try:
        lines = await make_provider().fax_lines()
    finally:
        harness.state.port_requests.clear()

    assert lines is not None and "+12125550100" in lines
    assert "+12125550177" not in lines


# -- configuration -------------------------------------------------------------------------
def test_check_config_refuses_a_kazoo_faxbox_without_caller_id(tmp_path: Path, db_url: str) -> None:
    config = tmp_path / "config.yaml"
    kazoo = {"type": "kazoo", "base_url": "http://127.0.0.1:9/v2", "account_id": "a" * 32,
             "auth_token": "t"}  # fmt: skip
    box = {"name": "frontdesk", "domains": ["fax.localhost"], "provider": "kz"}
    write_config(config, tmp_path, db_url, providers={"kz": kazoo}, faxboxes=[box])

    result = run_cli("check-config", config=config)

    assert_error(result, "faxbox 'frontdesk'", "kazoo", "caller ID", "set caller_id")
    assert result.stdout == ""
