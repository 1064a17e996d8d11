"""`GET /metrics` after real SMTP sessions, real sends and real callbacks; who may read it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bridge.config import Config
from bridge.metrics import refusal_code
from bridge.store.schema import mail_outbox
from tests.bridge_runner import BridgeThread
from tests.helpers import smtp_client, wait_for
from tests.messages import fax_mail
from tests.test_api import deliver

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
TOKEN = "metrics-token-for-tests"
DOCS = ("/docs", "/redoc", "/openapi.json")


@pytest.fixture
def bridge(
    make_config: Callable[..., Config], start_bridge: Callable[[Config], BridgeThread]
) -> BridgeThread:
    """The bridge Prometheus scrapes: /metrics wants one of http.api_tokens."""
    return start_bridge(make_config({"http": {"api_tokens": [TOKEN]}}))


def scrape(bridge: BridgeThread) -> Samples:
    response = httpx.get(f"{bridge.http_url}/metrics", headers={"X-Auth-Token": TOKEN}, timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def test_metrics_count_sessions_refusals_pages_sends_callbacks_and_mail(
    bridge: BridgeThread,
) -> None:
    with smtp_client(bridge.smtp_address) as client:
        client.mail("alice@example.com")
        assert client.rcpt("12125550123@elsewhere.example")[0] == 550  # 5.7.1 relaying denied
        assert client.rcpt("12@fax.localhost")[0] == 550  # 5.1.3 not a valid number
    deliver(bridge, fax_mail(to="12125550123@fax.localhost", pdf_pages=1))  # 1 page + cover
    deliver(bridge, fax_mail(to="12125550005@fax.localhost", pdf_pages=1))  # 503, 503, then ok
    httpx.post(f"{bridge.http_url}/callbacks/sim?token=wrong", json={"event": "status"})
    httpx.post(f"{bridge.http_url}/callbacks/nosuch", json={})

    def settled() -> Samples | None:
        samples = scrape(bridge)
        done = value(samples, "faxbridge_mails_total", kind="report", result="sent") == 2
        called_back = value(samples, "faxbridge_callbacks_total", provider="sim", result="ok")
        return samples if done and called_back == 6 else None

    samples = wait_for(settled, timeout_s=30, what="both faxes delivered and reported")

    assert value(samples, "faxbridge_smtp_sessions_total") == 3
    # the refused session ended on its last refusal; the reason is its enhanced status code
    assert value(samples, "faxbridge_smtp_attempts_total", outcome="rejected", reason="5.1.3") == 1
    assert value(samples, "faxbridge_smtp_attempts_total", outcome="accepted", reason="") == 2
    assert value(samples, "faxbridge_fax_pages_accepted_total") == 4
    assert value(samples, "faxbridge_fax_jobs", provider="sim", status="delivered") == 2
    assert value(samples, "faxbridge_fax_jobs", provider="sim", status="queued") == 0
    latency = "faxbridge_provider_request_duration_seconds_count"
    assert value(samples, latency, provider="sim", outcome="2xx") == 2
    assert value(samples, latency, provider="sim", outcome="5xx") == 2
    assert value(samples, "faxbridge_callbacks_total", provider="sim", result="refused") == 1
    assert value(samples, "faxbridge_callbacks_total", provider="-", result="unknown") == 1
    assert value(samples, "faxbridge_mail_outbox_pending") == 0
    assert value(samples, "faxbridge_mail_outbox_oldest_age_seconds") == 0
    assert value(samples, "faxbridge_store_up") == 1


def test_pending_mail_shows_as_outbox_depth_and_age(bridge: BridgeThread) -> None:
    with bridge.store.db.begin() as conn:  # a report the mail worker will not pick up yet
        old = datetime.now(UTC) - timedelta(minutes=5)
        conn.execute(
            mail_outbox.insert().values(
                id="0" * 17,
                kind="report",
                ref="nothing:0",
                faxbox="main",
                sender="",
                recipients=[],
                status="pending",
                attempts=0,
                next_attempt_at=old + timedelta(days=1),
                created=old,
                updated=old,
            )
        )
    samples = scrape(bridge)
    assert value(samples, "faxbridge_mail_outbox_pending") == 1
    age = value(samples, "faxbridge_mail_outbox_oldest_age_seconds")
    assert age is not None and 300 <= age < 360


def test_refusal_reasons_are_short_status_codes() -> None:
    assert refusal_code("550 5.7.1 Relaying denied: x.org is not a fax domain here") == "5.7.1"
    assert refusal_code("452 4.5.3 Too many recipients") == "4.5.3"
    assert refusal_code("500 Error: bad syntax") == "500"
    assert refusal_code(None) == ""


def test_metrics_and_docs_want_the_api_token(bridge: BridgeThread) -> None:
    for path in ("/metrics", *DOCS):
        for headers in ({}, {"X-Auth-Token": "wrong"}, {"Authorization": f"Bearer {TOKEN}x"}):
            response = httpx.get(bridge.http_url + path, headers=headers)
            assert response.status_code == 401, (path, headers)
            assert "faxbridge_" not in response.text and "/v2/accounts" not in response.text
        key = "http.open_metrics" if path == "/metrics" else "http.open_docs"
        assert response.json()["detail"] == (
            "send one of http.api_tokens as X-Auth-Token (or Authorization: Bearer), "
            f"or set {key}: true"
        )
    scraped = httpx.get(bridge.http_url + "/metrics", headers={"X-Auth-Token": TOKEN})
    assert scraped.status_code == 200 and "faxbridge_store_up 1.0" in scraped.text
    # Prometheus' `authorization: {credentials_file: …}` sends the token as a bearer token
    scraped = httpx.get(bridge.http_url + "/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert scraped.status_code == 200 and "faxbridge_store_up 1.0" in scraped.text
    schema = httpx.get(bridge.http_url + "/openapi.json", headers={"X-Auth-Token": TOKEN})
    assert schema.status_code == 200
    assert "/v2/accounts/{faxbox}/faxes/smtplog" in schema.json()["paths"]
    for page in ("/docs", "/redoc"):
        shown = httpx.get(bridge.http_url + page, headers={"X-Auth-Token": TOKEN})
        assert shown.status_code == 200 and "/openapi.json" in shown.text
    assert httpx.get(bridge.http_url + "/healthz").status_code == 200  # probes need no token


def test_with_no_token_configured_metrics_and_docs_are_closed(
    make_config: Callable[..., Config], start_bridge: Callable[[Config], BridgeThread]
) -> None:
    closed = start_bridge(make_config())
    assert closed.config.http.api_tokens == []
    for path in ("/metrics", *DOCS):
        assert httpx.get(closed.http_url + path).status_code == 401, path
        assert httpx.get(closed.http_url + path, headers={"X-Auth-Token": ""}).status_code == 401


def test_metrics_and_docs_open_when_configured(
    make_config: Callable[..., Config], start_bridge: Callable[[Config], BridgeThread]
) -> None:
    opened = start_bridge(
        make_config({"http": {"api_tokens": [TOKEN], "open_metrics": True, "open_docs": True}})
    )
    scraped = httpx.get(opened.http_url + "/metrics")
    assert scraped.status_code == 200 and "faxbridge_store_up 1.0" in scraped.text
    for path in DOCS:
        assert httpx.get(opened.http_url + path).status_code == 200, path
    # the API itself stays closed
    assert httpx.get(opened.http_url + "/v2/accounts/main/faxes/smtplog").status_code == 401


def test_open_metrics_leaves_the_docs_closed(
    make_config: Callable[..., Config], start_bridge: Callable[[Config], BridgeThread]
) -> None:
    opened = start_bridge(make_config({"http": {"open_metrics": True}}))
    assert httpx.get(opened.http_url + "/metrics").status_code == 200
    for path in DOCS:
        assert httpx.get(opened.http_url + path).status_code == 401, path
