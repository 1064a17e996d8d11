"""Dropbox Sign fax v3 specifics, against the emulator rebuilt from hellosign-openapi: the exact
wire request (E.164 recipient, our reference in `title`), status codes, look-up by reference in
`/fax/list`, delete, fax lines, errors. Callbacks are in test_dropboxsign_callbacks.py; the
shared behaviour in test_contract.py."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from bridge.errors import NotSupportedByProvider, PermanentProviderError, TransientProviderError
from bridge.models import FailureReason, JobStatus
from bridge.providers.base import FaxProvider
from tests.providers.conftest import MakeFax, MakeProvider
from tests.providers.emulators.dropboxsign import API_KEY, DropboxSignHarness, Fax, make_harness
from tests.providers.harness import RecordedRequest
from tests.providers.pdfs import make_pdf


@pytest.fixture(scope="module")
def harness() -> Iterator[DropboxSignHarness]:
    with make_harness() as running:
        yield running


def _since(harness: DropboxSignHarness, start: int) -> list[RecordedRequest]:
    return harness.requests[start:]


# -- the wire request ----------------------------------------------------------------------
async def test_send_posts_the_recipient_in_e164_as_the_schema_says(
    harness: DropboxSignHarness, provider: FaxProvider[Any], make_fax: MakeFax
) -> None:
    # openapi.yaml FaxSendRequest.recipient: "a phone number in E.164 format or email address".
    fax = make_fax("+12125550123", caller_id="+12125550100")
    start = len(harness.requests)

    result = await provider.send(fax)

    [sent] = _since(harness, start)
    credentials = base64.b64encode(f"{API_KEY}:".encode()).decode()
    assert sent.headers["authorization"] == f"Basic {credentials}"
    assert (sent.method, sent.path) == ("POST", "/v3/fax/send")
    assert sent.form() == {
        "recipient": ["+12125550123"],
        "sender": ["+12125550100"],
        "title": [f"faxbridge job {fax.job_id}"],
        "test_mode": ["0"],
    }
    [part] = sent.files()
    assert (part.name, part.content_type) == ("files[]", "application/pdf")
    assert part.data == fax.document.read_bytes()
    assert result.provider_fax_id in harness.state.faxes
    assert (result.status, result.raw_status) == (JobStatus.SENDING, "transmitting")


async def test_a_retry_round_is_named_in_the_title(
    harness: DropboxSignHarness, provider: FaxProvider[Any], make_fax: MakeFax
) -> None:
    fax = make_fax(round=2)

    result = await provider.send(fax)

    assert harness.state.faxes[result.provider_fax_id].title == f"faxbridge job {fax.job_id}-r2"


async def test_cover_note_goes_into_native_fields_and_our_cover_page_stays_out(
    harness: DropboxSignHarness, provider: FaxProvider[Any], make_fax: MakeFax
) -> None:
    fax = make_fax(cover=True)
    start = len(harness.requests)

    await provider.send(fax)

    [sent] = _since(harness, start)
    form = sent.form()
    assert form["cover_page_to"] == ["Jane Doe"]
    assert form["cover_page_from"] == ["Front Desk"]
    assert form["cover_page_message"] == ["Quarterly figures\n\nPlease call back after reading."]
    assert [p.data for p in sent.files()] == [fax.document.read_bytes()]


async def test_test_mode_is_sent_when_configured(
    harness: DropboxSignHarness, make_provider: MakeProvider, make_fax: MakeFax
) -> None:
    result = await make_provider(test_mode=True).send(make_fax())

    assert harness.requests[-1].form()["test_mode"] == ["1"]
    assert harness.state.faxes[result.provider_fax_id].test_mode


async def test_emulator_takes_the_official_examples_digits_and_the_seeds_to_and_from(
    harness: DropboxSignHarness, http_client: httpx.AsyncClient
) -> None:
    # examples/json/FaxSendRequest.json sends "16690000001"; seed 003 says `to`/`from`.
    response = await http_client.post(
        f"{harness.base_url}/fax/send",
        auth=(API_KEY, ""),
        data={"to": "16690000001", "from": "16690000000"},
        files={"files[0]": ("a.pdf", make_pdf("A"), "application/pdf")},
    )

    assert response.status_code == 200
    assert response.json()["fax"]["transmissions"][0]["recipient"] == "16690000001"


# -- status polling ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("status_code", "status", "reason"),
    [
        ("transmitting", JobStatus.SENDING, None),
        ("success", JobStatus.DELIVERED, None),
        ("on_hold", JobStatus.FAILED, FailureReason.ON_HOLD),
        ("error_busy", JobStatus.FAILED, FailureReason.BUSY),
        ("error_no_answer", JobStatus.FAILED, FailureReason.NO_ANSWER),
        ("error_bad_destination", JobStatus.FAILED, FailureReason.BAD_NUMBER),
        ("error_disconnected", JobStatus.FAILED, FailureReason.DISCONNECTED),
        ("error_unknown", JobStatus.FAILED, FailureReason.UNKNOWN),
        ("error_could_not_fax", JobStatus.FAILED, FailureReason.UNKNOWN),
        ("error_file", JobStatus.FAILED, FailureReason.FILE_ERROR),  # api/reference/fax table
        ("error_new_in_some_release", JobStatus.FAILED, FailureReason.UNKNOWN),
    ],
)
async def test_every_status_code_maps_to_the_common_model_and_links_the_job(
    harness: DropboxSignHarness,
    provider: FaxProvider[Any],
    make_fax: MakeFax,
    status_code: str,
    status: JobStatus,
    reason: FailureReason | None,
) -> None:
    fax = make_fax()
    fax_id = (await provider.send(fax)).provider_fax_id
    harness.state.faxes[fax_id].status_code = status_code

    update = await provider.status(fax_id)

    assert update is not None
    assert (update.status, update.reason, update.provider_code) == (status, reason, status_code)
    assert (update.provider_fax_id, update.job_id, update.round) == (fax_id, fax.job_id, 0)
    assert harness.requests[-1].path == f"/v3/fax/{fax_id}"


async def test_a_deleted_fax_is_forgotten_and_waits_out_the_callback_retries(
    harness: DropboxSignHarness, provider: FaxProvider[Any], make_fax: MakeFax
) -> None:
    fax_id = (await provider.send(make_fax())).provider_fax_id
    del harness.state.faxes[fax_id]

    assert await provider.status(fax_id) is None
    # Callbacks are retried "over approximately 3 days" (developers.hellosign.com glossary).
    assert provider.forgotten_after_s() == 78 * 3600
    assert not provider.redials_natively  # FaxSendRequest has no retry option


async def test_a_fax_answered_410_deleted_is_forgotten_too(
    harness: DropboxSignHarness, provider: FaxProvider[Any], make_fax: MakeFax
) -> None:
    fax_id = (await provider.send(make_fax())).provider_fax_id
    # examples/json/Error410Response.json
    body = {"error": {"error_msg": "This resource has been deleted.", "error_name": "deleted"}}
    harness.fail_next(410, body)

    assert await provider.status(fax_id) is None
    harness.fail_next(410, body)
    await provider.delete(fax_id)  # gone already: done, no error


# -- reconciliation ------------------------------------------------------------------------
async def test_find_reads_the_fax_list_by_the_reference_in_the_title(
    harness: DropboxSignHarness, provider: FaxProvider[Any], make_fax: MakeFax
) -> None:
    fax = make_fax()
    first = (await provider.send(fax)).provider_fax_id
    again = (await provider.send(make_fax(job_id=fax.job_id, round=1))).provider_fax_id
    harness.state.faxes[first].status_code = "error_busy"
    harness.state.faxes[first].created_at -= 60
    start = len(harness.requests)

    lookup = await provider.find(fax)

    assert lookup.certain
    assert [(f.provider_fax_id, f.round, f.status) for f in lookup.faxes] == [
        (again, 1, JobStatus.SENDING),
        (first, 0, JobStatus.FAILED),
    ]
    [listed] = _since(harness, start)
    assert (listed.method, listed.path) == ("GET", "/v3/fax/list")
    assert listed.query == {"page": ["1"], "page_size": ["100"]}


async def test_find_reads_at_most_five_pages_and_then_cannot_tell(
    harness: DropboxSignHarness, provider: FaxProvider[Any], make_fax: MakeFax
) -> None:
    saved = dict(harness.state.faxes)
    now = int(time.time())
    for n in range(520):  # someone else's faxes, newer than ours
        fax_id = f"{n:040x}"
        harness.state.faxes[fax_id] = Fax(fax_id, "12125550123", None, [], created_at=now + 10)
    start = len(harness.requests)
    try:
        lookup = await provider.find(make_fax())
    finally:
        harness.state.faxes = saved

    assert not lookup.certain and lookup.faxes == ()
    assert "500" in lookup.detail
    pages = [r.query["page"] for r in _since(harness, start)]
    assert pages == [["1"], ["2"], ["3"], ["4"], ["5"]]


# -- delete, cancel, lines ---------------------------------------------------------------
async def test_delete_removes_the_fax_and_a_second_delete_is_done_already(
    harness: DropboxSignHarness, provider: FaxProvider[Any], make_fax: MakeFax
) -> None:
    fax_id = (await provider.send(make_fax())).provider_fax_id
    start = len(harness.requests)

    await provider.delete(fax_id)
    await provider.delete(fax_id)

    assert fax_id not in harness.state.faxes
    assert [(r.method, r.path) for r in _since(harness, start)] == [
        ("DELETE", f"/v3/fax/{fax_id}"),
        ("DELETE", f"/v3/fax/{fax_id}"),
    ]


async def test_cancel_is_not_in_the_api(provider: FaxProvider[Any]) -> None:
    with pytest.raises(NotSupportedByProvider):
        await provider.cancel("c2e9691c85d9d6fa6ae773842e3680b2b8650f1d")


async def test_fax_lines_are_the_accounts_numbers_in_e164(
    harness: DropboxSignHarness, provider: FaxProvider[Any]
) -> None:
    harness.state.lines = ["12125550100", "14155557897"]
    start = len(harness.requests)

    lines = await provider.fax_lines()

    assert lines == ["+12125550100", "+14155557897"]
    [request] = _since(harness, start)
    assert (request.method, request.path) == ("GET", "/v3/fax_line/list")
    harness.state.lines = ["12125550100"]


# -- errors --------------------------------------------------------------------------------
async def test_rate_limit_waits_until_x_ratelimit_reset_and_is_no_attempt(
    harness: DropboxSignHarness, provider: FaxProvider[Any], make_fax: MakeFax
) -> None:
    reset = int(time.time()) + 45
    # examples/json/Error429Response.json
    body = {"error": {"error_msg": "Too many requests.", "error_name": "exceeded_rate"}}
    harness.fail_next(429, body, headers={"X-Ratelimit-Reset": str(reset)})

    with pytest.raises(TransientProviderError) as caught:
        await provider.send(make_fax())

    assert caught.value.rate_limited
    assert caught.value.retry_after_s is not None and 40 <= caught.value.retry_after_s <= 45
    assert "Too many requests." in str(caught.value)


async def test_the_official_send_answer_with_no_transmissions_is_submitted(
    harness: DropboxSignHarness, provider: FaxProvider[Any], make_fax: MakeFax
) -> None:
    # test_fixtures/FaxSendResponse.json: `transmissions: []`, `metadata: []`, files_url of
    # another id than fax_id.
    fax_id = "c2e9691c85d9d6fa6ae773842e3680b2b8650f1d"
    record = {
        "fax_id": fax_id,
        "title": "example title",
        "original_title": "example original title",
        "subject": "example subject",
        "message": "example message",
        "metadata": [],
        "created_at": 1726774555,
        "sender": "me@dropboxsign.com",
        "transmissions": [],
        "files_url": "https://api.hellosign.com/v3/fax/files/2b388914e3ae3b738bd4e2ee2850c677e6dc53d2",
    }
    harness.fail_next(200, {"fax": record})

    result = await provider.send(make_fax())

    assert (result.provider_fax_id, result.status) == (fax_id, JobStatus.SUBMITTED)


async def test_a_send_answered_200_without_a_fax_id_may_be_sent_never_refused(
    harness: DropboxSignHarness, provider: FaxProvider[Any], make_fax: MakeFax
) -> None:
    harness.fail_next(200, {"fax": {"title": "faxbridge job x"}})

    with pytest.raises(TransientProviderError) as caught:
        await provider.send(make_fax())

    assert caught.value.maybe_sent  # the worker asks `find` before sending again
    assert not caught.value.rate_limited


async def test_invalid_recipient_is_permanent_with_the_api_message(
    provider: FaxProvider[Any], make_fax: MakeFax
) -> None:
    with pytest.raises(PermanentProviderError, match=r"Invalid recipient: \+1212"):
        await provider.send(make_fax("+1212"))


async def test_payment_required_is_permanent(
    harness: DropboxSignHarness, provider: FaxProvider[Any], make_fax: MakeFax
) -> None:
    # examples/json/Error402Response.json
    body = {"error": {"error_msg": "You must upgrade to make additional requests."}}
    harness.fail_next(402, body)

    with pytest.raises(PermanentProviderError, match="You must upgrade"):
        await provider.send(make_fax())


async def test_wrong_api_key_is_permanent(make_provider: MakeProvider, make_fax: MakeFax) -> None:
    with pytest.raises(PermanentProviderError, match="Unauthorized user"):
        await make_provider(api_key="wrong").send(make_fax())


# -- account -------------------------------------------------------------------------------
async def test_check_makes_one_harmless_call_and_says_what_it_saw(
    harness: DropboxSignHarness, provider: FaxProvider[Any]
) -> None:
    start = len(harness.requests)

    description = await provider.check()

    [request] = _since(harness, start)
    assert (request.method, request.path) == ("GET", "/v3/fax/list")
    assert request.query == {"page": ["1"], "page_size": ["1"]}
    assert f"({len(harness.state.faxes)} faxes on the account)" in description


async def test_setup_says_where_to_paste_the_callback_url_and_calls_nothing(
    harness: DropboxSignHarness, provider: FaxProvider[Any]
) -> None:
    start = len(harness.requests)

    text = "\n".join(await provider.setup())

    assert "http://127.0.0.1:9/bridge/callbacks/dropboxsign" in text
    assert "Hello API Event Received" in text
    assert _since(harness, start) == []
