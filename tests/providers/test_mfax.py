"""mFax (Documo) adapter against its emulator: the form, webhooks as Documo documents them,
the history look-up, cancel/delete/lines, errors and rate limits."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime, timedelta
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
from bridge.providers import mfax
from bridge.providers.base import ProviderContext
from bridge.providers.mfax import MFaxProvider
from tests.providers.conftest import CALLBACK_TOKEN, callback_request
from tests.providers.emulators.mfax import (
    ACCOUNT_ID,
    API_KEY,
    MFaxHarness,
    make_harness,
    multipart,
)
from tests.providers.harness import CallbackHTTP
from tests.providers.pdfs import make_pdf

TOKEN = CALLBACK_TOKEN
BRIDGE = "http://127.0.0.1:9/bridge"
OUR_NUMBER = "+12125550100"
JOB = "0190f2a1b3c4d5e6f"  # shaped like the store's job ids
# help.documo.com "New Webhooks": seven tries, 5 s, 25 s, 2 m, 10 m, 52 m, 4 h, 22 h.
WEBHOOK_RETRIES_S = (5, 25, 120, 600, 52 * 60, 4 * 3600, 22 * 3600)


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
        job_id=JOB,
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


async def parsed(provider: MFaxProvider, callback: CallbackHTTP) -> Any:
    return await provider.parse_callback(await deliver(callback))


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
        "cf": [json.dumps({"faxbridgeJobId": JOB, "faxbridgeReference": JOB})],
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


async def test_a_redial_round_carries_its_round_in_the_custom_fields(
    harness: MFaxHarness, provider: MFaxProvider, fax: OutboundFax
) -> None:
    await provider.send(replace(fax, round=2))

    custom = json.loads(harness.requests[-1].form()["cf"][0])
    assert custom == {"faxbridgeJobId": JOB, "faxbridgeReference": f"{JOB}-r2"}


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
    assert (update.status, update.provider_code) == (JobStatus.SUBMITTED, "processing")
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


async def test_status_of_a_deleted_fax_is_none(
    harness: MFaxHarness, provider: MFaxProvider, fax: OutboundFax
) -> None:
    fax_id = (await provider.send(fax)).provider_fax_id
    await provider.delete(fax_id)

    assert await provider.status(fax_id) is None


async def test_status_polls_that_are_rate_limited_say_so(
    harness: MFaxHarness, provider: MFaxProvider, fax: OutboundFax
) -> None:
    fax_id = (await provider.send(fax)).provider_fax_id
    harness.fail_next(429, {"error": "Too many requests"})

    with pytest.raises(TransientProviderError) as caught:
        await provider.status(fax_id)
    # Documo documents no Retry-After: a minute, the window its limits are counted in.
    assert (caught.value.rate_limited, caught.value.retry_after_s) == (True, 60.0)


def test_forgotten_grace_outlasts_documo_s_webhook_retries(provider: MFaxProvider) -> None:
    # A fax Documo no longer knows may still be reported by a webhook it is retrying.
    assert sum(WEBHOOK_RETRIES_S) < provider.forgotten_after_s() <= sum(WEBHOOK_RETRIES_S) + 3600


# -- find: the history by our custom field ---------------------------------------------------
def history_requests(harness: MFaxHarness) -> list[Any]:
    return [r for r in harness.requests if r.path == "/v1/fax/history"]


async def test_find_asks_the_history_for_the_job_within_a_bounded_window(
    harness: MFaxHarness, provider: MFaxProvider, fax: OutboundFax
) -> None:
    first = (await provider.send(fax)).provider_fax_id
    again = (await provider.send(replace(fax, round=1))).provider_fax_id
    await provider.send(replace(fax, job_id="0190f2a1b3c4d9999"))
    harness.finish(first, "failed", errorInfo="Line busy", errorCode="486")

    lookup = await provider.find(replace(fax, round=1))

    assert lookup.certain
    assert [(f.provider_fax_id, f.round, f.job_id) for f in lookup.faxes] == [
        (again, 1, JOB),  # newest first
        (first, 0, JOB),
    ]
    assert (lookup.faxes[1].status, lookup.faxes[1].reason) == (
        JobStatus.FAILED,
        FailureReason.BUSY,
    )
    (request,) = history_requests(harness)
    query = {k: v[0] for k, v in request.query.items()}
    assert request.headers["authorization"] == f"Basic {API_KEY}"
    assert {k: query[k] for k in ("accountId", "query", "direction", "limit", "offset")} == {
        "accountId": ACCOUNT_ID,
        "query": JOB,
        "direction": "outbound",
        "limit": "500",
        "offset": "0",
    }
    window = date.fromisoformat(query["toDate"]) - date.fromisoformat(query["fromDate"])
    assert window == timedelta(days=32)  # 31 days back, through tomorrow (time zones)
    assert date.fromisoformat(query["toDate"]) > datetime.now(UTC).date() - timedelta(days=1)


async def test_find_reads_every_page_of_the_history(
    harness: MFaxHarness,
    provider: MFaxProvider,
    fax: OutboundFax,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(mfax, "HISTORY_PAGE", 2)
    sent = [(await provider.send(replace(fax, round=n))).provider_fax_id for n in range(3)]

    lookup = await provider.find(fax)

    assert lookup.certain
    assert sorted(f.provider_fax_id for f in lookup.faxes) == sorted(sent)
    assert [r.query["offset"] for r in history_requests(harness)] == [["0"], ["2"]]


async def test_find_beyond_its_page_bound_says_it_cannot_tell(
    harness: MFaxHarness,
    provider: MFaxProvider,
    fax: OutboundFax,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(mfax, "HISTORY_PAGE", 1)
    for n in range(3):
        await provider.send(replace(fax, round=n))

    lookup = await provider.find(fax)

    assert not lookup.certain and lookup.faxes == ()
    assert "more than 2 faxes" in lookup.detail
    assert len(history_requests(harness)) == mfax.HISTORY_PAGES


async def test_find_without_the_account_id_learns_it_from_a_send_or_says_why_not(
    harness: MFaxHarness, client: httpx.AsyncClient, fax: OutboundFax
) -> None:
    provider = build(harness, client, account_id=None)

    before = await provider.find(fax)
    fax_id = (await provider.send(fax)).provider_fax_id
    after = await provider.find(fax)

    assert not before.certain and "account_id under providers.mfax" in before.detail
    assert after.certain and [f.provider_fax_id for f in after.faxes] == [fax_id]


async def test_find_asks_the_history_at_most_eight_times_a_minute(
    harness: MFaxHarness, provider: MFaxProvider, fax: OutboundFax
) -> None:
    for _ in range(8):
        await provider.find(fax)

    with pytest.raises(TransientProviderError) as caught:
        await provider.find(fax)

    assert caught.value.rate_limited
    assert caught.value.retry_after_s is not None and 0 < caught.value.retry_after_s <= 60
    assert len(history_requests(harness)) == 8  # the ninth never reached Documo


async def test_find_refused_as_too_many_requests_is_rate_limited(
    harness: MFaxHarness, provider: MFaxProvider, fax: OutboundFax
) -> None:
    harness.fail_next(429, {"error": "Too many requests"})

    with pytest.raises(TransientProviderError) as caught:
        await provider.find(fax)

    assert caught.value.rate_limited and caught.value.retry_after_s == 60.0


# -- outbound webhooks -----------------------------------------------------------------------
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
    callback = harness.json_callback(record) if shape == "json" else harness.legacy_callback(record)

    result = await parsed(provider, callback)

    (update,) = result.updates
    assert (update.provider_fax_id, update.status, update.reason) == (fax_id, expected, None)
    assert (update.provider_code, update.pages) == (raw, 3)
    assert result.inbound == [] and result.unclassified == []


async def test_a_webhook_carrying_our_custom_fields_names_the_job_and_round(
    provider: MFaxProvider,
) -> None:
    body = {
        "messageId": "m-1",
        "direction": "outbound",
        "status": "success",
        "cf": {"faxbridgeJobId": JOB, "faxbridgeReference": f"{JOB}-r2"},
    }

    (update,) = (await parsed(provider, webhook(body))).updates

    assert (update.job_id, update.round, update.status) == (JOB, 2, JobStatus.DELIVERED)


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
    # Documo publishes no code table: a bare code is kept for the report, never guessed at.
    (None, "486", FailureReason.UNKNOWN),
    (None, "480", FailureReason.UNKNOWN),
    (None, None, FailureReason.UNKNOWN),
]


@pytest.mark.parametrize(("words", "code", "reason"), FAILURE_WORDS)
async def test_failed_webhook_reason_comes_from_documo_s_words_only(
    harness: MFaxHarness,
    provider: MFaxProvider,
    fax: OutboundFax,
    words: str | None,
    code: str | None,
    reason: FailureReason,
) -> None:
    fax_id = (await provider.send(fax)).provider_fax_id
    record = harness.finish(fax_id, "failed", errorInfo=words, errorCode=code, resultCode=code)

    (update,) = (await parsed(provider, harness.json_callback(record))).updates

    assert (update.status, update.reason) == (JobStatus.FAILED, reason)
    assert update.provider_text == words
    assert update.provider_code == (code or "failed")


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        ("fax.v1.outbound.succeed", JobStatus.DELIVERED),
        ("fax.v1.outbound.failed", JobStatus.FAILED),
    ],
)
async def test_a_webhook_without_status_or_direction_goes_by_its_event_name(
    provider: MFaxProvider, event: str, expected: JobStatus
) -> None:
    body = {"event": event, "data": {"messageId": "m-1"}}

    (update,) = (await parsed(provider, webhook(body))).updates

    assert (update.provider_fax_id, update.status) == ("m-1", expected)


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ({"uuid": "n-1", "number": "3144508380"}, "names no fax"),
        ({"messageId": "m-1", "direction": "outbound", "status": "queued"}, "status queued"),
        ({"messageId": "m-1", "status": "success"}, "direction missing"),
    ],
    ids=["number-event", "undocumented-status", "no-direction"],
)
async def test_a_webhook_the_bridge_cannot_read_is_kept_not_dropped(
    provider: MFaxProvider, body: dict[str, Any], why: str
) -> None:
    result = await parsed(provider, webhook(body))

    assert (result.updates, result.inbound) == ([], [])
    (kept,) = result.unclassified
    assert why in kept.reason
    assert kept.provider_fax_id == body.get("messageId")


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
        multipart({"data": "{broken"}, {}),
        multipart({"data": '["a list"]'}, {}),
    ],
    ids=["not-json", "not-object", "legacy-not-json", "legacy-not-object"],
)
async def test_malformed_webhooks_are_callback_errors(
    provider: MFaxProvider, callback: CallbackHTTP
) -> None:
    with pytest.raises(CallbackError) as caught:
        await provider.parse_callback(await deliver(callback))
    assert not isinstance(caught.value, CallbackAuthError)


# -- inbound webhooks ------------------------------------------------------------------------
async def test_inbound_json_webhook_reads_documo_s_number_fields_and_downloads_the_fax(
    harness: MFaxHarness, provider: MFaxProvider
) -> None:
    pdf = make_pdf("INBOUND", pages=2)
    callback = harness.inbound_callback("+13125550111", OUR_NUMBER, pdf)

    result = await parsed(provider, callback)

    (inbound,) = result.inbound
    assert result.updates == []
    assert (inbound.from_number, inbound.to_number, inbound.pages) == (
        "+13125550111",  # `faxCallerId` "3125550111", national digits of a US fax
        OUR_NUMBER,  # `faxNumber`
        2,
    )
    assert inbound.document is None and inbound.received is not None
    assert inbound.remote_station_id == "REMOTE FAX"  # `faxCsid`
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

    (inbound,) = (await parsed(provider, callback)).inbound

    assert (inbound.from_number, inbound.to_number) == ("+13125550111", OUR_NUMBER)
    assert inbound.document == pdf
    assert await provider.fetch_document(inbound) == pdf
    assert harness.requests == []  # nothing to download


async def test_a_legacy_inbound_form_with_the_fax_attached_is_mailed_whatever_its_status(
    harness: MFaxHarness, provider: MFaxProvider
) -> None:
    pdf = make_pdf("INBOUND")
    record = harness.receive("+13125550111", OUR_NUMBER, pdf)
    del record["status"]

    (inbound,) = (await parsed(provider, harness.legacy_callback(record, pdf))).inbound

    assert (inbound.to_number, inbound.document) == (OUR_NUMBER, pdf)


async def test_an_anonymous_caller_has_no_number_and_its_station_id_is_not_taken_for_one(
    harness: MFaxHarness, provider: MFaxProvider
) -> None:
    record = harness.receive("+13125550111", OUR_NUMBER, make_pdf("INBOUND"))
    record.update(faxCallerId=None, faxCsid="REMOTE FAX")

    (inbound,) = (await parsed(provider, harness.json_callback(record))).inbound

    assert (inbound.from_number, inbound.to_number) == ("", OUR_NUMBER)
    assert inbound.remote_station_id == "REMOTE FAX"


async def test_inbound_numbers_the_other_way_round_are_read_by_which_one_is_ours(
    harness: MFaxHarness, provider: MFaxProvider
) -> None:
    record = harness.receive("+13125550111", OUR_NUMBER, make_pdf("INBOUND"))
    record.update(faxNumber="+13125550111", faxCallerId="2125550100")

    (inbound,) = (await parsed(provider, harness.json_callback(record))).inbound

    assert (inbound.from_number, inbound.to_number) == ("+13125550111", OUR_NUMBER)


async def test_a_failed_inbound_fax_is_kept_for_explain_not_dropped(
    harness: MFaxHarness, provider: MFaxProvider
) -> None:
    record = harness.receive("+13125550111", OUR_NUMBER, b"", status="failed")
    record.update(errorInfo="No fax tone detected", resultInfo="No fax tone detected")

    result = await parsed(provider, harness.json_callback(record))

    assert (result.updates, result.inbound) == ([], [])
    (kept,) = result.unclassified
    assert kept.provider_fax_id == record["messageId"]
    assert "inbound fax with status failed (No fax tone detected)" in kept.reason


# -- cancel, delete, fax lines ---------------------------------------------------------------
async def test_cancel_stops_a_fax_documo_is_still_processing(
    harness: MFaxHarness, provider: MFaxProvider, fax: OutboundFax
) -> None:
    fax_id = (await provider.send(fax)).provider_fax_id

    await provider.cancel(fax_id)

    request = harness.requests[-1]
    assert (request.method, request.path) == ("POST", f"/v1/fax/{fax_id}/cancel")
    assert harness.state.faxes[fax_id]["status"] == "cancelled"


async def test_cancel_of_a_fax_already_sent_is_a_clear_refusal(
    harness: MFaxHarness, provider: MFaxProvider, fax: OutboundFax
) -> None:
    fax_id = (await provider.send(fax)).provider_fax_id
    harness.finish(fax_id, "success")

    with pytest.raises(PermanentProviderError) as caught:
        await provider.cancel(fax_id)

    assert "Documo cancels only a fax still processing or scheduled" in caught.value.message
    assert "a success fax cannot be cancelled" in caught.value.message  # Documo's own words
    assert harness.state.faxes[fax_id]["status"] == "success"


async def test_cancel_of_a_fax_documo_does_not_know_says_so(provider: MFaxProvider) -> None:
    with pytest.raises(PermanentProviderError, match="Documo has no fax m-404"):
        await provider.cancel("m-404")


async def test_delete_removes_a_sent_or_received_fax_and_may_be_repeated(
    harness: MFaxHarness, provider: MFaxProvider, fax: OutboundFax
) -> None:
    sent = (await provider.send(fax)).provider_fax_id
    received = harness.receive("+13125550111", OUR_NUMBER, make_pdf("INBOUND"))["messageId"]

    await provider.delete(sent)
    await provider.delete(received, inbound=True)
    await provider.delete(sent)  # gone already: nothing to do

    assert harness.state.faxes == {}
    assert [(r.method, r.path) for r in harness.requests[-3:]] == [
        ("DELETE", f"/v1/fax/{sent}"),
        ("DELETE", f"/v1/fax/{received}"),
        ("DELETE", f"/v1/fax/{sent}"),
    ]


async def test_fax_lines_are_the_account_s_numbers_from_every_page(
    harness: MFaxHarness, provider: MFaxProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(mfax, "NUMBERS_PAGE", 1)
    harness.state.numbers = ["2125550100", "3144508380"]

    lines = await provider.fax_lines()

    assert lines == ["+12125550100", "+13144508380"]
    assert [r.query["offset"] for r in harness.requests] == [["0"], ["1"]]


# -- errors ----------------------------------------------------------------------------------
async def test_rate_limit_is_transient_and_honours_retry_after(
    harness: MFaxHarness, provider: MFaxProvider, fax: OutboundFax
) -> None:
    harness.fail_next(429, {"error": "Too many requests"}, {"Retry-After": "12"})

    with pytest.raises(TransientProviderError) as caught:
        await provider.send(fax)
    assert (caught.value.retry_after_s, caught.value.rate_limited) == (12, True)
    assert harness.state.faxes == {}


@pytest.mark.parametrize("code", [500, 503])
async def test_server_errors_are_transient(
    harness: MFaxHarness, provider: MFaxProvider, fax: OutboundFax, code: int
) -> None:
    harness.fail_next(code, {"error": "Service unavailable"})

    with pytest.raises(TransientProviderError) as caught:
        await provider.send(fax)
    assert caught.value.code == str(code)


async def test_a_lost_answer_to_a_send_may_have_sent_it(
    harness: MFaxHarness, client: httpx.AsyncClient, fax: OutboundFax
) -> None:
    provider = build(harness, client, timeout_s=0.3)
    harness.answer_late(2.0)

    with pytest.raises(TransientProviderError) as caught:
        await provider.send(fax)
    lookup = await build(harness, client).find(fax)

    assert (caught.value.code, caught.value.maybe_sent) == ("timeout", True)
    assert [f.provider_fax_id for f in lookup.faxes] == list(harness.state.faxes)


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
    harness: MFaxHarness, client: httpx.AsyncClient, provider: MFaxProvider
) -> None:
    lines = await provider.setup()
    without_account = await build(harness, client, account_id=None).setup()

    assert any(f"{BRIDGE}/callbacks/mfax?token={TOKEN}" in line for line in lines)
    assert any("fax.v1.outbound.complete" in line for line in lines)
    assert not any("account_id" in line for line in lines)
    assert any("account_id under providers.mfax" in line for line in without_account)
    assert harness.requests == []
