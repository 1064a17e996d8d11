"""mFax (Documo) adapter against its emulator: the form, both webhook shapes, errors, admin."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from bridge.config import MFaxConfig
from bridge.errors import (
    CallbackAuthError,
    CallbackError,
    PermanentProviderError,
    TransientProviderError,
)
from bridge.models import CallbackRequest, CoverNote, FailureReason, JobStatus, OutboundFax
from bridge.providers.base import ProviderContext
from bridge.providers.mfax import MFaxProvider
from tests.providers.conftest import CALLBACK_TOKEN, callback_request
from tests.providers.emulators.mfax import API_KEY, MFaxHarness, make_harness, multipart
from tests.providers.harness import CallbackHTTP
from tests.providers.pdfs import make_pdf

TOKEN = CALLBACK_TOKEN
BRIDGE = "http://127.0.0.1:9/bridge"
OUR_NUMBER = "+12125550100"


async def deliver(callback: CallbackHTTP, token: str | None = TOKEN) -> CallbackRequest:
    return await callback_request(callback, token)


@pytest.fixture
def harness() -> Iterator[MFaxHarness]:
    with make_harness() as running:
        yield running


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as http:
        yield http


def build(harness: MFaxHarness, client: httpx.AsyncClient, **overrides: Any) -> MFaxProvider:
    config = MFaxConfig.model_validate({**harness.provider_config(TOKEN), **overrides})
    context = ProviderContext(
        public_url=BRIDGE, data_dir=Path("."), inbound_numbers=frozenset({OUR_NUMBER})
    )
    return MFaxProvider("mfax", config, client, context)


@pytest.fixture
def provider(harness: MFaxHarness, client: httpx.AsyncClient) -> MFaxProvider:
    return build(harness, client)


@pytest.fixture
def fax(tmp_path: Path) -> OutboundFax:
    document = tmp_path / "document.pdf"
    document.write_bytes(make_pdf("DOCUMENT", pages=2))
    cover_pdf = tmp_path / "cover.pdf"
    cover_pdf.write_bytes(make_pdf("COVERPAGE"))
    cover = CoverNote(
        to_name="Jane Doe",
        to_number="+12125550123",
        from_name="Front Desk",
        from_number=OUR_NUMBER,
        subject="Contract",
        notes="Please sign page 2.",
        date=datetime(2024, 5, 1, tzinfo=UTC),
        pages=3,
    )
    return OutboundFax(
        job_id="job-7",
        to="+12125550123",
        caller_id=OUR_NUMBER,
        document=document,
        pages=2,
        cover=cover,
        cover_pdf=cover_pdf,
        callback_url=f"{BRIDGE}/callbacks/mfax",
    )


def replace(fax: OutboundFax, **changes: Any) -> OutboundFax:
    return OutboundFax(**{**fax.__dict__, **changes})


def webhook(body: dict[str, Any]) -> CallbackHTTP:
    return CallbackHTTP(
        headers={"content-type": "application/json"}, body=json.dumps(body).encode()
    )


# -- send ------------------------------------------------------------------------------------
async def test_send_posts_one_form_with_the_document_and_native_cover_fields(
    harness: MFaxHarness, provider: MFaxProvider, fax: OutboundFax
) -> None:
    result = await provider.send(fax)

    (request,) = harness.requests
    assert (request.method, request.path) == ("POST", "/v1/faxes")
    assert request.headers["authorization"] == f"Basic {API_KEY}"  # the raw key
    assert request.content_type.startswith("multipart/form-data")
    assert request.form() == {
        "faxNumber": ["+12125550123"],
        "coverPage": ["true"],
        "cf": [json.dumps({"faxbridgeJobId": "job-7"})],
        "recipientName": ["Jane Doe"],
        "senderName": ["Front Desk"],
        "subject": ["Contract"],
        "notes": ["Please sign page 2."],
        "callerId": ["2125550100"],
    }
    (part,) = request.files()
    assert (part.name, part.content_type) == ("attachments", "application/pdf")
    assert part.data == fax.document.read_bytes()  # Documo renders the cover page itself

    assert result.provider_fax_id in harness.state.faxes
    assert (result.status, result.raw_status) == (JobStatus.SUBMITTED, "processing")
    assert harness.state.faxes[result.provider_fax_id]["pagesCount"] == 3


async def test_send_shortens_cover_fields_to_documo_s_limits(
    harness: MFaxHarness, provider: MFaxProvider, fax: OutboundFax
) -> None:
    assert fax.cover is not None
    long_cover = CoverNote(
        **{**fax.cover.__dict__, "to_name": "N" * 60, "subject": "S" * 80, "notes": "x" * 5000}
    )

    await provider.send(replace(fax, cover=long_cover))

    form = harness.requests[-1].form()
    assert form["recipientName"] == ["N" * 40]
    assert form["subject"] == ["S" * 55]
    assert form["notes"] == ["x" * 4000]


async def test_send_without_cover_note_asks_for_no_cover_page(
    harness: MFaxHarness, provider: MFaxProvider, fax: OutboundFax
) -> None:
    await provider.send(replace(fax, cover=None, cover_pdf=None))

    form = harness.requests[-1].form()
    assert form["coverPage"] == ["false"]
    assert not {"recipientName", "senderName", "subject", "notes"} & set(form)


async def test_a_caller_id_longer_than_ten_digits_is_left_to_the_account_default(
    harness: MFaxHarness, provider: MFaxProvider, fax: OutboundFax
) -> None:
    result = await provider.send(replace(fax, caller_id="+442071234567"))

    assert "callerId" not in harness.requests[-1].form()
    assert harness.state.faxes[result.provider_fax_id]["faxCallerId"] == "5094570000"


# -- status ----------------------------------------------------------------------------------
async def test_status_reads_the_fax_info(
    harness: MFaxHarness, provider: MFaxProvider, fax: OutboundFax
) -> None:
    fax_id = (await provider.send(fax)).provider_fax_id

    update = await provider.status(fax_id)

    assert update is not None
    assert (update.status, update.provider_code, update.job_id) == (
        JobStatus.SUBMITTED,
        "processing",
        "job-7",
    )
    request = harness.requests[-1]
    assert (request.method, request.path) == ("GET", f"/v1/fax/{fax_id}/info")
    assert request.headers["authorization"] == f"Basic {API_KEY}"


async def test_status_of_a_failed_fax_carries_documo_s_code_and_words(
    harness: MFaxHarness, provider: MFaxProvider, fax: OutboundFax
) -> None:
    fax_id = (await provider.send(fax)).provider_fax_id
    harness.finish(fax_id, "failed", errorCode="486", errorInfo="Line busy", resultCode="486")

    update = await provider.status(fax_id)

    assert update is not None
    assert (update.status, update.reason) == (JobStatus.FAILED, FailureReason.BUSY)
    assert (update.provider_code, update.provider_text) == ("486", "Line busy")


async def test_status_of_an_unknown_fax_is_none(provider: MFaxProvider) -> None:
    assert await provider.status("00000000-0000-0000-0000-000000000000") is None


# -- webhooks --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("processing", JobStatus.SUBMITTED),
        ("scheduled", JobStatus.SUBMITTED),
        ("transmitting", JobStatus.SENDING),
        ("success", JobStatus.DELIVERED),
        ("cancelled", JobStatus.CANCELLED),
    ],
)
@pytest.mark.parametrize("shape", ["json", "legacy"])
async def test_outbound_webhook_in_either_shape_maps_the_status(
    harness: MFaxHarness,
    provider: MFaxProvider,
    fax: OutboundFax,
    raw: str,
    expected: JobStatus,
    shape: str,
) -> None:
    fax_id = (await provider.send(fax)).provider_fax_id
    record = harness.finish(fax_id, raw)
    callback = (
        harness.json_callback(record, "fax.v1.outbound.complete")
        if shape == "json"
        else harness.legacy_callback(record)
    )

    result = await provider.parse_callback(await deliver(callback))

    (update,) = result.updates
    assert (update.provider_fax_id, update.status, update.reason) == (fax_id, expected, None)
    assert (update.provider_code, update.job_id, update.pages) == (raw, "job-7", 3)
    assert result.inbound == []


FAILURE_WORDS = [
    ("Line busy", None, FailureReason.BUSY),
    ("USER_BUSY", None, FailureReason.BUSY),
    ("No answer", None, FailureReason.NO_ANSWER),
    ("Ring timeout", None, FailureReason.NO_ANSWER),
    ("Invalid fax number", None, FailureReason.BAD_NUMBER),
    ("No fax tone detected", None, FailureReason.BAD_NUMBER),
    ("Number not in service", None, FailureReason.BAD_NUMBER),
    ("The call dropped prematurely", None, FailureReason.DISCONNECTED),
    ("Remote side disconnected", None, FailureReason.DISCONNECTED),
    ("Destination is blocked", None, FailureReason.BLOCKED_DESTINATION),
    ("Document conversion failed", None, FailureReason.FILE_ERROR),
    ("Insufficient credit", None, FailureReason.ON_HOLD),
    ("Fax failed", "1", FailureReason.UNKNOWN),
    (None, "486", FailureReason.BUSY),
    (None, "480", FailureReason.NO_ANSWER),
    (None, "404", FailureReason.BAD_NUMBER),
    (None, None, FailureReason.UNKNOWN),
]


@pytest.mark.parametrize(("words", "code", "reason"), FAILURE_WORDS)
async def test_failed_webhook_reason_comes_from_documo_s_words_then_codes(
    harness: MFaxHarness,
    provider: MFaxProvider,
    fax: OutboundFax,
    words: str | None,
    code: str | None,
    reason: FailureReason,
) -> None:
    fax_id = (await provider.send(fax)).provider_fax_id
    record = harness.finish(fax_id, "failed", errorInfo=words, errorCode=code, resultCode=code)

    callback = harness.json_callback(record, "fax.v1.outbound.failed")
    (update,) = (await provider.parse_callback(await deliver(callback))).updates

    assert (update.status, update.reason) == (JobStatus.FAILED, reason)
    assert update.provider_text == words
    assert update.provider_code == (code or "failed")


async def test_a_webhook_with_the_fax_under_data_and_no_status_uses_the_event(
    provider: MFaxProvider,
) -> None:
    body = {"event": "fax.v1.outbound.succeed", "data": {"messageId": "m-1", "cf": {}}}

    (update,) = (await provider.parse_callback(await deliver(webhook(body)))).updates

    assert (update.provider_fax_id, update.status) == ("m-1", JobStatus.DELIVERED)


async def test_forged_or_tokenless_webhooks_are_refused(
    harness: MFaxHarness, provider: MFaxProvider, fax: OutboundFax
) -> None:
    fax_id = (await provider.send(fax)).provider_fax_id
    callback = harness.status_callback(fax_id, "delivered")

    with pytest.raises(CallbackAuthError):
        await provider.parse_callback(await deliver(harness.forged(callback)))
    with pytest.raises(CallbackAuthError):
        await provider.parse_callback(await deliver(callback, token=None))


@pytest.mark.parametrize(
    "callback",
    [
        CallbackHTTP(headers={"content-type": "application/json"}, body=b"{not json"),
        CallbackHTTP(headers={"content-type": "application/json"}, body=b'"a string"'),
        CallbackHTTP(headers={"content-type": "application/json"}, body=b'{"status": "success"}'),
        multipart({"data": "{broken"}, {}),
        multipart({"data": json.dumps({"status": "success"})}, {}),
    ],
    ids=["not-json", "not-object", "no-message-id", "legacy-not-json", "legacy-no-message-id"],
)
async def test_malformed_webhooks_are_callback_errors(
    provider: MFaxProvider, callback: CallbackHTTP
) -> None:
    with pytest.raises(CallbackError) as caught:
        await provider.parse_callback(await deliver(callback))
    assert not isinstance(caught.value, CallbackAuthError)


# -- inbound ---------------------------------------------------------------------------------
async def test_inbound_json_webhook_yields_the_fax_and_the_document_is_downloaded(
    harness: MFaxHarness, provider: MFaxProvider
) -> None:
    pdf = make_pdf("INBOUND", pages=2)
    callback = harness.inbound_callback("+13125550111", OUR_NUMBER, pdf)

    result = await provider.parse_callback(await deliver(callback))

    (inbound,) = result.inbound
    assert result.updates == []
    assert (inbound.from_number, inbound.to_number, inbound.pages) == (
        "+13125550111",
        OUR_NUMBER,
        2,
    )
    assert inbound.document is None and inbound.received is not None
    assert inbound.remote_station_id == "REMOTE FAX"
    assert await provider.fetch_document(inbound) == pdf
    download = harness.requests[-1]
    assert (download.method, download.path) == (
        "GET",
        f"/v1/fax/{inbound.provider_fax_id}/download",
    )
    assert download.headers["authorization"] == f"Basic {API_KEY}"


async def test_inbound_legacy_webhook_carries_the_document_itself(
    harness: MFaxHarness, provider: MFaxProvider
) -> None:
    pdf = make_pdf("INBOUND")
    callback = harness.legacy_callback(harness.receive("+13125550111", OUR_NUMBER, pdf), pdf)

    (inbound,) = (await provider.parse_callback(await deliver(callback))).inbound

    assert inbound.document == pdf
    assert await provider.fetch_document(inbound) == pdf
    assert harness.requests == []  # nothing to download


async def test_inbound_numbers_are_told_apart_by_which_one_is_ours(
    provider: MFaxProvider,
) -> None:
    body = {
        "event": "fax.v1.inbound.succeed",
        "messageId": "m-2",
        "direction": "inbound",
        "status": "success",
        "faxNumber": "+13125550111",  # the sender here
        "toNumber": "2125550100",  # ours, as ten national digits
    }

    (inbound,) = (await provider.parse_callback(await deliver(webhook(body)))).inbound

    assert (inbound.from_number, inbound.to_number) == ("+13125550111", OUR_NUMBER)


async def test_a_failed_inbound_fax_yields_nothing_to_mail(provider: MFaxProvider) -> None:
    body = {"messageId": "m-3", "direction": "inbound", "status": "failed", "faxNumber": "1"}

    result = await provider.parse_callback(await deliver(webhook(body)))

    assert (result.updates, result.inbound) == ([], [])


# -- errors ----------------------------------------------------------------------------------
async def test_rate_limit_is_transient_and_honours_retry_after(
    harness: MFaxHarness, provider: MFaxProvider, fax: OutboundFax
) -> None:
    harness.fail_next(429, {"error": "Too many requests"}, {"Retry-After": "12"})

    with pytest.raises(TransientProviderError) as caught:
        await provider.send(fax)
    assert caught.value.retry_after_s == 12
    assert harness.state.faxes == {}


@pytest.mark.parametrize("code", [500, 503])
async def test_server_errors_are_transient(
    harness: MFaxHarness, provider: MFaxProvider, fax: OutboundFax, code: int
) -> None:
    harness.fail_next(code, {"error": "Service unavailable"})

    with pytest.raises(TransientProviderError) as caught:
        await provider.send(fax)
    assert caught.value.code == str(code)


async def test_a_hanging_api_is_a_transient_timeout(
    harness: MFaxHarness, client: httpx.AsyncClient, fax: OutboundFax
) -> None:
    provider = build(harness, client, timeout_s=0.2)
    harness.hang_next(1.0)

    with pytest.raises(TransientProviderError) as caught:
        await provider.send(fax)
    assert caught.value.code == "timeout"


@pytest.mark.parametrize("code", [400, 401, 422])
async def test_client_errors_are_permanent_with_documo_s_words(
    harness: MFaxHarness, provider: MFaxProvider, fax: OutboundFax, code: int
) -> None:
    harness.fail_next(code, {"error": "InvalidInputError: No files and cover page in to send."})

    with pytest.raises(PermanentProviderError) as caught:
        await provider.send(fax)
    assert caught.value.code == str(code)
    assert "No files and cover page in to send." in caught.value.message


async def test_a_number_documo_refuses_is_a_permanent_failure(
    harness: MFaxHarness, provider: MFaxProvider, fax: OutboundFax
) -> None:
    with pytest.raises(PermanentProviderError, match="faxNumber must be a fax number"):
        await provider.send(replace(fax, to="+1"))
    assert harness.state.faxes == {}


@pytest.mark.parametrize(
    "answer",
    [
        {"messageId": "m-9", "status": "failed", "errorInfo": "Invalid fax number"},
        {"success": [], "errors": [{"error": "Invalid fax number", "recipientFax": "1"}]},
    ],
    ids=["failed-at-once", "multiple-style-errors"],
)
async def test_a_fax_documo_fails_on_arrival_is_permanent_with_its_words(
    harness: MFaxHarness, provider: MFaxProvider, fax: OutboundFax, answer: dict[str, Any]
) -> None:
    harness.fail_next(200, answer)

    with pytest.raises(PermanentProviderError, match="Invalid fax number"):
        await provider.send(fax)


# -- admin -----------------------------------------------------------------------------------
async def test_check_lists_numbers_rather_than_the_rate_limited_history(
    harness: MFaxHarness, provider: MFaxProvider
) -> None:
    line = await provider.check()

    assert "1 fax number" in line
    (request,) = harness.requests
    assert (request.method, request.path, request.query) == ("GET", "/v1/numbers", {"limit": ["1"]})


async def test_check_with_a_wrong_api_key_is_a_permanent_error(
    harness: MFaxHarness, client: httpx.AsyncClient
) -> None:
    provider = build(harness, client, api_key="wrong")

    with pytest.raises(PermanentProviderError) as caught:
        await provider.check()
    assert caught.value.code == "401"
    assert "invalid API key" in caught.value.message


async def test_setup_gives_instructions_naming_the_tokened_callback_url(
    harness: MFaxHarness, provider: MFaxProvider
) -> None:
    lines = await provider.setup()

    assert any(f"{BRIDGE}/callbacks/mfax?token={TOKEN}" in line for line in lines)
    assert any("fax.v1.outbound.complete" in line for line in lines)
    assert harness.requests == []
