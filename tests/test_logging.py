"""JSON log lines from a running bridge: parseable, one attempt id per line, no secrets."""

from __future__ import annotations

import base64
import io
import json
import logging
import smtplib
from collections.abc import Callable, Iterator
from email.policy import SMTP
from typing import Any

import httpx
import pytest

from bridge import logsetup
from bridge.config import Config, LoggingConfig
from bridge.smtp.auth import hash_password
from tests.bridge_runner import BridgeThread
from tests.helpers import wait_for
from tests.messages import fax_mail
from tests.test_api import QUEUED_REPLY

PASSWORD = "pa55-word-never-logged"
API_TOKEN = "api-token-never-logged"
CALLBACK_TOKEN = "callback-token-never-logged"


@pytest.fixture
def log_output() -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """The bridge's log as JSON objects, at DEBUG (the most revealing level)."""
    root = logging.getLogger()
    level = root.level
    buffer = io.StringIO()
    handler = logsetup.configure_logging(LoggingConfig(format="json", level="debug"), stream=buffer)

    def lines() -> list[dict[str, Any]]:
        return [json.loads(line) for line in buffer.getvalue().splitlines()]

    yield lines
    root.removeHandler(handler)
    root.setLevel(level)


def test_every_line_of_an_smtp_transaction_carries_its_attempt_id_and_no_secret(
    log_output: Callable[[], list[dict[str, Any]]],
    make_config: Callable[..., Config],
    start_bridge: Callable[[Config], BridgeThread],
) -> None:
    bridge = start_bridge(
        make_config(
            {
                "smtp": {
                    "auth": {
                        "required": True,
                        "plaintext_from": ["127.0.0.1/32"],
                        "users": [
                            {"username": "scanner1", "password_hash": hash_password(PASSWORD)}
                        ],
                    }
                },
                "http": {"api_tokens": [API_TOKEN]},
                "providers": {"sim": {"callback_token": CALLBACK_TOKEN}},
            }
        )
    )
    host, port = bridge.smtp_address
    with smtplib.SMTP(host, port, timeout=30) as client:  # AUTH LOGIN, wrong password first
        client.ehlo("scanner.example.com")
        client.user, client.password = "scanner1", PASSWORD + "-typo"
        with pytest.raises(smtplib.SMTPAuthenticationError):
            client.auth("LOGIN", client.auth_login)
    with smtplib.SMTP(host, port, timeout=30) as client:  # AUTH PLAIN, then one fax
        client.ehlo("scanner.example.com")
        client.login("scanner1", PASSWORD)
        client.mail("alice@example.com")
        client.rcpt("12125550123@fax.localhost")
        code, reply = client.data(fax_mail().as_bytes(policy=SMTP))
    assert code == 250
    found = QUEUED_REPLY.search(reply.decode())
    assert found
    attempt_id, job_id = found.groups()
    headers = {"X-Auth-Token": API_TOKEN}
    assert httpx.get(f"{bridge.http_url}/v2/accounts/main/faxes/smtplog", headers=headers)
    wait_for(
        lambda: any(
            "report" in line["message"] and "sent" in line["message"] for line in log_output()
        ),
        timeout_s=30,
        what="the delivery report to be mailed",
    )
    bridge.stop()

    lines = log_output()
    for line in lines:
        assert {"time", "level", "logger", "message"} <= set(line)
    accepted = next(n for n, line in enumerate(lines) if line["message"].startswith(attempt_id))
    session = lines[accepted]["session_id"]
    transaction = [line for line in lines[: accepted + 1] if line.get("session_id") == session]
    said = " ".join(line["message"] for line in transaction).lower()
    for step in ("peer", "ehlo", "auth plain", "mail from", "rcpt to", "data", "accepted"):
        assert step in said, step
    assert {line.get("attempt_id") for line in transaction} == {attempt_id}
    sends = [line for line in lines if line["logger"] == "bridge.worker"]
    assert sends and all(
        (line.get("job_id"), line.get("attempt_id")) == (job_id, attempt_id) for line in sends
    )

    text = "\n".join(json.dumps(line) for line in lines)
    secrets = [PASSWORD, API_TOKEN, CALLBACK_TOKEN]
    secrets += [base64.b64encode(s.encode()).decode() for s in (PASSWORD, PASSWORD + "-typo")]
    secrets.append(base64.b64encode(f"\0scanner1\0{PASSWORD}".encode()).decode())
    for secret in secrets:
        assert secret not in text


def test_text_lines_name_the_attempt_and_mask_tokens_in_urls() -> None:
    buffer = io.StringIO()
    root = logging.getLogger()
    level = root.level
    handler = logsetup.configure_logging(LoggingConfig(format="text"), stream=buffer)
    try:
        logsetup.bind_attempt("1a2b3c")
        logging.getLogger("bridge.test").warning(
            "POST %s failed", "http://127.0.0.1:8025/callbacks/sim?token=abc123&x=1"
        )
    finally:
        logsetup.bind_attempt(None)
        root.removeHandler(handler)
        root.setLevel(level)
    line = buffer.getvalue()
    assert "WARNING bridge.test [attempt 1a2b3c]: POST" in line
    assert "token=***&x=1" in line
    assert "abc123" not in line
