"""HelloFax v1 specifics: the exact wire request, every status/error code (both pages' letters),
callbacks kept when unreadable, the 200-pending 429, removal after sending. The shared behaviour
is in test_contract.py; the account calls (check, lines, find) in test_hellofax_account.py."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest

from bridge.errors import (
    CallbackAuthError,
    CallbackError,
    NotSupportedByProvider,
    PermanentProviderError,
    TransientProviderError,
)
from bridge.models import FailureReason, InboundFax, JobStatus
from bridge.providers.base import FaxProvider
from tests.providers.conftest import MakeFax, MakeProvider, ToRequest
from tests.providers.emulators._hellofax_records import multipart
from tests.providers.emulators.hellofax import (
    ACCOUNT_GUID,
    PASSWORD,
    USERNAME,
    HelloFaxHarness,
    Transmission,
    make_harness,
)
from tests.providers.harness import CallbackHTTP, RecordedRequest
from tests.providers.pdfs import make_pdf


@pytest.fixture(scope="module")
def harness() -> Iterator[HelloFaxHarness]:
    with make_harness() as running:
        yield running


def _sends(harness: HelloFaxHarness, start: int) -> list[RecordedRequest]:
    return [r for r in harness.requests[start:] if r.method == "POST"]


# -- the wire request ----------------------------------------------------------------------
async def test_send_posts_the_document_with_basic_auth_to_and_from(
    harness: HelloFaxHarness, provider: FaxProvider[Any], make_fax: MakeFax
) -> None:
    fax = make_fax("+12125550123", caller_id="+12125550100")
    start = len(harness.requests)

    result = await provider.send(fax)

    [sent] = _sends(harness, start)
    credentials = base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()
    assert sent.headers["authorization"] == f"Basic {credentials}"
    assert sent.path == f"/v1/Accounts/{ACCOUNT_GUID}/Transmissions"
    assert sent.query == {"To": ["12125550123"], "From": ["12125550100"]}
    [part] = sent.files()
    assert (part.name, part.content_type) == ("file", "application/pdf")
    assert part.data == fax.document.read_bytes()
    assert not any(name.startswith("CoverPage") for name in sent.form())
    assert result.provider_fax_id in harness.state.transmissions
    assert (result.status, result.raw_status) == (JobStatus.SUBMITTED, "P")


async def test_send_without_caller_id_leaves_from_to_the_account(
    harness: HelloFaxHarness, provider: FaxProvider[Any], make_fax: MakeFax
) -> None:
    start = len(harness.requests)

    await provider.send(make_fax(caller_id=None))

    [sent] = _sends(harness, start)
    assert "From" not in sent.query


async def test_cover_note_goes_into_native_fields_and_our_cover_page_stays_out(
    harness: HelloFaxHarness, provider: FaxProvider[Any], make_fax: MakeFax
) -> None:
    fax = make_fax(cover=True)
    start = len(harness.requests)

    result = await provider.send(fax)

    [sent] = _sends(harness, start)
    assert sent.form() == {
        "CoverPageTo": ["Jane Doe"],
        "CoverPageFrom": ["Front Desk"],
        "CoverPageMessage": ["Quarterly figures\n\nPlease call back after reading."],
    }
    [part] = sent.files()
    assert part.data == fax.document.read_bytes()
    assert harness.state.transmissions[result.provider_fax_id].pages == 2  # cover + document


# -- callbacks -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("status_code", "error_code", "status", "reason", "raw"),
    [
        ("P", None, JobStatus.SUBMITTED, None, "P"),
        ("T", None, JobStatus.SENDING, None, "T"),
        ("S", None, JobStatus.DELIVERED, None, "S"),
        ("E", "B", JobStatus.FAILED, FailureReason.BUSY, "E/B"),
        ("E", "R", JobStatus.FAILED, FailureReason.BUSY, "E/R"),
        ("E", "N", JobStatus.FAILED, FailureReason.NO_ANSWER, "E/N"),
        ("E", "A", JobStatus.FAILED, FailureReason.BAD_NUMBER, "E/A"),
        ("E", "D", JobStatus.FAILED, FailureReason.DISCONNECTED, "E/D"),
        ("E", "L", JobStatus.FAILED, FailureReason.BLOCKED_DESTINATION, "E/L"),
        ("E", "U", JobStatus.FAILED, FailureReason.UNKNOWN, "E/U"),
        ("E", "Z", JobStatus.FAILED, FailureReason.UNKNOWN, "E/Z"),
        ("E", None, JobStatus.FAILED, FailureReason.FILE_ERROR, "E"),
        ("H", None, JobStatus.FAILED, FailureReason.ON_HOLD, "H"),
        ("O", None, JobStatus.FAILED, FailureReason.ON_HOLD, "O"),
    ],
)
async def test_every_status_and_error_code_maps_to_the_common_model(
    harness: HelloFaxHarness,
    provider: FaxProvider[Any],
    to_request: ToRequest,
    status_code: str,
    error_code: str | None,
    status: JobStatus,
    reason: FailureReason | None,
    raw: str,
) -> None:
    record = Transmission("a" * 40, "12125550123", "12125550100", [make_pdf("X")], {})
    record.status_code, record.error_code = status_code, error_code

    result = await provider.parse_callback(await to_request(harness.transaction_callback(record)))

    [update] = result.updates
    assert (update.provider_fax_id, update.status, update.reason) == ("a" * 40, status, reason)
    # The callback example bills 0 pages for a bad number: no pages, not "0 pages".
    assert (update.provider_code, update.pages) == (raw, None if raw == "E/A" else 1)
    assert update.provider_text
    assert update.at is not None


async def test_unknown_status_code_is_kept_not_refused(
    harness: HelloFaxHarness, provider: FaxProvider[Any], to_request: ToRequest
) -> None:
    # Refusing it would only bring the same letter again (HelloFax retries for a day and more).
    record = Transmission("b" * 40, "12125550123", "12125550100", [], {}, status_code="X")

    result = await provider.parse_callback(await to_request(harness.transaction_callback(record)))

    assert (result.updates, result.inbound) == ([], [])
    [kept] = result.unclassified
    assert kept.provider_fax_id == "b" * 40
    assert "StatusCode 'X'" in kept.reason


@pytest.mark.parametrize(
    ("reason", "code"),
    [("busy", "E/R"), ("on_hold", "O"), ("no_answer", "E/N")],
)
async def test_the_send_pages_newer_letters_read_like_the_setup_pages(
    harness: HelloFaxHarness,
    provider: FaxProvider[Any],
    make_fax: MakeFax,
    to_request: ToRequest,
    reason: str,
    code: str,
) -> None:
    guid = (await provider.send(make_fax())).provider_fax_id
    harness.letters = "send"
    try:
        callback = harness.status_callback(guid, "failed", reason)
    finally:
        harness.letters = "setup"

    [update] = (await provider.parse_callback(await to_request(callback))).updates

    assert (update.status, update.reason, update.provider_code) == (
        JobStatus.FAILED,
        FailureReason(reason),
        code,
    )


async def test_a_v3_style_event_at_the_v1_url_is_kept_with_its_name(
    harness: HelloFaxHarness, provider: FaxProvider[Any], to_request: ToRequest
) -> None:
    result = await provider.parse_callback(await to_request(harness.unclassifiable_callback()))

    assert (result.updates, result.inbound) == ([], [])
    [kept] = result.unclassified
    assert kept.event == "transmission_disconnected"
    assert "v3 style event" in kept.reason


async def test_a_callback_with_json_but_no_transaction_is_a_callback_error(
    provider: FaxProvider[Any], to_request: ToRequest
) -> None:
    body, content_type = multipart({"json": '{"Something": {}}'})

    with pytest.raises(CallbackError):
        await provider.parse_callback(
            await to_request(CallbackHTTP(headers={"content-type": content_type}, body=body))
        )


async def test_callback_without_token_is_refused(
    harness: HelloFaxHarness, provider: FaxProvider[Any], to_request: ToRequest
) -> None:
    callback = harness.status_callback("c" * 40, "delivered")

    with pytest.raises(CallbackAuthError):
        await provider.parse_callback(await to_request(callback, token=None))


async def test_callbacks_are_refused_when_no_token_is_configured(
    harness: HelloFaxHarness, make_provider: MakeProvider, to_request: ToRequest
) -> None:
    provider = make_provider(callback_token=None)

    with pytest.raises(CallbackAuthError):
        await provider.parse_callback(
            await to_request(harness.status_callback("d" * 40, "sending"))
        )


async def test_inbound_document_is_taken_from_any_file_part(
    harness: HelloFaxHarness, provider: FaxProvider[Any], to_request: ToRequest
) -> None:
    pdf = make_pdf("INBOUND", pages=2)
    record = Transmission(
        "e" * 40, "12125550100", "12125550199", [pdf], {}, status_code="S", is_inbound=True
    )
    callback = harness.transaction_callback(record, pdf, file_field="Attachment")

    result = await provider.parse_callback(await to_request(callback))

    [inbound] = result.inbound
    assert (inbound.provider_fax_id, inbound.from_number, inbound.to_number) == (
        "e" * 40,
        "12125550199",
        "12125550100",
    )
    assert inbound.pages == 2
    assert await provider.fetch_document(inbound) == pdf


async def test_inbound_callback_without_document_is_kept_naming_the_fax(
    harness: HelloFaxHarness, provider: FaxProvider[Any], to_request: ToRequest
) -> None:
    record = Transmission("f" * 40, "12125550100", "12125550199", [], {}, is_inbound=True)

    result = await provider.parse_callback(await to_request(harness.transaction_callback(record)))

    assert (result.updates, result.inbound) == ([], [])
    [kept] = result.unclassified
    assert (kept.event, kept.provider_fax_id) == ("inbound", "f" * 40)
    assert "from 12125550199 to 12125550100" in kept.reason


async def test_fetch_without_a_document_says_hellofax_has_no_download(
    provider: FaxProvider[Any],
) -> None:
    with pytest.raises(PermanentProviderError, match="only inside the callback"):
        await provider.fetch_document(InboundFax("g" * 40, "+12125550199", "+12125550100"))


# -- status polling ------------------------------------------------------------------------
async def test_status_follows_the_transmission_until_it_is_removed(
    harness: HelloFaxHarness, provider: FaxProvider[Any], make_fax: MakeFax
) -> None:
    guid = (await provider.send(make_fax())).provider_fax_id

    pending = await provider.status(guid)
    harness.set_status(guid, "T")
    sending = await provider.status(guid)
    harness.status_callback(guid, "delivered")  # sent, and its callback went out: removed
    gone = await provider.status(guid)

    assert pending is not None and pending.status is JobStatus.SUBMITTED
    assert sending is not None and sending.status is JobStatus.SENDING
    assert gone is None  # "forgotten", not failed
    assert harness.requests[-1].path == f"/v1/Accounts/{ACCOUNT_GUID}/Transmissions/{guid}"


async def test_a_failed_transmission_stays_readable_after_its_callback(
    harness: HelloFaxHarness, provider: FaxProvider[Any], make_fax: MakeFax
) -> None:
    # SETUP note D removes only faxes "successfully sent".
    guid = (await provider.send(make_fax())).provider_fax_id
    harness.status_callback(guid, "failed", "busy")

    update = await provider.status(guid)

    assert update is not None
    assert (update.status, update.reason, update.provider_code) == (
        JobStatus.FAILED,
        FailureReason.BUSY,
        "E/B",
    )


def test_a_forgotten_fax_waits_out_the_callback_retries_before_it_is_unknown(
    provider: FaxProvider[Any], make_provider: MakeProvider
) -> None:
    # SETUP: retries 15 min … 16 h 30 apart, 34 h in all; the job must outlive them.
    assert provider.forgotten_after_s() == 35 * 3600
    assert make_provider(forgotten_grace_s=600).forgotten_after_s() == 600


# -- errors --------------------------------------------------------------------------------
async def test_past_the_pending_limit_is_a_transient_wait_of_a_minute(
    harness: HelloFaxHarness, provider: FaxProvider[Any], make_fax: MakeFax
) -> None:
    harness.state.pending_limit = harness.state.pending()
    try:
        with pytest.raises(TransientProviderError) as caught:
            await provider.send(make_fax())
    finally:
        harness.state.pending_limit = 200

    assert caught.value.retry_after_s == 60
    assert caught.value.rate_limited, "the 200-pending limit is a wait, never a failed try"
    assert "transmissions that are currently pending" in str(caught.value)


async def test_a_send_answered_200_without_a_transmission_is_never_refused(
    harness: HelloFaxHarness, provider: FaxProvider[Any], make_fax: MakeFax
) -> None:
    # HelloFax took the fax ("a 200 HTTP response"): the job must be looked up, not refused.
    harness.fail_next(200, {"Status": "ok"})

    with pytest.raises(TransientProviderError) as caught:
        await provider.send(make_fax())

    assert caught.value.maybe_sent
    assert not caught.value.rate_limited


async def test_rate_limit_honours_retry_after_when_given(
    harness: HelloFaxHarness, provider: FaxProvider[Any], make_fax: MakeFax
) -> None:
    harness.fail_next(429, harness.error_body("Slow down"), headers={"Retry-After": "120"})

    with pytest.raises(TransientProviderError) as caught:
        await provider.send(make_fax())

    assert caught.value.retry_after_s == 120


async def test_server_error_is_transient(
    harness: HelloFaxHarness, provider: FaxProvider[Any], make_fax: MakeFax
) -> None:
    harness.fail_next(500, "Internal Server Error")

    with pytest.raises(TransientProviderError):
        await provider.send(make_fax())


async def test_invalid_number_is_permanent_with_hellofax_message(
    provider: FaxProvider[Any], make_fax: MakeFax
) -> None:
    with pytest.raises(PermanentProviderError, match="Invalid fax number: 1212"):
        await provider.send(make_fax("+1212"))


async def test_wrong_password_is_permanent(make_provider: MakeProvider, make_fax: MakeFax) -> None:
    provider = make_provider(password="wrong")

    with pytest.raises(PermanentProviderError, match="HTTP 401: Unauthorized"):
        await provider.send(make_fax())


# -- delete: nothing to call, so say what stays ----------------------------------------------
async def test_delete_of_a_sent_fax_is_done_because_hellofax_removed_it(
    harness: HelloFaxHarness, provider: FaxProvider[Any], make_fax: MakeFax
) -> None:
    guid = (await provider.send(make_fax())).provider_fax_id
    harness.status_callback(guid, "delivered")
    start = len(harness.requests)

    await provider.delete(guid)

    [asked] = harness.requests[start:]
    assert (asked.method, asked.path) == (
        "GET",
        f"/v1/Accounts/{ACCOUNT_GUID}/Transmissions/{guid}",
    )


async def test_delete_of_a_failed_fax_says_hellofax_keeps_it(
    harness: HelloFaxHarness, provider: FaxProvider[Any], make_fax: MakeFax
) -> None:
    guid = (await provider.send(make_fax())).provider_fax_id
    harness.status_callback(guid, "failed", "no_answer")

    with pytest.raises(NotSupportedByProvider, match=f"keeps {guid} \\(E/N"):
        await provider.delete(guid)

    assert guid in harness.state.transmissions


async def test_delete_of_a_received_fax_points_at_the_web_app(
    provider: FaxProvider[Any],
) -> None:
    with pytest.raises(NotSupportedByProvider, match="Documents screen"):
        await provider.delete("e" * 40, inbound=True)


async def test_cancel_is_not_offered_by_the_v1_api(provider: FaxProvider[Any]) -> None:
    with pytest.raises(NotSupportedByProvider, match="cannot cancel"):
        await provider.cancel("e" * 40)
