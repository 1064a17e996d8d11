"""Fax to e-mail: each provider's inbound callback, POSTed over HTTP, becomes one inbound fax
record and one mail to the faxbox that owns the receiving number, with the fax attached."""

from __future__ import annotations

from collections.abc import Callable
from email.message import EmailMessage
from typing import Any

import pytest

from bridge.config import Config
from tests import test_provider_e2e as e2e
from tests.bridge_runner import BridgeThread
from tests.helpers import wait_for
from tests.messages import make_pdf
from tests.test_end_to_end import maildir_messages
from tests.test_provider_e2e import CALLBACK_TOKEN, Emulator, register_callbacks

FRONT_DESK = "+12125550100"
SALES = "+12125550111"
CALLER = "+12125550199"

emulator = e2e.emulator  # one running emulator per provider type


@pytest.fixture
def bridge(
    emulator: Emulator,
    make_config: Callable[..., Config],
    start_bridge: Callable[[Config], BridgeThread],
) -> BridgeThread:
    """Two faxboxes on the emulated provider, told apart only by their inbound numbers."""
    name = emulator.provider_type
    config = make_config(
        providers={name: emulator.provider_config(CALLBACK_TOKEN)},
        faxboxes=[
            {
                "name": "main",
                "domains": ["fax.localhost"],
                "provider": name,
                "inbound": {"numbers": [FRONT_DESK], "email_to": ["frontdesk@office.localhost"]},
            },
            {
                "name": "sales",
                "domains": ["sales.fax.localhost"],
                "provider": name,
                "inbound": {
                    "numbers": [SALES],
                    "email_to": ["sales@example.com", "boss@example.com"],
                },
            },
        ],
    )
    register_callbacks(config, emulator)
    return start_bridge(config)


def attachment(message: EmailMessage) -> tuple[str, bytes]:
    (part,) = list(message.iter_attachments())
    return part.get_content_type(), part.get_content()


def inbound_faxes(bridge: BridgeThread, count: int) -> list[dict[str, Any]]:
    return wait_for(
        lambda: (found := bridge.store.inbound.recent()) and len(found) >= count and found,
        what=f"{count} inbound fax record(s)",
    )


def test_inbound_fax_is_mailed_to_the_faxbox_that_owns_the_number(
    bridge: BridgeThread, emulator: Emulator
) -> None:
    for_sales = make_pdf("for sales", 2)
    for_front_desk = make_pdf("for the front desk", 1)

    assert emulator.deliver_inbound(CALLER, SALES, for_sales).status_code == 200
    assert emulator.deliver_inbound(CALLER, FRONT_DESK, for_front_desk).status_code == 200

    faxes = {f["to"]: f for f in inbound_faxes(bridge, 2)}
    assert faxes[SALES]["faxbox"] == "sales"
    assert faxes[FRONT_DESK]["faxbox"] == "main"
    assert {f["from"] for f in faxes.values()} == {CALLER}

    mails = {m["To"]: m for m in maildir_messages(bridge, count=2)}
    assert set(mails) == {"sales@example.com, boss@example.com", "frontdesk@office.localhost"}
    sales_mail = mails["sales@example.com, boss@example.com"]
    assert sales_mail["Subject"].startswith("Fax from +1 212-555-0199")
    assert sales_mail["Auto-Submitted"] == "auto-generated"
    assert attachment(sales_mail) == ("application/pdf", for_sales)
    assert attachment(mails["frontdesk@office.localhost"]) == ("application/pdf", for_front_desk)
    wait_for(
        lambda: all(f["emailed"] for f in bridge.store.inbound.recent()),
        what="both faxes marked as e-mailed",
    )


def test_a_repeated_inbound_callback_gives_one_record_and_one_mail(
    bridge: BridgeThread, emulator: Emulator
) -> None:
    pdf = make_pdf("sent twice", 1)
    callback = emulator.inbound_callback(CALLER, FRONT_DESK, pdf)

    assert emulator.post(callback, inbound=True).status_code == 200
    (mail,) = maildir_messages(bridge)
    assert emulator.post(callback, inbound=True).status_code == 200

    (fax,) = bridge.store.inbound.recent()
    assert (fax["faxbox"], fax["from"], fax["to"]) == ("main", CALLER, FRONT_DESK)
    (row,) = bridge.store.outbox.recent()
    assert (row["kind"], row["ref"]) == ("inbound", fax["id"])
    wait_for(lambda: bridge.store.outbox.get(row["id"])["status"] == "sent", what="mail sent")
    assert len(maildir_messages(bridge)) == 1
    assert attachment(mail) == ("application/pdf", pdf)
