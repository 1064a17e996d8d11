"""The web console: token login, the SMTP log with filters, attempt and job pages.

A real bridge takes real mail over SMTP (one accepted with a PDF, one refused at RCPT, one to
the simulator's busy number), then the console is read the way an admin reads it: with plain
HTTP for the rules (login, escaping, filters) and in headless Chromium for the whole walk
from the log to a fax's delivered timeline, with a screenshot kept in tests/artifacts/.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.policy import SMTP
from io import BytesIO
from pathlib import Path
from typing import Any

import httpx
import pytest
from pypdf import PdfReader

from bridge.config import Config
from bridge.http.console_auth import ConsoleAuth
from tests.bridge_runner import BridgeThread
from tests.cdp import CHROMIUM, Chromium
from tests.helpers import smtp_client, wait_for
from tests.messages import fax_mail, make_pdf

TOKEN = "console-test-token-3b1f"
ARTIFACTS = Path(__file__).parent / "artifacts"


@dataclass
class Sent:
    bridge: BridgeThread
    accepted: str  # attempt id of the mail with a PDF to +12125550123
    refused: str  # attempt id of the mail refused at RCPT
    busy: str  # attempt id of the mail to the busy number
    job: str  # the accepted mail's fax job

    @property
    def url(self) -> str:
        return f"{self.bridge.http_url}/console"


def send_ok(
    bridge: BridgeThread, to: str, message: EmailMessage | None = None, **mail: Any
) -> tuple[str, str]:
    """Send a fax mail; return (attempt id, first job id) from the 250 reply."""
    message = message or fax_mail(to=to, **mail)
    with smtp_client(bridge.smtp_address) as client:
        client.mail("alice@example.com")
        client.rcpt(to)
        code, text = client.data(message.as_bytes(policy=SMTP))
    assert code == 250, text
    found = re.search(r"Queued as (\w+) \(fax (\w+)", text.decode())
    assert found, text
    return found[1], found[2]


def send_refused(bridge: BridgeThread, to: str, sender: str = "mallory@example.net") -> str:
    with smtp_client(bridge.smtp_address) as client:
        client.mail(sender)
        code, _ = client.rcpt(to)
        assert code == 550
    record = wait_for(
        lambda: next(
            (a for a in bridge.store.smtplog.recent(outcome="rejected") if a["from"] == sender),
            None,
        ),
        what="the refused attempt in the smtplog",
    )
    return str(record["id"])


def final_status(bridge: BridgeThread, job_id: str) -> str:
    def probe() -> str | None:
        job = bridge.store.jobs.get(job_id)
        return job["status"] if job and job["status"] in ("delivered", "failed") else None

    return wait_for(probe, timeout_s=30, what=f"a final status for job {job_id}")


@pytest.fixture
def console_config(make_config: Callable[..., Config]) -> Config:
    return make_config(http={"api_tokens": ["another-token", TOKEN]})


@pytest.fixture
def sent(console_config: Config, start_bridge: Callable[[Config], BridgeThread]) -> Sent:
    bridge = start_bridge(console_config)
    accepted, job = send_ok(bridge, "12125550123@fax.localhost", subject="Signed contract")
    refused = send_refused(bridge, "19002000123@fax.localhost")  # premium rate: refused
    busy, busy_job = send_ok(bridge, "1-212-555-0001@fax.localhost", subject="Busy line")
    assert final_status(bridge, job) == "delivered"
    assert final_status(bridge, busy_job) == "failed"
    return Sent(bridge, accepted, refused, busy, job)


@contextmanager
def logged_in(console_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=console_url, timeout=10) as client:
        reply = client.post("/login", data={"token": TOKEN, "next": "/console/"})
        assert reply.status_code == 303
        yield client


def attempt_links(html: str) -> list[str]:
    return re.findall(r'href="/console/attempts/(\w+)"', html)


# -- login ------------------------------------------------------------------------------------
def test_every_console_page_sends_a_stranger_to_the_login_page(sent: Sent) -> None:
    pages = ["/", f"/attempts/{sent.accepted}", f"/jobs/{sent.job}", "/inbound", "/outbox"]
    with httpx.Client(base_url=sent.url) as client:
        for path in pages:
            reply = client.get(path, params={"outcome": "accepted"} if path == "/" else None)
            assert reply.status_code == 303, path
            assert reply.headers["location"].startswith("/console/login?next=%2Fconsole"), path
            assert sent.accepted not in reply.text
        login = client.get(sent.bridge.http_url + reply.headers["location"])
    assert login.status_code == 200
    assert 'name="token"' in login.text


def test_a_wrong_token_is_refused_and_opens_nothing(sent: Sent) -> None:
    with httpx.Client(base_url=sent.url) as client:
        reply = client.post("/login", data={"token": TOKEN + "x", "next": "/console/"})
        assert reply.status_code == 401
        assert "not one of http.api_tokens" in reply.text
        assert "set-cookie" not in reply.headers
        assert client.get("/").status_code == 303
        client.cookies.set("faxbridge_console", "5f000000.00.forged", path="/console")
        assert client.get("/").status_code == 303


def test_the_right_token_opens_the_log_and_logout_closes_it(sent: Sent) -> None:
    with httpx.Client(base_url=sent.url) as client:
        reply = client.post("/login", data={"token": TOKEN, "next": "/console/outbox"})
        assert reply.status_code == 303
        assert reply.headers["location"] == "/console/outbox"
        cookie = reply.headers["set-cookie"].lower()
        assert "httponly" in cookie
        assert "samesite=strict" in cookie
        assert TOKEN.lower() not in cookie
        page = client.get("/")
        assert page.status_code == 200
        assert set(attempt_links(page.text)) == {sent.accepted, sent.refused, sent.busy}
        policy = page.headers["content-security-policy"]
        assert "default-src 'none'" in policy and "script-src" not in policy  # no script runs
        assert client.post("/logout").status_code == 303
        assert client.get("/").status_code == 303


def test_login_never_redirects_off_the_console(sent: Sent) -> None:
    with httpx.Client(base_url=sent.url) as client:
        for target in ("https://evil.example/", "//evil.example/console", "/metrics"):
            reply = client.post("/login", data={"token": TOKEN, "next": target})
            assert reply.headers["location"] == "/console/", target


def test_with_no_token_configured_nobody_gets_in(
    make_config: Callable[..., Config], start_bridge: Callable[[Config], BridgeThread]
) -> None:
    bridge = start_bridge(make_config())
    with httpx.Client(base_url=f"{bridge.http_url}/console") as client:
        assert "console is closed" in client.get("/login").text
        reply = client.post("/login", data={"token": "", "next": "/console/"})
        assert reply.status_code == 401
        assert client.get("/").status_code == 303


def test_a_session_ends_when_it_expires_or_the_process_restarts() -> None:
    auth = ConsoleAuth([TOKEN])
    cookie = auth.new_session()
    assert auth.session_ok(cookie)
    assert not ConsoleAuth([TOKEN]).session_ok(cookie)  # a new process draws a new key
    issued, nonce, signature = cookie.split(".")
    assert not auth.session_ok(f"{int(issued, 16) + 3600:x}.{nonce}.{signature}")  # tampered
    auth.session_s = 0
    assert not auth.session_ok(cookie)


# -- what the pages show ----------------------------------------------------------------------
def test_a_hostile_subject_and_filename_are_shown_as_text(
    console_config: Config, start_bridge: Callable[[Config], BridgeThread]
) -> None:
    bridge = start_bridge(console_config)
    message = fax_mail(subject='<script>alert("owned")</script>', pdf_pages=0)
    pdf = make_pdf()
    message.add_attachment(pdf, "application", "pdf", filename="<img src=x onerror=alert(1)>.pdf")
    attempt, _ = send_ok(bridge, "12125550123@fax.localhost", message)
    with logged_in(f"{bridge.http_url}/console") as client:
        log, page = client.get("/").text, client.get(f"/attempts/{attempt}").text
    for html in (log, page):
        assert "<script" not in html
        assert "&lt;script&gt;alert(&#34;owned&#34;)&lt;/script&gt;" in html
    assert "<img" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;.pdf" in page


def test_the_log_filters_by_outcome_sender_number_faxbox_and_date(sent: Sent) -> None:
    today = datetime.now(UTC).date()
    cases: list[tuple[dict[str, str], set[str]]] = [
        ({"outcome": "rejected"}, {sent.refused}),
        ({"outcome": "accepted"}, {sent.accepted, sent.busy}),
        ({"sender": "MALLORY@"}, {sent.refused}),
        ({"sender": "alice", "outcome": "rejected"}, set()),
        ({"number": "5550001"}, {sent.busy}),
        ({"number": "(212) 555-0001"}, {sent.busy}),
        ({"number": "+1212555"}, {sent.accepted, sent.busy}),
        ({"number": "900-200"}, {sent.refused}),
        ({"number": "9999"}, set()),
        # A refused attempt is filed under the faxbox of the address it was sent to.
        ({"faxbox": "main"}, {sent.accepted, sent.refused, sent.busy}),
        (
            {"date_from": str(today), "date_to": str(today)},
            {sent.accepted, sent.refused, sent.busy},
        ),
        ({"date_to": (today - timedelta(days=1)).isoformat()}, set()),
        ({"date_from": (today + timedelta(days=1)).isoformat()}, set()),
    ]
    with logged_in(sent.url) as client:
        for params, expected in cases:
            page = client.get("/", params=params)
            assert page.status_code == 200, params
            assert set(attempt_links(page.text)) == expected, params
        bad = client.get("/", params={"date_from": "yesterday"})
    assert "is not a date" in bad.text
    assert not attempt_links(bad.text)


def test_the_log_pages_newest_first_and_keeps_the_filters(sent: Sent) -> None:
    with logged_in(sent.url) as client:
        first = client.get("/", params={"page_size": 2})
        assert attempt_links(first.text) == [sent.busy, sent.refused]
        older = re.search(r'href="/console/\?([^"]*start=\w+)"', first.text)
        assert older, "no link to older attempts"
        second = client.get("/?" + older[1].replace("&amp;", "&"))
        assert attempt_links(second.text) == [sent.accepted]
        assert "Older" not in second.text
        filtered = client.get("/", params={"outcome": "accepted", "page_size": 1})
        link = re.search(r'href="/console/\?([^"]*start=\w+)"', filtered.text)
        assert link and "outcome=accepted" in link[1]


def test_inbound_and_outbox_pages_list_what_the_bridge_did(sent: Sent) -> None:
    # A fax to the faxbox's own number comes back in as an inbound fax (simulator).
    send_ok(sent.bridge, "12125550100@fax.localhost", subject="Loopback")
    with logged_in(sent.url) as client:
        outbox = wait_for(
            lambda: (page := client.get("/outbox").text).count('class="badge sent"') == 4 and page,
            what="three delivery reports and one inbound mail sent, in the outbox page",
        )
        inbound = client.get("/inbound").text
    assert outbox.count("<td>report</td>") == 3
    assert outbox.count("<td>inbound</td>") == 1
    assert f'href="/console/jobs/{sent.job}"' in outbox
    assert "frontdesk@office.localhost" in outbox
    rows = re.findall(r"<tr>\s*<td class=\"time\">.*?</tr>", inbound, re.S)
    assert len(rows) == 1
    assert "+12125550100" in rows[0] and "<td>yes</td>" in rows[0]


def test_a_missing_attempt_is_a_page_not_an_error(sent: Sent) -> None:
    with logged_in(sent.url) as client:
        reply = client.get("/attempts/0000000000000")
    assert reply.status_code == 404
    assert "no SMTP attempt" in reply.text


# -- in a real browser ------------------------------------------------------------------------
@pytest.mark.skipif(
    CHROMIUM is None, reason="needs the Debian chromium package (make test installs it)"
)
def test_an_admin_logs_in_filters_and_follows_an_attempt_to_its_delivered_fax(
    sent: Sent, tmp_path: Path
) -> None:
    with Chromium(tmp_path / "chromium") as browser:
        browser.open(f"{sent.url}/")
        assert "/console/login" in browser.url
        browser.type("#token", TOKEN)
        browser.click("form[action='/console/login'] button")
        assert browser.url == f"{sent.url}/"

        browser.choose("select[name=outcome]", "rejected")
        browser.click("form.filters button")
        assert "outcome=rejected" in browser.url
        rows = browser.texts("#smtplog tbody tr")
        assert len(rows) == 1
        assert "rejected" in rows[0]
        assert "mallory@example.net" in rows[0]

        browser.click("a.reset")
        browser.click(f"a[href='/console/attempts/{sent.accepted}']")
        steps = browser.texts("#steps li .what")
        assert steps == [
            *("Connection", "HELO", "TLS", "AUTH", "MAIL FROM", "RCPT TO", "DATA"),
            *("Part", "Reply"),
        ]
        rcpt = browser.text("#steps li.rcpt")
        assert "250 2.1.5 Recipient OK, fax to +12125550123" in rcpt
        assert browser.style("#steps li.rcpt", "borderLeftColor") == "rgb(23, 102, 58)"  # green
        assert "250 2.0.0 Queued as" in browser.text("#steps li.final")
        parts = browser.texts("#attachments tbody tr")
        assert any("contract.pdf" in p and "application/pdf" in p and "used" in p for p in parts)
        browser.screenshot(ARTIFACTS / "console-attempt.png")

        browser.click(f"a[href='/console/jobs/{sent.job}']")
        timeline = browser.texts("table.timeline tbody tr td:nth-child(2)")
        assert timeline == ["queued", "submitting", "submitted", "sending", "delivered"]
        assert all(t.endswith(" UTC") for t in browser.texts("table.timeline td.time"))

        browser.click("form.logout button")
        assert "/console/login" in browser.url


# -- the fax itself ---------------------------------------------------------------------------
def loopback(sent: Sent) -> dict[str, Any]:
    """A fax to the faxbox's own number comes back in as an inbound fax (simulator)."""
    send_ok(sent.bridge, "12125550100@fax.localhost", subject="Loopback", pdf_pages=2)
    found = wait_for(lambda: sent.bridge.store.inbound.recent(limit=1), what="the inbound fax")
    return dict(found[0])


def png_size(data: bytes) -> tuple[int, int]:
    assert data.startswith(b"\x89PNG\r\n\x1a\n"), data[:16]
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_slash_leads_to_the_console(sent: Sent) -> None:
    reply = httpx.get(sent.bridge.http_url + "/")
    assert reply.status_code == 303
    assert reply.headers["location"] == "/console/"
    landed = httpx.get(sent.bridge.http_url + "/", follow_redirects=True)
    assert landed.status_code == 200
    assert str(landed.url).endswith("/console/login?next=%2Fconsole%2F")
    assert 'name="token"' in landed.text


def test_the_fax_pages_and_pdf_need_the_login_and_unknown_ids_are_404(sent: Sent) -> None:
    fax = loopback(sent)
    paths = [
        f"/jobs/{sent.job}/fax",
        f"/jobs/{sent.job}/fax.pdf",
        f"/jobs/{sent.job}/fax/1.png",
        f"/inbound/{fax['id']}",
        f"/inbound/{fax['id']}/fax.pdf",
        f"/inbound/{fax['id']}/fax/1.png",
    ]
    with httpx.Client(base_url=sent.url) as client:
        for path in paths:
            reply = client.get(path)
            assert reply.status_code == 303, path
            assert reply.headers["location"].startswith("/console/login?next="), path
            assert b"%PDF" not in reply.content and b"PNG" not in reply.content
    with logged_in(sent.url) as client:
        for path in paths:
            assert client.get(path).status_code == 200, path
        for path in (
            "/jobs/0000000000000000/fax",
            "/jobs/0000000000000000/fax.pdf",
            "/jobs/0000000000000000/fax/1.png",
            "/inbound/0000000000000000",
            "/inbound/0000000000000000/fax.pdf",
            "/inbound/0000000000000000/fax/1.png",
            f"/inbound/{sent.job}",  # a job id is no inbound fax id
            f"/jobs/{sent.job}/fax/3.png",  # the fax has two pages
            f"/jobs/{sent.job}/fax/0.png",
            f"/jobs/{sent.job}/fax/one.png",
            f"/jobs/{sent.job}/fax/1.gif",
            f"/other/{sent.job}/fax.pdf",
        ):
            reply = client.get(path)
            assert reply.status_code == 404, path
            assert "text/html" in reply.headers["content-type"], path


def test_a_sent_fax_shows_as_page_images_and_downloads_as_pdf(sent: Sent) -> None:
    with logged_in(sent.url) as client:
        page = client.get(f"/jobs/{sent.job}/fax").text
        images = re.findall(r'<img src="([^"]+)" alt="Page (\d) of 2"', page)
        assert images == [
            (f"/console/jobs/{sent.job}/fax/1.png", "1"),
            (f"/console/jobs/{sent.job}/fax/2.png", "2"),
        ]
        assert f'href="/console/jobs/{sent.job}/fax.pdf" download' in page
        first = client.get(images[0][0].removeprefix("/console"))
        pdf = client.get(f"/jobs/{sent.job}/fax.pdf")
        job_page = client.get(f"/jobs/{sent.job}").text
    assert first.headers["content-type"] == "image/png"
    assert first.headers["cache-control"] == "no-store"  # a fax is nobody's cached file
    assert png_size(first.content) == (850, 1100)  # Letter at 100 dpi
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.headers["content-disposition"] == f'attachment; filename="fax-{sent.job}.pdf"'
    reader = PdfReader(BytesIO(pdf.content))
    assert len(reader.pages) == 2
    assert "Signed contract" in reader.pages[0].extract_text()  # the cover page comes first
    assert f'href="/console/jobs/{sent.job}/fax"' in job_page


def test_a_received_fax_is_a_clickable_row_with_its_pages(sent: Sent) -> None:
    fax = loopback(sent)
    with logged_in(sent.url) as client:
        listing = client.get("/inbound").text
        page = client.get(f"/inbound/{fax['id']}").text
        pdf = client.get(f"/inbound/{fax['id']}/fax.pdf")
        second = client.get(f"/inbound/{fax['id']}/fax/3.png")
    assert f'<a class="row" href="/console/inbound/{fax["id"]}">' in listing
    assert fax["from"] in page and "3 pages" in page  # a cover and two pages came back in
    assert page.count('alt="Page ') == 3
    assert len(PdfReader(BytesIO(pdf.content)).pages) == 3
    assert second.status_code == 200 and png_size(second.content)[0] == 850


@pytest.mark.skipif(
    CHROMIUM is None, reason="needs the Debian chromium package (make test installs it)"
)
def test_an_admin_clicks_a_fax_row_and_sees_its_pages(sent: Sent, tmp_path: Path) -> None:
    fax = loopback(sent)
    loaded = (
        "[...document.querySelectorAll('#pages img')]"
        ".map(i => i.complete && i.naturalWidth > 0 ? i.naturalWidth : 0)"
    )
    with Chromium(tmp_path / "chromium") as browser:
        browser.open(f"{sent.url}/inbound")
        browser.type("#token", TOKEN)
        browser.click("form[action='/console/login'] button")
        assert browser.url == f"{sent.url}/inbound"

        browser.click("#inbound tbody tr")  # the row, not the link in its first cell
        assert browser.url == f"{sent.url}/inbound/{fax['id']}"
        assert browser.value(loaded) == [850, 850, 850]
        assert browser.texts("#pages figcaption") == [f"Page {n} of 3" for n in (1, 2, 3)]
        assert browser.value("document.querySelector('a.download').href").endswith(
            f"/console/inbound/{fax['id']}/fax.pdf"
        )
        browser.screenshot(ARTIFACTS / "console-inbound-fax.png")

        browser.open(f"{sent.url}/attempts/{sent.accepted}")
        browser.click("a.view-fax")
        assert browser.url == f"{sent.url}/jobs/{sent.job}/fax"
        assert browser.value(loaded) == [850, 850]


def test_a_received_pdf_that_cannot_be_read_is_a_page_saying_so(sent: Sent) -> None:
    fax = loopback(sent)
    row = sent.bridge.store.inbound.row(fax["id"])
    assert row is not None and row.document_path
    sent.bridge.store.db.path(row.document_path).write_bytes(b"%PDF-1.4\nnot really a PDF\n")
    with logged_in(sent.url) as client:
        page = client.get(f"/inbound/{fax['id']}")
        image = client.get(f"/inbound/{fax['id']}/fax/1.png")
        pdf = client.get(f"/inbound/{fax['id']}/fax.pdf")
    assert page.status_code == 200
    assert "no page the bridge can show; download it" in page.text
    assert image.status_code == 404
    assert pdf.content.startswith(b"%PDF-1.4\nnot really")  # the admin may still download it


def test_a_forwarded_fax_shows_where_it_came_from(sent: Sent) -> None:
    fax = loopback(sent)
    forwarded = httpx.put(
        f"{sent.bridge.http_url}/v2/accounts/main/faxes/inbox/{fax['id']}",
        headers={"X-Auth-Token": TOKEN},
        json={"action": "forward", "data": {"to_number": "+12125550123"}},
    )
    assert forwarded.status_code == 200, forwarded.text
    job = forwarded.json()["data"]
    with logged_in(sent.url) as client:
        page = client.get(f"/attempts/{job['attempt_id']}").text
        images = client.get(f"/jobs/{job['id']}/fax").text
    assert f"inbound fax {fax['id']} (from {fax['from']}) forwarded to +12125550123" in page
    assert f'href="/console/jobs/{job["id"]}/fax"' in page
    assert images.count('alt="Page ') == 3  # the received fax as it came, no cover of its own
