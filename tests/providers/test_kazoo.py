"""Kazoo on the wire: what the emulator received, and what its answers and webhooks become."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bridge.errors import (
    CallbackAuthError,
    CallbackError,
    PermanentProviderError,
    TransientProviderError,
)
from bridge.models import FailureReason, JobStatus
from bridge.providers.base import transmitted_pdf
from tests.providers.conftest import MakeFax, MakeProvider, ToRequest
from tests.providers.emulators.kazoo import KazooHarness, make_harness
from tests.providers.harness import CallbackHTTP, RecordedRequest
from tests.providers.pdfs import make_pdf, page_texts


@pytest.fixture(scope="module")
def harness() -> Iterator[KazooHarness]:
    with make_harness() as running:
        yield running


def calls_since(harness: KazooHarness, start: int) -> list[RecordedRequest]:
    return harness.requests[start:]


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
    assert json.loads(meta.data) == {
        "data": {
            "to_number": "+12125550123",
            "from_number": "+12125550100",
            "to_name": "Jane Doe",
            "from_name": "Front Desk",
            "retries": 2,
            "faxbridge_job_id": fax.job_id,
        }
    }
    assert document.content_type == "application/pdf"
    assert document.data == transmitted_pdf(fax)
    assert page_texts(document.data) == ["COVERPAGE page 1", "DOCUMENT page 1"]
    assert harness.state.files[result.provider_fax_id] == document.data
    assert harness.state.outgoing[result.provider_fax_id]["faxbridge_job_id"] == fax.job_id
    assert (result.status, result.raw_status) == (JobStatus.SUBMITTED, "pending")


async def test_send_without_cover_sends_the_document_alone_and_no_names(
    harness: KazooHarness, make_provider: MakeProvider, make_fax: MakeFax
) -> None:
    fax = make_fax()
    start = len(harness.requests)
    await make_provider().send(fax)

    meta, document = calls_since(harness, start)[0].parts()
    assert "from_name" not in json.loads(meta.data)["data"]
    assert "to_name" not in json.loads(meta.data)["data"]
    assert document.data == fax.document.read_bytes()


async def test_kazoo_validation_errors_reach_the_failure_message(
    make_provider: MakeProvider, make_fax: MakeFax
) -> None:
    with pytest.raises(PermanentProviderError) as caught:
        await make_provider().send(make_fax(caller_id=None))
    assert caught.value.code == "400"
    assert "invalid data" in caught.value.message
    assert "from_number: Field is required but missing" in caught.value.message


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
    assert get.headers["x-auth-token"] == harness.state.auth_token
    assert "Faxbridge Test" in line and harness.state.account_id in line


@pytest.mark.parametrize(
    ("job_status", "ours"),
    [("pending", JobStatus.SUBMITTED), ("locked", JobStatus.SUBMITTED),
     ("processing", JobStatus.SENDING)],
)  # fmt: skip
async def test_status_of_a_queued_job(
    harness: KazooHarness,
    make_provider: MakeProvider,
    make_fax: MakeFax,
    job_status: str,
    ours: JobStatus,
) -> None:
    provider = make_provider()
    fax = make_fax()
    fax_id = (await provider.send(fax)).provider_fax_id
    harness.set_job_status(fax_id, job_status)
    start = len(harness.requests)
    update = await provider.status(fax_id)

    assert update is not None
    assert (update.status, update.provider_code, update.job_id) == (ours, job_status, fax.job_id)
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
    assert update.provider_fax_id == fax_id
    month = datetime.now(UTC).strftime("%Y%m")
    assert [r.path.rsplit("/faxes/", 1)[1] for r in calls_since(harness, start)] == [
        f"outgoing/{fax_id}",
        f"outbox/{month}-{fax_id}",
    ]


@pytest.mark.parametrize("reason", KazooHarness.supported_failures)
async def test_status_of_a_failed_job_names_the_reason(
    harness: KazooHarness, make_provider: MakeProvider, make_fax: MakeFax, reason: str
) -> None:
    provider = make_provider()
    fax_id = (await provider.send(make_fax())).provider_fax_id
    tx = harness.finish(fax_id, "failed", reason)["tx_result"]
    update = await provider.status(fax_id)

    assert update is not None
    assert (update.status, update.reason) == (JobStatus.FAILED, FailureReason(reason))
    assert update.provider_text in (tx["result_text"], tx["error_message"])


async def test_status_of_a_fax_kazoo_does_not_know_is_none(
    harness: KazooHarness, make_provider: MakeProvider
) -> None:
    start = len(harness.requests)
    assert await make_provider().status("0" * 32) is None
    now = datetime.now(UTC)
    months = [now.strftime("%Y%m"), (now.replace(day=1) - timedelta(days=1)).strftime("%Y%m")]
    assert [r.path.rsplit("/faxes/", 1)[1] for r in calls_since(harness, start)] == [
        f"outgoing/{'0' * 32}",
        *(f"outbox/{month}-{'0' * 32}" for month in months),
    ]


async def test_outbound_fax_webhook_is_delivered(
    harness: KazooHarness, make_provider: MakeProvider, make_fax: MakeFax, to_request: ToRequest
) -> None:
    provider = make_provider()
    fax_id = (await provider.send(make_fax(cover=True))).provider_fax_id
    result = await provider.parse_callback(
        await to_request(harness.status_callback(fax_id, "delivered"))
    )

    (update,) = result.updates
    assert (update.provider_fax_id, update.status, update.reason) == (
        fax_id,
        JobStatus.DELIVERED,
        None,
    )
    assert (update.provider_code, update.pages) == ("outbound_fax", 2)
    assert update.at is not None and abs(update.at - datetime.now(UTC)) < timedelta(minutes=1)
    assert not result.inbound


@pytest.mark.parametrize(
    ("reason", "code"),
    [("busy", "USER_BUSY"), ("no_answer", "NO_ANSWER"), ("bad_number", "UNALLOCATED_NUMBER"),
     ("disconnected", "49"), ("file_error", "outbound_fax_error"),
     ("unknown", "RECOVERY_ON_TIMER_EXPIRE")],
)  # fmt: skip
async def test_outbound_fax_error_webhook_names_the_reason(
    harness: KazooHarness,
    make_provider: MakeProvider,
    make_fax: MakeFax,
    to_request: ToRequest,
    reason: str,
    code: str,
) -> None:
    provider = make_provider()
    fax_id = (await provider.send(make_fax())).provider_fax_id
    callback = harness.status_callback(fax_id, "failed", reason)
    (update,) = (await provider.parse_callback(await to_request(callback))).updates

    assert (update.provider_fax_id, update.status) == (fax_id, JobStatus.FAILED)
    assert (update.reason, update.provider_code) == (FailureReason(reason), code)
    assert update.provider_text == json.loads(callback.body)["fax_error"]


async def test_forged_or_tokenless_webhooks_are_refused(
    harness: KazooHarness, make_provider: MakeProvider, make_fax: MakeFax, to_request: ToRequest
) -> None:
    provider = make_provider()
    fax_id = (await provider.send(make_fax())).provider_fax_id
    callback = harness.status_callback(fax_id, "delivered")
    with pytest.raises(CallbackAuthError):
        await provider.parse_callback(await to_request(harness.forged(callback)))
    with pytest.raises(CallbackAuthError):
        await provider.parse_callback(await to_request(callback, token=None))


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[1, 2]", b"{}", b'{"fax_jobid": "abc"}',
     b'{"event_name": "outbound_fax", "fax_info": {}}',
     b'{"event_name": "inbound_fax", "caller_id_number": "+12125550111"}'],
)  # fmt: skip
async def test_malformed_webhooks_are_callback_errors(
    make_provider: MakeProvider, to_request: ToRequest, body: bytes
) -> None:
    callback = CallbackHTTP(headers={"content-type": "application/json"}, body=body)
    with pytest.raises(CallbackError) as caught:
        await make_provider().parse_callback(await to_request(callback))
    assert not isinstance(caught.value, CallbackAuthError)


async def test_inbound_fax_webhook_and_its_document(
    harness: KazooHarness, make_provider: MakeProvider, to_request: ToRequest
) -> None:
    provider = make_provider()
    pdf = make_pdf("INBOUND", pages=2)
    callback = harness.inbound_callback("+13105550199", "+12125550100", pdf)
    result = await provider.parse_callback(await to_request(callback))

    (fax,) = result.inbound
    assert (fax.from_number, fax.to_number, fax.pages) == ("+13105550199", "+12125550100", 2)
    assert fax.provider_fax_id in harness.state.inbox
    assert fax.remote_station_id == "SENDER FAX"
    assert not result.updates
    start = len(harness.requests)
    assert await provider.fetch_document(fax) == pdf
    (get,) = calls_since(harness, start)
    account = harness.state.account_id
    assert get.path == f"/v2/accounts/{account}/faxes/inbox/{fax.provider_fax_id}/attachment"
    assert get.headers["x-auth-token"] == harness.state.auth_token


async def test_inbound_fax_error_changes_nothing(
    make_provider: MakeProvider, to_request: ToRequest
) -> None:
    body = {"event_name": "inbound_fax_error", "fax_id": "x", "fax_error": "NO_ANSWER"}
    callback = CallbackHTTP(headers={"content-type": "application/json"},
                            body=json.dumps(body).encode())  # fmt: skip
    result = await make_provider().parse_callback(await to_request(callback))
    assert (result.updates, result.inbound) == ([], [])


@pytest.mark.parametrize(
    ("status", "headers", "retry_after"),
    [
        (429, {}, 10.0),  # Crossbar's own 429 names no wait: the default bucket refill time
        (429, {"retry-after": "7"}, 7.0),
        (500, {}, None),
        (503, {"retry-after": "30"}, 30.0),
    ],
)
async def test_rate_limits_and_server_errors_are_transient(
    harness: KazooHarness,
    make_provider: MakeProvider,
    make_fax: MakeFax,
    status: int,
    headers: dict[str, str],
    retry_after: float | None,
) -> None:
    body = {"data": {}, "error": str(status), "message": "try later", "status": "error"}
    harness.fail_next(status, body, headers)
    with pytest.raises(TransientProviderError) as caught:
        await make_provider().send(make_fax())
    assert (caught.value.code, caught.value.retry_after_s) == (str(status), retry_after)
    assert "try later" in caught.value.message


async def test_a_hanging_kazoo_is_a_transient_timeout(
    harness: KazooHarness, make_provider: MakeProvider, make_fax: MakeFax
) -> None:
    harness.hang_next(1.5)
    with pytest.raises(TransientProviderError) as caught:
        await make_provider(timeout_s=0.3).send(make_fax())
    assert caught.value.code == "timeout"
    await asyncio.sleep(1.3)  # let the emulator finish the hung request


@pytest.mark.parametrize(
    ("status", "message", "data", "expected"),
    [
        (400, "invalid data", {"to_number": {"required": {"message": "Field is required"}}},
         "invalid data (to_number: Field is required)"),
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
        assert (hook["hook"], hook["http_verb"], hook["format"]) == ("notifications", "post",
                                                                     "json")  # fmt: skip
    assert len(lines) == 4 and all("registered" in line for line in lines)

    start = len(harness.requests)
    again = await provider.setup()
    assert [r.method for r in calls_since(harness, start)] == ["GET"]
    assert all("already" in line for line in again)

    fax_id = (await provider.send(make_fax())).provider_fax_id
    callback = harness.status_callback(fax_id, "delivered")
    outbound = next(h for h in hooks if h["custom_data"]["type"] == "outbound_fax")
    assert callback.headers["x-hook-id"] == outbound["id"]
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


async def test_a_webhook_naming_only_the_outbox_id_links_to_the_job(
    harness: KazooHarness, make_provider: MakeProvider, make_fax: MakeFax, to_request: ToRequest
) -> None:
    provider = make_provider()
    fax_id = (await provider.send(make_fax())).provider_fax_id
    callback = harness.status_callback(fax_id, "delivered")
    payload = json.loads(callback.body)
    del payload["fax_jobid"]
    assert payload["fax_id"] == f"{datetime.now(UTC):%Y%m}-{fax_id}"
    stripped = CallbackHTTP(headers=callback.headers, body=json.dumps(payload).encode())
    (update,) = (await provider.parse_callback(await to_request(stripped))).updates
    assert (update.provider_fax_id, update.status) == (fax_id, JobStatus.DELIVERED)

    start = len(harness.requests)
    by_outbox_id = await provider.status(payload["fax_id"])
    assert by_outbox_id is not None and by_outbox_id.status is JobStatus.DELIVERED
    assert [r.path.rsplit("/faxes/", 1)[1] for r in calls_since(harness, start)] == [
        f"outbox/{payload['fax_id']}"
    ]
