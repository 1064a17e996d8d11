"""Every reply of DESIGN.md §4, over a real socket, with its smtplog record."""

from __future__ import annotations

from collections.abc import Callable
from email.policy import SMTP
from typing import Any

import pytest

from bridge.config import Config
from bridge.smtp.server import within_line_limit
from tests.bridge_runner import BridgeThread
from tests.helpers import reply_text, smtp_client, wait_for
from tests.messages import fax_mail, make_pdf


def last_attempt(bridge: BridgeThread, outcome: str | None = None) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        rows = bridge.store.smtplog.recent(outcome=outcome, limit=1)
        return rows[0] if rows else None

    return wait_for(probe, what="an smtplog record")


def rcpt(bridge: BridgeThread, address: str, sender: str = "alice@example.com") -> str:
    with smtp_client(bridge.smtp_address) as client:
        client.mail(sender)
        reply = reply_text(client.rcpt(address))
        client.rset()
    return reply


def test_rcpt_to_a_foreign_domain_is_relaying_denied(bridge: BridgeThread) -> None:
    reply = rcpt(bridge, "12125550123@example.org")
    assert reply == "550 5.7.1 Relaying denied: example.org is not a fax domain here"
    record = last_attempt(bridge)
    assert record["outcome"] == "rejected"
    assert record["recipients"] == [
        {
            "address": "12125550123@example.org",
            "original_number": None,
            "translated_number": None,
            "faxbox": None,
            "accepted": False,
            "reply": reply,
        }
    ]
    assert record["error"] == "Relaying denied: example.org is not a fax domain here"


def test_fax_domain_is_matched_case_insensitively(bridge: BridgeThread) -> None:
    assert rcpt(bridge, "12125550123@FAX.Localhost").startswith("250 2.1.5")


def test_rcpt_local_part_that_is_no_number_is_refused(bridge: BridgeThread) -> None:
    assert rcpt(bridge, "sales@fax.localhost") == ('550 5.1.3 "sales" is not a valid fax number')


def test_rcpt_to_a_country_outside_allowed_countries_is_blocked(bridge: BridgeThread) -> None:
    reply = rcpt(bridge, "00442079460958@fax.localhost")
    assert reply == (
        "550 5.7.1 Faxing to +442079460958 is not allowed for faxbox main: "
        "United Kingdom (GB) is not among its allowed countries"
    )
    record = last_attempt(bridge)
    assert record["recipients"][0]["translated_number"] == "+442079460958"


@pytest.mark.parametrize(
    ("number", "country"),
    [("18765550123", "Jamaica (JM)"), ("18092202000", "Dominican Republic (DO)")],
)
def test_calling_code_1_is_not_a_country_toll_fraud_destinations_are_refused(
    make_config: Callable[..., Config],
    start_bridge: Callable[[Config], BridgeThread],
    number: str,
    country: str,
) -> None:
    """+1 876 and +1 809 are dialled like US numbers, at many times the price."""
    bridge = start_bridge(make_config(faxboxes=[_faxbox(allowed_countries=["US", "ca"])]))
    assert rcpt(bridge, "12125550123@fax.localhost").startswith("250 2.1.5")
    assert rcpt(bridge, "14165550123@fax.localhost").startswith("250 2.1.5")  # Toronto
    assert rcpt(bridge, f"{number}@fax.localhost") == (
        f"550 5.7.1 Faxing to +{number} is not allowed for faxbox main: "
        f"{country} is not among its allowed countries"
    )
    record = last_attempt(bridge, outcome="rejected")
    assert record["recipients"][0]["translated_number"] == f"+{number}"


def test_by_default_only_the_faxbox_region_is_dialled(bridge: BridgeThread) -> None:
    assert rcpt(bridge, "14165550123@fax.localhost") == (
        "550 5.7.1 Faxing to +14165550123 is not allowed for faxbox main: "
        "Canada (CA) is not among its allowed countries"
    )


def test_a_bare_calling_code_still_admits_all_of_its_countries(
    make_config: Callable[..., Config], start_bridge: Callable[[Config], BridgeThread]
) -> None:
    """Old configs keep working as written; check-config warns about them (test_cli_config)."""
    bridge = start_bridge(make_config(faxboxes=[_faxbox(allowed_countries=[1])]))
    assert rcpt(bridge, "18765550123@fax.localhost").startswith("250 2.1.5")


def _faxbox(**settings: Any) -> dict[str, Any]:
    return {
        "name": "main",
        "domains": ["fax.localhost"],
        "provider": "sim",
        "caller_id": "+12125550100",
        **settings,
    }


def test_rcpt_to_a_premium_rate_number_is_blocked(bridge: BridgeThread) -> None:
    reply = rcpt(bridge, "19005550123@fax.localhost")
    assert reply == (
        "550 5.7.1 Faxing to +19005550123 is not allowed for faxbox main: "
        "+19005550123 is a premium-rate or shared-cost number"
    )


def test_national_number_with_separators_uses_the_faxbox_region(bridge: BridgeThread) -> None:
    with smtp_client(bridge.smtp_address) as client:
        client.mail("alice@example.com")
        # smtplib would drop "(212)" as an RFC 5322 comment: send the command as written.
        reply = reply_text(client.docmd("RCPT TO:<(212)555-0123@fax.localhost>"))
    assert reply == "250 2.1.5 Recipient OK, fax to +12125550123"


def test_sender_outside_allowed_senders_is_refused_at_rcpt(
    make_config: Callable[..., Config], start_bridge: Callable[[Config], BridgeThread]
) -> None:
    config = make_config(
        faxboxes=[
            {
                "name": "main",
                "domains": ["fax.localhost"],
                "provider": "sim",
                "allowed_senders": ["*@example.com"],
            }
        ]
    )
    bridge = start_bridge(config)
    assert rcpt(bridge, "12125550123@fax.localhost", sender="alice@example.com").startswith("250")
    reply = rcpt(bridge, "12125550123@fax.localhost", sender="mallory@evil.example")
    assert reply == "550 5.7.1 mallory@evil.example may not send faxes through faxbox main"


def test_null_sender_is_refused_at_rcpt(bridge: BridgeThread) -> None:
    assert rcpt(bridge, "12125550123@fax.localhost", sender="") == (
        "550 5.7.1 Mail from the null sender is not faxed"
    )


def test_too_many_recipients_gets_452(
    make_config: Callable[..., Config], start_bridge: Callable[[Config], BridgeThread]
) -> None:
    bridge = start_bridge(make_config(smtp={"max_recipients": 2}))
    with smtp_client(bridge.smtp_address) as client:
        client.mail("alice@example.com")
        assert client.rcpt("12125550121@fax.localhost")[0] == 250
        assert client.rcpt("12125550122@fax.localhost")[0] == 250
        assert reply_text(client.rcpt("12125550123@fax.localhost")) == (
            "452 4.5.3 Too many recipients"
        )


def test_size_is_advertised_and_a_larger_message_gets_552(
    make_config: Callable[..., Config], start_bridge: Callable[[Config], BridgeThread]
) -> None:
    bridge = start_bridge(make_config(smtp={"max_message_bytes": 4096}))
    with smtp_client(bridge.smtp_address) as client:
        assert client.esmtp_features["size"] == "4096"
        # Declared too large with SIZE=: refused at MAIL, before any data is sent.
        code, text = client.mail("alice@example.com", ["SIZE=10000"])
        assert f"{code} {text.decode()}" == (
            "552 5.3.4 Message exceeds the size limit of 4096 bytes"
        )
        # Undeclared, but too large: refused after DATA.
        client.mail("alice@example.com")
        client.rcpt("12125550123@fax.localhost")
        big = fax_mail(body="Please fax this.\n" * 400)  # about 7 kB
        code, text = client.data(big.as_bytes(policy=SMTP))
    assert f"{code} {text.decode()}" == "552 5.3.4 Message exceeds the size limit of 4096 bytes"
    record = last_attempt(bridge, outcome="rejected")
    assert record["reply"] == "552 5.3.4 Message exceeds the size limit of 4096 bytes"


def test_message_with_nothing_faxable_gets_554_naming_each_part(bridge: BridgeThread) -> None:
    message = fax_mail(body="", subject="", pdf_pages=0)
    message.add_attachment(
        b"PK\x03\x04" + b"\0" * 100,
        maintype="application",
        subtype="vnd.apple.pages",
        filename="letter.pages",
    )
    with smtp_client(bridge.smtp_address) as client:
        client.mail("alice@example.com")
        client.rcpt("12125550123@fax.localhost")
        code, text = client.data(message.as_bytes(policy=SMTP))
    reply = f"{code} {text.decode()}"
    assert reply.startswith("554 5.6.0 No faxable content: ")
    assert '"letter.pages" is a Pages document (export it as PDF)' in reply
    record = last_attempt(bridge, outcome="rejected")
    assert record["reply"] == reply
    assert [a["filename"] for a in record["attachments"]] == ["letter.pages"]
    assert record["attachments"][0]["used"] is False


def test_password_protected_pdf_gets_554_with_that_reason(bridge: BridgeThread) -> None:
    from io import BytesIO

    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    writer.append(PdfReader(BytesIO(make_pdf("secret"))))
    writer.encrypt(user_password="s3cret", owner_password="owner")
    buffer = BytesIO()
    writer.write(buffer)
    message = fax_mail(pdf_pages=0)
    message.add_attachment(
        buffer.getvalue(), maintype="application", subtype="pdf", filename="locked.pdf"
    )
    with smtp_client(bridge.smtp_address) as client:
        client.mail("alice@example.com")
        client.rcpt("12125550123@fax.localhost")
        code, text = client.data(message.as_bytes(policy=SMTP))
    assert f"{code} {text.decode()}" == (
        '554 5.6.0 Attachment "locked.pdf": the PDF is password-protected'
    )


def test_too_many_pages_gets_552_with_both_numbers(
    make_config: Callable[..., Config], start_bridge: Callable[[Config], BridgeThread]
) -> None:
    config = make_config(
        faxboxes=[{"name": "main", "domains": ["fax.localhost"], "provider": "sim", "max_pages": 3}]
    )
    bridge = start_bridge(config)
    with smtp_client(bridge.smtp_address) as client:
        client.mail("alice@example.com")
        client.rcpt("12125550123@fax.localhost")
        code, text = client.data(fax_mail(pdf_pages=3).as_bytes(policy=SMTP))
    # Three pages of PDF plus the cover page (the mail has a subject and a body).
    assert f"{code} {text.decode()}" == "552 5.3.4 The fax would have 4 pages; the limit is 3"


def test_storage_failure_gets_451_and_no_job(bridge: BridgeThread) -> None:
    # A file where the raw-message directory should be: writing the message fails.
    (bridge.config.storage.data_dir / "messages").write_text("in the way")
    with smtp_client(bridge.smtp_address) as client:
        client.mail("alice@example.com")
        client.rcpt("12125550123@fax.localhost")
        code, text = client.data(fax_mail().as_bytes(policy=SMTP))
    assert f"{code} {text.decode()}" == (
        "451 4.3.0 Temporary local problem, please try again later"
    )
    assert bridge.store.jobs.recent() == []


def test_accepted_message_names_the_attempt_and_one_job_per_number(bridge: BridgeThread) -> None:
    numbers = ["12125550123@fax.localhost", "12125550124@fax.localhost"]
    with smtp_client(bridge.smtp_address) as client:
        client.mail("alice@example.com")
        for number in numbers:
            client.rcpt(number)
        code, text = client.data(fax_mail(to=numbers).as_bytes(policy=SMTP))
    reply = f"{code} {text.decode()}"
    record = last_attempt(bridge, outcome="accepted")
    assert reply == (
        f"250 2.0.0 Queued as {record['id']} (fax {record['fax_ids'][0]}, {record['fax_ids'][1]})"
    )
    assert record["reply"] == reply
    assert record["pages"] == 2  # cover page + one PDF page
    assert record["subject"] == "Contract"
    assert record["header_from"] == "Alice Example <alice@example.com>"
    assert record["from"] == "alice@example.com"
    assert record["faxbox"] == "main"
    assert [r["translated_number"] for r in record["recipients"]] == [
        "+12125550123",
        "+12125550124",
    ]
    jobs = {job["to"]: job for job in bridge.store.jobs.recent()}
    assert set(jobs) == {"+12125550123", "+12125550124"}
    assert {job["attempt_id"] for job in jobs.values()} == {record["id"]}


def test_auto_submitted_mail_is_refused_after_data(bridge: BridgeThread) -> None:
    message = fax_mail(headers={"Auto-Submitted": "auto-replied"})
    with smtp_client(bridge.smtp_address) as client:
        client.mail("alice@example.com")
        client.rcpt("12125550123@fax.localhost")
        code, text = client.data(message.as_bytes(policy=SMTP))
    assert f"{code} {text.decode()}" == "550 5.7.1 Automatic replies are not faxed"
    assert bridge.store.jobs.recent() == []


def test_auto_submitted_no_is_faxed(bridge: BridgeThread) -> None:
    message = fax_mail(headers={"Auto-Submitted": "no"})
    with smtp_client(bridge.smtp_address) as client:
        client.mail("alice@example.com")
        client.rcpt("12125550123@fax.localhost")
        code, _ = client.data(message.as_bytes(policy=SMTP))
    assert code == 250


def test_rset_ends_the_transaction_as_aborted(bridge: BridgeThread) -> None:
    with smtp_client(bridge.smtp_address) as client:
        client.mail("alice@example.com")
        client.rcpt("12125550123@fax.localhost")
        assert client.rset()[0] == 250
        client.mail("bob@example.com")
        client.rcpt("12125550124@fax.localhost")
        code, _ = client.data(fax_mail(sender="bob@example.com").as_bytes(policy=SMTP))
    assert code == 250
    aborted = last_attempt(bridge, outcome="aborted")
    assert aborted["from"] == "alice@example.com"
    assert aborted["recipients"][0]["accepted"] is True
    accepted = last_attempt(bridge, outcome="accepted")
    assert accepted["from"] == "bob@example.com"
    assert [r["address"] for r in accepted["recipients"]] == ["12125550124@fax.localhost"]


def test_two_transactions_in_one_session_are_independent(bridge: BridgeThread) -> None:
    with smtp_client(bridge.smtp_address) as client:
        client.mail("alice@example.com")
        client.rcpt("sales@fax.localhost")
        client.rcpt("12125550123@fax.localhost")
        first = client.data(fax_mail().as_bytes(policy=SMTP))
        client.mail("bob@example.com")
        client.rcpt("12125550124@fax.localhost")
        second = client.data(fax_mail(sender="bob@example.com").as_bytes(policy=SMTP))
    assert first[0] == 250 and second[0] == 250
    rows = wait_for(
        lambda: (r := bridge.store.smtplog.recent(outcome="accepted")) and len(r) == 2 and r
    )
    by_sender = {r["from"]: r for r in rows}
    assert len(by_sender["alice@example.com"]["recipients"]) == 2
    assert len(by_sender["bob@example.com"]["recipients"]) == 1
    assert len(by_sender["bob@example.com"]["fax_ids"]) == 1


def test_every_rcpt_refused_then_quit_is_logged_as_rejected(bridge: BridgeThread) -> None:
    with smtp_client(bridge.smtp_address) as client:
        client.mail("alice@example.com")
        client.rcpt("sales@fax.localhost")
        client.rcpt("1@example.org")
    record = last_attempt(bridge)
    assert record["outcome"] == "rejected"
    assert [r["accepted"] for r in record["recipients"]] == [False, False]
    assert record["errors"] == [
        '"sales" is not a valid fax number',
        "Relaying denied: example.org is not a fax domain here",
    ]


def test_client_leaving_after_rcpt_is_logged_as_aborted(bridge: BridgeThread) -> None:
    client = smtp_client(bridge.smtp_address)
    client.mail("alice@example.com")
    client.rcpt("12125550123@fax.localhost")
    client.close()  # no QUIT: the connection just drops
    record = last_attempt(bridge)
    assert record["outcome"] == "aborted"


@pytest.mark.parametrize("value", ["auto-generated", "auto-replied", "auto-notified"])
def test_every_auto_submitted_kind_is_refused(bridge: BridgeThread, value: str) -> None:
    message = fax_mail(headers={"Auto-Submitted": value})
    with smtp_client(bridge.smtp_address) as client:
        client.mail("alice@example.com")
        client.rcpt("12125550123@fax.localhost")
        assert client.data(message.as_bytes(policy=SMTP))[0] == 550


def test_a_250_for_fifty_faxes_stays_within_one_512_octet_line(
    make_config: Callable[..., Config], start_bridge: Callable[[Config], BridgeThread]
) -> None:
    bridge = start_bridge(make_config(smtp={"max_recipients": 50}))
    numbers = [f"1212555{n:04d}@fax.localhost" for n in range(50)]
    with smtp_client(bridge.smtp_address) as client:
        client.mail("alice@example.com")
        for number in numbers:
            assert client.rcpt(number)[0] == 250
        code, text = client.data(fax_mail(to=numbers).as_bytes(policy=SMTP))
    assert code == 250
    reply = f"250 {text.decode()}"
    assert len(reply.encode()) + 2 <= 512, len(reply)
    record = last_attempt(bridge)
    assert record["reply"] == reply
    shown = reply.split(": ", 1)[1].split(" and ")[0].split(", ")
    assert reply.startswith(f"250 2.0.0 Queued as {record['id']} (50 faxes: ")
    assert reply.endswith(f" and {50 - len(shown)} more)")
    assert shown == record["fax_ids"][: len(shown)]
    assert len(record["fax_ids"]) == 50


def test_no_reply_line_passes_512_octets() -> None:
    long = "550 5.1.3 " + "é" * 400
    (fitted,) = within_line_limit(long).split("\r\n")
    assert len(fitted.encode()) == 510 or len(fitted.encode()) == 509  # a 2-octet é not split
    assert fitted.endswith("...") and fitted.startswith("550 5.1.3 éé")
    assert within_line_limit("250-one\r\n250 two") == "250-one\r\n250 two"
