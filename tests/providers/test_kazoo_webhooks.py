"""Kazoo's outcomes as the bridge reads them: failed jobs, webhooks, and their registration."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from PIL import Image
from pypdf import PdfReader

from bridge.errors import (
    CallbackAuthError,
    CallbackError,
)
from bridge.models import FailureReason, JobStatus, Redial, RedialPolicy
from tests.providers.conftest import MakeFax, MakeProvider, ToRequest
from tests.providers.emulators._kazoo_fax_worker import Dial, delivery, line_trouble
from tests.providers.emulators.kazoo import KazooHarness, make_harness
from tests.providers.harness import CallbackHTTP, RecordedRequest
from tests.providers.pdfs import make_pdf


@pytest.fixture(scope="module")
def harness() -> Iterator[KazooHarness]:
    with make_harness() as running:
        yield running


@pytest.fixture(autouse=True)
def kazoo_answers_as_cb_faxes(harness: KazooHarness) -> Iterator[None]:
    yield
    harness.state.put_status, harness.state.put_data = 202, "saved"


def calls_since(harness: KazooHarness, start: int) -> list[RecordedRequest]:
    return harness.requests[start:]


def sent_data(request: RecordedRequest) -> dict[str, Any]:
    meta = next(p for p in request.parts() if p.content_type == "application/json")
    data: dict[str, Any] = json.loads(meta.data)["data"]
    return data


def json_callback(payload: dict[str, Any]) -> CallbackHTTP:
    return CallbackHTTP(headers={"content-type": "application/json"},
                        body=json.dumps(payload).encode())  # fmt: skip


# -- failed jobs -------------------------------------------------------------------------
@pytest.mark.parametrize("reason", KazooHarness.supported_failures)
async def test_status_of_a_failed_job_names_the_reason_and_the_dials(
    harness: KazooHarness, make_provider: MakeProvider, make_fax: MakeFax, reason: str
) -> None:
    provider = make_provider()
    fax_id = (await provider.send(make_fax())).provider_fax_id
    harness.finish(fax_id, "failed", reason)
    doc = harness.outbox(fax_id)
    update = await provider.status(fax_id)

    assert update is not None
    assert (update.status, update.reason) == (JobStatus.FAILED, FailureReason(reason))
    assert update.provider_text == doc["tx_result"]["result_text"]
    assert update.tries == doc["attempts"]


# fax_worker:release_failed_job writes these; the reason comes from the cause, not the code.
@pytest.mark.parametrize(
    ("dial", "reason", "code"),
    [
        # Answered, then hung up busy: `result_cause` USER_BUSY beside SIP 486, no words.
        (Dial("fax_result", hangup_code="sip:486", hangup_cause="USER_BUSY"),
         FailureReason.BUSY, "USER_BUSY"),
        # A failed originate whose Application-Response is a SIP phrase, not a cause.
        (line_trouble(480, "Temporarily Unavailable"), FailureReason.NO_ANSWER, "480"),
        (line_trouble(404, "Not Found"), FailureReason.BAD_NUMBER, "404"),
        (line_trouble(600, "Busy Everywhere"), FailureReason.BUSY, "600"),
        # from_number is not one of the account's numbers (ensure_valid_caller_id).
        (Dial("invalid_cid"), FailureReason.REJECTED, "400"),
    ],
)  # fmt: skip
async def test_a_busy_or_unanswered_line_is_never_called_disconnected(
    harness: KazooHarness,
    make_provider: MakeProvider,
    make_fax: MakeFax,
    to_request: ToRequest,
    dial: Dial,
    reason: FailureReason,
    code: str,
) -> None:
    provider = make_provider()
    fax = replace(make_fax(), redial=RedialPolicy(Redial(1, 60), Redial(1, 60)))
    fax_id = (await provider.send(fax)).provider_fax_id
    notice = harness.dial(fax_id, dial)
    assert notice is not None

    polled = await provider.status(fax_id)
    (called,) = (await provider.parse_callback(await to_request(harness.notify(notice)))).updates

    assert polled is not None
    assert (polled.reason, polled.provider_code) == (reason, code)
    assert (called.reason, called.provider_code) == (reason, code)


async def test_a_job_whose_worker_crashed_fails_by_polling_with_no_webhook(
    harness: KazooHarness, make_provider: MakeProvider, make_fax: MakeFax
) -> None:
    # fax_worker terminate/2 (abnormal exit): release_failed_job('uncontrolled_termination')
    # with retries 0, then nothing: no move to the outbox, no notification.
    provider = make_provider()
    fax_id = (await provider.send(make_fax())).provider_fax_id

    assert harness.dial(fax_id, Dial("uncontrolled_termination")) is None
    assert fax_id in harness.state.faxes_db
    update = await provider.status(fax_id)

    assert update is not None
    assert (update.status, update.reason) == (JobStatus.FAILED, FailureReason.UNKNOWN)
    assert update.provider_text is not None and "process terminated" in update.provider_text
    assert update.tries == 1


# -- webhooks ------------------------------------------------------------------------------
async def test_outbound_fax_webhook_is_delivered_and_linked_by_kazoos_record(
    harness: KazooHarness, make_provider: MakeProvider, make_fax: MakeFax, to_request: ToRequest
) -> None:
    provider = make_provider()
    fax = make_fax(cover=True, round=2)
    fax_id = (await provider.send(fax)).provider_fax_id
    result = await provider.parse_callback(
        await to_request(harness.status_callback(fax_id, "delivered"))
    )

    (update,) = result.updates
    assert (update.provider_fax_id, update.status, update.reason) == (
        fax_id,
        JobStatus.DELIVERED,
        None,
    )
    assert (update.provider_code, update.pages, update.tries) == ("outbound_fax", 2, 1)
    assert (update.job_id, update.round) == (fax.job_id, 2)
    assert update.at is not None and abs(update.at - datetime.now(UTC)) < timedelta(minutes=1)
    assert not result.inbound


@pytest.mark.parametrize(
    ("reason", "code"),
    [("busy", "USER_BUSY"), ("no_answer", "NO_ANSWER"), ("bad_number", "UNALLOCATED_NUMBER"),
     ("disconnected", "49"), ("file_error", "failed"), ("unknown", "500")],
)  # fmt: skip
async def test_outbound_fax_error_webhook_names_the_reason_and_kazoos_dials(
    harness: KazooHarness,
    make_provider: MakeProvider,
    make_fax: MakeFax,
    to_request: ToRequest,
    reason: str,
    code: str,
) -> None:
    provider = make_provider()
    fax = make_fax()
    fax_id = (await provider.send(fax)).provider_fax_id
    callback = harness.status_callback(fax_id, "failed", reason)
    (update,) = (await provider.parse_callback(await to_request(callback))).updates

    assert (update.provider_fax_id, update.status) == (fax_id, JobStatus.FAILED)
    assert (update.reason, update.provider_code) == (FailureReason(reason), code)
    assert update.provider_text == json.loads(callback.body)["fax_error"]
    assert update.tries == harness.outbox(fax_id)["attempts"]
    assert update.job_id == fax.job_id


async def test_the_hangup_cause_in_fax_info_decides_even_without_kazoos_words(
    make_provider: MakeProvider, to_request: ToRequest
) -> None:
    # notify_fields' Fax-Hangup-Cause/Code, normalised; no fax_error, no T.30 words.
    info = {"fax_hangup_cause": "NO_ANSWER", "fax_hangup_code": 480, "fax_success": False}
    payload = {"event_name": "outbound_fax_error", "fax_jobid": "202401-abc",
               "fax_id": "202401-abc", "fax_info": info}  # fmt: skip
    (update,) = (
        await make_provider().parse_callback(await to_request(json_callback(payload)))
    ).updates
    assert (update.provider_fax_id, update.reason, update.provider_code) == (
        "abc",
        FailureReason.NO_ANSWER,
        "NO_ANSWER",
    )


@pytest.mark.parametrize("reason", ["delivered", "busy", "no_answer", "disconnected"])
async def test_a_form_data_webhook_reads_as_its_json_twin(
    harness: KazooHarness,
    make_provider: MakeProvider,
    make_fax: MakeFax,
    to_request: ToRequest,
    reason: str,
) -> None:
    # schemas/webhooks.json: `format` defaults to form-data (a hook made in Kazoo's own UI),
    # and webhooks_util sends kz_http_util:json_to_querystring's `fax_info[fax_…]=…`.
    provider = make_provider()
    fax_id = (await provider.send(make_fax())).provider_fax_id
    notice = (
        harness.finish(fax_id, "delivered")
        if reason == "delivered"
        else harness.finish(fax_id, "failed", reason)
    )
    hook = {"id": "hook-form", "custom_data": {"type": notice["event_name"]}}
    form = delivery(notice, hook)
    assert form.headers["content-type"] == "application/x-www-form-urlencoded"
    assert b"fax_info%5B" in form.body or b"fax_info[" in form.body
    harness.fail_next(503, harness.error_body("datastore timeout"))  # the notice alone tells

    (update,) = (await provider.parse_callback(await to_request(form))).updates

    if reason == "delivered":
        assert (update.status, update.pages) == (JobStatus.DELIVERED, 1)
    else:
        assert (update.status, update.reason) == (JobStatus.FAILED, FailureReason(reason))
    assert update.provider_fax_id == fax_id
    assert update.at is not None and abs(update.at - datetime.now(UTC)) < timedelta(minutes=1)


async def test_a_webhook_counts_when_kazoos_record_cannot_be_read(
    harness: KazooHarness, make_provider: MakeProvider, make_fax: MakeFax, to_request: ToRequest
) -> None:
    provider = make_provider()
    fax_id = (await provider.send(make_fax())).provider_fax_id
    callback = harness.status_callback(fax_id, "delivered")
    harness.fail_next(503, harness.error_body("datastore timeout"))

    (update,) = (await provider.parse_callback(await to_request(callback))).updates

    assert (update.provider_fax_id, update.status) == (fax_id, JobStatus.DELIVERED)
    assert (update.job_id, update.tries) == (None, None)


async def test_forged_or_tokenless_webhooks_are_refused(
    harness: KazooHarness, make_provider: MakeProvider, make_fax: MakeFax, to_request: ToRequest
) -> None:
    provider = make_provider()
    fax_id = (await provider.send(make_fax())).provider_fax_id
    callback = harness.status_callback(fax_id, "delivered")
    start = len(harness.requests)
    with pytest.raises(CallbackAuthError):
        await provider.parse_callback(await to_request(harness.forged(callback)))
    with pytest.raises(CallbackAuthError):
        await provider.parse_callback(await to_request(callback, token=None))
    assert calls_since(harness, start) == []


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b"{}", b'"outbound_fax"'])
async def test_a_body_that_is_no_json_object_is_a_callback_error(
    make_provider: MakeProvider, to_request: ToRequest, body: bytes
) -> None:
    callback = CallbackHTTP(headers={"content-type": "application/json"}, body=body)
    with pytest.raises(CallbackError) as caught:
        await make_provider().parse_callback(await to_request(callback))
    assert not isinstance(caught.value, CallbackAuthError)


@pytest.mark.parametrize(
    ("payload", "event", "words"),
    [({"fax_jobid": "abc"}, None, "without event_name"),
     ({"event_name": "outbound_fax", "fax_info": {}}, "outbound_fax", "names no fax"),
     ({"event_name": "inbound_fax", "caller_id_number": "+12125550111"}, "inbound_fax",
      "names no fax"),
     ({"event_name": "voicemail_new", "voicemail_box": "x"}, "voicemail_new", "not about a fax"),
     ({"event_name": "inbound_fax_error", "fax_id": "202401-x", "fax_error": "NO_ANSWER"},
      "inbound_fax_error", "could not receive an inbound fax (NO_ANSWER)")],
)  # fmt: skip
async def test_an_authenticated_webhook_it_cannot_use_is_kept_not_dropped(
    make_provider: MakeProvider,
    to_request: ToRequest,
    payload: dict[str, Any],
    event: str | None,
    words: str,
) -> None:
    result = await make_provider().parse_callback(await to_request(json_callback(payload)))

    assert (result.updates, result.inbound) == ([], [])
    (kept,) = result.unclassified
    assert kept.event == event
    assert words in kept.reason


async def test_inbound_fax_webhook_and_its_document(
    harness: KazooHarness, make_provider: MakeProvider, to_request: ToRequest
) -> None:
    provider = make_provider()
    pdf = make_pdf("INBOUND", pages=2)
    callback = harness.inbound_callback("+13105550199", "+12125550100", pdf)
    result = await provider.parse_callback(await to_request(callback))

    (fax,) = result.inbound
    assert (fax.from_number, fax.to_number, fax.pages) == ("+13105550199", "+12125550100", 2)
    assert fax.provider_fax_id in harness.state.modb
    assert fax.remote_station_id == "SENDER FAX"
    assert not result.updates
    start = len(harness.requests)
    assert await provider.fetch_document(fax) == pdf
    (get,) = calls_since(harness, start)
    account = harness.state.account_id
    assert get.path == f"/v2/accounts/{account}/faxes/inbox/{fax.provider_fax_id}/attachment"


async def test_the_inbound_fax_sample_names_the_number_dialled_by_to_user(
    make_provider: MakeProvider, to_request: ToRequest
) -> None:
    # crossbar priv/webhooks_notifications-samples.json, `inbound_fax`: callee_id_number
    # (+16282037452) is not the number dialled; to_user (+15565671234) is, as the local
    # station id shows. A bridge reading callee_id_number finds no faxbox for the fax.
    payload = {"account_id": "7600efb3424dc4b79854521fd4563d0a",
               "callee_id_name": "+16282037452", "callee_id_number": "+16282037452",
               "caller_id_name": "+15554566778", "caller_id_number": "+15554566778",
               "event_category": "notification", "event_name": "inbound_fax",
               "fax_id": "201905-3513f829b23ce4ec8e4bc372701a0cae",
               "fax_info": {"fax_local_station_id": "+1 556 567 1234",
                            "fax_remote_station_id": "+1 555 456 6778",
                            "fax_success": True, "fax_total_pages": "2",
                            "fax_transferred_pages": "2"},
               "fax_timestamp": 63724396563, "from_user": "+15554566778",
               "to_user": "+15565671234"}  # fmt: skip

    (fax,) = (
        await make_provider().parse_callback(await to_request(json_callback(payload)))
    ).inbound

    assert (fax.from_number, fax.to_number) == ("+15554566778", "+15565671234")
    assert (fax.pages, fax.remote_station_id) == (2, "+1 555 456 6778")


async def test_a_received_fax_stored_as_tiff_is_fetched_despite_crossbars_negotiation(
    harness: KazooHarness, make_provider: MakeProvider, to_request: ToRequest
) -> None:
    # fax_request stores a received fax as image/tiff and cb_faxes offers only that type:
    # Cowboy answers `Accept: application/pdf` alone with 406, and the fax would be lost.
    provider = make_provider()
    pdf = make_pdf("INBOUND TIFF", pages=1)
    callback = harness.inbound_callback("+13105550199", "+12125550100", pdf)
    (fax,) = (await provider.parse_callback(await to_request(callback))).inbound
    account = harness.state.account_id
    url = f"{harness.base_url}/accounts/{account}/faxes/inbox/{fax.provider_fax_id}/attachment"
    headers = {"X-Auth-Token": harness.state.auth_token}
    async with httpx.AsyncClient() as client:
        refused = await client.get(url, headers={**headers, "Accept": "application/pdf"})
    assert refused.status_code == 406

    assert await provider.fetch_document(fax) == pdf


async def test_a_received_fax_kazoo_serves_as_tiff_is_handed_on_as_pdf(
    harness: KazooHarness, make_provider: MakeProvider, to_request: ToRequest
) -> None:
    # kazoo_convert `fax.attachment_format` may be tiff: the bridge still mails a PDF.
    provider = make_provider()
    callback = harness.inbound_callback("+13105550199", "+12125550100", make_pdf("X"))
    (fax,) = (await provider.parse_callback(await to_request(callback))).inbound
    harness.state.attachments[fax.provider_fax_id] = _tiff(pages=2)

    document = await provider.fetch_document(fax)

    assert document.startswith(b"%PDF")
    assert len(PdfReader(io.BytesIO(document)).pages) == 2


def _tiff(pages: int) -> bytes:
    frames = [Image.new("1", (1728, 2200), 1) for _ in range(pages)]
    out = io.BytesIO()
    frames[0].save(out, format="TIFF", save_all=True, append_images=frames[1:],
                   compression="group4", dpi=(204, 196))  # fmt: skip
    return out.getvalue()


async def test_a_webhook_naming_only_the_outbox_id_links_to_the_job(
    harness: KazooHarness, make_provider: MakeProvider, make_fax: MakeFax, to_request: ToRequest
) -> None:
    provider = make_provider()
    fax_id = (await provider.send(make_fax())).provider_fax_id
    payload = json.loads(harness.status_callback(fax_id, "delivered").body)
    del payload["fax_jobid"]
    assert payload["fax_id"] == f"{datetime.now(UTC):%Y%m}-{fax_id}"
    (update,) = (await provider.parse_callback(await to_request(json_callback(payload)))).updates
    assert (update.provider_fax_id, update.status) == (fax_id, JobStatus.DELIVERED)

    start = len(harness.requests)
    by_outbox_id = await provider.status(payload["fax_id"])
    assert by_outbox_id is not None and by_outbox_id.status is JobStatus.DELIVERED
    assert [r.path.rsplit("/faxes/", 1)[1] for r in calls_since(harness, start)] == [
        f"outbox/{payload['fax_id']}"
    ]


# -- setup ---------------------------------------------------------------------------------
async def test_setup_registers_one_notifications_webhook_per_fax_event(
    harness: KazooHarness, make_provider: MakeProvider, make_fax: MakeFax, to_request: ToRequest
) -> None:
    provider = make_provider()
    harness.state.webhooks.clear()
    lines = await provider.setup()

    hooks = sorted(harness.state.webhooks.values(), key=lambda h: h["custom_data"]["type"])
    events = ["inbound_fax", "inbound_fax_error", "outbound_fax", "outbound_fax_error"]
    assert [h["custom_data"] for h in hooks] == [{"type": e} for e in events]
    for hook in hooks:
        assert hook["uri"] == provider.callback_url()
        assert "token=cb-token-3f9a1c" in hook["uri"]
        assert (hook["hook"], hook["http_verb"], hook["format"], hook["retries"]) == (
            "notifications",
            "post",
            "json",
            4,
        )
    assert len(lines) == 4 and all("registered" in line for line in lines)

    start = len(harness.requests)
    again = await provider.setup()
    assert [r.method for r in calls_since(harness, start)] == ["GET"]
    assert all("already" in line for line in again)

    fax_id = (await provider.send(make_fax())).provider_fax_id
    callback = harness.status_callback(fax_id, "delivered")
    outbound = next(h for h in hooks if h["custom_data"]["type"] == "outbound_fax")
    assert callback.headers["x-hook-id"] == outbound["id"]
    assert "type" not in json.loads(callback.body)  # webhooks_util strips it from custom_data
    assert (await provider.parse_callback(await to_request(callback))).updates


async def test_setup_finds_its_webhooks_on_any_page_of_kazoos_listing(
    harness: KazooHarness, make_provider: MakeProvider
) -> None:
    # cb_webhooks lists through crossbar_view: 50 rows a page, `next_start_key` after.
    provider = make_provider()
    harness.state.webhooks.clear()
    for n in range(120):
        hook_id = f"{'f' * 24}{n:08x}"  # listed before ours (descending by id)
        harness.state.webhooks[hook_id] = {"id": hook_id, "name": f"other {n}",
                                           "hook": "channel_create", "enabled": True,
                                           "uri": f"http://crm.example/{n}"}  # fmt: skip
    await provider.setup()
    start = len(harness.requests)

    again = await provider.setup()

    assert all("already" in line for line in again), again
    assert [r.method for r in calls_since(harness, start)] == ["GET", "GET", "GET"]
    assert sum(h.get("hook") == "notifications" for h in harness.state.webhooks.values()) == 4


async def test_setup_moves_a_webhook_that_points_elsewhere(
    harness: KazooHarness, make_provider: MakeProvider
) -> None:
    provider = make_provider()
    harness.state.webhooks.clear()
    await provider.setup()
    hook = next(iter(harness.state.webhooks.values()))
    hook["uri"] = "http://old.example/callbacks/kazoo"
    start = len(harness.requests)
    lines = await provider.setup()

    (post,) = [r for r in calls_since(harness, start) if r.method == "POST"]
    assert post.path.endswith(f"/webhooks/{hook['id']}")
    assert harness.state.webhooks[hook["id"]]["uri"] == provider.callback_url()
    assert sum("updated" in line for line in lines) == 1


async def test_setup_without_callback_token_registers_nothing(
    harness: KazooHarness, make_provider: MakeProvider
) -> None:
    start = len(harness.requests)
    (line,) = await make_provider(callback_token=None).setup()
    assert "callback_token" in line
    assert calls_since(harness, start) == []
