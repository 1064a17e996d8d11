"""Dropbox Sign fax v3 specifics: the exact wire request, the job id in `title`, every event
and status code, the `event_hash` signature, the reply body, inbound look-up and download,
`X-Ratelimit-Reset`. The shared behaviour is in test_contract.py."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from bridge.errors import (
    CallbackAuthError,
    CallbackError,
    PermanentProviderError,
    TransientProviderError,
)
from bridge.models import FailureReason, JobStatus
from bridge.providers.base import FaxProvider
from tests.providers.conftest import PUBLIC_URL, MakeFax, MakeProvider, ToRequest
from tests.providers.emulators.dropboxsign import (
    API_KEY,
    DropboxSignHarness,
    Fax,
    event_hash,
    make_harness,
)
from tests.providers.emulators.hellofax import multipart
from tests.providers.harness import CallbackHTTP, RecordedRequest
from tests.providers.pdfs import make_pdf

REPLY = "Hello API Event Received"


@pytest.fixture(scope="module")
def harness() -> Iterator[DropboxSignHarness]:
    with make_harness() as running:
        yield running


def _posts(harness: DropboxSignHarness, start: int) -> list[RecordedRequest]:
    return [r for r in harness.requests[start:] if r.method == "POST"]


def _signed(payload: dict[str, Any], key: str = API_KEY) -> CallbackHTTP:
    event = payload["event"]
    event["event_hash"] = event_hash(key, event["event_time"], event["event_type"])
    body, content_type = multipart({"json": json.dumps(payload)})
    return CallbackHTTP(headers={"content-type": content_type}, body=body)


def _fax(fax_id: str = "9c2c7e8c2ed1839f75a9a0227ce2954b1d7c3407", title: str = "") -> Fax:
    return Fax(fax_id, "12125550123", "12125550100", [make_pdf("SENT")], title=title)


# -- the wire request ----------------------------------------------------------------------
async def test_send_posts_recipient_sender_title_and_files(
    harness: DropboxSignHarness, provider: FaxProvider[Any], make_fax: MakeFax
) -> None:
    fax = make_fax("+12125550123", caller_id="+12125550100")
    start = len(harness.requests)

    result = await provider.send(fax)

    [sent] = _posts(harness, start)
    credentials = base64.b64encode(f"{API_KEY}:".encode()).decode()
    assert sent.headers["authorization"] == f"Basic {credentials}"
    assert sent.path == "/v3/fax/send"
    assert sent.form() == {
        "recipient": ["12125550123"],
        "sender": ["12125550100"],
        "title": [f"faxbridge {fax.job_id}"],
        "test_mode": ["0"],
    }
    [part] = sent.files()
    assert (part.name, part.content_type) == ("files[]", "application/pdf")
    assert part.data == fax.document.read_bytes()
    assert result.provider_fax_id in harness.state.faxes
    assert (result.status, result.raw_status) == (JobStatus.SENDING, "transmitting")


async def test_cover_note_goes_into_native_fields_and_our_cover_page_stays_out(
    harness: DropboxSignHarness, provider: FaxProvider[Any], make_fax: MakeFax
) -> None:
    fax = make_fax(cover=True)
    start = len(harness.requests)

    await provider.send(fax)

    [sent] = _posts(harness, start)
    form = sent.form()
    assert form["cover_page_to"] == ["Jane Doe"]
    assert form["cover_page_from"] == ["Front Desk"]
    assert form["cover_page_message"] == ["Quarterly figures\n\nPlease call back after reading."]
    assert [p.data for p in sent.files()] == [fax.document.read_bytes()]


async def test_test_mode_is_sent_when_configured(
    harness: DropboxSignHarness, make_provider: MakeProvider, make_fax: MakeFax
) -> None:
    start = len(harness.requests)

    result = await make_provider(test_mode=True).send(make_fax())

    [sent] = _posts(harness, start)
    assert sent.form()["test_mode"] == ["1"]
    assert harness.state.faxes[result.provider_fax_id].test_mode


async def test_emulator_also_takes_the_pre_release_to_and_from(
    harness: DropboxSignHarness, http_client: httpx.AsyncClient
) -> None:
    response = await http_client.post(
        f"{harness.base_url}/fax/send",
        auth=(API_KEY, ""),
        data={"to": "12125550123", "from": "12125550100"},
        files={"files[0]": ("a.pdf", make_pdf("A"), "application/pdf")},
    )

    assert response.status_code == 200
    assert response.json()["fax"]["transmissions"][0]["recipient"] == "12125550123"


# -- callbacks -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("event_type", "status", "reason"),
    [
        ("fax_sent", JobStatus.DELIVERED, None),
        ("fax_busy", JobStatus.FAILED, FailureReason.BUSY),
        ("fax_no_answer", JobStatus.FAILED, FailureReason.NO_ANSWER),
        ("fax_disconnected", JobStatus.FAILED, FailureReason.DISCONNECTED),
        ("fax_blacklisted", JobStatus.FAILED, FailureReason.BLOCKED_DESTINATION),
        ("fax_on_hold", JobStatus.FAILED, FailureReason.ON_HOLD),
    ],
)
async def test_every_fax_event_maps_and_links_back_to_the_job(
    harness: DropboxSignHarness,
    provider: FaxProvider[Any],
    to_request: ToRequest,
    event_type: str,
    status: JobStatus,
    reason: FailureReason | None,
) -> None:
    fax = _fax(title="faxbridge job-42")

    result = await provider.parse_callback(
        await to_request(harness.event_callback(event_type, fax, event_time=1738001529))
    )

    [update] = result.updates
    assert (update.provider_fax_id, update.job_id) == (fax.fax_id, "job-42")
    assert (update.status, update.reason, update.provider_code) == (status, reason, event_type)
    assert update.provider_text
    assert update.at is not None and update.at.timestamp() == 1738001529
    assert result.reply_body == REPLY


@pytest.mark.parametrize("event_type", ["callback_test", "signature_request_sent"])
async def test_other_signed_events_are_acknowledged_and_ignored(
    harness: DropboxSignHarness,
    provider: FaxProvider[Any],
    to_request: ToRequest,
    event_type: str,
) -> None:
    result = await provider.parse_callback(
        await to_request(harness.event_callback(event_type, _fax()))
    )

    assert (result.updates, result.inbound, result.reply_body) == ([], [], REPLY)


def _payload(event_type: str = "fax_sent", event_time: str = "1738001529") -> dict[str, Any]:
    url = "https://api.hellosign.com/v3/fax/files/9c2c7e8c2ed1839f75a9a0227ce2954b1d7c3407"
    return {
        "event": {"event_time": event_time, "event_type": event_type},
        "transmission": {"title": "faxbridge job-7", "files_url": url, "has_error": False},
    }


async def test_a_callback_with_a_known_good_hash_is_accepted(
    provider: FaxProvider[Any], to_request: ToRequest
) -> None:
    # Computed with `printf 1738001529fax_sent | openssl dgst -sha256 -hmac <API_KEY>`.
    payload = _payload()
    payload["event"]["event_hash"] = (
        "a5ac24780e55ad342e83cd8be34126acafaa057ba36e2a5522c3f23fec551a0a"
    )
    body, content_type = multipart({"json": json.dumps(payload)})

    result = await provider.parse_callback(
        await to_request(CallbackHTTP({"content-type": content_type}, body))
    )

    [update] = result.updates
    assert update.provider_fax_id == "9c2c7e8c2ed1839f75a9a0227ce2954b1d7c3407"


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda p: p["event"].pop("event_hash"), id="missing-hash"),
        pytest.param(lambda p: p["event"].update(event_type="fax_busy"), id="changed-type"),
        pytest.param(lambda p: p["event"].update(event_time="1738009999"), id="changed-time"),
        pytest.param(lambda p: p["event"].update(event_hash="0" * 64), id="zero-hash"),
    ],
)
async def test_tampered_callbacks_are_refused(
    provider: FaxProvider[Any], to_request: ToRequest, tamper: Any
) -> None:
    callback = _signed(_payload())
    payload = json.loads(
        RecordedRequest("POST", "/", {}, callback.headers, callback.body).form()["json"][0]
    )
    tamper(payload)
    body, content_type = multipart({"json": json.dumps(payload)})

    with pytest.raises(CallbackAuthError):
        await provider.parse_callback(
            await to_request(CallbackHTTP({"content-type": content_type}, body))
        )


async def test_callback_signed_with_another_key_is_refused(
    provider: FaxProvider[Any], to_request: ToRequest
) -> None:
    with pytest.raises(CallbackAuthError):
        await provider.parse_callback(await to_request(_signed(_payload(), key="other-key")))


async def test_signed_callback_without_files_url_is_a_callback_error(
    provider: FaxProvider[Any], to_request: ToRequest
) -> None:
    payload = _payload()
    del payload["transmission"]["files_url"]

    with pytest.raises(CallbackError):
        await provider.parse_callback(await to_request(_signed(payload)))


async def test_inbound_numbers_come_from_the_fax_record_and_the_file_from_download(
    harness: DropboxSignHarness, provider: FaxProvider[Any], to_request: ToRequest
) -> None:
    pdf = make_pdf("INBOUND", pages=3)
    callback = harness.inbound_callback("+12125550199", "+12125550100", pdf)
    start = len(harness.requests)

    [inbound] = (await provider.parse_callback(await to_request(callback))).inbound
    document = await provider.fetch_document(inbound)

    assert (inbound.from_number, inbound.to_number) == ("+12125550199", "+12125550100")
    assert document == pdf
    paths = [(r.method, r.path) for r in harness.requests[start:]]
    assert paths == [
        ("GET", f"/v3/fax/{inbound.provider_fax_id}"),
        ("GET", f"/v3/fax/files/{inbound.provider_fax_id}"),
    ]


async def test_inbound_for_an_unknown_fax_is_a_callback_error(
    harness: DropboxSignHarness, provider: FaxProvider[Any], to_request: ToRequest
) -> None:
    callback = harness.event_callback("fax_received", _fax("1" * 40))

    with pytest.raises(CallbackError, match="unknown"):
        await provider.parse_callback(await to_request(callback))


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
        ("error_file", JobStatus.FAILED, FailureReason.FILE_ERROR),
    ],
)
async def test_every_status_code_maps_to_the_common_model(
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
    assert update.job_id == fax.job_id
    assert harness.requests[-1].path == f"/v3/fax/{fax_id}"


# -- errors --------------------------------------------------------------------------------
async def test_rate_limit_waits_until_x_ratelimit_reset(
    harness: DropboxSignHarness, provider: FaxProvider[Any], make_fax: MakeFax
) -> None:
    reset = int(time.time()) + 45
    harness.fail_next(
        429, harness.error_body("Too many requests."), headers={"X-Ratelimit-Reset": str(reset)}
    )

    with pytest.raises(TransientProviderError) as caught:
        await provider.send(make_fax())

    assert caught.value.retry_after_s is not None
    assert 40 <= caught.value.retry_after_s <= 45
    assert "Too many requests." in str(caught.value)


async def test_server_error_is_transient(
    harness: DropboxSignHarness, provider: FaxProvider[Any], make_fax: MakeFax
) -> None:
    harness.fail_next(500, harness.error_body("Internal error"))

    with pytest.raises(TransientProviderError):
        await provider.send(make_fax())


async def test_invalid_recipient_is_permanent_with_the_api_message(
    provider: FaxProvider[Any], make_fax: MakeFax
) -> None:
    with pytest.raises(PermanentProviderError, match="Invalid recipient: 1212"):
        await provider.send(make_fax("+1212"))


async def test_wrong_api_key_is_permanent(make_provider: MakeProvider, make_fax: MakeFax) -> None:
    with pytest.raises(PermanentProviderError, match="Unauthorized user"):
        await make_provider(api_key="wrong").send(make_fax())


# -- account -------------------------------------------------------------------------------
async def test_check_lists_one_fax(harness: DropboxSignHarness, provider: FaxProvider[Any]) -> None:
    start = len(harness.requests)

    description = await provider.check()

    [request] = harness.requests[start:]
    assert (request.method, request.path) == ("GET", "/v3/fax/list")
    assert request.query == {"page": ["1"], "page_size": ["1"]}
    assert f"{len(harness.state.faxes)} faxes" in description


async def test_check_with_wrong_api_key_fails(make_provider: MakeProvider) -> None:
    with pytest.raises(PermanentProviderError, match="401"):
        await make_provider(api_key="wrong").check()


async def test_setup_explains_where_to_paste_the_callback_url(
    harness: DropboxSignHarness, provider: FaxProvider[Any]
) -> None:
    start = len(harness.requests)

    lines = await provider.setup()

    text = "\n".join(lines)
    assert f"{PUBLIC_URL}/callbacks/dropboxsign" in text
    assert REPLY in text
    assert harness.requests[start:] == []  # nothing to register through the API
