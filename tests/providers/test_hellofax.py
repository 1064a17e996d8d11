"""HelloFax v1 specifics: the exact wire request, every status/error code (both pages' letters),
callbacks kept when unreadable, the 200-pending 429, removal after sending. The shared behaviour
is in test_contract.py; the account calls (check, lines, find) in test_hellofax_account.py."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from bridge.errors import (
    NotSupportedByProvider,
    PermanentProviderError,
    TransientProviderError,
)
from bridge.models import FailureReason, JobStatus
from bridge.providers.base import FaxProvider
from tests.providers.conftest import MakeFax, MakeProvider
from tests.providers.emulators._hellofax_records import LINE_NUMBER
from tests.providers.emulators.hellofax import (
    ACCOUNT_GUID,
    PASSWORD,
    USERNAME,
    HelloFaxHarness,
    make_harness,
)
from tests.providers.harness import RecordedRequest


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
    # SEND note A: From "in the format of" the /FaxLines `Number` (ten digits here).
    assert sent.query == {"To": ["12125550123"], "From": [LINE_NUMBER]}
    first = harness.requests[start]
    assert (first.method, first.path) == ("GET", f"/v1/Accounts/{ACCOUNT_GUID}/FaxLines")
    [part] = sent.files()
    assert (part.name, part.content_type) == ("file", "application/pdf")
    assert part.data == fax.document.read_bytes()
    assert not any(name.startswith("CoverPage") for name in sent.form())
    assert result.provider_fax_id in harness.state.transmissions
    assert (result.status, result.raw_status) == (JobStatus.SUBMITTED, "P")


async def test_the_fax_line_listing_is_read_once_for_many_sends(
    harness: HelloFaxHarness, provider: FaxProvider[Any], make_fax: MakeFax
) -> None:
    start = len(harness.requests)

    for _ in range(3):
        await provider.send(make_fax())

    listed = [r for r in harness.requests[start:] if r.path.endswith("/FaxLines")]
    assert len(listed) == 1
    assert [r.query["From"] for r in _sends(harness, start)] == [[LINE_NUMBER]] * 3


async def test_a_caller_id_that_is_no_fax_line_goes_as_digits_for_hellofax_to_judge(
    harness: HelloFaxHarness, provider: FaxProvider[Any], make_fax: MakeFax
) -> None:
    start = len(harness.requests)

    with pytest.raises(PermanentProviderError, match="From 12125550177 is not one of your"):
        await provider.send(make_fax(caller_id="+12125550177"))

    [sent] = _sends(harness, start)
    assert sent.query["From"] == ["12125550177"]


async def test_a_rate_limited_fax_line_listing_sends_nothing_and_waits(
    harness: HelloFaxHarness, provider: FaxProvider[Any], make_fax: MakeFax
) -> None:
    harness.fail_lines_next(429, "Please wait.")
    start = len(harness.requests)

    with pytest.raises(TransientProviderError) as caught:
        await provider.send(make_fax())

    assert caught.value.rate_limited
    assert _sends(harness, start) == []


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


async def test_cover_fields_with_nothing_to_say_are_left_out(
    harness: HelloFaxHarness, provider: FaxProvider[Any], make_fax: MakeFax
) -> None:
    fax = make_fax(cover=True, caller_id=None)
    assert fax.cover is not None
    fax = replace(fax, cover=replace(fax.cover, from_name="", subject="", notes=""))
    start = len(harness.requests)

    await provider.send(fax)

    [sent] = _sends(harness, start)
    assert sent.form() == {"CoverPageTo": ["Jane Doe"]}


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


async def test_a_fax_sent_successfully_is_gone_from_the_api_even_without_its_callback(
    harness: HelloFaxHarness, provider: FaxProvider[Any], make_fax: MakeFax
) -> None:
    # SETUP note D: "not stored on our servers once the fax has successfully been sent".
    guid = (await provider.send(make_fax())).provider_fax_id
    harness.settle(guid, "delivered")  # its callback reaches nobody

    assert await provider.status(guid) is None


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


@pytest.mark.parametrize(
    "answer",
    [
        {"Response": {"Transmission": {"Guid": "9f" * 20, "StatusCode": "P", "To": "1"}}},
        {"Guid": "9f" * 20},  # no StatusCode: read by its GUID alone
        {"Uri": f"/v1/Accounts/{ACCOUNT_GUID}/Transmissions/{'9f' * 20}"},
        [{"Uri": f"/v1/Accounts/{ACCOUNT_GUID}/Transmissions/{'9f' * 20}", "Status": "ok"}],
        # The callback example's error record escapes its slashes twice.
        {"Uri": f"\\/v1\\/Accounts\\/{ACCOUNT_GUID}\\/Transmissions\\/{'9f' * 20}"},
    ],
)
async def test_a_send_answer_of_another_shape_still_names_the_transmission(
    harness: HelloFaxHarness, provider: FaxProvider[Any], make_fax: MakeFax, answer: Any
) -> None:
    # SETUP: the GUID is "in the JSON response"; the wrapper is not shown. Asking again
    # instead would end in a re-send (HelloFax keeps no reference of ours): a duplicate fax.
    harness.fail_next(200, answer)

    result = await provider.send(make_fax())

    assert (result.provider_fax_id, result.status) == ("9f" * 20, JobStatus.SUBMITTED)


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
    start = len(harness.requests)
    harness.fail_next(500, "Internal Server Error")

    with pytest.raises(TransientProviderError):
        await provider.send(make_fax())

    assert len(_sends(harness, start)) == 1


async def test_a_fax_line_listing_that_fails_for_now_sends_nothing(
    harness: HelloFaxHarness, provider: FaxProvider[Any], make_fax: MakeFax
) -> None:
    # A guessed From spelling could turn a passing fault into a refused fax.
    harness.fail_lines_next(503, "Service Unavailable")
    start = len(harness.requests)

    with pytest.raises(TransientProviderError) as caught:
        await provider.send(make_fax())

    assert not caught.value.maybe_sent
    assert _sends(harness, start) == []


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
