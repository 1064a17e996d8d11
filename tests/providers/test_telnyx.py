"""Telnyx Programmable Fax adapter against its emulator: the upload, each webhook as Telnyx
documents it, Ed25519 signatures and their timestamps, inbound media links, the list look-up,
cancel/delete/lines, rate limits, check and setup."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bridge.config import TelnyxConfig
from bridge.errors import (
    CallbackAuthError,
    CallbackError,
    PermanentProviderError,
    TransientProviderError,
)
from bridge.models import CallbackRequest, CoverNote, FailureReason, JobStatus, OutboundFax
from bridge.providers import telnyx_wire
from bridge.providers.base import ProviderContext
from bridge.providers.telnyx import TelnyxProvider
from tests.providers.conftest import CALLBACK_TOKEN, callback_request
from tests.providers.emulators.telnyx import (
    API_KEY,
    CONNECTION_ID,
    TelnyxHarness,
    make_harness,
)
from tests.providers.harness import CallbackHTTP
from tests.providers.pdfs import make_pdf, page_texts

TOKEN = CALLBACK_TOKEN
BRIDGE = "http://127.0.0.1:9/bridge"
OUR_NUMBER = "+12125550100"
TO = "+12125550123"
JOB = "0190f2a1b3c4d5e6f"  # shaped like the store's job ids


@pytest.fixture
def harness() -> Iterator[TelnyxHarness]:
    with make_harness() as running:
        yield running


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as http:
        yield http


def build(harness: TelnyxHarness, client: httpx.AsyncClient, **overrides: Any) -> TelnyxProvider:
    config = TelnyxConfig.model_validate({**harness.provider_config(TOKEN), **overrides})
    context = ProviderContext(
        public_url=BRIDGE, data_dir=Path("."), inbound_numbers=frozenset({OUR_NUMBER})
    )
    return TelnyxProvider("telnyx", config, client, context)


@pytest.fixture
def provider(harness: TelnyxHarness, client: httpx.AsyncClient) -> TelnyxProvider:
    return build(harness, client)


@pytest.fixture
def fax(tmp_path: Path) -> OutboundFax:
    document = tmp_path / "document.pdf"
    document.write_bytes(make_pdf("DOCUMENT", pages=2))
    cover_pdf = tmp_path / "cover.pdf"
    cover_pdf.write_bytes(make_pdf("COVERPAGE"))
    cover = CoverNote(
        to_name="Jane Doe",
        to_number=TO,
        from_name="Front Desk",
        from_number=OUR_NUMBER,
        subject="Contract",
        notes="Please sign page 2.",
        date=datetime(2024, 5, 1, tzinfo=UTC),
        pages=3,
    )
    return OutboundFax(
        job_id=JOB,
        to=TO,
        caller_id=OUR_NUMBER,
        document=document,
        pages=2,
        cover=cover,
        cover_pdf=cover_pdf,
        callback_url=f"{BRIDGE}/callbacks/telnyx?token={TOKEN}",
        header="Front Desk (Smith & Co)",
    )


def replace(fax: OutboundFax, **changes: Any) -> OutboundFax:
    return OutboundFax(**{**fax.__dict__, **changes})


async def parsed(
    provider: TelnyxProvider, callback: CallbackHTTP, token: str | None = TOKEN
) -> Any:
    request: CallbackRequest = await callback_request(callback, token)
    return await provider.parse_callback(request)


# -- send ------------------------------------------------------------------------------------
async def test_send_uploads_our_cover_and_the_document_as_contents_with_from_and_reference(
    harness: TelnyxHarness, provider: TelnyxProvider, fax: OutboundFax
) -> None:
    result = await provider.send(fax)

    (request,) = harness.requests
    assert (request.method, request.path) == ("POST", "/v2/faxes")
    assert request.headers["authorization"] == f"Bearer {API_KEY}"
    assert request.content_type.startswith("multipart/form-data")
    form = request.form()
    assert form == {
        "connection_id": [CONNECTION_ID],
        "to": [TO],
        "from": [OUR_NUMBER],  # the caller ID is Telnyx's required `from`
        "client_state": [base64.b64encode(f"faxbridge job {JOB}".encode()).decode()],
        "webhook_url": [fax.callback_url],
        "from_display_name": ["Front Desk Smith Co"],  # only the characters Telnyx allows
    }
    (part,) = request.files()
    assert (part.name, part.filename, part.content_type) == (
        "contents",
        f"{JOB}.pdf",  # telnyx-node issue 150: a part without a filename is refused
        "application/pdf",
    )
    # No cover fields at Telnyx: the bridge's cover page is page 1 of the upload.
    assert [t.split(" page")[0] for t in page_texts(part.data)] == [
        "COVERPAGE",
        "DOCUMENT",
        "DOCUMENT",
    ]
    assert (result.status, result.raw_status) == (JobStatus.SUBMITTED, "queued")
    stored = harness.state.faxes[result.provider_fax_id]
    assert stored["page_count"] == 3


async def test_without_a_cover_the_document_goes_byte_for_byte(
    harness: TelnyxHarness, provider: TelnyxProvider, fax: OutboundFax
) -> None:
    await provider.send(replace(fax, cover=None, cover_pdf=None, header=None))

    (request,) = harness.requests
    assert request.files()[0].data == fax.document.read_bytes()
    assert "from_display_name" not in request.form()


async def test_a_redial_round_carries_its_round_in_client_state(
    harness: TelnyxHarness, provider: TelnyxProvider, fax: OutboundFax
) -> None:
    result = await provider.send(replace(fax, round=2))

    state = harness.state.faxes[result.provider_fax_id]["client_state"]
    assert base64.b64decode(state).decode() == f"faxbridge job {JOB}-r2"


async def test_send_without_caller_id_is_refused_before_any_request(
    harness: TelnyxHarness, provider: TelnyxProvider, fax: OutboundFax
) -> None:
    with pytest.raises(PermanentProviderError, match="caller_id"):
        await provider.send(replace(fax, caller_id=None))
    assert harness.requests == []


def test_a_faxbox_without_caller_id_is_a_config_problem() -> None:
    from bridge.config import FaxboxConfig

    box = FaxboxConfig.model_validate({"name": "main", "domains": ["x"], "provider": "telnyx"})
    [problem] = TelnyxProvider.faxbox_problems(box)
    assert "caller_id" in problem


async def test_an_upload_over_twenty_megabytes_is_refused_before_sending(
    harness: TelnyxHarness,
    provider: TelnyxProvider,
    fax: OutboundFax,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("bridge.providers.telnyx.MAX_UPLOAD_BYTES", 1000)

    with pytest.raises(PermanentProviderError) as caught:
        await provider.send(fax)

    assert caught.value.code == "file_size_limit_exceeded"
    assert harness.requests == []


async def test_telnyx_s_validation_error_is_permanent_with_its_title_and_detail(
    harness: TelnyxHarness, provider: TelnyxProvider, fax: OutboundFax
) -> None:
    with pytest.raises(PermanentProviderError) as caught:
        await provider.send(replace(fax, to="+1"))

    assert caught.value.code == "422"
    assert "must be in E.164 format" in str(caught.value)


async def test_rate_limited_send_and_poll_never_count_as_attempts(
    harness: TelnyxHarness, provider: TelnyxProvider, fax: OutboundFax
) -> None:
    harness.fail_next(429, harness.error_body("Too many requests"))
    with pytest.raises(TransientProviderError) as caught:
        await provider.send(fax)
    assert caught.value.rate_limited and caught.value.retry_after_s == 60.0
    assert harness.state.faxes == {}

    fax_id = (await provider.send(fax)).provider_fax_id
    harness.fail_next(429, harness.error_body("Too many requests"), headers={"Retry-After": "7"})
    with pytest.raises(TransientProviderError) as caught:
        await provider.status(fax_id)
    assert caught.value.rate_limited and caught.value.retry_after_s == 7.0


async def test_a_send_without_answer_may_have_been_sent(
    harness: TelnyxHarness, client: httpx.AsyncClient, fax: OutboundFax
) -> None:
    harness.hang_next(1.0)
    with pytest.raises(TransientProviderError) as caught:
        await build(harness, client, timeout_s=0.2).send(fax)
    assert caught.value.maybe_sent and not caught.value.rate_limited


# -- webhooks → status -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("event", "status", "expected"),
    [
        ("fax.queued", "queued", JobStatus.SUBMITTED),
        ("fax.media.processed", "media.processed", JobStatus.SUBMITTED),
        ("fax.sending.started", "sending", JobStatus.SENDING),
        ("fax.sending.started", "sending.started", JobStatus.SENDING),  # "Receiving Webhooks"
        ("fax.delivered", "delivered", JobStatus.DELIVERED),
    ],
)
async def test_each_outbound_webhook_maps_to_its_status_and_names_the_job(
    harness: TelnyxHarness,
    provider: TelnyxProvider,
    fax: OutboundFax,
    event: str,
    status: str,
    expected: JobStatus,
) -> None:
    fax_id = (await provider.send(replace(fax, round=1))).provider_fax_id
    payload = harness.outbound_payload(harness.state.faxes[fax_id]) | {"status": status}
    if event == "fax.delivered":
        payload |= {"page_count": 3, "call_duration_secs": 25}

    result = await parsed(provider, harness.event(event, payload))

    [update] = result.updates
    assert (update.provider_fax_id, update.status) == (fax_id, expected)
    assert (update.job_id, update.round) == (JOB, 1)  # from client_state
    assert update.provider_code == event
    assert update.at is not None
    if event == "fax.delivered":
        assert update.pages == 3


@pytest.mark.parametrize(
    ("cause", "reason"),
    [
        ("user_busy", FailureReason.BUSY),
        ("receiver_no_answer", FailureReason.NO_ANSWER),
        ("receiver_no_response", FailureReason.NO_ANSWER),
        ("receiver_unallocated_number", FailureReason.BAD_NUMBER),
        ("receiver_invalid_number_format", FailureReason.BAD_NUMBER),
        ("receiver_incompatible_destination", FailureReason.BAD_NUMBER),
        ("receiver_call_dropped", FailureReason.DISCONNECTED),
        ("fax_signaling_error", FailureReason.DISCONNECTED),
        ("destination_not_in_countries_whitelist", FailureReason.BLOCKED_DESTINATION),
        ("file_format_invalid", FailureReason.FILE_ERROR),
        ("page_count_limit_exceeded", FailureReason.FILE_ERROR),
        ("account_disabled", FailureReason.ON_HOLD),
        ("outbound_profile_daily_spend_limit_exceeded", FailureReason.ON_HOLD),
        ("unverified_origination_number", FailureReason.REJECTED),
        ("service_unavailable", FailureReason.PROVIDER_ERROR),
        ("something_new", FailureReason.UNKNOWN),
    ],
)
async def test_fax_failed_reads_failure_reason(
    harness: TelnyxHarness,
    provider: TelnyxProvider,
    fax: OutboundFax,
    cause: str,
    reason: FailureReason,
) -> None:
    fax_id = (await provider.send(fax)).provider_fax_id
    payload = harness.outbound_payload(harness.state.faxes[fax_id])
    payload |= {"status": "failed", "failure_reason": cause, "internal_failure_reason": "x_486"}

    [update] = (await parsed(provider, harness.event("fax.failed", payload))).updates

    assert (update.status, update.reason) == (JobStatus.FAILED, reason)
    assert (update.provider_code, update.provider_text) == (cause, "x_486")


def test_every_documented_failure_reason_has_a_meaning() -> None:
    # team-telnyx/telnyx-python types/fax.py lists these as the customer-facing values.
    documented = (
        "receiver_call_dropped sender_call_dropped sender_canceled carrier_lost "
        "service_unavailable fax_signaling_error receiver_communication_error "
        "sender_communication_error receiver_decline receiver_recovery_on_timer_expire "
        "receiver_no_response receiver_invalid_number_format receiver_no_answer "
        "receiver_incompatible_destination receiver_unallocated_number destination_unreachable "
        "user_busy invalid_ecm_response_from_receiver fax_initial_communication_timeout "
        "destination_not_in_service_plan account_disabled destination_invalid "
        "no_outbound_profile destination_not_in_countries_whitelist user_channel_limit_exceeded "
        "outbound_profile_channel_limit_exceeded connection_channel_limit_exceeded "
        "outbound_profile_daily_spend_limit_exceeded unverified_origination_number "
        "unverified_destination_not_allowed file_format_invalid file_download_failed "
        "file_size_limit_exceeded page_count_limit_exceeded media_processing_exception"
    ).split()
    missing = set(documented) - set(telnyx_wire.FAILURE_REASONS) - {telnyx_wire.CANCELLED_REASON}
    assert missing == set()


async def test_a_cancelled_fax_ends_cancelled_not_failed(
    harness: TelnyxHarness, provider: TelnyxProvider, fax: OutboundFax
) -> None:
    fax_id = (await provider.send(fax)).provider_fax_id
    await provider.cancel(fax_id)

    polled = await provider.status(fax_id)
    payload = harness.outbound_payload(harness.state.faxes[fax_id])
    payload["failure_reason"] = "sender_canceled"
    [update] = (await parsed(provider, harness.event("fax.failed", payload))).updates

    assert polled is not None and polled.status is JobStatus.CANCELLED
    assert (update.status, update.reason) == (JobStatus.CANCELLED, None)
    assert update.provider_code == "sender_canceled"


async def test_duplicate_and_out_of_order_webhooks_parse_the_same_each_time(
    harness: TelnyxHarness, provider: TelnyxProvider, fax: OutboundFax
) -> None:
    # "Receiving Webhooks": Telnyx does not enforce order and may send duplicates.
    fax_id = (await provider.send(fax)).provider_fax_id
    queued = harness.status_callback(fax_id, "submitted")
    delivered = harness.status_callback(fax_id, "delivered")

    first = await parsed(provider, delivered)
    late = await parsed(provider, queued)
    again = await parsed(provider, delivered)

    assert first.updates == again.updates
    assert first.updates[0].status is JobStatus.DELIVERED
    # The late one says what it says; the store never moves a job backwards (JobStatus.rank).
    assert (late.updates[0].status, late.updates[0].provider_code) == (
        JobStatus.SUBMITTED,
        "fax.queued",
    )


# -- signatures ------------------------------------------------------------------------------
async def test_a_webhook_signed_with_another_key_is_refused(
    harness: TelnyxHarness, provider: TelnyxProvider, fax: OutboundFax
) -> None:
    fax_id = (await provider.send(fax)).provider_fax_id
    genuine = harness.status_callback(fax_id, "delivered")

    with pytest.raises(CallbackAuthError, match="does not verify"):
        await parsed(provider, harness.forged(genuine))


async def test_a_tampered_body_under_a_genuine_signature_is_refused(
    harness: TelnyxHarness, provider: TelnyxProvider, fax: OutboundFax
) -> None:
    fax_id = (await provider.send(fax)).provider_fax_id
    genuine = harness.status_callback(fax_id, "failed", "busy")
    tampered = genuine.body.replace(b'"fax.failed"', b'"fax.delivered"').replace(
        b'"status": "failed"', b'"status": "delivered"'
    )
    assert tampered != genuine.body

    with pytest.raises(CallbackAuthError):
        await parsed(provider, CallbackHTTP(headers=genuine.headers, body=tampered))


@pytest.mark.parametrize("offset_s", [-301, -3600, 301])
async def test_a_stale_or_future_timestamp_is_refused_even_when_signed(
    harness: TelnyxHarness, provider: TelnyxProvider, fax: OutboundFax, offset_s: int
) -> None:
    fax_id = (await provider.send(fax)).provider_fax_id
    body = harness.status_callback(fax_id, "delivered").body
    replayed = harness.signed(body, at=time.time() + offset_s)  # a genuine, old signature

    with pytest.raises(CallbackAuthError, match="timestamp"):
        await parsed(provider, replayed)


async def test_a_timestamp_within_five_minutes_is_accepted(
    harness: TelnyxHarness, provider: TelnyxProvider, fax: OutboundFax
) -> None:
    fax_id = (await provider.send(fax)).provider_fax_id
    body = harness.status_callback(fax_id, "delivered").body

    result = await parsed(provider, harness.signed(body, at=time.time() - 290))

    assert result.updates[0].status is JobStatus.DELIVERED


@pytest.mark.parametrize(
    "drop", ["telnyx-signature-ed25519", "telnyx-timestamp"], ids=["no-signature", "no-time"]
)
async def test_an_unsigned_webhook_is_refused(
    harness: TelnyxHarness, provider: TelnyxProvider, fax: OutboundFax, drop: str
) -> None:
    fax_id = (await provider.send(fax)).provider_fax_id
    signed = harness.status_callback(fax_id, "delivered")
    headers = {k: v for k, v in signed.headers.items() if k != drop}

    with pytest.raises(CallbackAuthError):
        await parsed(provider, CallbackHTTP(headers=headers, body=signed.body))


async def test_the_bridge_token_is_checked_too_when_one_is_configured(
    harness: TelnyxHarness, client: httpx.AsyncClient, fax: OutboundFax
) -> None:
    provider = build(harness, client)
    fax_id = (await provider.send(fax)).provider_fax_id
    genuine = harness.status_callback(fax_id, "delivered")

    with pytest.raises(CallbackAuthError, match="token"):
        await parsed(provider, genuine, token="wrong-token")
    tokenless = build(harness, client, callback_token=None)
    assert (await parsed(tokenless, genuine, token=None)).updates[0].status is JobStatus.DELIVERED


async def test_a_public_key_that_is_no_ed25519_key_refuses_every_webhook(
    harness: TelnyxHarness, client: httpx.AsyncClient, fax: OutboundFax
) -> None:
    provider = build(harness, client, public_key="bm90IGEga2V5")  # base64 of "not a key"
    fax_id = (await provider.send(fax)).provider_fax_id

    with pytest.raises(CallbackAuthError, match="public_key"):
        await parsed(provider, harness.status_callback(fax_id, "delivered"))


async def test_a_public_key_pasted_with_spaces_or_a_newline_still_verifies(
    harness: TelnyxHarness, client: httpx.AsyncClient, fax: OutboundFax
) -> None:
    provider = build(harness, client, public_key=f"  {harness.public_key}\n")
    fax_id = (await provider.send(fax)).provider_fax_id

    result = await parsed(provider, harness.status_callback(fax_id, "delivered"))

    assert result.updates[0].status is JobStatus.DELIVERED


async def test_signed_garbage_is_a_callback_error(
    harness: TelnyxHarness, provider: TelnyxProvider
) -> None:
    with pytest.raises(CallbackError):
        await parsed(provider, harness.signed(b"not json"))
    with pytest.raises(CallbackError):
        await parsed(provider, harness.signed(json.dumps({"meta": {}}).encode()))


# -- inbound -------------------------------------------------------------------------------
async def test_fax_received_is_fetched_from_its_media_url_without_our_api_key(
    harness: TelnyxHarness, provider: TelnyxProvider
) -> None:
    pdf = make_pdf("INBOUND", pages=2)
    callback = harness.inbound_callback("+16132484850", OUR_NUMBER, pdf)

    [inbound] = (await parsed(provider, callback)).inbound
    start = len(harness.requests)
    document = await provider.fetch_document(inbound)

    assert document == pdf
    assert (inbound.from_number, inbound.to_number, inbound.pages) == (
        "+16132484850",
        OUR_NUMBER,
        2,
    )
    assert inbound.received is not None
    [download] = harness.requests[start:]
    assert download.path.startswith("/faxes-prod/")
    assert "authorization" not in download.headers  # a signed storage link, not the API


async def test_an_expired_media_url_is_refreshed_and_fetched_again(
    harness: TelnyxHarness, provider: TelnyxProvider
) -> None:
    pdf = make_pdf("LATE")
    [inbound] = (await parsed(provider, harness.inbound_callback(TO, OUR_NUMBER, pdf))).inbound
    harness.expire_media(inbound.provider_fax_id)
    start = len(harness.requests)

    assert await provider.fetch_document(inbound) == pdf

    calls = [(r.method, r.path) for r in harness.requests[start:]]
    assert calls[1:3] == [
        ("POST", f"/v2/faxes/{inbound.provider_fax_id}/actions/refresh"),
        ("GET", f"/v2/faxes/{inbound.provider_fax_id}"),
    ]


async def test_release_notes_numbers_without_plus_are_read_as_e164(
    harness: TelnyxHarness, provider: TelnyxProvider
) -> None:
    # telnyx.com release notes (2021 fax webhooks update) show `"from": " 13122010119"`.
    fax = harness.receive("+13122010119", "+13127283148", make_pdf("X"))
    payload = harness.inbound_payload(fax) | {"from": " 13122010119", "to": " 13127283148"}

    [inbound] = (await parsed(provider, harness.event("fax.received", payload))).inbound

    assert (inbound.from_number, inbound.to_number) == ("+13122010119", "+13127283148")


@pytest.mark.parametrize(
    ("event", "status", "words"),
    [
        ("fax.receiving.started", "receiving", "still arriving"),
        ("fax.media.processing.started", "media.processing", "still arriving"),
        ("fax.failed", "failed", "sender_call_dropped"),
    ],
)
async def test_inbound_news_without_a_document_is_kept_for_explain(
    harness: TelnyxHarness, provider: TelnyxProvider, event: str, status: str, words: str
) -> None:
    fax = harness.receive("+16617480240", OUR_NUMBER, make_pdf("X"))
    payload = harness.inbound_payload(fax) | {"status": status}
    del payload["media_url"]
    if event == "fax.failed":
        payload["failure_reason"] = "sender_call_dropped"

    result = await parsed(provider, harness.event(event, payload))

    assert result.updates == [] and result.inbound == []
    [kept] = result.unclassified
    assert words in kept.reason and kept.event == event
    assert kept.provider_fax_id == fax["id"]


# -- polling, look-up ------------------------------------------------------------------------
async def test_status_reads_the_fax_object(
    harness: TelnyxHarness, provider: TelnyxProvider, fax: OutboundFax
) -> None:
    fax_id = (await provider.send(fax)).provider_fax_id
    harness.settle(fax_id, "failed", "busy")

    update = await provider.status(fax_id)

    assert update is not None
    assert (update.status, update.reason, update.provider_code) == (
        JobStatus.FAILED,
        FailureReason.BUSY,
        "user_busy",
    )
    assert update.job_id == JOB


async def test_status_of_a_deleted_fax_is_none(
    harness: TelnyxHarness, provider: TelnyxProvider, fax: OutboundFax
) -> None:
    fax_id = (await provider.send(fax)).provider_fax_id
    await provider.delete(fax_id)
    await provider.delete(fax_id)  # gone already is done

    assert await provider.status(fax_id) is None
    assert fax_id not in harness.state.faxes


async def test_find_lists_the_destination_s_outbound_faxes_of_the_last_month(
    harness: TelnyxHarness, provider: TelnyxProvider, fax: OutboundFax
) -> None:
    first = (await provider.send(fax)).provider_fax_id
    second = (await provider.send(replace(fax, round=1))).provider_fax_id
    await provider.send(replace(fax, job_id="0190f2a1b3c4d5e70"))
    await provider.send(replace(fax, to="+12125550999"))
    start = len(harness.requests)

    lookup = await provider.find(fax)

    assert lookup.certain
    assert [(f.provider_fax_id, f.round) for f in lookup.faxes] == [(second, 1), (first, 0)]
    [listing] = harness.requests[start:]
    assert listing.path == "/v2/faxes"
    assert listing.query["filter[direction][eq]"] == ["outbound"]
    assert listing.query["filter[to][eq]"] == [TO]
    since = datetime.fromisoformat(listing.query["filter[created_at][gte]"][0])
    assert 30 <= (datetime.now(UTC) - since).days <= 31


async def test_find_reads_every_page(
    harness: TelnyxHarness,
    provider: TelnyxProvider,
    fax: OutboundFax,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("bridge.providers.telnyx.LIST_PAGE", 2)
    ours = (await provider.send(fax)).provider_fax_id
    for n in range(4):
        await provider.send(replace(fax, job_id=f"0190f2a1b3c4d5e{n:02x}"))

    lookup = await provider.find(fax)

    assert [f.provider_fax_id for f in lookup.faxes] == [ours]
    pages = [r.query["page[number]"][0] for r in harness.requests if r.method == "GET"]
    assert pages == ["1", "2", "3"]


async def test_find_beyond_its_page_bound_says_it_cannot_tell(
    harness: TelnyxHarness,
    provider: TelnyxProvider,
    fax: OutboundFax,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("bridge.providers.telnyx.LIST_PAGE", 1)
    monkeypatch.setattr("bridge.providers.telnyx.LIST_PAGES", 2)
    for n in range(3):
        await provider.send(replace(fax, job_id=f"0190f2a1b3c4d5e{n:02x}"))

    lookup = await provider.find(fax)

    assert not lookup.certain and lookup.faxes == ()
    assert "only those were read" in lookup.detail


async def test_when_telnyx_drops_client_state_find_says_it_cannot_tell(
    harness: TelnyxHarness, provider: TelnyxProvider, fax: OutboundFax
) -> None:
    # The multipart schema does not list client_state; if Telnyx ignored it, nothing links.
    original = harness.state.new_fax

    def without_state(direction: str, **values: Any) -> dict[str, Any]:
        values.pop("client_state", None)
        return original(direction, **values)

    harness.state.new_fax = without_state  # type: ignore[method-assign]
    await provider.send(fax)

    lookup = await provider.find(fax)

    assert not lookup.certain and lookup.faxes == ()
    assert "client_state" in lookup.detail


# -- cancel, lines, admin -------------------------------------------------------------------
async def test_cancel_of_a_delivered_fax_is_a_clear_refusal(
    harness: TelnyxHarness, provider: TelnyxProvider, fax: OutboundFax
) -> None:
    fax_id = (await provider.send(fax)).provider_fax_id
    harness.settle(fax_id, "delivered")

    with pytest.raises(PermanentProviderError, match="refused to cancel"):
        await provider.cancel(fax_id)
    with pytest.raises(PermanentProviderError, match="has no fax"):
        await provider.cancel("0ccc7b54-4df3-4bca-a65a-3da1ecc777f0")


async def test_fax_lines_are_the_application_s_numbers(
    harness: TelnyxHarness, provider: TelnyxProvider
) -> None:
    harness.state.numbers = ["+12125550100", "+13125550111"]

    assert await provider.fax_lines() == ["+12125550100", "+13125550111"]
    [request] = harness.requests
    assert request.query["filter[connection_id]"] == [CONNECTION_ID]


async def test_check_reads_the_fax_application(
    harness: TelnyxHarness, provider: TelnyxProvider
) -> None:
    description = await provider.check()

    assert "office-fax" in description and "https://example.com/webhooks" in description
    [request] = harness.requests
    assert (request.method, request.path) == ("GET", f"/v2/fax_applications/{CONNECTION_ID}")


async def test_check_with_a_wrong_api_key_is_permanent(
    harness: TelnyxHarness, client: httpx.AsyncClient
) -> None:
    with pytest.raises(PermanentProviderError, match="Authentication failed"):
        await build(harness, client, api_key="wrong").check()


async def test_setup_points_the_fax_application_at_the_bridge(
    harness: TelnyxHarness, provider: TelnyxProvider
) -> None:
    lines = await provider.setup()

    url = f"{BRIDGE}/callbacks/telnyx?token={TOKEN}"
    assert harness.state.application["webhook_event_url"] == url
    assert harness.state.application["application_name"] == "office-fax"  # kept as it was
    patch = next(r for r in harness.requests if r.method == "PATCH")
    assert patch.json() == {"application_name": "office-fax", "webhook_event_url": url}
    assert any(url in line for line in lines)
    assert "(the bridge)" in await provider.check()


def test_a_fresh_ed25519_pair_verifies_the_way_the_sdk_describes() -> None:
    # lib/webhook_verification.py: base64 key and signature, message "timestamp|payload".
    key = Ed25519PrivateKey.generate()
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    public = base64.b64encode(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))
    body, stamp = b'{"data": {}}', "1700000000"
    signature = base64.b64encode(key.sign(b"1700000000|" + body)).decode()
    request = CallbackRequest(
        query={},
        headers={"telnyx-signature-ed25519": signature, "telnyx-timestamp": stamp},
        body=body,
        content_type="application/json",
    )

    telnyx_wire.verify_signature(request, public.decode(), now=1700000100)
    with pytest.raises(CallbackAuthError):
        telnyx_wire.verify_signature(request, public.decode(), now=1700000400)
