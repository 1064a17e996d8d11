"""Kazoo on the wire: what the emulator received, and what its answers and webhooks become."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from bridge.errors import (
    PermanentProviderError,
    TransientProviderError,
)
from bridge.models import JobStatus, Redial, RedialPolicy
from bridge.providers.base import transmitted_pdf
from tests.providers.conftest import MakeFax, MakeProvider
from tests.providers.emulators.kazoo import TOO_MANY_REQUESTS, KazooHarness, make_harness
from tests.providers.harness import CallbackHTTP, RecordedRequest
from tests.providers.pdfs import page_texts


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


async def test_a_bad_token_is_permanent_with_kazoos_words(make_provider: MakeProvider) -> None:
    with pytest.raises(PermanentProviderError) as caught:
        await make_provider(auth_token="not-a-token").check()
    assert caught.value.code == "401"
    assert "invalid credentials" in caught.value.message


async def test_an_unknown_api_key_is_an_auth_failure_never_a_forgotten_fax(
    make_provider: MakeProvider,
) -> None:
    # cb_api_auth answers a key no account has with 404 "bad identifier".
    provider = make_provider(auth_token=None, api_key="not-a-key")
    with pytest.raises(PermanentProviderError) as caught:
        await provider.status("0" * 32)
    assert caught.value.code == "auth"
    assert (
        "refused the api_key" in caught.value.message and "bad identifier" in caught.value.message
    )


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
