"""The bridge behind a real Postfix, as deploy/postfix sets it up (issue 11, point 1).

Postfix (Debian's, a private instance: tests/postfix_daemon.py) takes mail on its own port,
hands the fax domain to the bridge through a transport map, and delivers `office.test` into
Maildirs. The bridge relays its own mail (reports, inbound faxes, postmaster forwards) back
through that Postfix. Each test ends with nothing queued, no double bounce, and no mail of the
bridge's own refused by the bridge.
"""

from __future__ import annotations

import re
import shutil
import smtplib
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

import pytest

from bridge.config import Config
from bridge.own_mail import own_mail_problems
from tests.bridge_runner import BridgeThread
from tests.conftest import free_port
from tests.helpers import reply_text, wait_for
from tests.messages import fax_mail
from tests.postfix_daemon import (
    MASTER_PROTO,
    POSTCONF,
    RECIPE,
    PostfixDaemon,
    PostfixUnavailable,
    postmap,
    start_postfix,
)

FAX_DOMAIN = "fax.localhost"
OWN_NUMBER = "+12125550100"  # the faxbox's inbound number: the simulator faxes it back in
MAILBOXES = ["someone", "frontdesk", "postmaster-desk", "doublebounce"]
SENDER = "someone@office.test"


@dataclass
class Front:
    postfix: PostfixDaemon
    bridge: BridgeThread

    def client(self) -> smtplib.SMTP:
        client = smtplib.SMTP(
            *self.postfix.address, timeout=30, source_address=self.postfix.client_address
        )
        client.ehlo("client.office.test")
        return client

    def send(self, message: bytes, to: list[str], sender: str = SENDER) -> str:
        """Hand a message to Postfix, as a mail client of the office would."""
        with self.client() as client:
            client.mail(sender)
            for address in to:
                assert reply_text(client.rcpt(address)).startswith("250 2.1.5"), address
            return reply_text(client.data(message))

    def mails(self, mailbox: str, count: int = 1) -> list[EmailMessage]:
        return wait_for(
            lambda: (found := self.postfix.mailbox(mailbox)) and len(found) >= count and found,
            timeout_s=60,
            what=f"{count} mail(s) in {mailbox}@office.test\n{self.postfix.log()[-4000:]}",
        )

    def assert_nothing_loops(self, bounced: int = 0) -> None:
        """Postfix's queue drains, only the test's own mail bounced (`bounced` times), no
        bounce bounced, and the bridge refused none of its own mail coming back."""
        wait_for(
            lambda: self.postfix.queue() == "Mail queue is empty",
            timeout_s=30,
            what=f"Postfix's queue to drain:\n{self.postfix.queue()}",
        )
        assert self.postfix.mailbox("doublebounce") == []
        log = self.postfix.log()
        assert "loops back to myself" not in log
        assert len(re.findall(r"status=bounced", log)) == bounced, log
        for row in self.bridge.store.smtplog.recent(limit=100):
            assert row["from"] not in ("", "<>", "fax-noreply@office.test") or (
                row["outcome"] == "accepted"
            ), row


MakeFront = Callable[..., Front]


@pytest.fixture
def make_front(
    make_config: Callable[..., Config], start_bridge: Callable[[Config], BridgeThread]
) -> Iterator[MakeFront]:
    """Postfix in front of a bridge whose mail goes out through that Postfix; `recipe=True`
    adds deploy/postfix's settings (recipient verification with the bridge)."""
    running: list[PostfixDaemon] = []

    def make(recipe: bool = False) -> Front:
        bridge_port, postfix_port = free_port(), free_port()
        try:
            postfix = start_postfix(postfix_port, FAX_DOMAIN, bridge_port, MAILBOXES, recipe)
        except PostfixUnavailable as exc:
            print(f"Postfix cannot start here: {exc}")
            pytest.skip(f"Postfix cannot start here: {exc}")
        running.append(postfix)
        config = make_config(
            smtp={
                "listen": f"127.0.0.1:{bridge_port}",
                "postmaster_to": ["postmaster-desk@office.test"],
            },
            mail={
                "from": "Fax Bridge <fax-noreply@office.test>",
                "transport": "smtp",
                "smtp": {"host": "127.0.0.1", "port": postfix_port, "timeout_s": 10},
            },
            faxboxes=[
                {
                    "name": "main",
                    "domains": [FAX_DOMAIN],
                    "provider": "sim",
                    "caller_id": OWN_NUMBER,
                    "inbound": {"numbers": [OWN_NUMBER], "email_to": ["frontdesk@office.test"]},
                }
            ],
        )
        assert own_mail_problems(config) == []  # what check-config and serve insist on
        return Front(postfix, start_bridge(config))

    yield make
    for postfix in running:
        postfix.stop()


@pytest.fixture
def front(make_front: MakeFront) -> Front:
    return make_front()


def test_a_fax_sent_through_postfix_is_faxed_and_its_report_reaches_the_sender(
    front: Front,
) -> None:
    reply = front.send(fax_mail(sender=SENDER).as_bytes(policy=SMTP), ["12125550123@fax.localhost"])
    assert reply.startswith("250 2.0.0 Ok: queued as ")  # Postfix's, not the bridge's

    (report,) = front.mails("someone")
    assert report["Subject"] == "Fax to +1 212-555-0123 delivered (2 pages)"
    assert report.get_content_type() == "multipart/report"
    (job,) = front.bridge.store.jobs.recent()
    assert (job["to"], job["status"], job["sender"]) == ("+12125550123", "delivered", SENDER)
    (attempt,) = front.bridge.store.smtplog.recent(limit=10)
    assert attempt["helo"] == "mx.postfix.test"  # it came in through Postfix
    front.assert_nothing_loops()


def test_a_refused_number_bounces_to_the_sender_with_the_bridge_reason(front: Front) -> None:
    message = fax_mail(to="frontdesk@fax.localhost", sender=SENDER).as_bytes(policy=SMTP)
    front.send(message, ["frontdesk@fax.localhost"])

    (bounce,) = front.mails("someone")
    assert bounce["From"] == "Mail Delivery System <MAILER-DAEMON@postfix.test>"
    text = " ".join(bounce.as_string().split())  # Postfix folds long lines
    assert (
        'said: 550 5.1.3 "frontdesk" is not a valid fax number (in reply to RCPT TO command)'
        in (text)
    )
    assert front.bridge.store.jobs.recent() == []
    (attempt,) = front.bridge.store.smtplog.recent(limit=10)
    assert attempt["outcome"] == "rejected"
    front.assert_nothing_loops(bounced=1)


def test_an_inbound_fax_reaches_the_front_desk_outside_the_fax_domain(front: Front) -> None:
    message = fax_mail(to="12125550100@fax.localhost", sender=SENDER).as_bytes(policy=SMTP)
    front.send(message, ["12125550100@fax.localhost"])  # the simulator faxes it back to us

    (inbound,) = front.mails("frontdesk")
    assert inbound["Subject"] == "Fax from +1 212-555-0100 (2 pages)"
    assert inbound["From"] == "Fax Bridge <fax-noreply@office.test>"
    (part,) = list(inbound.iter_attachments())
    assert part.get_content_type() == "application/pdf"
    assert part.get_content().startswith(b"%PDF")
    (fax,) = front.bridge.store.inbound.recent()
    assert fax["emailed"]
    (sent,) = [r for r in front.bridge.store.outbox.recent() if r["kind"] == "inbound"]
    assert (sent["status"], sent["to"]) == ("sent", ["frontdesk@office.test"])
    front.mails("someone")  # and the sender's delivery report
    front.assert_nothing_loops()


def test_postmaster_of_the_fax_domain_through_postfix_reaches_the_postmaster(
    front: Front,
) -> None:
    bounce = (
        b"From: MAILER-DAEMON@elsewhere.example\r\n"
        b"To: postmaster@fax.localhost\r\n"
        b"Subject: Delivery Status Notification\r\n"
        b"Auto-Submitted: auto-replied\r\n"
        b"\r\n"
        b"A report for the postmaster.\r\n"
    )
    front.send(bounce, ["postmaster@fax.localhost"], sender="")

    (mail,) = front.mails("postmaster-desk")
    assert mail["Subject"] == "Delivery Status Notification"
    assert mail.get_content().strip() == "A report for the postmaster."
    assert mail["Return-Path"] == "<>"  # still a bounce: nothing answers it
    (attempt,) = front.bridge.store.smtplog.recent(limit=10)
    assert (attempt["outcome"], attempt["fax_ids"]) == ("accepted", [])
    assert front.bridge.store.jobs.recent() == []
    front.assert_nothing_loops()


def test_with_the_deploy_recipe_postfix_refuses_a_bad_number_during_the_dialogue_with_550(
    make_front: MakeFront,
) -> None:
    front = make_front(recipe=True)
    with front.client() as client:
        client.mail(SENDER)
        refused = reply_text(client.rcpt("frontdesk@fax.localhost"))
        accepted = reply_text(client.rcpt("12125550123@fax.localhost"))
        data = reply_text(client.data(fax_mail(sender=SENDER).as_bytes(policy=SMTP)))

    # 550, not 450: the sender's MTA gives up at once instead of retrying for days.
    assert refused.startswith("550 5.1.1 <frontdesk@fax.localhost>: Recipient address rejected")
    assert '550 5.1.3 "frontdesk" is not a valid fax number' in refused
    assert accepted.startswith("250 2.1.5")
    assert data.startswith("250 2.0.0 Ok: queued as ")
    (report,) = front.mails("someone")
    assert report["Subject"] == "Fax to +1 212-555-0123 delivered (2 pages)"
    assert [j["to"] for j in front.bridge.store.jobs.recent()] == ["+12125550123"]
    front.assert_nothing_loops()  # the refusal was a reply, not a bounce


def test_the_deploy_recipe_parses_with_postconf_and_its_transport_map_with_postmap(
    tmp_path: Path,
) -> None:
    etc = tmp_path / "etc"
    etc.mkdir()
    shutil.copy(RECIPE / "main.cf", etc / "main.cf")
    shutil.copy(MASTER_PROTO, etc / "master.cf")
    shutil.copy(RECIPE / "transport", etc / "transport")

    shown = subprocess.run(
        [POSTCONF, "-c", str(etc), "-n"], capture_output=True, text=True, timeout=30
    )
    assert shown.returncode == 0 and shown.stderr == "", shown.stderr  # no unknown settings
    settings = dict(line.split(" = ", 1) for line in shown.stdout.splitlines())
    assert settings["relay_domains"] == "fax.example.com"
    assert settings["unverified_recipient_reject_code"] == "550"
    assert settings["smtpd_recipient_restrictions"] == (
        "permit_mynetworks, reject_unauth_destination, check_recipient_access "
        "inline:{ fax.example.com=reject_unverified_recipient }"
    )
    assert postmap(etc, str(etc / "transport")).returncode == 0
    found = postmap(etc, "-q", "fax.example.com", f"hash:{etc / 'transport'}")
    assert found.stdout.strip() == "smtp:[127.0.0.1]:2525", found.stderr
