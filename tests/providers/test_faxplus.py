"""Fax.Plus adapter against its emulator: the wire, the two ids, webhooks, errors, admin.

Linking, paging, redial, cancel/delete and lines are in `test_faxplus_linking.py`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from bridge.config import FaxPlusConfig
from bridge.errors import (
    CallbackAuthError,
    CallbackError,
    PermanentProviderError,
    TransientProviderError,
)
from bridge.models import (
    CallbackRequest,
    CoverNote,
    FailureReason,
    JobStatus,
    OutboundFax,
)
from bridge.providers.base import ProviderContext
from bridge.providers.faxplus import FaxPlusProvider
from tests.providers.conftest import CALLBACK_TOKEN, callback_request
from tests.providers.emulators.faxplus import ACCESS_TOKEN, CLIENT_ID, FaxPlusHarness, make_harness
from tests.providers.harness import CallbackHTTP
from tests.providers.pdfs import make_pdf

TOKEN = CALLBACK_TOKEN
JOB = "0190f2a1b3c4d5e6f"  # shaped like the store's ids (`new_id`)
BRIDGE = "http://127.0.0.1:9/bridge"


async def deliver(callback: CallbackHTTP, token: str | None = TOKEN) -> CallbackRequest:
    return await callback_request(callback, token)


@pytest.fixture
def harness() -> Iterator[FaxPlusHarness]:
    with make_harness() as running:
        yield running


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as http:
        yield http


def build(harness: FaxPlusHarness, client: httpx.AsyncClient, **overrides: Any) -> FaxPlusProvider:
    config = FaxPlusConfig.model_validate({**harness.provider_config(TOKEN), **overrides})
    context = ProviderContext(public_url=BRIDGE, data_dir=Path("."))
    return FaxPlusProvider("faxplus", config, client, context)


@pytest.fixture
def provider(harness: FaxPlusHarness, client: httpx.AsyncClient) -> FaxPlusProvider:
    return build(harness, client)


@pytest.fixture
def fax(tmp_path: Path) -> OutboundFax:
    document = tmp_path / "document.pdf"
    document.write_bytes(make_pdf("the document"))
    cover_pdf = tmp_path / "cover.pdf"
    cover_pdf.write_bytes(make_pdf("our cover page"))
    cover = CoverNote(
        to_name="Jane Doe",
        to_number="+12125550123",
        from_name="Front Desk",
        from_number="+12125550100",
        subject="Contract",
        notes="Please sign page 2.",
        date=datetime(2024, 5, 1, tzinfo=UTC),
        pages=2,
    )
    return OutboundFax(
        job_id=JOB,
        to="+12125550123",
        caller_id="+12125550100",
        document=document,
        pages=1,
        cover=cover,
        cover_pdf=cover_pdf,
        callback_url=f"{BRIDGE}/callbacks/faxplus",
    )


# -- send ------------------------------------------------------------------------------------
async def test_send_uploads_the_document_then_queues_it_with_native_cover_fields(
    harness: FaxPlusHarness, provider: FaxPlusProvider, fax: OutboundFax
) -> None:
    result = await provider.send(fax)

    upload, outbox = harness.requests
    assert (upload.method, upload.path, upload.query) == (
        "POST",
        "/v3/accounts/self/files",
        {"format": ["pdf"]},
    )
    for request in (upload, outbox):
        assert request.headers["authorization"] == f"Bearer {ACCESS_TOKEN}"
        assert request.headers["x-fax-clientid"] == CLIENT_ID
    (part,) = upload.files()
    assert (part.name, part.content_type) == ("fax_file", "application/pdf")
    assert part.data == fax.document.read_bytes()  # without our cover: Fax.Plus renders one

    assert (outbox.method, outbox.path) == ("POST", "/v3/accounts/self/outbox")
    (path,) = harness.state.files
    assert outbox.json() == {
        "from": "+12125550100",
        "to": ["+12125550123"],
        "files": [path],
        "comment": {"text": f"faxbridge job {JOB}", "tags": ["faxbridge", f"job:{JOB}"]},
        # The default redial policy: busy 3 dials 5 min apart, as 2 retries 5 (minutes) apart.
        "options": {"retry": {"count": 2, "delay": 5}},
        "return_ids": True,
        "cover_page": {
            "name_to": "Jane Doe",
            "name_from": "Front Desk",
            "subject": "Contract",
            "message": "Please sign page 2.",
        },
    }
    assert result.provider_fax_id in harness.state.outbox
    assert result.status is JobStatus.SUBMITTED


async def test_send_without_caller_id_or_cover_sends_no_number_and_no_cover_page(
    harness: FaxPlusHarness, provider: FaxPlusProvider, fax: OutboundFax
) -> None:
    plain = OutboundFax(**{**fax.__dict__, "caller_id": None, "cover": None, "cover_pdf": None})
    await provider.send(plain)

    body = harness.requests[-1].json()
    assert body["from"] == "no_number"
    assert "cover_page" not in body


async def test_send_with_a_personal_token_omits_the_client_id_header(
    client: httpx.AsyncClient, fax: OutboundFax
) -> None:
    with make_harness(client_id=None) as harness:
        provider = build(harness, client)
        await provider.send(fax)
        assert all("x-fax-clientid" not in r.headers for r in harness.requests)


# -- status ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("submitted", JobStatus.SUBMITTED),
        ("converting", JobStatus.SUBMITTED),
        ("scheduled_for_sending", JobStatus.SUBMITTED),
        ("sending", JobStatus.SENDING),
    ],
)
async def test_status_of_a_queued_fax_comes_from_the_outbox(
    harness: FaxPlusHarness,
    provider: FaxPlusProvider,
    fax: OutboundFax,
    raw: str,
    expected: JobStatus,
) -> None:
    outbox_id = (await provider.send(fax)).provider_fax_id
    harness.state.outbox[outbox_id]["status"] = raw

    update = await provider.status(outbox_id)

    assert update is not None
    assert (update.status, update.provider_code, update.job_id) == (expected, raw, JOB)
    assert harness.requests[-1].path == f"/v3/accounts/self/outbox/{outbox_id}"


async def test_status_of_a_sent_fax_comes_from_its_fax_record(
    harness: FaxPlusHarness, provider: FaxPlusProvider, fax: OutboundFax
) -> None:
    outbox_id = (await provider.send(fax)).provider_fax_id
    fax_id = harness.state.complete(outbox_id, "failed_no_answer").record["id"]

    update = await provider.status(fax_id)

    assert update is not None
    assert (update.status, update.reason) == (JobStatus.FAILED, FailureReason.NO_ANSWER)
    assert update.job_id == JOB
    assert update.pages == 2  # one document page and Fax.Plus's cover page


async def test_status_is_none_when_neither_outbox_nor_faxes_know_the_id(
    harness: FaxPlusHarness, provider: FaxPlusProvider, fax: OutboundFax
) -> None:
    outbox_id = (await provider.send(fax)).provider_fax_id
    harness.state.complete(outbox_id, "success")  # the outbox id is gone once sent

    assert await provider.status(outbox_id) is None
    assert [r.path for r in harness.requests[-2:]] == [
        f"/v3/accounts/self/outbox/{outbox_id}",
        f"/v3/accounts/self/faxes/{outbox_id}",
    ]


async def test_status_with_job_id_finds_the_sent_fax_by_its_tag(
    harness: FaxPlusHarness, provider: FaxPlusProvider, fax: OutboundFax
) -> None:
    outbox_id = (await provider.send(fax)).provider_fax_id
    harness.settle(outbox_id, "failed", "busy")  # leaves the outbox under a new fax id
    fax_id = next(iter(harness.state.faxes))
    other = harness.state.complete("someone-else", "success").record  # newer, not ours
    harness.inbound_callback("+12125550111", "+12125550100", make_pdf("inbound"))  # not a sent fax

    update = await provider.status(outbox_id, job_id=JOB)

    assert update is not None
    assert (update.provider_fax_id, update.job_id) == (fax_id, JOB)
    assert fax_id not in (outbox_id, other["id"])
    assert (update.status, update.reason) == (JobStatus.FAILED, FailureReason.BUSY)
    assert update.provider_code == "failed_user_busy"
    listing = harness.requests[-1]
    assert (listing.method, listing.path) == ("GET", "/v3/accounts/self/faxes")
    assert (listing.query["category"], listing.query["limit"]) == (["sent"], ["50"])
    assert {"after", "before"} <= set(listing.query)  # a time window, not "the latest 50"
    assert len(harness.requests) == 1 + 1 + 3  # upload, outbox, then outbox/fax/list lookups


async def test_status_with_job_id_is_none_when_no_sent_fax_carries_the_tag(
    harness: FaxPlusHarness, provider: FaxPlusProvider, fax: OutboundFax
) -> None:
    outbox_id = (await provider.send(fax)).provider_fax_id
    harness.state.outbox.pop(outbox_id)  # gone, and never became a sent fax
    harness.state.complete("someone-else", "success")

    assert await provider.status(outbox_id, job_id=JOB) is None
    assert harness.requests[-1].path == "/v3/accounts/self/faxes"


# -- webhooks --------------------------------------------------------------------------------
STATUS_TABLE = [
    ("success", JobStatus.DELIVERED, None),
    ("failed_user_busy", JobStatus.FAILED, FailureReason.BUSY),
    ("failed_no_answer", JobStatus.FAILED, FailureReason.NO_ANSWER),
    ("failed_unallocated_number", JobStatus.FAILED, FailureReason.BAD_NUMBER),
    ("failed_invalid_number_format", JobStatus.FAILED, FailureReason.BAD_NUMBER),
    ("failed_destination_not_supported", JobStatus.FAILED, FailureReason.BAD_NUMBER),
    # apidoc.fax.plus/concepts/fax: "Destination was busy. Wait and retry."
    ("failed_normal_clearing", JobStatus.FAILED, FailureReason.BUSY),
    ("failed_normal_temporary_failure", JobStatus.FAILED, FailureReason.DISCONNECTED),
    ("failed_to_send", JobStatus.FAILED, FailureReason.DISCONNECTED),
    ("failed_fs_2", JobStatus.FAILED, FailureReason.DISCONNECTED),
    ("failed_fs_49", JobStatus.FAILED, FailureReason.DISCONNECTED),
    ("partially_sent", JobStatus.FAILED, FailureReason.DISCONNECTED),
    ("failed_office_converter_issue", JobStatus.FAILED, FailureReason.FILE_ERROR),
    ("failed_unknown_converter_issue", JobStatus.FAILED, FailureReason.FILE_ERROR),
    ("failed_convert_to_tiff_issue", JobStatus.FAILED, FailureReason.FILE_ERROR),
    ("failed_mimetype_not_supported", JobStatus.FAILED, FailureReason.FILE_ERROR),
    ("failed_image_preparation", JobStatus.FAILED, FailureReason.FILE_ERROR),
    ("failed_separate_file_pages_issue", JobStatus.FAILED, FailureReason.FILE_ERROR),
    ("failed_render_header_issue", JobStatus.FAILED, FailureReason.FILE_ERROR),
    ("insufficient_credit", JobStatus.FAILED, FailureReason.ON_HOLD),
    ("failed", JobStatus.FAILED, FailureReason.UNKNOWN),
    ("failed_internal_process_error", JobStatus.FAILED, FailureReason.UNKNOWN),
    ("failed_something_new", JobStatus.FAILED, FailureReason.UNKNOWN),
]


@pytest.mark.parametrize(("raw", "status", "reason"), STATUS_TABLE)
async def test_fax_sent_webhook_maps_the_status_and_finds_the_job_by_its_tag(
    harness: FaxPlusHarness,
    provider: FaxPlusProvider,
    fax: OutboundFax,
    raw: str,
    status: JobStatus,
    reason: FailureReason | None,
) -> None:
    outbox_id = (await provider.send(fax)).provider_fax_id

    result = await provider.parse_callback(await deliver(harness.raw_callback(outbox_id, raw)))

    (update,) = result.updates
    (fax_id,) = harness.state.faxes
    assert update.provider_fax_id == fax_id != outbox_id  # the webhook names the new id
    assert (update.status, update.reason, update.provider_code) == (status, reason, raw)
    assert update.job_id == JOB
    assert f"/v3/accounts/self/faxes/{fax_id}" in [r.path for r in harness.requests]
    assert result.inbound == []


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        # apidoc.fax.plus/concepts/fax "Fax Error Statuses", both "Destination was busy".
        ("failed_user_busy", "The destination was busy"),
        ("failed_normal_clearing", "The destination was busy"),
        ("partially_sent", "The first pages were sent, then the call dropped"),
        (
            "failed_convert_to_tiff_issue",
            "File conversion issue: some page of the document is not valid",
        ),
    ],
)
async def test_failure_webhook_carries_fax_plus_s_meaning_of_the_code(
    harness: FaxPlusHarness, provider: FaxPlusProvider, fax: OutboundFax, raw: str, text: str
) -> None:
    outbox_id = (await provider.send(fax)).provider_fax_id
    callback = harness.raw_callback(outbox_id, raw)

    (update,) = (await provider.parse_callback(await deliver(callback))).updates

    assert update.provider_text == text
    assert update.at is not None and update.pages == 2


@pytest.mark.parametrize(
    ("status", "reason", "expected"),
    [
        ("delivered", None, JobStatus.DELIVERED),
        *[("failed", r, JobStatus.FAILED) for r in FaxPlusHarness.supported_failures],
    ],
)
async def test_harness_callbacks_parse_to_the_common_status(
    harness: FaxPlusHarness,
    provider: FaxPlusProvider,
    fax: OutboundFax,
    status: str,
    reason: str | None,
    expected: JobStatus,
) -> None:
    outbox_id = (await provider.send(fax)).provider_fax_id

    callback = harness.status_callback(outbox_id, status, reason)
    (update,) = (await provider.parse_callback(await deliver(callback))).updates

    assert (update.status, update.job_id) == (expected, JOB)
    assert update.reason == (FailureReason(reason) if reason else None)


@pytest.mark.parametrize("status", ["submitted", "sending"])
def test_harness_has_no_webhook_for_the_outbox_stages(harness: FaxPlusHarness, status: str) -> None:
    with pytest.raises(NotImplementedError):
        harness.status_callback("any-outbox-id", status)


async def test_a_webhook_naming_an_outbox_fax_is_read_leniently(
    harness: FaxPlusHarness, provider: FaxPlusProvider, fax: OutboundFax
) -> None:
    outbox_id = (await provider.send(fax)).provider_fax_id
    body = {
        "hook": {"id": outbox_id, "event": "fax_sent"},
        "data": {"id": outbox_id, "status": "sending"},
    }
    callback = CallbackHTTP(
        headers={"content-type": "application/json"}, body=json.dumps(body).encode()
    )

    (update,) = (await provider.parse_callback(await deliver(callback))).updates

    assert (update.status, update.job_id) == (JobStatus.SENDING, JOB)


async def test_webhook_for_a_fax_without_our_tag_has_no_job_id(
    harness: FaxPlusHarness, provider: FaxPlusProvider
) -> None:
    callback = harness.raw_callback("sent-from-the-web-app", "success")

    (update,) = (await provider.parse_callback(await deliver(callback))).updates

    assert update.status is JobStatus.DELIVERED
    assert update.job_id is None


async def test_webhook_still_reports_when_the_fax_record_cannot_be_read(
    harness: FaxPlusHarness, provider: FaxPlusProvider, fax: OutboundFax
) -> None:
    outbox_id = (await provider.send(fax)).provider_fax_id
    callback = harness.raw_callback(outbox_id, "success")
    harness.fail_next(503, {"error": "unavailable"})

    (update,) = (await provider.parse_callback(await deliver(callback))).updates

    assert (update.status, update.job_id) == (JobStatus.DELIVERED, None)


async def test_forged_or_tokenless_webhooks_are_refused_without_touching_the_api(
    harness: FaxPlusHarness, provider: FaxPlusProvider, fax: OutboundFax
) -> None:
    outbox_id = (await provider.send(fax)).provider_fax_id
    callback = harness.raw_callback(outbox_id, "success")
    seen = len(harness.requests)

    with pytest.raises(CallbackAuthError):
        await provider.parse_callback(await deliver(harness.forged(callback)))
    with pytest.raises(CallbackAuthError):
        await provider.parse_callback(await deliver(callback, token=None))
    assert len(harness.requests) == seen


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[1, 2]",
        b'{"hook": {"event": "fax_sent"}}',
        b'{"hook": {"event": "fax_sent"}, "data": []}',
    ],
)
async def test_malformed_webhooks_are_callback_errors(
    provider: FaxPlusProvider, body: bytes
) -> None:
    callback = CallbackHTTP(headers={"content-type": "application/json"}, body=body)

    with pytest.raises(CallbackError) as caught:
        await provider.parse_callback(await deliver(callback))
    assert not isinstance(caught.value, CallbackAuthError)


# -- inbound ---------------------------------------------------------------------------------
async def test_fax_received_webhook_becomes_an_inbound_fax_whose_pdf_is_downloaded(
    harness: FaxPlusHarness, provider: FaxPlusProvider
) -> None:
    pdf = make_pdf("an inbound fax")
    callback = harness.inbound_callback("+13343041234", "+12125550100", pdf)

    result = await provider.parse_callback(await deliver(callback))

    (inbound,) = result.inbound
    assert result.updates == []
    assert (inbound.from_number, inbound.to_number, inbound.pages) == (
        "+13343041234",
        "+12125550100",
        1,
    )
    assert inbound.received is not None and inbound.document is None
    assert await provider.fetch_document(inbound) == pdf
    download = harness.requests[-1]
    assert download.path == f"/v3/accounts/self/files/{inbound.provider_fax_id}"
    assert download.query == {"format": ["pdf"]}
    assert download.headers["authorization"] == f"Bearer {ACCESS_TOKEN}"


async def test_inbound_webhook_accepts_sdk_spellings_and_formatted_numbers(
    provider: FaxPlusProvider,
) -> None:
    body = {
        "hook": {"id": "h1", "event": "fax_received", "event_time": "2024-09-09 10:44:39"},
        "data": {
            "id": "f1",
            "from_number": "+1 334-304-1234",
            "to_number": "+1 (212) 555-0100",
            "pages": 3,
            "start_time": "2024-09-09 10:44:39",
            "status": "success",
        },
    }
    callback = CallbackHTTP(
        headers={"content-type": "application/json"}, body=json.dumps(body).encode()
    )

    (inbound,) = (await provider.parse_callback(await deliver(callback))).inbound

    assert (inbound.from_number, inbound.to_number) == ("+13343041234", "+12125550100")
    assert inbound.received == datetime(2024, 9, 9, 10, 44, 39, tzinfo=UTC)


# -- errors ----------------------------------------------------------------------------------
async def test_rate_limit_is_transient_and_honours_retry_after(
    harness: FaxPlusHarness, provider: FaxPlusProvider, fax: OutboundFax
) -> None:
    harness.fail_next(
        429, {"error": "rate_limited", "description": "Too many requests"}, {"Retry-After": "7"}
    )

    with pytest.raises(TransientProviderError) as caught:
        await provider.send(fax)
    assert caught.value.retry_after_s == 7
    assert harness.state.outbox == {}


@pytest.mark.parametrize("code", [500, 503])
async def test_server_errors_are_transient(
    harness: FaxPlusHarness, provider: FaxPlusProvider, fax: OutboundFax, code: int
) -> None:
    harness.fail_next(code, {"error": "internal_error", "description": "Try again later"})

    with pytest.raises(TransientProviderError) as caught:
        await provider.send(fax)
    assert caught.value.code == str(code)


async def test_a_hanging_api_is_a_transient_timeout(
    harness: FaxPlusHarness, client: httpx.AsyncClient, fax: OutboundFax
) -> None:
    provider = build(harness, client, timeout_s=0.2)
    harness.hang_next(1.0)

    with pytest.raises(TransientProviderError) as caught:
        await provider.send(fax)
    assert caught.value.code == "timeout"


@pytest.mark.parametrize("code", [400, 401, 422])
async def test_client_errors_are_permanent_with_fax_plus_s_words(
    harness: FaxPlusHarness, provider: FaxPlusProvider, fax: OutboundFax, code: int
) -> None:
    harness.fail_next(
        code, {"error": "invalid_parameters", "description": "Destination number is invalid"}
    )

    with pytest.raises(PermanentProviderError) as caught:
        await provider.send(fax)
    assert caught.value.code == str(code)
    assert "invalid_parameters" in caught.value.message
    assert "Destination number is invalid" in caught.value.message


async def test_a_rejected_outbox_post_after_the_upload_is_permanent(
    harness: FaxPlusHarness, provider: FaxPlusProvider, fax: OutboundFax
) -> None:
    bad = OutboundFax(**{**fax.__dict__, "to": ""})  # the emulator refuses an empty number

    with pytest.raises(PermanentProviderError, match="must list fax numbers"):
        await provider.send(bad)
    assert len(harness.state.files) == 1 and harness.state.outbox == {}


async def test_an_outbox_answer_without_ids_is_uncertain_never_refused(
    harness: FaxPlusHarness, provider: FaxPlusProvider, fax: OutboundFax
) -> None:
    harness.fail_next(200, {"path": "/transient-1.pdf"})  # the upload
    harness.fail_next(201, {})  # the outbox post, accepted but naming no id

    with pytest.raises(TransientProviderError) as caught:
        await provider.send(fax)
    # Fax.Plus may send it: the worker asks `find` before any re-send, never marks it refused.
    assert caught.value.maybe_sent and not caught.value.rate_limited
    assert harness.requests[-1].path == "/v3/accounts/self/outbox"


# -- admin -----------------------------------------------------------------------------------
async def test_check_reads_the_account_with_the_credentials(
    harness: FaxPlusHarness, provider: FaxPlusProvider
) -> None:
    line = await provider.check()

    assert "faxes@example.com" in line
    (request,) = harness.requests
    assert (request.method, request.path) == ("GET", "/v3/accounts/self")
    assert request.headers["authorization"] == f"Bearer {ACCESS_TOKEN}"


async def test_check_with_a_bad_token_is_a_permanent_error(
    harness: FaxPlusHarness, client: httpx.AsyncClient
) -> None:
    provider = build(harness, client, access_token="wrong")

    with pytest.raises(PermanentProviderError) as caught:
        await provider.check()
    assert caught.value.code == "401"
    assert "invalid or has expired" in caught.value.message


async def test_setup_registers_both_webhooks_once_with_the_tokened_url(
    harness: FaxPlusHarness, provider: FaxPlusProvider
) -> None:
    lines = await provider.setup()
    again = await provider.setup()

    hooks = sorted((h["event"], h["target"]) for h in harness.state.hooks.values())
    url = f"{BRIDGE}/callbacks/faxplus?token={TOKEN}"
    assert hooks == [("fax_received", url), ("fax_sent", url)]
    assert len(lines) == 2 and all("Registered" in line for line in lines)
    assert all("already exists" in line for line in again)
    assert not any(TOKEN in line for line in lines + again)
