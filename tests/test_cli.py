"""`faxbridge smtplog|jobs|inbound|mail` in a subprocess, against a store a real bridge filled."""

from __future__ import annotations

import json
from collections.abc import Callable
from email.policy import SMTP
from pathlib import Path
from typing import Any

import httpx
import pytest

from bridge.config import Config
from tests import smtp_capture as capture_fixtures
from tests.bridge_runner import BridgeThread
from tests.cli_runner import MakeConfig, assert_error, config_writer, fields, header, run_cli
from tests.helpers import reply_text, smtp_client, wait_for
from tests.messages import fax_mail
from tests.smtp_capture import CaptureServer

JOB_KEYS = {
    "id",
    "attempt_id",
    "faxbox",
    "to",
    "status",
    "reason",
    "provider",
    "provider_fax_id",
    "attempts",
    "pages",
    "created",
    "updated",
}
INBOUND_KEYS = {"id", "faxbox", "from", "to", "pages", "received", "emailed"}
MAIL_KEYS = {"id", "kind", "to", "status", "attempts", "last_error"}

smtp_capture = capture_fixtures.smtp_capture


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    return tmp_path / "config.yaml"


@pytest.fixture
def make_config(tmp_path: Path, db_url: str, config_file: Path) -> MakeConfig:
    """conftest's `make_config`, also written to `config_file` for the subprocess."""
    return config_writer(tmp_path, db_url, config_file)


def send_fax(bridge: BridgeThread, number: str) -> str:
    """Mail one fax to `number`@fax.localhost; return the job id from the 250 reply."""
    with smtp_client(bridge.smtp_address) as client:
        client.mail("alice@example.com")
        client.rcpt(f"{number}@fax.localhost")
        code, text = client.data(fax_mail(to=f"{number}@fax.localhost").as_bytes(policy=SMTP))
    assert code == 250, text
    return text.decode().rsplit("(fax ", 1)[1].rstrip(")")


def final_job(bridge: BridgeThread, job_id: str) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        job = bridge.store.jobs.get(job_id)
        return job if job and job["status"] in ("delivered", "failed") else None

    return wait_for(probe, timeout_s=30, what=f"a final status for job {job_id}")


def settled_mails(bridge: BridgeThread, count: int) -> list[dict[str, Any]]:
    def probe() -> list[dict[str, Any]] | None:
        mails = bridge.store.outbox.recent()
        done = [m for m in mails if m["status"] != "pending"]
        return mails if len(done) >= count else None

    return wait_for(probe, timeout_s=30, what=f"{count} settled outbox mail(s)")


# -- jobs ------------------------------------------------------------------------------------
def test_jobs_list_shows_a_delivered_fax_as_a_table_and_as_json(
    bridge: BridgeThread, config_file: Path
) -> None:
    job_id = send_fax(bridge, "12125550123")
    final_job(bridge, job_id)

    table = run_cli("jobs", "list", config=config_file).ok()
    assert header(table) == [
        "ID",
        "CREATED (UTC)",
        "STATUS",
        "REASON",
        "TO",
        "PAGES",
        "TRIES",
        "FAXBOX",
    ]
    (row,) = table.lines[1:]
    assert row.split()[0] == job_id
    assert row.split()[3:] == ["delivered", "+12125550123", "2", "1", "main"]

    (record,) = run_cli("jobs", "list", "--json", config=config_file).json()
    assert JOB_KEYS <= record.keys()
    assert record["id"] == job_id
    assert record["status"] == "delivered"
    assert record["reason"] is None
    assert record["provider"] == "sim"
    assert record["to"] == "+12125550123"
    assert record["created"].startswith("20")


def test_jobs_list_is_newest_first_and_honours_limit_and_status(
    bridge: BridgeThread, config_file: Path
) -> None:
    first = send_fax(bridge, "12125550123")
    second = send_fax(bridge, "12125550001")  # busy
    final_job(bridge, first)
    final_job(bridge, second)

    ids = [r["id"] for r in run_cli("jobs", "list", "--json", config=config_file).json()]
    assert ids == [second, first]
    newest = run_cli("jobs", "list", "--limit", "1", "--json", config=config_file).json()
    assert [r["id"] for r in newest] == [second]
    failed = run_cli("jobs", "list", "--status", "failed", config=config_file).ok()
    assert [line.split()[0] for line in failed.lines[1:]] == [second]
    assert "busy" in failed.lines[1].split()
    queued = run_cli("jobs", "list", "--status", "queued", config=config_file).ok()
    assert queued.lines == ["(none)"]


def test_jobs_show_prints_the_status_history(bridge: BridgeThread, config_file: Path) -> None:
    job_id = send_fax(bridge, "12125550123")
    final_job(bridge, job_id)

    shown = run_cli("jobs", "show", job_id, config=config_file).ok()
    shown_fields = fields(shown)
    assert shown_fields["id"] == job_id
    assert shown_fields["status"] == "delivered"
    assert shown_fields["to"] == "+12125550123"
    assert "history:" in shown.lines
    statuses = [line.split("status=")[1].split(",")[0] for line in shown.lines if "status=" in line]
    # (a provider's own "submitted" may repeat the worker's: the order is what matters)
    assert list(dict.fromkeys(statuses)) == [
        "queued",
        "submitting",
        "submitted",
        "sending",
        "delivered",
    ]

    record = run_cli("jobs", "show", job_id, "--json", config=config_file).json()
    assert record["id"] == job_id
    assert [h["status"] for h in record["history"]] == statuses


def test_jobs_retry_queues_a_failed_job_again(bridge: BridgeThread, config_file: Path) -> None:
    job_id = send_fax(bridge, "12125550001")  # busy on the simulator
    assert final_job(bridge, job_id)["reason"] == "busy"
    bridge.stop()  # no worker to pick the job up while we look at it

    retried = run_cli("jobs", "retry", job_id, config=config_file).ok()
    assert retried.stdout == f"fax job {job_id} is queued again\n"

    record = run_cli("jobs", "show", job_id, "--json", config=config_file).json()
    assert record["status"] == "queued"
    assert record["reason"] is None
    assert record["attempts"] == 0
    assert record["history"][-1]["detail"] == "retried by an admin"
    queued = run_cli("jobs", "list", "--status", "queued", config=config_file).ok()
    assert queued.lines[1].split()[0] == job_id

    again = run_cli("jobs", "retry", job_id, config=config_file)
    assert_error(again, f"Fax job {job_id} is queued; only failed, cancelled or unknown jobs")


def test_jobs_cancel_of_a_delivered_job_is_refused_with_a_sentence(
    bridge: BridgeThread, config_file: Path
) -> None:
    job_id = send_fax(bridge, "12125550123")
    final_job(bridge, job_id)

    result = run_cli("jobs", "cancel", job_id, config=config_file)

    assert_error(
        result,
        f"Fax job {job_id} is delivered; only queued jobs, or jobs the provider has not sent "
        "yet, can be cancelled",
    )
    assert result.stdout == ""
    assert bridge.store.jobs.get(job_id)["status"] == "delivered"  # type: ignore[index]


# -- smtplog ---------------------------------------------------------------------------------
def test_smtplog_show_of_a_refused_attempt_shows_the_reply(
    bridge: BridgeThread, config_file: Path
) -> None:
    with smtp_client(bridge.smtp_address) as client:
        client.mail("alice@example.com")
        reply = reply_text(client.rcpt("12125550123@example.org"))
    assert reply.startswith("550 5.7.1")
    wait_for(lambda: bridge.store.smtplog.recent(outcome="rejected"), what="the refused attempt")

    listing = run_cli("smtplog", "list", "--outcome", "rejected", config=config_file).ok()
    assert header(listing) == [
        "ID",
        "CREATED (UTC)",
        "OUTCOME",
        "FAXBOX",
        "FROM",
        "PAGES",
        "REPLY",
    ]
    (row,) = listing.lines[1:]
    attempt_id = row.split()[0]
    assert "rejected" in row
    assert row.endswith(reply)

    shown = run_cli("smtplog", "show", attempt_id, config=config_file).ok()
    shown_fields = fields(shown)
    assert shown_fields["outcome"] == "rejected"
    assert shown_fields["reply"] == reply
    assert shown_fields["error"] == "Relaying denied: example.org is not a fax domain here"
    assert shown_fields["from"] == "alice@example.com"
    assert f"reply={reply}" in shown.stdout

    record = run_cli("smtplog", "show", attempt_id, "--json", config=config_file).json()
    assert record["outcome"] == "rejected"
    assert record["recipients"][0]["address"] == "12125550123@example.org"
    assert record["recipients"][0]["accepted"] is False


def test_smtplog_list_of_an_accepted_attempt_names_its_fax(
    bridge: BridgeThread, config_file: Path
) -> None:
    job_id = send_fax(bridge, "12125550123")

    (record,) = run_cli("smtplog", "list", "--json", config=config_file).json()
    assert record["outcome"] == "accepted"
    assert record["fax_ids"] == [job_id]
    assert record["reply"].startswith(f"250 2.0.0 Queued as {record['id']}")
    assert run_cli("smtplog", "list", "--faxbox", "other", config=config_file).lines == ["(none)"]
    future = run_cli("smtplog", "list", "--since", "2999-01-01", config=config_file).ok()
    assert future.lines == ["(none)"]


# -- inbound and mail ------------------------------------------------------------------------
def test_fax_to_the_own_inbound_number_shows_in_inbound_and_mail(
    bridge: BridgeThread, config_file: Path
) -> None:
    job_id = send_fax(bridge, "12125550100")  # the faxbox's own inbound number
    assert final_job(bridge, job_id)["status"] == "delivered"
    settled_mails(bridge, count=2)

    table = run_cli("inbound", "list", config=config_file).ok()
    assert header(table) == ["ID", "RECEIVED (UTC)", "FAXBOX", "FROM", "TO", "PAGES", "EMAILED"]
    (row,) = table.lines[1:]
    fax_id = row.split()[0]
    assert row.split()[3:] == ["main", "+12125550100", "+12125550100", "2", "yes"]

    (record,) = run_cli("inbound", "list", "--json", config=config_file).json()
    assert INBOUND_KEYS <= record.keys()
    assert record["id"] == fax_id
    assert (record["from"], record["to"], record["pages"]) == ("+12125550100",) * 2 + (2,)
    assert record["emailed"] is True

    shown = run_cli("inbound", "show", fax_id, config=config_file).ok()
    shown_fields = fields(shown)
    assert shown_fields["emailed"] == "yes"
    assert Path(shown_fields["document"]).read_bytes().startswith(b"%PDF")
    assert run_cli("inbound", "show", fax_id, "--json", config=config_file).json()["id"] == fax_id

    mails = run_cli("mail", "list", "--json", config=config_file).json()
    assert all(MAIL_KEYS <= m.keys() for m in mails)
    by_kind = {m["kind"]: m for m in mails}
    assert by_kind["report"]["to"] == ["alice@example.com"]
    assert by_kind["inbound"]["to"] == ["frontdesk@office.localhost"]
    assert {m["status"] for m in mails} == {"sent"}
    assert {m["last_error"] for m in mails} == {None}

    listing = run_cli("mail", "list", config=config_file).ok()
    assert header(listing) == ["ID", "CREATED (UTC)", "KIND", "STATUS", "TRIES", "TO", "LAST ERROR"]
    assert sorted(line.split()[3] for line in listing.lines[1:]) == ["inbound", "report"]
    assert run_cli("mail", "list", "--status", "failed", config=config_file).lines == ["(none)"]

    sent = by_kind["report"]["id"]
    assert_error(
        run_cli("mail", "retry", sent, config=config_file), f"Mail {sent} was already sent"
    )


def test_mail_retry_sends_a_mail_the_relay_refused_once_it_accepts(
    make_config: MakeConfig,
    start_bridge: Callable[[Config], BridgeThread],
    smtp_capture: Callable[..., CaptureServer],
    config_file: Path,
) -> None:
    relay = smtp_capture(refuse_rcpt="550 5.1.1 Mailbox unavailable")
    bridge = start_bridge(
        make_config(mail={"transport": "smtp", "smtp": {"host": relay.host, "port": relay.port}})
    )
    final_job(bridge, send_fax(bridge, "12125550123"))
    settled_mails(bridge, count=1)

    failed = run_cli("mail", "list", "--status", "failed", config=config_file).ok()
    (row,) = failed.lines[1:]
    mail_id = row.split()[0]
    assert row.endswith("550 5.1.1 Mailbox unavailable <alice@example.com>")

    relay.refuse_rcpt = None
    retried = run_cli("mail", "retry", mail_id, config=config_file).ok()
    assert retried.stdout == f"mail {mail_id} is queued again\n"

    wait_for(lambda: relay.envelopes, timeout_s=30, what="the report at the relay")
    assert relay.envelopes[0].rcpt_tos == ["alice@example.com"]
    record = wait_for(
        lambda: (m := bridge.store.outbox.get(mail_id)) and m["status"] == "sent" and m,
        what="the mail marked sent",
    )
    shown = run_cli("mail", "show", mail_id, "--json", config=config_file).json()
    assert shown["status"] == record["status"] == "sent"
    assert shown["last_error"] is None


# -- what a mistyped id looks like -----------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["jobs", "show", "nope"], "No fax job nope. `faxbridge jobs list` shows the ids."),
        (["jobs", "retry", "nope"], "No fax job nope."),
        (["jobs", "cancel", "nope"], "No fax job nope."),
        (["smtplog", "show", "nope"], "No smtplog record nope."),
        (["inbound", "show", "nope"], "No inbound fax nope. `faxbridge inbound list`"),
        (["mail", "show", "nope"], "No outbox mail nope."),
        (["mail", "retry", "nope"], "No outbox mail nope. `faxbridge mail list`"),
    ],
)
def test_an_unknown_id_is_one_clear_sentence(
    make_config: MakeConfig, config_file: Path, args: list[str], says: str
) -> None:
    make_config()
    assert_error(run_cli(*args, config=config_file), says)


def test_jobs_cancel_of_a_fax_the_provider_has_not_sent_cancels_it_there(
    make_config: MakeConfig, start_bridge: Callable[[Config], BridgeThread], config_file: Path
) -> None:
    # The simulator takes an hour to send, so the fax is still at the provider.
    bridge = start_bridge(make_config(providers={"sim": {"delay_s": 3600, "callbacks": False}}))
    job_id = send_fax(bridge, "12125550123")
    wait_for(lambda: bridge.store.jobs.get(job_id)["status"] == "submitted")  # type: ignore[index]
    fax_id = bridge.store.jobs.get(job_id)["provider_fax_id"]  # type: ignore[index]

    result = run_cli("jobs", "cancel", job_id, config=config_file).ok()

    assert result.stdout == f"fax job {job_id} is cancelled\n"
    job = bridge.store.jobs.get(job_id)
    assert job is not None and job["status"] == "cancelled"
    assert job["history"][-1]["detail"] == f"cancelled by an admin; cancelled at sim (fax {fax_id})"
    state = bridge.config.storage.data_dir / "simulator" / "state" / f"{fax_id}.json"
    assert '"cancelled": true' in state.read_text()


def test_callbacks_the_bridge_could_not_act_on_are_listed(
    make_config: MakeConfig, start_bridge: Callable[[Config], BridgeThread], config_file: Path
) -> None:
    token = "sim-callback-token-1"
    bridge = start_bridge(make_config(providers={"sim": {"callback_token": token}}))
    inbound = {
        "event": "inbound",
        "fax_id": "sim-lost-1",
        "from": "+13125550199",
        "to": "+13125550111",  # no faxbox has this number
        "pages": 1,
        "received": "2026-12-07T10:00:00+00:00",
    }
    reply = httpx.post(f"{bridge.http_url}/callbacks/sim?token={token}", json=inbound)
    assert reply.status_code == 200

    listed = run_cli("callbacks", "list", "--json", config=config_file).json()

    [kept] = listed
    assert (kept["provider"], kept["event"], kept["provider_fax_id"]) == (
        "sim",
        "inbound",
        "sim-lost-1",
    )
    assert "no faxbox has that number in inbound.numbers" in kept["reason"]
    assert json.loads(kept["body"]) == inbound
