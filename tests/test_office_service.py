"""The managed LibreOffice heals: killed mid-conversion or hung, the bridge carries on.

These start LibreOffice processes of their own (to kill or freeze them without disturbing
the shared one) and so are marked slow.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from email.policy import SMTP
from typing import Any

import pytest

from bridge.config import Config
from bridge.documents.office import OfficeService, find_soffice, find_uno_python, office_convert
from tests.bridge_runner import BridgeThread
from tests.fixtures_office import order_docx, wide_xlsx
from tests.helpers import smtp_client, wait_for
from tests.messages import fax_mail

DOCX = "vnd.openxmlformats-officedocument.wordprocessingml.document"
pytestmark = pytest.mark.slow


@pytest.fixture
def own_office() -> Iterator[Callable[[float], OfficeService]]:
    started: list[OfficeService] = []

    def start(timeout_s: float) -> OfficeService:
        soffice, python = find_soffice(), find_uno_python()
        assert soffice is not None and python is not None
        service = OfficeService(soffice, python, timeout_s=timeout_s).start()
        started.append(service)
        return service

    yield start
    for service in started:
        service.stop()


def soffice_pids(service: OfficeService) -> list[int]:
    [state] = service.status()
    return [int(pid) for pid in state["soffice_pids"]]


def test_libreoffice_killed_mid_conversion_is_restarted_and_the_next_document_converts(
    own_office: Callable[[float], OfficeService],
) -> None:
    service = own_office(60)
    first_pids = soffice_pids(service)
    big = wide_xlsx()
    results: list[Any] = []

    def convert() -> None:
        try:
            results.append(office_convert(service.endpoint, big, "xlsx"))
        except Exception as exc:
            results.append(exc)

    worker = threading.Thread(target=convert)
    worker.start()
    wait_for(lambda: service.status()[0]["busy"], what="the conversion to start")
    for pid in first_pids:
        os.kill(pid, signal.SIGKILL)
    worker.join(90)
    # the killed conversion was tried again on a fresh LibreOffice, and the next one works
    assert not isinstance(results[0], Exception), results[0]
    assert office_convert(service.endpoint, order_docx(), "docx").pdf.startswith(b"%PDF-")
    [state] = service.status()
    assert state["starts"] == 2
    assert not set(state["soffice_pids"]) & set(first_pids)


def office_mail(sender: str) -> EmailMessage:
    message = fax_mail(sender=sender, body="Order attached.", pdf_pages=0)
    message.add_attachment(
        order_docx(), maintype="application", subtype=DOCX, filename="order.docx"
    )
    return message


def send(bridge: BridgeThread, message: EmailMessage, sender: str) -> str:
    with smtp_client(bridge.smtp_address) as client:
        client.mail(sender)
        client.rcpt("12125550123@fax.localhost")
        code, text = client.data(message.as_bytes(policy=SMTP))
    return f"{code} {text.decode()}"


def test_hung_libreoffice_gives_a_5xx_naming_the_file_while_others_get_their_250(
    make_config: Callable[..., Config],
    own_office: Callable[[float], OfficeService],
    document_pool: Any,
) -> None:
    service = own_office(8)
    bridge = BridgeThread(make_config(), pool=document_pool, office=service).start()
    try:
        for pid in soffice_pids(service):
            os.kill(pid, signal.SIGSTOP)  # LibreOffice hangs: alive, answering nothing
        replies: dict[str, str] = {}
        alice = threading.Thread(
            target=lambda: replies.update(alice=send(bridge, office_mail("a@x.org"), "a@x.org"))
        )
        alice.start()
        wait_for(lambda: service.status()[0]["busy"], what="alice's document to be converting")
        bob = send(bridge, fax_mail(sender="bob@example.com"), "bob@example.com")
        assert bob.startswith("250 2.0.0 Queued as ")
        assert "alice" not in replies  # still waiting for the hung LibreOffice
        alice.join(60)
        assert replies["alice"] == (
            '554 5.6.5 Attachment "order.docx": the Word document took longer than 8 s to '
            "convert (it may be damaged or far too large; send it as PDF)"
        )
        # the watchdog killed the hung soffice; a new one takes the next document
        assert send(bridge, office_mail("a@x.org"), "a@x.org").startswith("250 2.0.0")
        log = {r["from"]: r for r in bridge.store.smtplog.recent(limit=3)[1:]}
        assert log["bob@example.com"]["outcome"] == "accepted"
        assert log["a@x.org"]["outcome"] == "rejected"
        assert log["a@x.org"]["error"] == replies["alice"].split(" ", 2)[2]
    finally:
        bridge.stop()
