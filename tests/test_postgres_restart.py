"""PostgreSQL restarted under load (issue "Faults" point 4): honest replies, recovery by itself.

Five SMTP clients send twelve mails each to one bridge process while the bridge's PostgreSQL —
a private server (tests/private_postgres.py), never the shared one — is restarted twice,
`pg_ctl restart -m fast` and then `-m immediate` (a crash: no shutdown checkpoint). A client
that gets a 4xx sends the same message again, as an MTA would. What must hold:

- every reply is 250 or 451 4.3.0 (never a 5xx, never a 250 for a mail not stored);
- intake works again after each restart without restarting the bridge (same process);
- every message that got a 250 is exactly one job (the repeat guard answers a retry of a
  message that was stored although its client saw no 250), transmitted once to the provider
  (`POST /v1/faxes` per job, counted at the mFax emulator) and delivered;
- nothing was faxed without a 250.
"""

from __future__ import annotations

import smtplib
import threading
import time
from collections import Counter
from collections.abc import Iterator
from email.policy import SMTP
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.bridge_process import BridgeProcess, start_bridge_process
from tests.conftest import PG_URL
from tests.crash_kit import Settler, callback_url, mfax_config, sends_per_job
from tests.helpers import smtp_client, wait_for
from tests.messages import fax_mail
from tests.private_postgres import PrivatePostgres, missing_reason
from tests.providers.emulators.mfax import MFaxHarness, make_harness

# The SQLite pass has nothing to restart: this runs once, in `make pytest-postgres`.
pytestmark = pytest.mark.skipif(
    not PG_URL, reason="a PostgreSQL restart: runs in the PostgreSQL pass (make pytest-postgres)"
)

CLIENTS = 5
MAILS_PER_CLIENT = 12
TOTAL = CLIENTS * MAILS_PER_CLIENT


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    reason = missing_reason()
    if reason is not None:
        print(f"skipped: {reason}")
        pytest.skip(reason)
    server = PrivatePostgres().start()
    try:
        yield server
    finally:
        server.stop()


class Client(threading.Thread):
    """Sends its mails one by one over one connection, each until it gets 250 (a 4xx or a
    dropped connection: the same bytes again after a pause, as an MTA's queue would)."""

    def __init__(self, number: int, bridge: BridgeProcess, accepted: Counter[str]) -> None:
        super().__init__(daemon=True)
        self.bridge, self.accepted = bridge, accepted
        self.replies: list[tuple[int, str]] = []  # every reply to a DATA (or to MAIL/RCPT)
        self.lock = threading.Lock()
        self.mails = []
        for n in range(MAILS_PER_CLIENT):
            to = f"121255{number:02d}{n:03d}@fax.localhost"
            self.mails.append((to, fax_mail(to=to, sender=f"client{number}@example.com")))
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._run()
        except BaseException as exc:  # reported by the test
            self.error = exc

    def _run(self) -> None:
        client: smtplib.SMTP | None = None
        for to, message in self.mails:
            data = message.as_bytes(policy=SMTP)
            deadline = time.monotonic() + 90
            while True:
                assert time.monotonic() < deadline, f"{to}: no 250 in 90 s: {self.replies[-5:]}"
                try:
                    if client is None:
                        client = smtp_client(self.bridge.smtp_address)
                    client.sendmail(str(message["From"]).split("<")[1].rstrip(">"), [to], data)
                except smtplib.SMTPResponseException as exc:
                    self.replies.append((exc.smtp_code, exc.smtp_error.decode()))
                    client = self._reset(client)
                except smtplib.SMTPRecipientsRefused as exc:
                    ((code, text),) = exc.recipients.values()
                    self.replies.append((code, text.decode()))
                    client = self._reset(client)
                except (smtplib.SMTPServerDisconnected, OSError) as exc:
                    self.replies.append((0, f"connection lost: {exc}"))
                    client = None
                else:
                    self.replies.append((250, "accepted"))
                    with self.lock:
                        self.accepted[str(message["Message-ID"])] += 1
                    break
                time.sleep(0.5)
        if client is not None:
            client.quit()

    @staticmethod
    def _reset(client: smtplib.SMTP | None) -> smtplib.SMTP | None:
        try:
            if client is not None:
                client.rset()
            return client
        except (smtplib.SMTPException, OSError):
            return None


def jobs_by_message_id(url: str) -> dict[str, list[str]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT s.message_id, j.id, j.status FROM fax_jobs j JOIN smtplog s "
            "ON s.id = j.attempt_id"
        ).fetchall()
    out: dict[str, list[str]] = {}
    for message_id, job_id, _status in rows:
        out.setdefault(message_id, []).append(job_id)
    return out


def delivered(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM fax_jobs WHERE status = 'delivered'").fetchone()
    return int(row[0]) if row else 0


def test_postgres_restarts_under_load_give_250_or_451_and_fax_every_accepted_mail_once(
    tmp_path: Path, private_postgres: PrivatePostgres
) -> None:
    url = private_postgres.url
    harness: MFaxHarness
    with make_harness() as harness:
        bridge = start_bridge_process(mfax_config(tmp_path, url, harness), tmp_path, "bridge")
        settler = Settler(harness, lambda: [callback_url(bridge.http_url)], 0.3)
        try:
            bridge.wait_ready()
            settler.start()
            accepted: Counter[str] = Counter()
            clients = [Client(n, bridge, accepted) for n in range(CLIENTS)]
            for client in clients:
                client.start()
            away = []
            for mode, after in (("fast", TOTAL // 4), ("immediate", TOTAL // 2)):
                wait_for(lambda n=after: sum(accepted.values()) >= n, 120, f"{after} mails in")
                away.append((mode, private_postgres.restart(mode)))
            for client in clients:
                client.join(150)
                assert not client.is_alive(), "a client is still sending"
                assert client.error is None, client.error
            replies = [reply for client in clients for reply in client.replies]
            print(
                f"PostgreSQL away: {away}; replies: {Counter(code for code, _ in replies)}; "
                f"refusals: {[r for r in replies if r[0] != 250][:5]}"
            )
            # Every refusal said: try again later, the storage failed (or dropped the line).
            for code, text in replies:
                assert code == 250 or (code == 451 and "4.3.0" in text) or code == 0, text
            # The same process took every mail: intake came back by itself.
            assert bridge.process.poll() is None
            assert httpx.get(f"{bridge.http_url}/readyz", timeout=5).status_code == 200
            assert len(accepted) == TOTAL

            wait_for(lambda: delivered(url) == TOTAL, 120, f"{TOTAL} deliveries")
            by_message = jobs_by_message_id(url)
            assert set(by_message) == set(accepted)  # no job for a mail never answered 250
            assert {len(jobs) for jobs in by_message.values()} == {1}  # one job per message
            sends = sends_per_job(harness)
            assert set(sends) == {job for jobs in by_message.values() for job in jobs}
            assert set(sends.values()) == {1}  # each transmitted once
        finally:
            settler.halt.set()
            bridge.stop()
