"""HelloFax v1 callbacks as the callback example page shows them: every status letter of both
pages, unreadable ones kept (never refused or dropped), token auth, inbound documents."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from bridge.errors import CallbackAuthError, CallbackError, PermanentProviderError
from bridge.models import FailureReason, InboundFax, JobStatus
from bridge.providers.base import FaxProvider
from tests.providers.conftest import MakeFax, MakeProvider, ToRequest
from tests.providers.emulators._hellofax_records import Letters, multipart
from tests.providers.emulators.hellofax import HelloFaxHarness, Transmission, make_harness
from tests.providers.harness import CallbackHTTP
from tests.providers.pdfs import make_pdf


@pytest.fixture(scope="module")
def harness() -> Iterator[HelloFaxHarness]:
    with make_harness() as running:
        yield running


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
    [("busy", "E/R"), ("no_answer", "E/N")],
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


@pytest.mark.parametrize(("letters", "code"), [("setup", "H"), ("send", "O")])
async def test_on_hold_has_no_callback_and_polling_finds_it(
    harness: HelloFaxHarness,
    provider: FaxProvider[Any],
    make_fax: MakeFax,
    letters: Letters,
    code: str,
) -> None:
    # SETUP step 8: a callback only once StatusCode is E or S; H/O is neither.
    guid = (await provider.send(make_fax())).provider_fax_id
    with pytest.raises(NotImplementedError):
        harness.status_callback(guid, "failed", "on_hold")
    harness.letters = letters
    try:
        harness.settle(guid, "failed", "on_hold")
    finally:
        harness.letters = "setup"

    update = await provider.status(guid)

    assert update is not None
    assert (update.status, update.reason, update.provider_code) == (
        JobStatus.FAILED,
        FailureReason.ON_HOLD,
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
    # Dropbox Sign events want this exact body, or they come again for days.
    assert result.reply_body == "Hello API Event Received"


async def test_a_v1_callback_is_answered_plainly(
    harness: HelloFaxHarness, provider: FaxProvider[Any], to_request: ToRequest
) -> None:
    result = await provider.parse_callback(
        await to_request(harness.status_callback("9" * 40, "delivered"))
    )

    assert result.reply_body == "OK"


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
            await to_request(harness.status_callback("d" * 40, "delivered"))
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
        "+12125550199",
        "+12125550100",
    )
    assert inbound.pages == 2
    assert await provider.fetch_document(inbound) == pdf


@pytest.mark.parametrize(
    ("to", "caller", "expected"),
    [
        # HelloFax's own spelling of a line (SETUP's DELETE example: ten digits), which
        # read plainly is +61 7… or +31 …: the fax would find no faxbox.
        ("6175550100", "3105550123", ("+16175550100", "+13105550123")),
        ("16175550100", "441632960123", ("+16175550100", "+441632960123")),
        ("6175550100", "anonymous", ("+16175550100", "anonymous")),
    ],
)
async def test_inbound_numbers_are_read_in_e164_however_hellofax_spells_them(
    harness: HelloFaxHarness,
    provider: FaxProvider[Any],
    to_request: ToRequest,
    to: str,
    caller: str,
    expected: tuple[str, str],
) -> None:
    pdf = make_pdf("INBOUND")
    record = Transmission("h" * 40, to, caller, [pdf], {}, status_code="S", is_inbound=True)

    result = await provider.parse_callback(
        await to_request(harness.transaction_callback(record, pdf))
    )

    [inbound] = result.inbound
    assert (inbound.to_number, inbound.from_number) == expected


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
