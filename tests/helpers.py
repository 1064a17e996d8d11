"""Small waiting and SMTP helpers for socket tests."""

from __future__ import annotations

import smtplib
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(probe: Callable[[], T], timeout_s: float = 15.0, what: str = "condition") -> T:
    """Poll `probe` until it returns something truthy (tests never time with sleeps alone)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def reply_text(reply: tuple[int, bytes]) -> str:
    code, text = reply
    return f"{code} {text.decode()}"


def smtp_client(address: tuple[str, int]) -> smtplib.SMTP:
    client = smtplib.SMTP(address[0], address[1], timeout=30)
    client.ehlo("client.example.com")
    return client
