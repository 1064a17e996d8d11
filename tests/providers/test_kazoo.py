"""Kazoo on the wire: what the emulator received, and what its answers and webhooks become."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bridge.errors import (
    CallbackAuthError,
    CallbackError,
    PermanentProviderError,
    TransientProviderError,
)
from bridge.models import FailureReason, JobStatus, Redial, RedialPolicy
from bridge.providers.base import transmitted_pdf
from tests.providers.conftest import MakeFax, MakeProvider, ToRequest
from tests.providers.emulators._kazoo_fax_worker import Dial, line_trouble
from tests.providers.emulators.kazoo import TOO_MANY_REQUESTS, KazooHarness, make_harness
from tests.providers.harness import CallbackHTTP, RecordedRequest
from tests.providers.pdfs import make_pdf, page_texts


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


# -- sending -----------------------------------------------------------------------------
async def test_send_puts_json_and_cover_merged_pdf_as_multipart_mixed(
    harness: KazooHarness, make_provider: MakeProvider, make_fax: MakeFax
) -> None:
    fax = make_fax(cover=True)
    start = len(harness.requests)
    result = await make_provider().send(fax)

    (put,) = calls_since(harness, start)
    assert (put.method, put.path) == ("PUT", f"/v2/accounts/{harness.state.account_id}/faxes")
    assert put.headers["x-auth-token"] == harness.state.auth_token
    assert put.content_type.startswith("multipart/mixed; boundary=")
    meta, document = put.parts()
    assert meta.content_type == "application/json"
    assert sent_data(put) == {
        "to_number": "+12125550123",
        "from_number": "+12125550100",
        "fax_identity_number": "+12125550100",
        "fax_identity_name": "Front Desk",
        "to_name": "Jane Doe",
        "from_name": "Front Desk",
        "retries": 3,
        "faxbridge_job_id": fax.job_id,
        "faxbridge_reference": f"faxbridge job {fax.job_id}",
    }
    assert document.content_type == "application/pdf"
    assert document.data == transmitted_pdf(fax)
    assert page_texts(document.data) == ["COVERPAGE page 1", "DOCUMENT page 1"]
    job = harness.job(result.provider_fax_id)
    assert harness.state.attachments[result.provider_fax_id] == document.data
    assert (job["faxbridge_job_id"], job["pvt_job_status"]) == (fax.job_id, "pending")
    assert (result.status, result.raw_status) == (JobStatus.SUBMITTED, "attaching_files")


async def test_send_without_cover_sends_the_document_alone_and_no_names(
    harness: KazooHarness, make_provider: MakeProvider, make_fax: MakeFax
) -> None:
    fax = make_fax()
    start = len(harness.requests)
    await make_provider().send(fax)

    (put,) = calls_since(harness, start)
    data = sent_data(put)
    assert not {"from_name", "to_name", "fax_identity_name"} & set(data)
    assert put.parts()[1].data == fax.document.read_bytes()


async def test_the_faxbox_header_is_kazoos_page_header_and_the_caller_id_its_station_id(
    harness: KazooHarness, make_provider: MakeProvider, make_fax: MakeFax
) -> None:
    fax = replace(make_fax(cover=True, caller_id="+12125550177"), header="ACME Clinic")
    start = len(harness.requests)
    fax_id = (await make_provider().send(fax)).provider_fax_id

    data = sent_data(calls_since(harness, start)[0])
    assert (data["fax_identity_name"], data["fax_identity_number"]) == (
        "ACME Clinic",
        "+12125550177",
    )
    assert data["from_number"] == "+12125550177"
    # fax_worker hands both to the switch; the delivery notice shows them back.
    info = harness.finish(fax_id, "delivered")["fax_info"]
    assert (info["fax_identity_name"], info["fax_identity_number"]) == (
        "ACME Clinic",
        "+12125550177",
    )


@pytest.mark.parametrize(
    ("status", "shape"),
    [(202, "saved"), (201, "saved"), (200, "saved"), (202, "public"), (200, "public")],
)
async def test_every_documented_reply_to_put_faxes_names_the_new_job(
    harness: KazooHarness,
    make_provider: MakeProvider,
    make_fax: MakeFax,
    status: int,
    shape: str,
) -> None:
    # cb_faxes put/1 answers 202 with the saved CouchDB document (`_id`, `_rev`, `pvt_*`);
    # doc/faxes.md shows the public form (`id`); Cowboy may say 201 or 200 for a PUT.
    harness.state.put_status, harness.state.put_data = status, shape
    start = len(harness.requests)
    result = await make_provider().send(make_fax())

    assert result.provider_fax_id in harness.state.faxes_db
    assert result.status is JobStatus.SUBMITTED
    assert len(calls_since(harness, start)) == 1


async def test_an_accepted_reply_naming_no_job_is_a_possible_send_never_a_refusal(
    harness: KazooHarness, make_provider: MakeProvider, make_fax: MakeFax
) -> None:
    harness.fail_next(202, {"data": {}, "status": "success", "request_id": "r"})

    with pytest.raises(TransientProviderError) as caught:
        await make_provider().send(make_fax())

    assert caught.value.maybe_sent, "the worker must ask Kazoo before any re-send"
    assert not caught.value.rate_limited
    assert "names no id" in caught.value.message


async def test_a_job_without_caller_id_is_refused_before_kazoo_is_asked(
    harness: KazooHarness, make_provider: MakeProvider, make_fax: MakeFax
) -> None:
    start = len(harness.requests)
    with pytest.raises(PermanentProviderError) as caught:
        await make_provider().send(make_fax(caller_id=None))
    assert "caller_id" in caught.value.message
    assert calls_since(harness, start) == []


async def test_kazoo_validation_errors_reach_the_failure_message(
    make_provider: MakeProvider, make_fax: MakeFax
) -> None:
    with pytest.raises(PermanentProviderError) as caught:
        await make_provider().send(make_fax(to="+1234"))
    assert caught.value.code == "400"
    assert caught.value.message == (
        "kazoo: HTTP 400: validation error "
        "(document.to_number: add a valid number to send the fax to)"
    )


@pytest.mark.parametrize(
    ("busy", "no_answer", "retries"), [(3, 2, 3), (1, 1, 1), (1, 4, 4), (6, 2, 4)]
)
async def test_the_redial_policy_becomes_kazoos_retries(
    harness: KazooHarness,
    make_provider: MakeProvider,
    make_fax: MakeFax,
    busy: int,
    no_answer: int,
    retries: int,
) -> None:
    policy = RedialPolicy(busy=Redial(busy, 300), no_answer=Redial(no_answer, 600))
    start = len(harness.requests)
    fax_id = (await make_provider().send(replace(make_fax(), redial=policy))).provider_fax_id

    assert sent_data(calls_since(harness, start)[0])["retries"] == retries
    assert harness.job(fax_id)["retries"] == retries


# -- auth ----------------------------------------------------------------------------------
async def test_api_key_is_traded_for_a_token_once(
    harness: KazooHarness, make_provider: MakeProvider, make_fax: MakeFax
) -> None:
    provider = make_provider(auth_token=None, api_key=harness.state.api_key)
    start = len(harness.requests)
    await provider.send(make_fax())
    await provider.check()

    auth, send, check = calls_since(harness, start)
    assert (auth.method, auth.path) == ("PUT", "/v2/api_auth")
    assert auth.json() == {"data": {"api_key": harness.state.api_key}}
    assert "x-auth-token" not in auth.headers
    token = send.headers["x-auth-token"]
    assert token in harness.state.tokens and token != harness.state.auth_token
    assert check.headers["x-auth-token"] == token


async def test_a_refused_token_is_renewed_once_with_the_api_key(
    harness: KazooHarness, make_provider: MakeProvider
) -> None:
    provider = make_provider(auth_token=None, api_key=harness.state.api_key)
    await provider.check()
    harness.expire_tokens()
    start = len(harness.requests)
    assert "accepts our credentials" in await provider.check()

    refused, auth, retried = calls_since(harness, start)
    assert refused.path == retried.path == f"/v2/accounts/{harness.state.account_id}"
    assert auth.path == "/v2/api_auth"
    assert refused.headers["x-auth-token"] != retried.headers["x-auth-token"]


@pytest.mark.parametrize(
    "overrides", [{"auth_token": "not-a-token"}, {"auth_token": None, "api_key": "not-a-key"}]
)
async def test_bad_credentials_are_permanent_with_kazoos_words(
    make_provider: MakeProvider, overrides: dict[str, Any]
) -> None:
    with pytest.raises(PermanentProviderError) as caught:
        await make_provider(**overrides).check()
    assert caught.value.code == "401"
    assert "invalid credentials" in caught.value.message


async def test_check_reads_the_account(harness: KazooHarness, make_provider: MakeProvider) -> None:
    start = len(harness.requests)
    line = await make_provider().check()
    (get,) = calls_since(harness, start)
    assert (get.method, get.path) == ("GET", f"/v2/accounts/{harness.state.account_id}")
    assert "Faxbridge Test" in line and harness.state.account_id in line


# -- status ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("job_status", "running", "ours", "code"),
    [("pending", None, JobStatus.SUBMITTED, "pending"),
     ("locked", None, JobStatus.SUBMITTED, "locked"),
     ("processing", None, JobStatus.SENDING, "processing"),
     ("processing", "Sent Page 1 of 2", JobStatus.SENDING, "Sent Page 1 of 2")],
)  # fmt: skip
async def test_status_of_a_queued_job(
    harness: KazooHarness,
    make_provider: MakeProvider,
    make_fax: MakeFax,
    job_status: str,
    running: str | None,
    ours: JobStatus,
    code: str,
) -> None:
    provider = make_provider()
    fax = make_fax()
    fax_id = (await provider.send(fax)).provider_fax_id
    harness.set_job_status(fax_id, job_status, running)
    start = len(harness.requests)
    update = await provider.status(fax_id)

    assert update is not None
    assert (update.status, update.provider_code) == (ours, code)
    assert (update.job_id, update.round) == (fax.job_id, 0)
    (get,) = calls_since(harness, start)
    assert get.path == f"/v2/accounts/{harness.state.account_id}/faxes/outgoing/{fax_id}"


async def test_status_follows_a_finished_job_into_the_outbox(
    harness: KazooHarness, make_provider: MakeProvider, make_fax: MakeFax
) -> None:
    provider = make_provider()
    fax = make_fax(cover=True)
    fax_id = (await provider.send(fax)).provider_fax_id
    harness.finish(fax_id, "delivered")
    start = len(harness.requests)
    update = await provider.status(fax_id)

    assert update is not None
    assert (update.status, update.pages, update.job_id) == (JobStatus.DELIVERED, 2, fax.job_id)
    assert (update.provider_fax_id, update.tries) == (fax_id, 1)
    month = datetime.now(UTC).strftime("%Y%m")
    assert [r.path.rsplit("/faxes/", 1)[1] for r in calls_since(harness, start)] == [
        f"outgoing/{fax_id}",
        f"outbox/{month}-{fax_id}",
    ]


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
      "not about a fax"),
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


# -- errors --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("status", "headers", "retry_after", "limited"),
    [(429, {}, 10.0, True),  # Crossbar's own 429 names no wait: its bucket refills in 10 s
     (429, {"retry-after": "7"}, 7.0, True),
     (500, {}, None, False),
     (503, {"retry-after": "30"}, 30.0, False)],
)  # fmt: skip
async def test_rate_limits_and_server_errors_are_transient(
    harness: KazooHarness,
    make_provider: MakeProvider,
    make_fax: MakeFax,
    status: int,
    headers: dict[str, str],
    retry_after: float | None,
    limited: bool,
) -> None:
    body = TOO_MANY_REQUESTS if status == 429 else harness.error_body("try later")
    harness.fail_next(status, body, headers)
    with pytest.raises(TransientProviderError) as caught:
        await make_provider().send(make_fax())
    assert (caught.value.code, caught.value.retry_after_s) == (str(status), retry_after)
    assert caught.value.rate_limited is limited
    assert ("too_many_requests" if status == 429 else "try later") in caught.value.message


async def test_a_rate_limit_while_looking_a_job_up_is_a_rate_limit(
    harness: KazooHarness, make_provider: MakeProvider, make_fax: MakeFax
) -> None:
    harness.fail_next(429, TOO_MANY_REQUESTS)
    with pytest.raises(TransientProviderError) as caught:
        await make_provider().find(make_fax())
    assert caught.value.rate_limited


async def test_a_hanging_kazoo_is_a_transient_timeout_that_may_have_sent(
    harness: KazooHarness, make_provider: MakeProvider, make_fax: MakeFax
) -> None:
    harness.hang_next(1.5)
    with pytest.raises(TransientProviderError) as caught:
        await make_provider(timeout_s=0.3).send(make_fax())
    assert (caught.value.code, caught.value.maybe_sent) == ("timeout", True)
    await asyncio.sleep(1.3)  # let the emulator finish the hung request


@pytest.mark.parametrize(
    ("status", "message", "data", "expected"),
    [
        (400, "validation error", {"to_number": {"required": {"message": "Field is required"}}},
         "validation error (to_number: Field is required)"),
        (401, "invalid credentials", {}, "invalid credentials"),
        (422, "validation error", {"message": "fax document is not a PDF"},
         "validation error (fax document is not a PDF)"),
    ],
)  # fmt: skip
async def test_client_errors_are_permanent_with_kazoos_message(
    harness: KazooHarness,
    make_provider: MakeProvider,
    make_fax: MakeFax,
    status: int,
    message: str,
    data: dict[str, Any],
    expected: str,
) -> None:
    harness.fail_next(status, {"data": data, "error": str(status), "message": message,
                               "status": "error"})  # fmt: skip
    with pytest.raises(PermanentProviderError) as caught:
        await make_provider().send(make_fax())
    assert caught.value.code == str(status)
    assert caught.value.message == f"kazoo: HTTP {status}: {expected}"


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
