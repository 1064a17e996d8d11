"""Dropbox Sign callbacks: the official event_hash, the official fax sample, reading by payload
whatever the event name, nothing dropped in silence, inbound numbers never an e-mail address."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bridge.config import DropboxSignConfig
from bridge.errors import CallbackAuthError, CallbackError
from bridge.models import FailureReason, JobStatus
from bridge.providers.base import FaxProvider, ProviderContext
from bridge.providers.dropboxsign import DropboxSignProvider
from bridge.providers.dropboxsign_wire import event_hash
from tests.providers.conftest import PUBLIC_URL, MakeFax, ToRequest
from tests.providers.emulators import _dropboxsign_events as events
from tests.providers.emulators.dropboxsign import API_KEY, DropboxSignHarness, Fax, make_harness
from tests.providers.harness import CallbackHTTP, RecordedRequest
from tests.providers.pdfs import make_pdf

REPLY = "Hello API Event Received"


@pytest.fixture(scope="module")
def harness() -> Iterator[DropboxSignHarness]:
    with make_harness() as running:
        yield running


async def _sent(provider: FaxProvider[Any], harness: DropboxSignHarness, fax: Any) -> Fax:
    return harness.state.faxes[(await provider.send(fax)).provider_fax_id]


def _payload(callback: CallbackHTTP) -> dict[str, Any]:
    sent = RecordedRequest("POST", "/", {}, callback.headers, callback.body)
    payload: dict[str, Any] = json.loads(sent.form()["json"][0])
    return payload


# -- authentication ------------------------------------------------------------------------
def test_event_hash_matches_the_official_sdk_fixture() -> None:
    # hellosign-openapi test_fixtures/EventCallbackHelper_AccountCallbacks.json "base", with
    # the key of sdks/python/tests/test_event_callback_helper.py.
    key = "324e3b0840f065eb51f3fd63231d0d33daa35d4ed10d27718839e81737065782"
    assert event_hash(key, "1348177752", "unknown_error") == (
        "c574f5d3090c2936360b4e36cf6835cf3e2206b84fdc6347e6b28ca721ae1371"
    )


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda e: e.pop("event_hash"), id="missing-hash"),
        pytest.param(lambda e: e.update(event_type="transmission_success"), id="changed-type"),
        pytest.param(lambda e: e.update(event_time="1738009999"), id="changed-time"),
        pytest.param(lambda e: e.update(event_hash="0" * 64), id="zero-hash"),
    ],
)
async def test_tampered_callbacks_are_refused(
    harness: DropboxSignHarness,
    provider: FaxProvider[Any],
    make_fax: MakeFax,
    to_request: ToRequest,
    tamper: Any,
) -> None:
    fax = await _sent(provider, harness, make_fax())
    payload = _payload(events.sample_callback(API_KEY, fax))
    tamper(payload["event"])

    with pytest.raises(CallbackAuthError):
        await provider.parse_callback(await to_request(events.as_callback(payload)))


async def test_a_callback_without_its_json_field_is_a_callback_error(
    provider: FaxProvider[Any], to_request: ToRequest
) -> None:
    body = b'{"event": {}}'
    with pytest.raises(CallbackError):
        await provider.parse_callback(
            await to_request(CallbackHTTP({"content-type": "text/plain"}, body))
        )


async def test_a_v1_callback_at_the_v3_url_is_refused_and_says_where_it_belongs(
    provider: FaxProvider[Any], to_request: ToRequest
) -> None:
    # v3migration: the v1 callback URLs "remain in the v1 format" (help.dropbox.com sample).
    v1 = {"Transaction": {"Guid": "ab" * 20, "StatusCode": "S", "ErrorCode": None}}
    with pytest.raises(CallbackError) as caught:
        await provider.parse_callback(await to_request(events.as_callback(v1)))

    assert "v1 callback" in str(caught.value)
    assert "DefaultOutboundFaxCallbackUrl" in str(caught.value)
    assert not isinstance(caught.value, CallbackAuthError)


# -- the official sample -------------------------------------------------------------------
async def test_the_official_transmission_disconnected_sample_fails_the_job_as_disconnected(
    harness: DropboxSignHarness,
    provider: FaxProvider[Any],
    make_fax: MakeFax,
    to_request: ToRequest,
) -> None:
    # help.dropbox.com "callback-event-example-dropbox-fax-api": no status code, no fax_id,
    # `has_error` and a files_url whose segment is not the fax id; the title names the job.
    fax = make_fax()
    sent = await _sent(provider, harness, fax)
    sent.status_code = "error_disconnected"

    result = await provider.parse_callback(
        await to_request(events.sample_callback(API_KEY, sent, event_time=1738001529))
    )

    [update] = result.updates
    assert (update.status, update.reason) == (JobStatus.FAILED, FailureReason.DISCONNECTED)
    assert (update.job_id, update.round) == (fax.job_id, 0)
    assert update.provider_code == "transmission_disconnected"
    assert update.at is not None and update.at.timestamp() == 1738001529  # the event_time
    assert (result.unclassified, result.reply_body) == ([], REPLY)


# -- the seven official fax events ----------------------------------------------------------
@pytest.mark.parametrize(
    ("event_type", "status", "reason"),
    [
        ("fax_sent", JobStatus.DELIVERED, None),
        ("fax_on_hold", JobStatus.FAILED, FailureReason.ON_HOLD),
        ("fax_busy", JobStatus.FAILED, FailureReason.BUSY),
        ("fax_no_answer", JobStatus.FAILED, FailureReason.NO_ANSWER),
        ("fax_disconnected", JobStatus.FAILED, FailureReason.DISCONNECTED),
        ("fax_blacklisted", JobStatus.FAILED, FailureReason.BLOCKED_DESTINATION),
    ],
)
async def test_each_official_fax_event_example_settles_the_job_it_names(
    harness: DropboxSignHarness,
    provider: FaxProvider[Any],
    make_fax: MakeFax,
    to_request: ToRequest,
    event_type: str,
    status: JobStatus,
    reason: FailureReason | None,
) -> None:
    # hellosign-openapi examples/json/EventCallbackFax*.json: no fax_id, no status code, and
    # `is_complete: false` even for fax_sent (`has_error: false` for fax_on_hold): only the
    # event name tells. The fax id is the final_copy_uri segment, not the files_url one.
    fax = make_fax()
    sent = await _sent(provider, harness, fax)
    callback = events.official_event(API_KEY, event_type, sent, event_time=1738001529)
    transmission = _payload(callback)["transmission"]
    assert "fax_id" not in transmission and "transmissions" not in transmission
    assert transmission["is_complete"] is False
    assert not transmission["files_url"].endswith(sent.fax_id)

    result = await provider.parse_callback(await to_request(callback))

    [update] = result.updates
    assert (update.status, update.reason, update.provider_code) == (status, reason, event_type)
    assert (update.provider_fax_id, update.job_id, update.round) == (sent.fax_id, fax.job_id, 0)
    assert (result.inbound, result.unclassified, result.reply_body) == ([], [], REPLY)


async def test_a_fax_event_with_only_a_files_url_takes_its_segment(
    harness: DropboxSignHarness,
    provider: FaxProvider[Any],
    make_fax: MakeFax,
    to_request: ToRequest,
) -> None:
    sent = await _sent(provider, harness, make_fax())
    payload = _payload(events.official_event(API_KEY, "fax_busy", sent))
    del payload["transmission"]["final_copy_uri"]
    result = await provider.parse_callback(await to_request(events.as_callback(payload)))

    [update] = result.updates

    assert update.provider_fax_id == sent.file_id  # the last resort: better than no fax at all
    assert update.reason is FailureReason.BUSY


# -- read by payload, whatever the event name -----------------------------------------------
@pytest.mark.parametrize("event_type", ["transmission_x", "fax_sent", "anything_at_all", ""])
@pytest.mark.parametrize("object_key", ["transmission", "fax"])
@pytest.mark.parametrize(
    ("status_code", "status", "reason"),
    [
        ("transmitting", JobStatus.SENDING, None),
        ("success", JobStatus.DELIVERED, None),
        ("error_busy", JobStatus.FAILED, FailureReason.BUSY),
        ("error_no_answer", JobStatus.FAILED, FailureReason.NO_ANSWER),
        ("error_bad_destination", JobStatus.FAILED, FailureReason.BAD_NUMBER),
    ],
)
async def test_the_status_code_decides_whatever_the_event_is_called(
    harness: DropboxSignHarness,
    provider: FaxProvider[Any],
    make_fax: MakeFax,
    to_request: ToRequest,
    event_type: str,
    object_key: str,
    status_code: str,
    status: JobStatus,
    reason: FailureReason | None,
) -> None:
    fax = make_fax()
    sent = await _sent(provider, harness, fax)
    sent.status_code = status_code
    callback = events.fax_callback(API_KEY, sent, event_type, object_key=object_key)

    result = await provider.parse_callback(await to_request(callback))

    [update] = result.updates
    assert (update.status, update.reason, update.provider_code) == (status, reason, status_code)
    assert (update.provider_fax_id, update.job_id) == (sent.fax_id, fax.job_id)
    assert result.reply_body == REPLY


async def test_fax_id_is_preferred_over_the_files_url_segment(
    harness: DropboxSignHarness,
    provider: FaxProvider[Any],
    make_fax: MakeFax,
    to_request: ToRequest,
) -> None:
    sent = await _sent(provider, harness, make_fax())
    sent.status_code = "success"
    assert not sent.files_url().endswith(sent.fax_id)  # as in examples/json/FaxGetResponse.json

    [update] = (
        await provider.parse_callback(await to_request(events.fax_callback(API_KEY, sent)))
    ).updates

    assert update.provider_fax_id == sent.fax_id
    assert await provider.status(update.provider_fax_id) is not None


async def test_is_complete_without_a_status_code_is_delivered(
    harness: DropboxSignHarness,
    provider: FaxProvider[Any],
    make_fax: MakeFax,
    to_request: ToRequest,
) -> None:
    fax = make_fax()
    sent = await _sent(provider, harness, fax)
    sent.status_code = "success"
    callback = events.signed(API_KEY, "whatever", {"transmission": events.sample_fields(sent)})

    [update] = (await provider.parse_callback(await to_request(callback))).updates

    assert (update.status, update.job_id) == (JobStatus.DELIVERED, fax.job_id)


# -- nothing dropped in silence --------------------------------------------------------------
def _signature_event() -> CallbackHTTP:
    # examples/json/EventCallbackAccountSignatureRequestSent.json, in short: a Sign event.
    request = {"signature_request_id": "fa5c8a0b0f492d768749333ad6fcc214c111e967"}
    return events.signed(API_KEY, "signature_request_sent", {"signature_request": request})


async def _no_news(
    harness: DropboxSignHarness, provider: FaxProvider[Any], fax: Any
) -> CallbackHTTP:
    sent = await _sent(provider, harness, fax)
    fields = {**events.sample_fields(sent), "has_error": False, "is_complete": False}
    return events.signed(API_KEY, "transmission_pending", {"transmission": fields})


@pytest.mark.parametrize("kind", ["callback_test", "signature_event", "fax_without_news"])
async def test_a_callback_with_no_fax_news_is_kept_logged_and_acknowledged(
    harness: DropboxSignHarness,
    provider: FaxProvider[Any],
    make_fax: MakeFax,
    to_request: ToRequest,
    caplog: pytest.LogCaptureFixture,
    kind: str,
) -> None:
    fax = make_fax()
    if kind == "callback_test":
        callback = harness.unclassifiable_callback()
    elif kind == "signature_event":
        callback = _signature_event()
    else:
        callback = await _no_news(harness, provider, fax)

    with caplog.at_level(logging.WARNING, logger="bridge.providers.dropboxsign"):
        result = await provider.parse_callback(await to_request(callback))

    assert (result.updates, result.inbound, result.reply_body) == ([], [], REPLY)
    [kept] = result.unclassified
    assert kept.reason.startswith("a Dropbox Sign ")
    assert kept.event == _payload(callback)["event"]["event_type"]
    if kind == "fax_without_news":
        assert kept.job_id == fax.job_id and kept.provider_fax_id
    assert any(
        kept.reason in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING
    )


# -- inbound -------------------------------------------------------------------------------
async def test_inbound_fax_numbers_and_document(
    harness: DropboxSignHarness, provider: FaxProvider[Any], to_request: ToRequest
) -> None:
    pdf = make_pdf("INBOUND", pages=3)
    callback = harness.inbound_callback("+12125550199", "+12125550100", pdf)
    start = len(harness.requests)

    [inbound] = (await provider.parse_callback(await to_request(callback))).inbound
    document = await provider.fetch_document(inbound)

    assert (inbound.from_number, inbound.to_number) == ("+12125550199", "+12125550100")
    assert document == pdf
    # EventCallbackFaxReceived.json names no number: the fax record is asked for them.
    assert [(r.method, r.path) for r in harness.requests[start:]] == [
        ("GET", f"/v3/fax/{inbound.provider_fax_id}"),
        ("GET", f"/v3/fax/files/{inbound.provider_fax_id}"),
    ]
    assert _payload(callback)["event"]["event_type"] == "fax_received"


def _provider_with_line(http_client: httpx.AsyncClient, harness: DropboxSignHarness) -> Any:
    config = DropboxSignConfig(type="dropboxsign", base_url=harness.base_url, api_key=API_KEY)
    context = ProviderContext(PUBLIC_URL, Path("."), frozenset({"+12125550100"}))
    return DropboxSignProvider("dropboxsign", config, http_client, context)


async def test_a_fax_to_one_of_our_lines_is_inbound_whatever_the_event_name(
    harness: DropboxSignHarness, http_client: httpx.AsyncClient, to_request: ToRequest
) -> None:
    provider = _provider_with_line(http_client, harness)
    fax = Fax("ab" * 20, "12125550100", "12125550199", [make_pdf("IN")], harness.base_url)
    fax.status_code = "success"
    harness.state.faxes[fax.fax_id] = fax

    result = await provider.parse_callback(
        await to_request(events.fax_callback(API_KEY, fax, "some_new_event"))
    )

    [inbound] = result.inbound
    assert (inbound.provider_fax_id, inbound.from_number) == (fax.fax_id, "+12125550199")
    assert result.updates == []


async def test_an_inbound_senders_email_address_is_never_the_callers_number(
    harness: DropboxSignHarness, provider: FaxProvider[Any], to_request: ToRequest
) -> None:
    # FaxResponse.sender is "Fax Sender Email"; here the leg names no caller at all.
    fax = Fax("cd" * 20, "12125550100", None, [make_pdf("IN")], harness.base_url)
    fax.status_code = "success"
    harness.state.faxes[fax.fax_id] = fax
    callback = events.fax_callback(API_KEY, fax, "transmission_received")
    start = len(harness.requests)

    [inbound] = (await provider.parse_callback(await to_request(callback))).inbound

    assert inbound.from_number == ""  # unknown: never "me@dropboxsign.com"
    assert inbound.to_number == "+12125550100"
    # The callback named no caller, so the fax record was asked (it names none either).
    assert [r.path for r in harness.requests[start:]] == [f"/v3/fax/{fax.fax_id}"]


@pytest.mark.parametrize("status_code", ["error_could_not_fax", "transmitting"])
async def test_an_inbound_fax_not_received_whole_is_kept_not_mailed(
    harness: DropboxSignHarness, provider: FaxProvider[Any], to_request: ToRequest, status_code: str
) -> None:
    fax = Fax("ef" * 20, "12125550100", "12125550199", [], harness.base_url)
    fax.status_code = status_code

    result = await provider.parse_callback(
        await to_request(events.fax_callback(API_KEY, fax, "transmission_received"))
    )

    assert result.inbound == [] and result.updates == []
    [kept] = result.unclassified
    assert kept.provider_fax_id == fax.fax_id and "inbound" in kept.reason


async def test_an_email_sender_is_passed_over_for_the_number_in_from(
    harness: DropboxSignHarness, provider: FaxProvider[Any], to_request: ToRequest
) -> None:
    # test_fixtures/FaxResponse.json has a `from` number beside `sender`. The event_hash
    # signs only event_time + event_type, so the object may be edited.
    fax = Fax("0f" * 20, "12125550100", "someone@example.com", [make_pdf("IN")], harness.base_url)
    fax.status_code = "success"
    payload = _payload(events.fax_callback(API_KEY, fax, "transmission_received"))
    payload["transmission"]["from"] = "14155557068"
    start = len(harness.requests)

    result = await provider.parse_callback(await to_request(events.as_callback(payload)))

    [inbound] = result.inbound
    assert (inbound.from_number, inbound.to_number) == ("+14155557068", "+12125550100")
    assert harness.requests[start:] == []  # both numbers known: nothing looked up
