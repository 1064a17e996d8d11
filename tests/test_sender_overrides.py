"""Per-sender cover settings: the office scanner gets no cover page, people still do."""

from __future__ import annotations

from collections.abc import Callable
from email.policy import SMTP
from io import BytesIO
from typing import Any

import pytest
from pypdf import PdfReader

from bridge.config import Config
from bridge.errors import ConfigError
from tests.bridge_runner import BridgeThread
from tests.helpers import smtp_client, wait_for
from tests.messages import fax_mail

BOX: dict[str, Any] = {
    "name": "main",
    "domains": ["fax.localhost"],
    "provider": "sim",
    "sender_overrides": [
        {"senders": ["scanner-*@example.com"], "cover_page": "never"},
        {"senders": ["*@xerox.example"], "ignore_body_patterns": ["^Please open the .*$"]},
    ],
}


def faxed_pages(bridge: BridgeThread, sender: str, body: str) -> int:
    with smtp_client(bridge.smtp_address) as client:
        client.mail(sender)
        client.rcpt("12125550123@fax.localhost")
        message = fax_mail(sender=sender, subject="", body=body, pdf_pages=1)
        assert client.data(message.as_bytes(policy=SMTP))[0] == 250
    job = wait_for(
        lambda: next((j for j in bridge.store.jobs.recent() if j["sender"] == sender), None)
    )
    return int(job["pages"])


def test_cover_page_follows_the_first_matching_sender_override(
    make_config: Callable[..., Config], start_bridge: Callable[[Config], BridgeThread]
) -> None:
    bridge = start_bridge(make_config(faxboxes=[BOX]))
    assert faxed_pages(bridge, "scanner-2f@example.com", "Scanned by the 2F copier") == 1
    assert faxed_pages(bridge, "alice@example.com", "Please sign page 2.") == 2
    # Only boilerplate left after the override's patterns: no notes, no subject, no cover.
    assert faxed_pages(bridge, "mfp@xerox.example", "Please open the attached document.") == 1
    sent = bridge.config.storage.data_dir / "simulator" / "sent"
    files = wait_for(lambda: len(found := list(sent.glob("*.pdf"))) == 3 and found)
    covers = [PdfReader(BytesIO(p.read_bytes())).pages[0].extract_text() for p in files]
    assert sum("Please sign page 2." in text for text in covers) == 1


def test_a_bad_override_pattern_names_its_key(make_config: Callable[..., Config]) -> None:
    bad = {**BOX, "sender_overrides": [{"senders": ["*"], "ignore_body_patterns": ["("]}]}
    with pytest.raises(
        ConfigError, match=r"faxboxes\.0\.sender_overrides\.0\.ignore_body_patterns"
    ):
        make_config(faxboxes=[bad])
