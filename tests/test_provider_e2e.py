"""E-mail in, fax out through a real provider API, callback back, report in the Maildir.

For each provider type a loopback emulator of its API (tests/providers/emulators/) plays the
provider, and a whole bridge runs with that provider as its faxbox's. `swaks` sends the mail;
the emulator records the fax it was sent; the emulator then calls the bridge back over HTTP at
the URL `providers setup` registered (or, where the provider has no API for it, the URL an admin
would enter by hand); the job ends and the sender gets the report.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any, Protocol

import httpx
import pytest
from pypdf import PdfReader

from bridge.config import Config, RedialRule
from bridge.models import OutboundFax
from bridge.providers.registry import build_providers
from tests.bridge_runner import BridgeThread
from tests.helpers import wait_for
from tests.messages import make_pdf
from tests.providers.emulators.mfax import MFaxHarness
from tests.providers.harness import CallbackHTTP, RecordedRequest
from tests.providers.pdfs import write_pdf
from tests.test_end_to_end import final_job, maildir_messages

pytestmark = pytest.mark.swaks

PROVIDERS = ["hellofax", "faxplus", "kazoo", "dropboxsign", "mfax"]
CALLBACK_TOKEN = "e2e-callback-token-7d41"
TO = "+12125550123"
SUBJECT = "Scan from MFP"

# What the provider's own status code for each outcome is, as the job keeps it.
DELIVERED_CODES = {
    "hellofax": "S",
    "faxplus": "success",
    "kazoo": "outbound_fax",
    "dropboxsign": "fax_sent",  # the event name: examples/json/EventCallbackFaxSent.json
    "mfax": "success",
}
BUSY_CODES = {
    "hellofax": "E/B",
    "faxplus": "failed_user_busy",
    "kazoo": "USER_BUSY",
    "dropboxsign": "fax_busy",
    "mfax": "486",
}
# Kazoo has no cover fields: the bridge's own cover page goes out as page 1.
OWN_COVER_PAGE = {"kazoo"}


class Emulator(Protocol):
    """The parts of an emulator harness these tests use (see emulators/_callbacks.py)."""

    provider_type: str
    requests: list[RecordedRequest]
    callback_target: str | None

    def provider_config(self, callback_token: str) -> dict[str, Any]: ...
    def registered_callback_url(self, inbound: bool) -> str | None: ...
    def status_callback(
        self, provider_fax_id: str, status: str, reason: str | None = None
    ) -> CallbackHTTP: ...
    def inbound_callback(self, from_number: str, to_number: str, pdf: bytes) -> CallbackHTTP: ...
    def forged(self, callback: CallbackHTTP) -> CallbackHTTP: ...
    def post(self, callback: CallbackHTTP, *, inbound: bool = False) -> httpx.Response: ...
    def complete(
        self, provider_fax_id: str, status: str, reason: str | None = None
    ) -> httpx.Response: ...
    def deliver_inbound(self, from_number: str, to_number: str, pdf: bytes) -> httpx.Response: ...
    def settle(self, provider_fax_id: str, status: str, reason: str | None = None) -> None: ...


@dataclass(frozen=True)
class WireFax:
    """The fax as it reached the provider: destination as the API got it, the PDF sent."""

    number: str
    pdf: bytes
    fields: dict[str, Any]  # the provider's other fields (cover page, caller ID …)


def _posted(emulator: Emulator, method: str, suffix: str) -> RecordedRequest | None:
    return next(
        (r for r in emulator.requests if r.method == method and r.path.endswith(suffix)), None
    )


def wire_fax(emulator: Emulator) -> WireFax | None:
    """The one fax sent to the emulator so far, read off the recorded requests, or None."""
    kind = emulator.provider_type
    if kind == "hellofax":
        sent = _posted(emulator, "POST", "/Transmissions")
        if sent is None:
            return None
        return WireFax(sent.query["To"][0], sent.files()[0].data, sent.form())
    if kind == "faxplus":
        upload, outbox = _posted(emulator, "POST", "/files"), _posted(emulator, "POST", "/outbox")
        if upload is None or outbox is None:
            return None
        body = outbox.json()
        return WireFax(body["to"][0], upload.files()[0].data, body)
    if kind == "kazoo":
        sent = _posted(emulator, "PUT", "/faxes")
        if sent is None:
            return None
        parts = {p.content_type: p.data for p in sent.parts()}
        data = json.loads(parts["application/json"])["data"]
        return WireFax(data["to_number"], parts["application/pdf"], data)
    if kind == "dropboxsign":
        sent = _posted(emulator, "POST", "/fax/send")
        if sent is None:
            return None
        return WireFax(sent.form()["recipient"][0], sent.files()[0].data, sent.form())
    if kind == "mfax":
        sent = _posted(emulator, "POST", "/faxes")
        if sent is None:
            return None
        return WireFax(sent.form()["faxNumber"][0], sent.files()[0].data, sent.form())
    raise AssertionError(f"no wire reader for {kind}")


# Each API's spelling of +12125550123.
WIRE_NUMBERS = {
    "hellofax": "12125550123",
    "faxplus": TO,
    "kazoo": TO,
    "dropboxsign": TO,
    "mfax": TO,
}


@pytest.fixture(params=PROVIDERS)
def emulator(request: pytest.FixtureRequest) -> Iterator[Emulator]:
    module = importlib.import_module(f"tests.providers.emulators.{request.param}")
    with module.make_harness() as running:
        yield running


def provider_faxbox_config(
    make_config: Callable[..., Config], emulator: Emulator, **provider: Any
) -> Config:
    """The default test config with the emulated provider as faxbox `main`'s provider."""
    name = emulator.provider_type
    return make_config(
        providers={name: {**emulator.provider_config(CALLBACK_TOKEN), **provider}},
        faxboxes=[
            {
                "name": "main",
                "domains": ["fax.localhost"],
                "provider": name,
                "caller_id": "+12125550100",
                "default_region": "US",
                "redial": {"busy": {"tries": 1}, "no_answer": {"tries": 1}},
                "inbound": {
                    "numbers": ["+12125550100"],
                    "email_to": ["frontdesk@office.localhost"],
                },
            }
        ],
    )


def register_callbacks(config: Config, emulator: Emulator) -> list[str]:
    """Do what the admin does once: `faxbridge providers setup NAME`, and where the provider
    has no API for it, enter the callback URL by hand as the instructions say."""

    async def setup() -> tuple[list[str], str]:
        async with httpx.AsyncClient() as client:
            provider = build_providers(config, client)[emulator.provider_type]
            return await provider.setup(), provider.callback_url()

    lines, url = asyncio.run(setup())
    if emulator.registered_callback_url(inbound=False) is None:
        assert any(url in line for line in lines), lines
        emulator.callback_target = url
    return lines


@pytest.fixture
def provider_bridge(
    emulator: Emulator,
    make_config: Callable[..., Config],
    start_bridge: Callable[[Config], BridgeThread],
) -> BridgeThread:
    config = provider_faxbox_config(make_config, emulator)
    register_callbacks(config, emulator)
    return start_bridge(config)


def swaks_send(bridge: BridgeThread, pdf: Path, to: str = "12125550123@fax.localhost") -> str:
    swaks = shutil.which("swaks")
    assert swaks, "swaks is installed by `make test` (Debian package swaks)"
    host, port = bridge.smtp_address
    result = subprocess.run(
        [
            swaks,
            "--server",
            host,
            "--port",
            str(port),
            "--from",
            "scanner@example.com",
            "--to",
            to,
            "--h-Subject",
            SUBJECT,
            "--body",
            "Scanned pages attached.",
            "--attach-type",
            "application/pdf",
            "--attach-name",
            pdf.name,
            "--attach",
            f"@{pdf}",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    replies = [line for line in result.stdout.splitlines() if line.startswith("<-  250 2.0.0")]
    assert len(replies) == 1 and "Queued as" in replies[0], result.stdout
    return replies[0]


def submitted_job(bridge: BridgeThread, to: str = TO) -> dict[str, Any]:
    """The job once the provider has accepted it (its fax id recorded)."""

    def probe() -> dict[str, Any] | None:
        for job in bridge.store.jobs.recent():
            if job["to"] == to and job["provider_fax_id"] and job["status"] != "submitting":
                return bridge.store.jobs.get(job["id"])
        return None

    return wait_for(probe, timeout_s=30, what=f"the provider to accept the fax to {to}")


def page_texts(pdf: bytes) -> list[str]:
    return [page.extract_text() for page in PdfReader(BytesIO(pdf)).pages]


def send_scan(bridge: BridgeThread, tmp_path: Path) -> None:
    pdf = tmp_path / "scan.pdf"
    pdf.write_bytes(make_pdf("scan", 2))
    swaks_send(bridge, pdf)


def assert_wire_fax(bridge: BridgeThread, emulator: Emulator, job: dict[str, Any]) -> None:
    fax = wait_for(lambda: wire_fax(emulator), what="the provider to receive the fax")
    kind = emulator.provider_type
    assert fax.number == WIRE_NUMBERS[kind]
    texts = page_texts(fax.pdf)
    if kind in OWN_COVER_PAGE:
        assert len(texts) == 3
        assert SUBJECT in texts[0]
        texts = texts[1:]
    else:
        # The provider draws the cover page from its own fields; the document goes as the
        # bridge stored it, byte for byte.
        stored = bridge.store.jobs.row(job["id"])
        assert stored is not None
        assert fax.pdf == bridge.store.db.path(stored.document_path).read_bytes()
        assert SUBJECT in repr(fax.fields)
    assert len(texts) == 2
    assert "scan 1" in texts[0] and "scan 2" in texts[1]


@pytest.mark.parametrize(
    ("outcome", "reason", "subject", "codes"),
    [
        ("delivered", None, "Fax to +1 212-555-0123 delivered (3 pages)", DELIVERED_CODES),
        ("failed", "busy", "Fax to +1 212-555-0123 failed: line busy", BUSY_CODES),
    ],
    ids=["delivered", "busy"],
)
def test_mail_goes_out_as_a_fax_and_the_callback_brings_the_report(
    provider_bridge: BridgeThread,
    emulator: Emulator,
    tmp_path: Path,
    outcome: str,
    reason: str | None,
    subject: str,
    codes: dict[str, str],
) -> None:
    send_scan(provider_bridge, tmp_path)
    job = submitted_job(provider_bridge)
    assert job["status"] in ("submitted", "sending")
    assert_wire_fax(provider_bridge, emulator, job)

    reply = emulator.complete(job["provider_fax_id"], outcome, reason)
    assert reply.status_code == 200, reply.text
    if emulator.provider_type == "dropboxsign":
        assert reply.text == "Hello API Event Received"

    job = final_job(provider_bridge, TO)
    assert job["status"] == outcome
    assert job["reason"] == reason
    assert job["provider_code"] == codes[emulator.provider_type]
    assert job["history"][-1]["detail"].startswith(f"callback: {outcome}")
    (report,) = maildir_messages(provider_bridge)
    assert report["To"] == "scanner@example.com"
    assert report["Subject"] == subject
    assert report["Auto-Submitted"] == "auto-replied"


def test_duplicate_and_late_callbacks_change_nothing(
    provider_bridge: BridgeThread, emulator: Emulator, tmp_path: Path
) -> None:
    send_scan(provider_bridge, tmp_path)
    job = submitted_job(provider_bridge)
    delivered = emulator.status_callback(job["provider_fax_id"], "delivered")
    assert emulator.post(delivered).status_code == 200
    assert final_job(provider_bridge, TO)["status"] == "delivered"
    assert emulator.post(delivered).status_code == 200
    history = provider_bridge.store.jobs.get(job["id"])
    assert history is not None
    assert [h["status"] for h in history["history"]].count("delivered") == 1
    maildir_messages(provider_bridge)
    outbox = provider_bridge.store.outbox.recent()
    assert [m["kind"] for m in outbox] == ["report"]


def test_forged_callback_is_refused_and_changes_nothing(
    provider_bridge: BridgeThread, emulator: Emulator, tmp_path: Path
) -> None:
    send_scan(provider_bridge, tmp_path)
    job = submitted_job(provider_bridge)
    genuine = emulator.status_callback(job["provider_fax_id"], "delivered")

    reply = emulator.post(emulator.forged(genuine))
    assert reply.status_code in (401, 403), reply.text
    after = provider_bridge.store.jobs.get(job["id"])
    assert after is not None
    # Nothing the forgery claimed happened (status polling may still move the job along).
    assert after["status"] not in ("delivered", "failed")
    assert all(h["status"] != "delivered" for h in after["history"])
    assert provider_bridge.store.outbox.recent() == []

    # The provider's real callback still goes through afterwards.
    assert emulator.post(genuine).status_code == 200
    assert final_job(provider_bridge, TO)["status"] == "delivered"


# Fax.Plus included: its sent fax leaves the outbox under a new fax id, which the poll finds by
# the job tag in the sent-fax listing. Not HelloFax: it removes a fax the moment it is sent
# (help.dropbox.com setup page, note D), so a poll can never see it delivered; that job ends
# `unknown` after the grace (test_hellofax_e2e.py).
@pytest.mark.parametrize("emulator", ["faxplus", "kazoo", "dropboxsign", "mfax"], indirect=True)
def test_without_callbacks_polling_finds_the_fax_delivered(
    emulator: Emulator,
    make_config: Callable[..., Config],
    start_bridge: Callable[[Config], BridgeThread],
    tmp_path: Path,
) -> None:
    # No callback URL registered anywhere: the provider cannot reach the bridge.
    bridge = start_bridge(provider_faxbox_config(make_config, emulator, status_poll_s=0.3))
    send_scan(bridge, tmp_path)
    job = submitted_job(bridge)

    submitted_id = job["provider_fax_id"]
    emulator.settle(submitted_id, "delivered")

    job = final_job(bridge, TO)
    assert job["status"] == "delivered"
    assert job["history"][-1]["detail"].startswith("status poll: delivered")
    if emulator.provider_type == "faxplus":  # the job now names the sent fax, not the outbox
        assert job["provider_fax_id"] != submitted_id
    (report,) = maildir_messages(bridge)
    assert report["Subject"] == "Fax to +1 212-555-0123 delivered (3 pages)"


@pytest.mark.parametrize("emulator", ["mfax"], indirect=True)
def test_a_send_whose_answer_was_lost_is_found_at_documo_and_adopted_not_sent_twice(
    emulator: Emulator,
    make_config: Callable[..., Config],
    start_bridge: Callable[[Config], BridgeThread],
    tmp_path: Path,
) -> None:
    # Documo accepts the fax, but its answer comes after the bridge stopped waiting.
    config = provider_faxbox_config(make_config, emulator, timeout_s=0.5)
    register_callbacks(config, emulator)
    assert isinstance(emulator, MFaxHarness)
    emulator.answer_late(2.0)
    bridge = start_bridge(config)
    send_scan(bridge, tmp_path)

    job = submitted_job(bridge)
    sends = [r for r in emulator.requests if (r.method, r.path) == ("POST", "/v1/faxes")]
    assert len(sends) == 1
    details = [h["detail"] for h in job["history"]]
    assert any("the provider may have the fax" in d for d in details), details
    assert any(f"found at mfax as {job['provider_fax_id']}" in d for d in details), details
    assert not any("possible duplicate" in d for d in details), details

    assert emulator.complete(job["provider_fax_id"], "delivered").status_code == 200
    final = final_job(bridge, TO)
    assert (final["status"], final["possible_duplicate"]) == ("delivered", False)
    (report,) = maildir_messages(bridge)
    assert report["Subject"] == "Fax to +1 212-555-0123 delivered (3 pages)"
    body = report.get_body(preferencelist=("plain",))
    assert body is not None and "may get it twice" not in body.get_content()


# -- Kazoo: what its own source says it answers --------------------------------------------
@pytest.mark.parametrize("emulator", ["kazoo"], indirect=True)
def test_a_kazoo_fax_whose_reply_was_lost_is_found_by_reference_not_sent_twice(
    emulator: Any,
    make_config: Callable[..., Config],
    start_bridge: Callable[[Config], BridgeThread],
    tmp_path: Path,
) -> None:
    # Kazoo saves the job, then its 202 (the saved document, keyed `_id`) never arrives.
    emulator.state.reply_delay_s = 1.0
    config = provider_faxbox_config(make_config, emulator, timeout_s=0.5)
    register_callbacks(config, emulator)
    bridge = start_bridge(config)
    send_scan(bridge, tmp_path)

    job = submitted_job(bridge)

    (fax_id,) = emulator.state.faxes_db
    puts = [r for r in emulator.requests if r.method == "PUT" and r.path.endswith("/faxes")]
    assert len(puts) == 1, "the fax went to Kazoo twice"
    assert job["provider_fax_id"] == fax_id
    details = [h["detail"] for h in job["history"]]
    assert any(f"found at kazoo as {fax_id}" in d and "not sent again" in d for d in details)
    assert emulator.complete(fax_id, "delivered").status_code == 200
    assert final_job(bridge, TO)["status"] == "delivered"
    (report,) = maildir_messages(bridge)
    assert report["Subject"] == "Fax to +1 212-555-0123 delivered (3 pages)"


@pytest.mark.parametrize("emulator", ["kazoo"], indirect=True)
def test_kazoo_redials_a_busy_line_itself_and_the_report_counts_its_tries(
    emulator: Any,
    make_config: Callable[..., Config],
    start_bridge: Callable[[Config], BridgeThread],
    tmp_path: Path,
) -> None:
    config = provider_faxbox_config(make_config, emulator)
    box = config.faxboxes[0].model_copy(
        update={
            "redial": config.faxboxes[0].redial.model_copy(update={"busy": RedialRule(tries=3)})
        }
    )
    config = config.model_copy(update={"faxboxes": [box]})
    register_callbacks(config, emulator)
    bridge = start_bridge(config)
    send_scan(bridge, tmp_path)
    job = submitted_job(bridge)
    fax_id = job["provider_fax_id"]
    assert emulator.job(fax_id)["retries"] == 3

    assert emulator.complete(fax_id, "failed", "busy").status_code == 200

    job = final_job(bridge, TO)
    assert (job["status"], job["reason"], job["provider_code"]) == ("failed", "busy", "USER_BUSY")
    assert emulator.outbox(fax_id)["attempts"] == 3
    puts = [r for r in emulator.requests if r.method == "PUT" and r.path.endswith("/faxes")]
    assert len(puts) == 1, "the bridge must not redial on top of Kazoo"
    (report,) = maildir_messages(bridge)
    body = report.get_body(("plain",))
    assert body is not None
    text = " ".join(body.get_content().split())
    assert "busy on each of 3 tries (the fax service redialled by itself)" in text
    assert "Tries: 3" in text


@pytest.mark.parametrize("emulator", ["kazoo"], indirect=True)
def test_a_kazoo_webhook_for_a_fax_the_bridge_does_not_know_is_kept_not_refused(
    provider_bridge: BridgeThread, emulator: Emulator, tmp_path: Path
) -> None:
    # Kazoo never sends a webhook again after a non-200 (webhooks_util.erl): a 404 loses it.
    # A fax someone else sent on the same account (not through this bridge):
    elsewhere = OutboundFax(
        job_id="0190000000000abcdef",
        to=TO,
        caller_id="+12125550100",
        document=write_pdf(tmp_path / "other.pdf", "OTHER"),
        pages=1,
        cover=None,
        cover_pdf=None,
        callback_url="",
    )

    async def send_elsewhere() -> str:
        async with httpx.AsyncClient() as client:
            adapter = build_providers(provider_bridge.config, client)["kazoo"]
            return (await adapter.send(elsewhere)).provider_fax_id

    fax_id = asyncio.run(send_elsewhere())

    reply = emulator.post(emulator.status_callback(fax_id, "delivered"))

    assert reply.status_code == 200
    [kept] = provider_bridge.store.callbacks.recent(provider="kazoo")
    assert "names no fax job of this bridge" in kept["reason"]
    assert provider_bridge.store.jobs.recent(status="delivered") == []


@pytest.mark.parametrize("emulator", ["kazoo"], indirect=True)
def test_a_kazoo_inbound_fax_whose_document_cannot_be_fetched_is_kept_and_answered_200(
    provider_bridge: BridgeThread, emulator: Any
) -> None:
    # Kazoo never sends a webhook again after a non-200 (webhooks_util.erl handle_resp): a
    # 503 "document not available yet" would lose the notice without a trace.
    callback = emulator.inbound_callback("+13105550199", "+12125550100", make_pdf("IN", 1))
    fax_id = next(iter(emulator.state.attachments))
    emulator.state.attachments.pop(fax_id)  # Crossbar: 404 bad identifier

    reply = emulator.post(callback, inbound=True)

    assert reply.status_code == 200
    [kept] = provider_bridge.store.callbacks.recent(provider="kazoo")
    assert fax_id in kept["reason"] and "could not be fetched" in kept["reason"]
