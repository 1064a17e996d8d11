"""Kazoo's fax actions over real HTTP (cb_faxes.erl `do_put_action`): outbox `resubmit` and
inbox `forward` each make a new job with a new id that the simulator really sends, and leave
the original record as it was."""

from __future__ import annotations

import email
import email.policy
import mailbox
from collections.abc import Callable
from email.message import EmailMessage
from io import BytesIO
from pathlib import Path
from typing import Any

import httpx
import pytest
from pypdf import PdfReader

from bridge.config import Config
from bridge.explain import explain
from tests.bridge_runner import BridgeThread
from tests.helpers import wait_for
from tests.messages import fax_mail
from tests.test_api import ACCOUNT, TOKEN, api, deliver, final

HEADERS = {"X-Auth-Token": TOKEN}


@pytest.fixture
def api_bridge(
    make_config: Callable[..., Config], start_bridge: Callable[[Config], BridgeThread]
) -> BridgeThread:
    return start_bridge(make_config({"http": {"api_tokens": [TOKEN]}}))


def put(bridge: BridgeThread, path: str, body: Any, token: str | None = TOKEN) -> httpx.Response:
    headers = {"X-Auth-Token": token} if token else {}
    return httpx.put(bridge.http_url + ACCOUNT + path, headers=headers, json=body, timeout=30)


def sent_pdf(bridge: BridgeThread, job: dict[str, Any]) -> PdfReader:
    """The fax as the simulator received it."""
    sent = bridge.config.storage.data_dir / "simulator" / "sent"
    return PdfReader(BytesIO((sent / f"{job['provider_fax_id']}.pdf").read_bytes()))


def texts(pdf: PdfReader) -> list[str]:
    return [page.extract_text() for page in pdf.pages]


def job_count(bridge: BridgeThread) -> int:
    return len(bridge.store.jobs.recent(limit=1000))


def maildir(bridge: BridgeThread) -> list[EmailMessage]:
    path = Path(bridge.config.mail.maildir)
    if not (path / "new").is_dir():
        return []
    box = mailbox.Maildir(path, create=False)
    found = [
        email.message_from_bytes(box.get_bytes(key), policy=email.policy.default)
        for key in box.keys()
    ]
    return [m for m in found if isinstance(m, EmailMessage)]


def test_resubmit_copies_a_delivered_fax_into_a_new_job_the_provider_sends(
    api_bridge: BridgeThread,
) -> None:
    attempt_id, old_id = deliver(api_bridge, fax_mail(to="12125550123@fax.localhost", pdf_pages=2))
    before = final(api_bridge, old_id)
    assert before["status"] == "delivered"

    response = put(api_bridge, f"/outbox/{old_id}", {"action": "resubmit", "data": {}})

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["status"], body["auth_token"]) == ("success", TOKEN)
    assert body["request_id"] == response.headers["X-Request-ID"]
    new = body["data"]
    assert new["id"] != old_id
    assert (new["status"], new["to"], new["attempt_id"]) == ("queued", "+12125550123", attempt_id)
    assert new["history"][0]["detail"] == f"resubmitted from fax {old_id} (Kazoo API)"
    assert api(api_bridge, f"/outgoing/{new['id']}").status_code in (200, 404)  # may be done

    after = final(api_bridge, new["id"])
    assert after["status"] == "delivered"
    assert after["provider_fax_id"] != before["provider_fax_id"]
    pages = texts(sent_pdf(api_bridge, after))
    assert len(pages) == 3 and "Contract" in pages[0] and "doc 2" in pages[2]
    assert final(api_bridge, old_id) == before  # the original is untouched
    listed = [job["id"] for job in api(api_bridge, "/outbox").json()["data"]]
    assert listed == [new["id"], old_id]


def test_resubmit_of_a_failed_fax_to_another_number_redraws_its_cover(
    api_bridge: BridgeThread,
) -> None:
    _, busy = deliver(api_bridge, fax_mail(to="12125550001@fax.localhost"))
    before = final(api_bridge, busy)
    assert before["reason"] == "busy"

    # the form this API documented before it read cb_faxes.erl, `action` inside `data`, works too
    response = put(
        api_bridge,
        f"/outbox/{busy}",
        {"data": {"action": "resubmit", "to_number": "(212) 555-0123", "to_name": "Jane Roe"}},
    )

    assert response.status_code == 200, response.text
    new = response.json()["data"]
    assert (new["to"], new["to_name"], new["status"]) == ("+12125550123", "Jane Roe", "queued")
    after = final(api_bridge, new["id"])
    assert after["status"] == "delivered"
    cover = texts(sent_pdf(api_bridge, after))[0]
    assert "Jane Roe" in cover and "555-0123" in cover and "555-0001" not in cover
    assert final(api_bridge, busy) == before


def test_resubmit_refusals_are_kazoos_words_and_make_no_job(api_bridge: BridgeThread) -> None:
    _, job_id = deliver(api_bridge, fax_mail())
    final(api_bridge, job_id)
    count = job_count(api_bridge)
    path = f"/outbox/{job_id}"

    cases: list[tuple[Any, int, str]] = [
        ({"action": "delete"}, 400, "invalid action"),
        ({"data": {}}, 400, "action required"),
        ({"action": "forward"}, 400, "invalid action"),
    ]
    for body, status, message in cases:
        response = put(api_bridge, path, body)
        assert response.status_code == status, (body, response.text)
        assert response.json()["message"] == message, body
        assert response.json()["data"] == {"message": message}

    premium = put(api_bridge, path, {"action": "resubmit", "data": {"to_number": "19002000123"}})
    assert premium.status_code == 400
    assert premium.json()["message"] == "invalid data"
    assert "premium-rate" in premium.json()["data"]["to_number"]["forbidden"]["message"]
    nonsense = put(api_bridge, path, {"action": "resubmit", "data": {"to_number": "hello"}})
    assert nonsense.json()["data"] == {
        "to_number": {"required": {"message": "add a valid number to send the fax to"}}
    }
    assert put(api_bridge, path, {"action": "resubmit"}, token=None).status_code == 401
    unknown = put(api_bridge, "/outbox/0000000000000000", {"action": "resubmit"})
    assert unknown.status_code == 404
    assert unknown.json()["data"]["cause"] == "0000000000000000"
    assert job_count(api_bridge) == count


def test_forward_sends_a_received_fax_to_another_number(api_bridge: BridgeThread) -> None:
    # A fax to the faxbox's own number comes back in as an inbound fax (simulator).
    _, loop = deliver(api_bridge, fax_mail(to="12125550100@fax.localhost", pdf_pages=1))
    final(api_bridge, loop)

    def mailed() -> list[dict[str, Any]]:
        return [f for f in api(api_bridge, "/inbox").json()["data"] if f["emailed"]]

    fax = wait_for(mailed, timeout_s=30, what="the inbound fax, mailed")[0]
    received = PdfReader(BytesIO(api(api_bridge, f"/inbox/{fax['id']}/attachment").content))

    response = put(
        api_bridge,
        f"/inbox/{fax['id']}",
        {"action": "forward", "data": {"to_number": "+1 212 555 0123", "to_name": "Jane Roe"}},
    )

    assert response.status_code == 200, response.text
    new = response.json()["data"]
    assert (new["to"], new["status"], new["pages"]) == ("+12125550123", "queued", fax["pages"])
    assert new["history"][0]["detail"] == f"forwarded from inbound fax {fax['id']} (Kazoo API)"
    job = final(api_bridge, new["id"])
    assert job["status"] == "delivered"
    assert texts(sent_pdf(api_bridge, job)) == texts(received)  # as received, no cover page
    assert api(api_bridge, f"/inbox/{fax['id']}").json()["data"] == fax  # untouched

    logged = api(api_bridge, f"/smtplog/{new['attempt_id']}").json()["data"]
    assert logged["fax_ids"] == [new["id"]]
    assert logged["outcome"] == "accepted"
    assert f"inbound fax {fax['id']}" in logged["notes"][0]
    story = explain(api_bridge.config, api_bridge.store, new["attempt_id"])
    assert story.steps[0].startswith(f"Inbound fax {fax['id']} (from {fax['from']}) forwarded")
    assert story.steps[0].endswith("; no mail was received.")
    assert f"Fax job {new['id']} to +12125550123 via sim: delivered" in story.steps[1]
    assert story.differences == []

    def report() -> EmailMessage | None:
        return next((m for m in maildir(api_bridge) if new["id"] in m.as_string()), None)

    mail = wait_for(report, timeout_s=30, what="the forward's delivery report")
    assert "frontdesk@office.localhost" in str(mail["To"])  # the faxbox's inbound.email_to


def test_forward_refusals(api_bridge: BridgeThread) -> None:
    _, loop = deliver(api_bridge, fax_mail(to="12125550100@fax.localhost", pdf_pages=1))
    final(api_bridge, loop)
    fax = wait_for(lambda: api(api_bridge, "/inbox").json()["data"], what="the inbound fax")[0]
    count = job_count(api_bridge)
    path = f"/inbox/{fax['id']}"

    missing = put(api_bridge, path, {"action": "forward", "data": {}})
    assert missing.status_code == 400
    assert missing.json()["data"] == {
        "to_number": {"required": {"message": "add a valid number to send the fax to"}}
    }
    assert put(api_bridge, path, {"action": "resubmit"}).json()["message"] == "invalid action"
    abroad = put(api_bridge, path, {"action": "forward", "data": {"to_number": "+442079460000"}})
    assert abroad.status_code == 400
    assert "not among its allowed countries" in abroad.text
    unknown = put(api_bridge, f"/inbox/{loop}", {"action": "forward", "data": {"to_number": "1"}})
    assert unknown.status_code == 404  # a job id is no inbound fax id
    assert put(api_bridge, path, {"action": "forward"}, token="wrong").status_code == 401
    assert job_count(api_bridge) == count
