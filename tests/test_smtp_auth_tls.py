"""STARTTLS, implicit TLS, AUTH PLAIN/LOGIN and who may send without them."""

from __future__ import annotations

import base64
import logging
import smtplib
import ssl
from collections.abc import Callable
from email.policy import SMTP
from pathlib import Path
from typing import Any

import pytest

from bridge.config import Config
from bridge.smtp.auth import hash_password
from tests import smtp_capture as capture_fixtures
from tests.bridge_runner import BridgeThread
from tests.conftest import free_port
from tests.helpers import reply_text, wait_for
from tests.messages import fax_mail
from tests.smtp_capture import SelfSignedCert

tls_cert = capture_fixtures.tls_cert
PASSWORD = "correct horse battery staple"


def secured(cert: SelfSignedCert, **smtp: Any) -> dict[str, Any]:
    section: dict[str, Any] = {
        "tls": {"cert": str(cert.cert_file), "key": str(cert.key_file)},
        "auth": {
            "users": [
                {"username": "scanner1", "password_hash": hash_password(PASSWORD)},
                {
                    "username": "sales",
                    "password_hash": hash_password(PASSWORD),
                    "faxboxes": ["other"],
                },
            ]
        },
    }
    for key, value in smtp.items():
        if isinstance(value, dict) and isinstance(section.get(key), dict):
            section[key] = {**section[key], **value}
        else:
            section[key] = value
    return {"smtp": section}


def client(bridge: BridgeThread) -> smtplib.SMTP:
    host, port = bridge.smtp_address
    smtp = smtplib.SMTP(host, port, timeout=30)
    smtp.ehlo("scanner.example.com")
    return smtp


def send_one(smtp: smtplib.SMTP) -> tuple[int, bytes]:
    smtp.mail("scanner@example.com")
    smtp.rcpt("12125550123@fax.localhost")
    return smtp.data(fax_mail().as_bytes(policy=SMTP))


def latest(bridge: BridgeThread) -> dict[str, Any]:
    return wait_for(lambda: (rows := bridge.store.smtplog.recent(limit=1)) and rows[0])


@pytest.fixture
def secure_bridge(
    make_config: Callable[..., Config],
    start_bridge: Callable[[Config], BridgeThread],
    tls_cert: SelfSignedCert,
) -> Callable[..., BridgeThread]:
    def start(**smtp: Any) -> BridgeThread:
        return start_bridge(make_config(secured(tls_cert, **smtp)))

    return start


def test_starttls_then_auth_plain_sends_and_the_smtplog_shows_user_and_tls(
    secure_bridge: Callable[..., BridgeThread], tls_cert: SelfSignedCert
) -> None:
    bridge = secure_bridge(auth={"required": True})
    with client(bridge) as smtp:
        assert "starttls" in smtp.esmtp_features
        smtp.starttls(context=tls_cert.client_context())
        smtp.ehlo("scanner.example.com")
        assert smtp.login("scanner1", PASSWORD)[0] == 235
        assert send_one(smtp)[0] == 250
    record = latest(bridge)
    assert record["outcome"] == "accepted"
    assert record["auth_user"] == "scanner1"
    assert record["tls"] in ("TLSv1.2", "TLSv1.3")


def test_auth_login_with_initial_response_works(
    secure_bridge: Callable[..., BridgeThread], tls_cert: SelfSignedCert
) -> None:
    bridge = secure_bridge()
    with client(bridge) as smtp:
        smtp.starttls(context=tls_cert.client_context())
        smtp.ehlo("scanner.example.com")
        user = base64.b64encode(b"scanner1").decode()
        code, _ = smtp.docmd("AUTH", f"LOGIN {user}")
        assert code == 334
        code, text = smtp.docmd(base64.b64encode(PASSWORD.encode()).decode())
        assert (code, text) == (235, b"2.7.0 Authentication successful")


def test_wrong_password_gets_535_at_once(
    secure_bridge: Callable[..., BridgeThread], tls_cert: SelfSignedCert
) -> None:
    bridge = secure_bridge()
    with client(bridge) as smtp:
        smtp.starttls(context=tls_cert.client_context())
        smtp.ehlo("scanner.example.com")
        with pytest.raises(smtplib.SMTPAuthenticationError) as refused:
            smtp.login("scanner1", "wrong")
    assert refused.value.smtp_code == 535
    assert refused.value.smtp_error == b"5.7.8 Authentication credentials invalid for scanner1"
    record = latest(bridge)
    assert record["outcome"] == "rejected"
    assert record["errors"][-1] == "Authentication credentials invalid for scanner1"


def test_repeated_failures_of_one_user_are_throttled(
    secure_bridge: Callable[..., BridgeThread], tls_cert: SelfSignedCert
) -> None:
    bridge = secure_bridge()
    with client(bridge) as smtp:
        smtp.starttls(context=tls_cert.client_context())
        smtp.ehlo("scanner.example.com")
        for _ in range(5):
            plain = base64.b64encode(b"\0scanner1\0wrong").decode()
            assert smtp.docmd("AUTH", f"PLAIN {plain}")[0] == 535
        plain = base64.b64encode(f"\0scanner1\0{PASSWORD}".encode()).decode()
        assert reply_text(smtp.docmd("AUTH", f"PLAIN {plain}")) == (
            "454 4.7.0 Too many failed logins as scanner1 from your address; try again in "
            "10 minutes"
        )


def test_mail_without_auth_is_refused_when_auth_is_required(
    secure_bridge: Callable[..., BridgeThread],
) -> None:
    bridge = secure_bridge(auth={"required": True})
    with client(bridge) as smtp:
        assert reply_text(smtp.mail("scanner@example.com")) == ("530 5.7.0 Authentication required")
    record = latest(bridge)
    assert record["outcome"] == "rejected"
    assert record["from"] == "scanner@example.com"
    assert record["reply"] == "530 5.7.0 Authentication required"


def test_trusted_networks_send_without_auth(
    secure_bridge: Callable[..., BridgeThread],
) -> None:
    bridge = secure_bridge(auth={"required": True}, trusted_networks=["127.0.0.0/8"])
    with client(bridge) as smtp:
        assert send_one(smtp)[0] == 250


def test_auth_in_the_clear_is_refused_unless_the_network_is_allowed(
    secure_bridge: Callable[..., BridgeThread],
) -> None:
    bridge = secure_bridge()
    with client(bridge) as smtp:
        plain = base64.b64encode(f"\0scanner1\0{PASSWORD}".encode()).decode()
        assert reply_text(smtp.docmd("AUTH", f"PLAIN {plain}")) == (
            "538 5.7.11 Encryption required for requested authentication mechanism"
        )
    allowed = secure_bridge(auth={"plaintext_from": ["127.0.0.1/32"]})
    with client(allowed) as smtp:
        assert smtp.login("scanner1", PASSWORD)[0] == 235
        assert send_one(smtp)[0] == 250
    record = latest(allowed)
    assert record["tls"] is None
    assert record["auth_user"] == "scanner1"


def test_user_limited_to_other_faxboxes_is_refused_at_rcpt(
    secure_bridge: Callable[..., BridgeThread], tls_cert: SelfSignedCert
) -> None:
    bridge = secure_bridge()
    with client(bridge) as smtp:
        smtp.starttls(context=tls_cert.client_context())
        smtp.ehlo("scanner.example.com")
        smtp.login("sales", PASSWORD)
        smtp.mail("sales@example.com")
        assert reply_text(smtp.rcpt("12125550123@fax.localhost")) == (
            "550 5.7.1 sales may not send faxes through faxbox main"
        )


def test_tls_required_refuses_mail_before_starttls(
    secure_bridge: Callable[..., BridgeThread],
) -> None:
    bridge = secure_bridge(tls={"require": True})
    with client(bridge) as smtp:
        assert reply_text(smtp.mail("scanner@example.com")) == (
            "530 5.7.0 Must issue a STARTTLS command first"
        )
    assert latest(bridge)["reply"] == "530 5.7.0 Must issue a STARTTLS command first"


def test_implicit_tls_listener_accepts_mail_and_auth(
    secure_bridge: Callable[..., BridgeThread], tls_cert: SelfSignedCert
) -> None:
    port = free_port()
    bridge = secure_bridge(tls={"implicit_listen": f"127.0.0.1:{port}", "require": True})
    with smtplib.SMTP_SSL("127.0.0.1", port, context=tls_cert.client_context(), timeout=30) as s:
        s.ehlo("scanner.example.com")
        assert "starttls" not in s.esmtp_features
        assert s.login("scanner1", PASSWORD)[0] == 235
        assert send_one(s)[0] == 250
    assert latest(bridge)["tls"] in ("TLSv1.2", "TLSv1.3")


def test_tls_below_the_minimum_version_is_refused(
    secure_bridge: Callable[..., BridgeThread], tls_cert: SelfSignedCert
) -> None:
    bridge = secure_bridge(tls={"min_version": "1.3"})
    context = tls_cert.client_context()
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    with client(bridge) as smtp, pytest.raises(ssl.SSLError):
        smtp.starttls(context=context)


def test_passwords_never_reach_the_log(
    secure_bridge: Callable[..., BridgeThread],
    tls_cert: SelfSignedCert,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    bridge = secure_bridge()
    with client(bridge) as smtp:
        smtp.starttls(context=tls_cert.client_context())
        smtp.ehlo("scanner.example.com")
        smtp.login("scanner1", PASSWORD)
    with client(bridge) as smtp:
        smtp.starttls(context=tls_cert.client_context())
        smtp.ehlo("scanner.example.com")
        with pytest.raises(smtplib.SMTPAuthenticationError):
            smtp.login("scanner1", "hunter2-wrong")
    encoded = base64.b64encode(f"\0scanner1\0{PASSWORD}".encode()).decode()
    for secret in (PASSWORD, "hunter2-wrong", encoded):
        assert secret not in caplog.text


def test_hash_password_output_verifies(tmp_path: Path) -> None:
    from argon2 import PasswordHasher

    digest = hash_password("s3cret")
    assert digest.startswith("$argon2")
    assert PasswordHasher().verify(digest, "s3cret")
