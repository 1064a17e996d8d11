"""Failed logins throttle the (user, address) that failed, not the office behind one NAT."""

from __future__ import annotations

import base64
import smtplib
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from bridge.config import Config
from tests import smtp_capture as capture_fixtures
from tests.bridge_runner import BridgeThread
from tests.cli_runner import MakeConfig, config_writer, run_cli
from tests.helpers import reply_text
from tests.smtp_capture import SelfSignedCert
from tests.test_smtp_auth_tls import PASSWORD, client, secured

tls_cert = capture_fixtures.tls_cert


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    return tmp_path / "config.yaml"


@pytest.fixture
def make_config(tmp_path: Path, db_url: str, config_file: Path) -> MakeConfig:
    """conftest's `make_config`, also written to `config_file` for `faxbridge auth`."""
    return config_writer(tmp_path, db_url, config_file)


def auth(smtp: smtplib.SMTP, user: str, password: str) -> str:
    plain = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
    return reply_text(smtp.docmd("AUTH", f"PLAIN {plain}"))


def session(bridge: BridgeThread, cert: SelfSignedCert) -> smtplib.SMTP:
    smtp = client(bridge)
    smtp.starttls(context=cert.client_context())
    smtp.ehlo("scanner.example.com")
    return smtp


def start(
    make_config: Callable[..., Config],
    start_bridge: Callable[[Config], BridgeThread],
    cert: SelfSignedCert,
    **auth_settings: object,
) -> BridgeThread:
    return start_bridge(make_config(secured(cert, auth=auth_settings)))


def test_one_user_throttled_leaves_colleagues_at_the_same_address_logging_in(
    make_config: Callable[..., Config],
    start_bridge: Callable[[Config], BridgeThread],
    tls_cert: SelfSignedCert,
) -> None:
    bridge = start(make_config, start_bridge, tls_cert)
    with session(bridge, tls_cert) as smtp:
        for _ in range(5):
            assert auth(smtp, "scanner1", "old password") == (
                "535 5.7.8 Authentication credentials invalid for scanner1"
            )
        assert auth(smtp, "scanner1", PASSWORD) == (
            "454 4.7.0 Too many failed logins as scanner1 from your address; try again in "
            "10 minutes"
        )
    with session(bridge, tls_cert) as smtp:  # a colleague behind the same NAT address
        assert auth(smtp, "sales", PASSWORD) == "235 2.7.0 Authentication successful"


def test_auth_unlock_lifts_the_throttle_of_a_running_bridge(
    make_config: Callable[..., Config],
    start_bridge: Callable[[Config], BridgeThread],
    tls_cert: SelfSignedCert,
    config_file: Path,
) -> None:
    bridge = start(make_config, start_bridge, tls_cert)
    with session(bridge, tls_cert) as smtp:
        for _ in range(5):
            auth(smtp, "scanner1", "wrong")
        assert auth(smtp, "scanner1", PASSWORD).startswith("454 4.7.0")
    listed = run_cli("auth", "list", config=config_file).ok()
    assert listed.lines[0].startswith("THROTTLED smtp    scanner1 "), listed.stdout
    assert "  5 failure(s), last " in listed.lines[0]
    unlocked = run_cli("auth", "unlock", "scanner1", config=config_file).ok()
    assert unlocked.stdout == "Unlocked 'scanner1': 5 failed login(s) forgotten.\n"
    with session(bridge, tls_cert) as smtp:
        assert auth(smtp, "scanner1", PASSWORD) == "235 2.7.0 Authentication successful"


def test_the_right_password_works_once_the_window_has_passed(
    make_config: Callable[..., Config],
    start_bridge: Callable[[Config], BridgeThread],
    tls_cert: SelfSignedCert,
) -> None:
    bridge = start(make_config, start_bridge, tls_cert, max_failures=2, failure_window=1)
    with session(bridge, tls_cert) as smtp:
        for _ in range(2):
            auth(smtp, "scanner1", "wrong")
        assert auth(smtp, "scanner1", PASSWORD) == (
            "454 4.7.0 Too many failed logins as scanner1 from your address; try again in 1 second"
        )
    time.sleep(1.2)  # the window (not a measurement): the failures age out
    with session(bridge, tls_cert) as smtp:
        assert auth(smtp, "scanner1", PASSWORD) == "235 2.7.0 Authentication successful"


def test_many_user_names_from_one_address_throttle_the_address(
    make_config: Callable[..., Config],
    start_bridge: Callable[[Config], BridgeThread],
    tls_cert: SelfSignedCert,
) -> None:
    bridge = start(make_config, start_bridge, tls_cert, address_max_failures=3)
    with session(bridge, tls_cert) as smtp:
        for name in ("admin", "root", "test"):
            assert auth(smtp, name, "123456").startswith("535 5.7.8")
        assert auth(smtp, "sales", PASSWORD) == (
            "454 4.7.0 Too many failed logins from your address; try again in 10 minutes"
        )


def test_the_console_sign_in_is_throttled_the_same_way(
    make_config: Callable[..., Config],
    start_bridge: Callable[[Config], BridgeThread],
    config_file: Path,
) -> None:
    token = "console-token-5d2a"
    bridge = start_bridge(
        make_config(http={"api_tokens": [token]}, smtp={"auth": {"max_failures": 3}})
    )
    with httpx.Client(base_url=f"{bridge.http_url}/console") as browser:
        for _ in range(3):
            assert browser.post("/login", data={"token": "guess"}).status_code == 401
        refused = browser.post("/login", data={"token": token})
        assert refused.status_code == 429
        assert "Too many failed sign-ins from your address; try again in 10 minutes." in (
            refused.text
        )
    run_cli("auth", "unlock", "--console", config=config_file).ok()
    with httpx.Client(base_url=f"{bridge.http_url}/console") as browser:
        assert browser.post("/login", data={"token": token}).status_code == 303
