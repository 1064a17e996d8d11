"""The Kazoo-compatible API over real HTTP, against a bridge that received real SMTP mail."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from email.message import EmailMessage
from email.policy import SMTP
from io import BytesIO
from typing import Any

import httpx
import pytest
from pypdf import PdfReader

from bridge.config import Config
from bridge.store.smtplog import RECORD_KEYS
from tests.bridge_runner import BridgeThread
from tests.helpers import smtp_client, wait_for
from tests.messages import fax_mail

TOKEN = "api-token-for-tests"
ACCOUNT = "/v2/accounts/main/faxes"
QUEUED_REPLY = re.compile(r"Queued as (\w+) \(fax (\w+)\)")


@pytest.fixture
def api_bridge(
    make_config: Callable[..., Config], start_bridge: Callable[[Config], BridgeThread]
) -> BridgeThread:
    return start_bridge(make_config({"http": {"api_tokens": ["another-token", TOKEN]}}))


def deliver(bridge: BridgeThread, message: EmailMessage) -> tuple[str, str]:
    """One message, one recipient: return the attempt id and job id from the 250 reply."""
    with smtp_client(bridge.smtp_address) as client:
        client.mail("alice@example.com")
        code, _ = client.rcpt(message["To"].addresses[0].addr_spec)
        assert code == 250
        code, reply = client.data(message.as_bytes(policy=SMTP))
    assert code == 250, reply
    found = QUEUED_REPLY.search(reply.decode())
    assert found, reply
    return found.group(1), found.group(2)


def api(
    bridge: BridgeThread, path: str, token: str | None = TOKEN, **params: Any
) -> httpx.Response:
    headers = {"X-Auth-Token": token} if token is not None else {}
    return httpx.get(bridge.http_url + ACCOUNT + path, headers=headers, params=params, timeout=30)


def final(bridge: BridgeThread, job_id: str) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        response = api(bridge, f"/outbox/{job_id}")
        return response.json()["data"] if response.status_code == 200 else None

    return wait_for(probe, timeout_s=30, what=f"job {job_id} in the outbox")


def test_smtplog_answers_in_kazoos_envelope_with_the_attempt_as_logged(
    api_bridge: BridgeThread,
) -> None:
    attempt_id, job_id = deliver(api_bridge, fax_mail(to="12125550123@fax.localhost"))

    response = api(api_bridge, "/smtplog")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "success"
    assert body["page_size"] == 1
    assert "next_start_key" not in body  # crossbar_view leaves it out on the last page
    assert body["start_key"] == attempt_id  # where this page began, given or not
    assert body["auth_token"] == TOKEN  # Kazoo echoes the request's token
    assert body["request_id"] == response.headers["X-Request-ID"]
    assert body["revision"]
    assert datetime.fromisoformat(body["timestamp"]).microsecond == 0  # kz_time:iso8601
    (record,) = body["data"]
    assert set(record) == set(RECORD_KEYS)
    assert record["id"] == attempt_id
    assert record["outcome"] == "accepted"
    assert record["from"] == "alice@example.com"
    assert record["fax_ids"] == [job_id]
    assert record["recipients"][0]["translated_number"] == "+12125550123"
    assert datetime.fromisoformat(record["created"]) <= datetime.fromisoformat(record["finished"])

    one = api(api_bridge, f"/smtplog/{attempt_id}").json()
    assert one["data"] == record
    assert one["status"] == "success"


def test_lists_page_newest_first_across_three_pages_without_gaps(api_bridge: BridgeThread) -> None:
    sent = [
        deliver(api_bridge, fax_mail(to=f"1212555{n:04d}@fax.localhost", pdf_pages=1))
        for n in range(110, 115)
    ]
    for _, job_id in sent:
        final(api_bridge, job_id)
    newest_first = {
        "smtplog": [a for a, _ in reversed(sent)],
        "outbox": [j for _, j in reversed(sent)],
    }

    for kind, expected in newest_first.items():
        pages, start_key = [], None
        while True:
            params = {"page_size": 2} | ({"start_key": start_key} if start_key else {})
            body = api(api_bridge, f"/{kind}", **params).json()
            pages.append([record["id"] for record in body["data"]])
            assert body["page_size"] == len(body["data"])
            assert body["start_key"] == pages[-1][0]
            start_key = body.get("next_start_key")
            if start_key is None:
                break
        assert pages == [expected[0:2], expected[2:4], expected[4:5]], kind


def test_without_a_valid_token_the_api_answers_401_and_reveals_nothing(
    api_bridge: BridgeThread,
) -> None:
    deliver(api_bridge, fax_mail())
    for token in (None, "", "wrong-token", TOKEN + "x"):
        for path in ("/smtplog", "/outbox", "/inbox"):
            response = api(api_bridge, path, token=token)
            assert response.status_code == 401, (token, path)
            body = response.json()
            assert body["error"] == "401"
            assert body["message"] == "invalid_credentials"
            assert body["status"] == "error"
            assert body["auth_token"] == (token or "")
            assert "data" in body and "alice" not in response.text
    # an unknown account is not told apart from a known one without a token
    assert api(api_bridge, "/smtplog", token=None).status_code == 401
    assert httpx.get(api_bridge.http_url + "/v2/accounts/nobody/faxes/smtplog").status_code == 401
    assert httpx.get(api_bridge.http_url + "/healthz").status_code == 200
    assert httpx.get(api_bridge.http_url + "/metrics").status_code == 401  # wants a token too
    assert httpx.get(api_bridge.http_url + "/metrics", headers={"X-Auth-Token": TOKEN}).is_success


def test_with_no_token_configured_every_request_is_refused(bridge: BridgeThread) -> None:
    assert bridge.config.http.api_tokens == []
    assert api(bridge, "/smtplog", token="").status_code == 401
    assert api(bridge, "/smtplog", token="anything").status_code == 401


def test_unknown_account_or_id_is_kazoos_bad_identifier(api_bridge: BridgeThread) -> None:
    attempt_id, job_id = deliver(api_bridge, fax_mail())
    final(api_bridge, job_id)
    other = httpx.get(
        api_bridge.http_url + "/v2/accounts/other/faxes/smtplog",
        headers={"X-Auth-Token": TOKEN},
    )
    for response in (
        other,
        api(api_bridge, "/smtplog/0000000000000000"),
        api(api_bridge, "/smtplog/not-an-id"),
        api(api_bridge, f"/outgoing/{job_id}"),  # delivered: in the outbox, not outgoing
        api(api_bridge, f"/outbox/{attempt_id}"),  # an attempt id is no job id
        api(api_bridge, f"/inbox/{job_id}"),
    ):
        assert response.status_code == 404, response.url
        body = response.json()
        assert (body["error"], body["message"]) == ("404", "bad_identifier")
        assert body["data"]["message"] == "bad identifier"
        path = response.url.path
        assert body["data"]["cause"] == ("other" if "/other/" in path else path.split("/")[-1])

    bad = api(api_bridge, "/outbox", page_size=0)
    assert bad.status_code == 400
    assert bad.json()["message"] == "invalid data"
    assert "page_size" in bad.json()["data"]


def test_outbox_attachment_is_the_fax_as_transmitted_cover_page_first(
    api_bridge: BridgeThread,
) -> None:
    _, job_id = deliver(api_bridge, fax_mail(to="12125550123@fax.localhost", pdf_pages=2))
    job = final(api_bridge, job_id)
    assert job["status"] == "delivered"
    assert [event["status"] for event in job["history"]][-1] == "delivered"

    response = api(api_bridge, f"/outbox/{job_id}/attachment")

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/pdf"
    assert response.content.startswith(b"%PDF")
    pdf = PdfReader(BytesIO(response.content))
    assert len(pdf.pages) == job["pages"] == 3
    assert "Contract" in pdf.pages[0].extract_text()  # the cover page
    assert "doc 1" in pdf.pages[1].extract_text()
    assert "doc 2" in pdf.pages[2].extract_text()


def test_inbox_shows_the_fax_received_on_the_faxbox_number(api_bridge: BridgeThread) -> None:
    _, job_id = deliver(api_bridge, fax_mail(to="12125550100@fax.localhost", pdf_pages=1))
    final(api_bridge, job_id)

    def inbox() -> list[dict[str, Any]]:
        return list(api(api_bridge, "/inbox").json()["data"])

    # Once mailed, so the record no longer changes between the two reads below.
    (fax,) = wait_for(
        lambda: [f for f in inbox() if f["emailed"]], timeout_s=30, what="the inbound fax mailed"
    )
    assert fax["to"] == "+12125550100"
    assert fax["from"] == "+12125550100"
    assert api(api_bridge, f"/inbox/{fax['id']}").json()["data"] == fax

    response = api(api_bridge, f"/inbox/{fax['id']}/attachment")
    assert response.headers["content-type"] == "application/pdf"
    assert len(PdfReader(BytesIO(response.content)).pages) == fax["pages"] == 2


def test_refused_attempts_are_listed_under_their_faxbox_with_their_headers(
    api_bridge: BridgeThread,
) -> None:
    """The attempts an admin looks for are the refused ones: each carries the faxbox of the
    address it was sent to, and the Subject/From/Message-ID once the headers arrived."""
    with smtp_client(api_bridge.smtp_address) as client:
        client.mail("alice@example.com")
        assert client.rcpt("frontdesk@fax.localhost")[0] == 550  # not a number
        client.rset()
        client.mail("<>")
        assert client.rcpt("12125550123@fax.localhost")[0] == 550  # the null sender
        client.rset()
        message = fax_mail(subject="Nothing to fax", body="", pdf_pages=0)
        message.add_attachment(b"\x00" * 64, maintype="application", subtype="x-unknown")
        client.mail("alice@example.com")
        client.rcpt("12125550123@fax.localhost")
        assert client.data(message.as_bytes(policy=SMTP))[0] == 554

    def three() -> list[dict[str, Any]] | None:
        rows: list[dict[str, Any]] = api(api_bridge, "/smtplog").json()["data"]
        return rows if len(rows) >= 3 else None

    rows = wait_for(three, what="three smtplog rows")
    by_reply = {row["reply"][:9]: row for row in rows}
    assert {row["faxbox"] for row in rows} == {"main"}
    assert by_reply["550 5.1.3"]["recipients"][0]["faxbox"] == "main"
    assert by_reply["550 5.7.1"]["recipients"][0]["faxbox"] == "main"
    refused = by_reply["554 5.6.0"]
    assert refused["subject"] == "Nothing to fax"
    assert refused["header_from"] == "Alice Example <alice@example.com>"
    assert refused["message_id"] == message["Message-ID"]


def test_unknown_paths_and_methods_answer_as_crossbar_does(api_bridge: BridgeThread) -> None:
    headers = {"X-Auth-Token": TOKEN, "X-Request-ID": "req-42"}
    base = api_bridge.http_url + ACCOUNT
    unknown = httpx.get(base + "/nonsense", headers=headers)
    method = httpx.delete(base + "/smtplog", headers=headers)
    for response, status, message, text in (
        (unknown, 404, "not_found", "not found"),
        (method, 405, "invalid_method", "method not allowed"),
    ):
        assert response.status_code == status
        body = response.json()
        assert (body["error"], body["message"], body["status"]) == (str(status), message, "error")
        assert body["data"] == {"message": text}
        assert body["request_id"] == response.headers["X-Request-ID"] == "req-42"
        assert body["auth_token"] == TOKEN
    assert method.headers["allow"] == "GET"
    assert httpx.get(api_bridge.http_url + "/nothing-here").json() == {"detail": "Not Found"}
