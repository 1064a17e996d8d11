"""What every provider adapter must do, checked against each provider's emulator.

Written only against the harness protocol (`tests/providers/harness.py`), so a new provider
gets the whole suite by adding an emulator module with `make_harness`. What is specific to one
provider (field names, auth header, its codes) lives in that provider's own test module.
"""

from __future__ import annotations

from typing import Any

import pytest

from bridge.errors import (
    CallbackAuthError,
    CallbackError,
    PermanentProviderError,
    TransientProviderError,
)
from bridge.models import FailureReason, JobStatus, Lookup, OutboundFax
from bridge.providers.base import FaxProvider
from tests.providers.conftest import MakeFax, MakeProvider, ToRequest
from tests.providers.harness import CallbackHTTP, EmulatorHarness, RecordedRequest
from tests.providers.pdfs import make_pdf, page_texts

PROGRESS = ("submitted", "sending", "delivered")
# The failure rows of PROVIDERS.md's common status table.
FAILURES = (
    "busy",
    "no_answer",
    "bad_number",
    "disconnected",
    "blocked_destination",
    "file_error",
    "on_hold",
    "unknown",
)


def _pdf_payloads(requests: list[RecordedRequest]) -> list[bytes]:
    """Every PDF that went over the wire: multipart parts (form-data or mixed) or raw bodies."""
    found = []
    for request in requests:
        if request.content_type.startswith("multipart/"):
            found += [part.data for part in request.parts() if part.data.startswith(b"%PDF")]
        elif request.body.startswith(b"%PDF"):
            found.append(request.body)
    return found


def _writes(requests: list[RecordedRequest]) -> list[RecordedRequest]:
    return [r for r in requests if r.method in {"POST", "PUT", "PATCH"}]


def _error_body(harness: EmulatorHarness, message: str) -> Any:
    make = getattr(harness, "error_body", None)
    return make(message) if make is not None else {"message": message}


def _digits(number: str) -> str:
    return "".join(ch for ch in number if ch.isdigit())


async def _send(provider: FaxProvider[Any], fax: OutboundFax) -> str:
    result = await provider.send(fax)
    assert result.provider_fax_id
    return result.provider_fax_id


# -- send ----------------------------------------------------------------------------------
async def test_send_transmits_the_document_once(
    harness: EmulatorHarness, provider: FaxProvider[Any], make_fax: MakeFax
) -> None:
    fax = make_fax()
    start = len(harness.requests)

    result = await provider.send(fax)

    assert result.provider_fax_id
    assert result.status in {JobStatus.SUBMITTED, JobStatus.SENDING}
    sent = harness.requests[start:]
    assert _pdf_payloads(sent) == [fax.document.read_bytes()]
    writes = [(r.method, r.path) for r in _writes(sent)]
    assert 1 <= len(writes) <= 2, f"expected one send (plus an upload), got {writes}"
    assert len(set(writes)) == len(writes), f"a request was repeated: {writes}"


async def test_send_with_cover_uses_native_fields_or_prepends_our_cover_page(
    harness: EmulatorHarness, provider: FaxProvider[Any], make_fax: MakeFax
) -> None:
    fax = make_fax(cover=True)
    assert fax.cover is not None
    start = len(harness.requests)

    await _send(provider, fax)

    sent = harness.requests[start:]
    [pdf] = _pdf_payloads(sent)
    if pdf == fax.document.read_bytes():
        # Native cover fields: the provider renders the cover from what we said.
        wire = b"".join(r.body + repr(r.query).encode() for r in sent)
        assert fax.cover.subject.encode() in wire
        assert fax.cover.notes.encode() in wire
    else:
        texts = page_texts(pdf)
        assert len(texts) == 2
        assert "COVERPAGE" in texts[0]
        assert "DOCUMENT" in texts[1]


# -- status callbacks ----------------------------------------------------------------------
def _expected(status: str, reason: str | None) -> tuple[JobStatus, FailureReason | None]:
    return JobStatus(status), FailureReason(reason) if reason else None


async def _check_status_callback(
    harness: EmulatorHarness,
    provider: FaxProvider[Any],
    make_fax: MakeFax,
    to_request: ToRequest,
    status: str,
    reason: str | None,
) -> None:
    fax = make_fax()
    fax_id = await _send(provider, fax)
    try:
        callback = harness.status_callback(fax_id, status, reason)
    except NotImplementedError:
        pytest.skip(f"{harness.provider_type} never reports {status!r}")

    result = await provider.parse_callback(await to_request(callback))

    assert result.inbound == []
    [update] = result.updates
    assert update.provider_fax_id == fax_id or update.job_id == fax.job_id
    assert (update.status, update.reason) == _expected(status, reason)
    assert update.provider_code


@pytest.mark.parametrize("status", PROGRESS)
async def test_progress_callback_parses_into_common_status(
    harness: EmulatorHarness,
    provider: FaxProvider[Any],
    make_fax: MakeFax,
    to_request: ToRequest,
    status: str,
) -> None:
    await _check_status_callback(harness, provider, make_fax, to_request, status, None)


@pytest.mark.parametrize("reason", FAILURES)
async def test_failure_callback_parses_into_its_reason(
    harness: EmulatorHarness,
    provider: FaxProvider[Any],
    make_fax: MakeFax,
    to_request: ToRequest,
    reason: str,
) -> None:
    if reason not in harness.supported_failures:
        pytest.skip(f"{harness.provider_type} sends no {reason!r} failure callback")
    await _check_status_callback(harness, provider, make_fax, to_request, "failed", reason)


async def test_harness_reports_at_least_the_core_failures(harness: EmulatorHarness) -> None:
    assert {"busy", "no_answer"} <= set(harness.supported_failures)
    assert set(harness.supported_failures) <= set(FailureReason)


async def test_duplicate_callback_parses_identically(
    harness: EmulatorHarness, provider: FaxProvider[Any], make_fax: MakeFax, to_request: ToRequest
) -> None:
    fax_id = await _send(provider, make_fax())
    callback = harness.status_callback(fax_id, "delivered")

    first = await provider.parse_callback(await to_request(callback))
    second = await provider.parse_callback(await to_request(callback))

    assert first.updates == second.updates
    assert first.updates[0].status is JobStatus.DELIVERED


async def test_forged_status_callback_is_refused(
    harness: EmulatorHarness, provider: FaxProvider[Any], make_fax: MakeFax, to_request: ToRequest
) -> None:
    fax_id = await _send(provider, make_fax())
    forged = harness.forged(harness.status_callback(fax_id, "delivered"))

    with pytest.raises(CallbackAuthError):
        await provider.parse_callback(await to_request(forged))


async def test_forged_inbound_callback_is_refused(
    harness: EmulatorHarness, provider: FaxProvider[Any], to_request: ToRequest
) -> None:
    callback = harness.inbound_callback("+12125550199", "+12125550100", make_pdf("INBOUND"))

    with pytest.raises(CallbackAuthError):
        await provider.parse_callback(await to_request(harness.forged(callback)))


async def test_garbage_callback_is_a_callback_error(
    provider: FaxProvider[Any], to_request: ToRequest
) -> None:
    garbage = CallbackHTTP(headers={"content-type": "text/plain"}, body=b"not a callback")

    with pytest.raises(CallbackError):
        await provider.parse_callback(await to_request(garbage))


# -- inbound -------------------------------------------------------------------------------
async def test_inbound_callback_yields_the_fax_and_its_document(
    harness: EmulatorHarness, provider: FaxProvider[Any], to_request: ToRequest
) -> None:
    pdf = make_pdf("INBOUND")
    callback = harness.inbound_callback("+12125550199", "+12125550100", pdf)

    result = await provider.parse_callback(await to_request(callback))

    assert result.updates == []
    [inbound] = result.inbound
    assert inbound.provider_fax_id
    assert _digits(inbound.from_number).endswith("2125550199")
    assert _digits(inbound.to_number).endswith("2125550100")
    assert await provider.fetch_document(inbound) == pdf


# -- status polling ------------------------------------------------------------------------
async def test_status_of_a_fresh_fax_is_in_flight_or_done(
    provider: FaxProvider[Any], make_fax: MakeFax
) -> None:
    fax_id = await _send(provider, make_fax())

    update = await provider.status(fax_id)

    if update is not None:  # some providers forget finished faxes at once
        assert update.provider_fax_id == fax_id
        assert update.status in {JobStatus.SUBMITTED, JobStatus.SENDING, JobStatus.DELIVERED}
        assert update.provider_code


async def test_status_of_an_unknown_fax_is_none(provider: FaxProvider[Any]) -> None:
    assert await provider.status("0000000000000000000000000000000000000000") is None


# -- reconciliation: does the provider already have this job's fax? ------------------------
def _lookup_is_honest(lookup: Lookup) -> None:
    """A provider that cannot search says so (and why); one that can is certain."""
    if not lookup.certain:
        assert lookup.detail.strip(), "an uncertain lookup must say why"
        assert lookup.faxes == ()


async def test_find_names_the_fax_sent_for_the_job(
    provider: FaxProvider[Any], make_fax: MakeFax
) -> None:
    fax = make_fax()
    other = make_fax()
    fax_id = await _send(provider, fax)
    await _send(provider, other)

    lookup = await provider.find(fax)

    _lookup_is_honest(lookup)
    if lookup.certain:
        assert [f.job_id for f in lookup.faxes] == [fax.job_id], lookup
        [found] = lookup.faxes
        assert found.round == 0
        assert found.provider_fax_id  # the id may differ after sending (Fax.Plus)
        assert found.status in {JobStatus.SUBMITTED, JobStatus.SENDING, JobStatus.DELIVERED}
        if found.provider_fax_id != fax_id:
            assert await provider.status(found.provider_fax_id) is not None


async def test_find_tells_the_rounds_of_one_job_apart(
    provider: FaxProvider[Any], make_fax: MakeFax
) -> None:
    first = make_fax()
    again = make_fax(job_id=first.job_id, round=1)
    await _send(provider, first)
    await _send(provider, again)

    lookup = await provider.find(again)

    _lookup_is_honest(lookup)
    if lookup.certain:
        assert sorted(f.round or 0 for f in lookup.faxes) == [0, 1]
        assert {f.job_id for f in lookup.faxes} == {first.job_id}


async def test_find_for_a_job_never_sent_finds_nothing(
    provider: FaxProvider[Any], make_fax: MakeFax
) -> None:
    await _send(provider, make_fax())

    lookup = await provider.find(make_fax())

    _lookup_is_honest(lookup)
    assert lookup.faxes == ()


async def test_unclassifiable_callback_is_kept_not_dropped(
    harness: EmulatorHarness, provider: FaxProvider[Any], to_request: ToRequest
) -> None:
    make = getattr(harness, "unclassifiable_callback", None)
    if make is None:
        pytest.skip(f"{harness.provider_type} has no authenticated callback we cannot read")

    result = await provider.parse_callback(await to_request(make()))

    assert result.updates == [] and result.inbound == []
    [kept] = result.unclassified
    assert kept.reason.strip()


# -- errors --------------------------------------------------------------------------------
async def test_rate_limit_is_transient_with_a_retry_hint(
    harness: EmulatorHarness, provider: FaxProvider[Any], make_fax: MakeFax
) -> None:
    harness.fail_next(429, _error_body(harness, "Too many requests"))

    with pytest.raises(TransientProviderError) as caught:
        await provider.send(make_fax())

    assert caught.value.retry_after_s is not None
    assert caught.value.retry_after_s > 0
    assert caught.value.rate_limited, "a 429 must never count as a failed attempt"


async def test_rate_limit_on_a_status_poll_is_rate_limited_too(
    harness: EmulatorHarness, provider: FaxProvider[Any], make_fax: MakeFax
) -> None:
    fax_id = await _send(provider, make_fax())
    harness.fail_next(429, _error_body(harness, "Too many requests"))

    with pytest.raises(TransientProviderError) as caught:
        await provider.status(fax_id)

    assert caught.value.rate_limited


async def test_unavailable_is_transient(
    harness: EmulatorHarness, provider: FaxProvider[Any], make_fax: MakeFax
) -> None:
    harness.fail_next(503, _error_body(harness, "Down for maintenance"))

    with pytest.raises(TransientProviderError):
        await provider.send(make_fax())


async def test_bad_request_is_permanent_with_the_providers_message(
    harness: EmulatorHarness, provider: FaxProvider[Any], make_fax: MakeFax
) -> None:
    harness.fail_next(400, _error_body(harness, "The fax number 123 is not valid"))

    with pytest.raises(PermanentProviderError) as caught:
        await provider.send(make_fax())

    assert "The fax number 123 is not valid" in str(caught.value)


async def test_timeout_is_transient(
    harness: EmulatorHarness, make_provider: MakeProvider, make_fax: MakeFax
) -> None:
    provider = make_provider(timeout_s=0.2)
    harness.hang_next(1.0)

    with pytest.raises(TransientProviderError) as caught:
        await provider.send(make_fax())

    # The request went out and no answer came: the provider may have the fax.
    assert caught.value.maybe_sent
    assert not caught.value.rate_limited


async def test_check_succeeds_with_good_credentials(
    harness: EmulatorHarness, provider: FaxProvider[Any]
) -> None:
    start = len(harness.requests)

    description = await provider.check()

    assert description.strip()
    assert harness.requests[start:], "check() made no request"


async def test_check_with_refused_credentials_is_permanent(
    harness: EmulatorHarness, provider: FaxProvider[Any]
) -> None:
    harness.fail_next(401, _error_body(harness, "Unauthorized user"))

    with pytest.raises(PermanentProviderError):
        await provider.check()


async def test_setup_says_what_it_did_or_what_to_do(provider: FaxProvider[Any]) -> None:
    lines = await provider.setup()

    assert lines
    assert all(line.strip() for line in lines)
