"""`faxbridge explain` tells an admin why a scan did or did not become a fax."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from email.policy import SMTP
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from bridge.config import Config
from tests import smtp_capture
from tests.bridge_runner import BridgeThread
from tests.cli_runner import MakeConfig, assert_error, config_writer, run_cli
from tests.helpers import smtp_client, wait_for
from tests.messages import fax_mail
from tests.smtp_capture import SelfSignedCert

tls_cert = smtp_capture.tls_cert


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    return tmp_path / "config.yaml"


@pytest.fixture
def make_config(tmp_path: Path, db_url: str, config_file: Path) -> MakeConfig:
    return config_writer(tmp_path, db_url, config_file)


def test_explain_walks_an_accepted_attempt_to_its_delivered_job(
    bridge: BridgeThread, config_file: Path
) -> None:
    with smtp_client(bridge.smtp_address) as client:
        client.mail("alice@example.com")
        client.rcpt("sales@fax.localhost")
        client.rcpt("12125550123@fax.localhost")
        assert client.data(fax_mail(pdf_pages=2).as_bytes(policy=SMTP))[0] == 250
    record = wait_for(lambda: bridge.store.smtplog.recent(outcome="accepted"))[0]
    wait_for(lambda: bridge.store.jobs.recent(status="delivered"), what="delivery")

    out = run_cli("explain", record["id"], config=config_file).ok().stdout
    assert out.startswith(f"Attempt {record['id']}\n")
    assert "MAIL FROM:<alice@example.com>." in out
    assert (
        'RCPT TO:<sales@fax.localhost> refused for faxbox main: 550 5.1.3 "sales" is not a '
        "valid fax number" in out
    )
    assert "RCPT TO:<12125550123@fax.localhost> accepted as +12125550123 for faxbox main" in out
    assert "Part contract.pdf (application/pdf, looks like pdf): used, 2 page(s)." in out
    assert "Cover page: yes (the subject or body has text)" in out
    assert "The fax has 3 page(s); the faxbox allows 200." in out
    assert "delivered" in out
    assert "differently" not in out

    data = run_cli("explain", record["id"], "--json", config=config_file).json()
    assert data["id"] == record["id"]
    assert data["differences"] == []


def test_explain_points_at_what_todays_config_would_decide_differently(
    bridge: BridgeThread, make_config: MakeConfig, config_file: Path
) -> None:
    with smtp_client(bridge.smtp_address) as client:
        client.mail("alice@example.com")
        client.rcpt("12125550123@fax.localhost")
        client.data(fax_mail().as_bytes(policy=SMTP))
    record = wait_for(lambda: bridge.store.smtplog.recent(outcome="accepted"))[0]
    # The admin has since restricted the faxbox to one sender domain.
    make_config(
        faxboxes=[
            {
                "name": "main",
                "domains": ["fax.localhost"],
                "provider": "sim",
                "allowed_senders": ["*@example.net"],
            }
        ]
    )
    out = run_cli("explain", record["id"], config=config_file).ok().stdout
    assert "Today's configuration would decide differently:" in out
    assert (
        "RCPT 12125550123@fax.localhost: today 550 5.7.1 alice@example.com may not send "
        "faxes through faxbox main" in out
    )


def test_explain_of_an_unknown_id_is_one_clear_paragraph(
    bridge: BridgeThread, config_file: Path
) -> None:
    assert_error(run_cli("explain", "nope", config=config_file), "nope", "smtplog list")


def test_hash_password_prints_an_argon2_hash_that_verifies() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bridge", "hash-password", "--stdin"],
        input="s3cret\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    digest = done.stdout.strip()
    assert digest.startswith("$argon2id$")
    assert PasswordHasher().verify(digest, "s3cret")
    assert "s3cret" not in done.stdout + done.stderr


def _one_accepted(bridge: BridgeThread, **login: str) -> str:
    with smtp_client(bridge.smtp_address) as client:
        client.mail("alice@example.com")
        client.rcpt("12125550123@fax.localhost")
        assert client.data(fax_mail().as_bytes(policy=SMTP))[0] == 250
    rows = wait_for(lambda: bridge.store.smtplog.recent(outcome="accepted", limit=1))
    return str(rows[0]["id"])


def test_explain_says_when_auth_is_now_required(
    bridge: BridgeThread, make_config: MakeConfig, config_file: Path
) -> None:
    attempt = _one_accepted(bridge)
    make_config(smtp={"auth": {"required": True}})
    out = run_cli("explain", attempt, config=config_file).ok().stdout
    assert (
        "AUTH: today MAIL FROM gets 530 5.7.0 Authentication required: smtp.auth.required is "
        "on, the client did not log in, and 127.0.0.1 is not in smtp.trusted_networks" in out
    )
    # Trusting the scanner's network takes the difference away again.
    make_config(smtp={"auth": {"required": True}, "trusted_networks": ["127.0.0.0/8"]})
    out = run_cli("explain", attempt, "--json", config=config_file).json()
    assert out["differences"] == []


def test_explain_says_when_a_refusal_for_auth_would_now_pass(
    make_config: MakeConfig, start_bridge: Callable[[Config], BridgeThread], config_file: Path
) -> None:
    bridge = start_bridge(make_config(smtp={"auth": {"required": True}}))
    with smtp_client(bridge.smtp_address) as client:
        assert client.mail("alice@example.com")[0] == 530
    attempt = wait_for(lambda: bridge.store.smtplog.recent(limit=1))[0]["id"]
    make_config(smtp={"trusted_networks": ["127.0.0.1/32"], "auth": {"required": True}})
    out = run_cli("explain", attempt, config=config_file).ok().stdout
    assert (
        "AUTH: today MAIL FROM is accepted without a login: 127.0.0.1 is now in "
        "smtp.trusted_networks" in out
    )


def test_explain_says_when_todays_rate_limit_would_refuse(
    bridge: BridgeThread, make_config: MakeConfig, config_file: Path
) -> None:
    _one_accepted(bridge)
    second = _one_accepted(bridge)
    make_config(
        faxboxes=[
            {
                "name": "main",
                "domains": ["fax.localhost"],
                "provider": "sim",
                "rate_limit": {"per_sender_per_hour": 1},
            }
        ]
    )
    out = run_cli("explain", second, config=config_file).ok().stdout
    assert (
        "RCPT 12125550123@fax.localhost: today 450 4.7.1 alice@example.com has sent 1 faxes in "
        "the last hour; the limit is 1 per hour, please try again later" in out
    )


def test_explain_says_when_tls_is_now_required(
    bridge: BridgeThread, make_config: MakeConfig, config_file: Path, tls_cert: SelfSignedCert
) -> None:
    attempt = _one_accepted(bridge)
    make_config(
        smtp={
            "tls": {"cert": str(tls_cert.cert_file), "key": str(tls_cert.key_file), "require": True}
        }
    )
    out = run_cli("explain", attempt, config=config_file).ok().stdout
    assert (
        "TLS: today the client must use STARTTLS before MAIL (smtp.tls.require is on); it sent "
        "this mail without TLS" in out
    )
