"""Crash recovery, measured: kill -9 the bridge at bad moments, count what the provider got.

Every run serves `python -m bridge serve` processes against the mFax (Documo) emulator from
tests/providers/emulators (a real HTTP server that records every request and can stall one), so
"transmitted once" is counted where it matters: `POST /v1/faxes` requests per job, as the
provider received them. A settler thread plays the fax network: each fax the emulator holds is
finished (`success`) 0.5 s after it appears and the callback is posted to a live bridge; when
no bridge answers, the bridge's polling finds the result.

    python bench/crash_recovery.py                   # all three scenarios
    python bench/crash_recovery.py --only restart    # (a) only; also: in-flight, peers
    python bench/crash_recovery.py --db postgresql://postgres@127.0.0.1:5432/test

(a) `restart`: 20 faxes, kill -9 right after the last 250, restart; seconds from the restart to
    the last delivery, requests per job.
(b) `in-flight`: kill -9 while a send is in flight and the provider stalls 10 s before it takes
    the fax; after the restart the bridge must ask (history lookup) and adopt, not send again.
(c) `peers`: two bridges on one PostgreSQL (FAXBRIDGE_TEST_DB, --db, or a private server if
    neither is set), 200 faxes in flight, kill -9 one; time to drain, split between bridges,
    duplicate sends and duplicate reports (must be 0).

Each run exits non-zero when a bar is missed (30 s after the restart for (a) and (b), any
duplicate anywhere). Traffic goes only to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import mailbox
import os
import re
import secrets
import signal
import smtplib
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from email.policy import SMTP
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bridge.store import Store
from tests.bridge_process import BridgeProcess, start_bridge_process
from tests.crash_kit import Settler, callback_url, mfax_config, sends_per_job
from tests.helpers import smtp_client, wait_for
from tests.messages import fax_mail
from tests.providers.emulators.mfax import make_harness

BAR_S = 30.0
SENDING = re.compile(r"job (\w+): sending to")


class BenchFailed(Exception):
    """A bar was missed; the message says which."""


# -- the bridge side -----------------------------------------------------------------------
def send_mails(bridge: BridgeProcess, numbers: list[str]) -> list[str]:
    """One mail per number over one connection; every one must get 250. Returns Message-IDs."""
    ids = []
    with smtp_client(bridge.smtp_address) as client:
        for number in numbers:
            to = f"{number}@fax.localhost"
            message = fax_mail(to=to, sender="alice@example.com")
            refused = client.sendmail("alice@example.com", [to], message.as_bytes(policy=SMTP))
            if refused:
                raise BenchFailed(f"the bridge refused {to}: {refused}")
            ids.append(str(message["Message-ID"]))
    return ids


def statuses(store: Store) -> Counter[str]:
    return Counter(j["status"] for j in store.jobs.recent(limit=10_000))


def reports(maildir: Path) -> Counter[str]:
    if not (maildir / "new").is_dir():
        return Counter()
    box = mailbox.Maildir(maildir, create=False)
    return Counter(str(box[key]["In-Reply-To"]) for key in box.keys())


def wait_delivered(store: Store, total: int, timeout_s: float) -> float:
    """Block until `total` jobs are delivered; returns time.monotonic() at that moment."""
    wait_for(lambda: statuses(store)["delivered"] == total, timeout_s, f"{total} deliveries")
    return time.monotonic()


def kill9(bridge: BridgeProcess) -> None:
    os.kill(bridge.process.pid, signal.SIGKILL)
    bridge.process.wait(30)


@contextmanager
def database(url: str | None) -> Iterator[str]:
    """A fresh schema on `url` (PostgreSQL), a private server when `url` is "private", or None
    for SQLite (the caller's choice)."""
    private = None
    if url == "private":
        from tests.private_postgres import PrivatePostgres

        private = PrivatePostgres().start()
        url = private.url
    assert url is not None
    import psycopg

    schema = f"bench_{secrets.token_hex(5)}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in url else "?"
    try:
        yield f"{url}{sep}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")
        if private is not None:
            private.stop()


def check_once(counts: Counter[str], job_ids: set[str], what: str) -> int:
    duplicates = sum(n - 1 for n in counts.values() if n > 1)
    missing = job_ids - set(counts)
    print(
        f"  {what}: {sum(counts.values())} send requests for {len(job_ids)} jobs, "
        f"{duplicates} duplicate(s), {len(missing)} never sent"
    )
    return duplicates + len(missing)


# -- (a) kill -9 right after the last 250 --------------------------------------------------
def scenario_restart(directory: Path, db_url: str, faxes: int = 20) -> list[str]:
    problems = []
    with make_harness() as harness:
        data = mfax_config(directory, db_url, harness)
        bridge = start_bridge_process(data, directory, "bridge").wait_ready()
        live = [bridge]
        settler = Settler(harness, lambda: [callback_url(b.http_url) for b in live], 0.5)
        settler.start()
        store = Store(db_url, directory / "var")
        try:
            numbers = [f"1212555{n:04d}" for n in range(300, 300 + faxes)]
            send_mails(bridge, numbers[:-1])
            harness.hang_next(2.0)  # the provider is slow on the next call: a send in flight
            send_mails(bridge, numbers[-1:])
            kill9(bridge)  # right after the last 250
            at_kill = statuses(store)
            unfinished = {
                j["id"]: j["status"]
                for j in store.jobs.recent(limit=1000)
                if j["status"] not in ("submitted", "sending", "delivered")
            }
            print(
                f"  at the kill: {dict(at_kill)}; "
                f"sends so far {sum(sends_per_job(harness).values())}"
            )
            bridge = start_bridge_process(data, directory, "bridge")
            restarted = time.monotonic()
            live[:] = [bridge]
            bridge.wait_ready()
            print(f"  restart → ready: {time.monotonic() - restarted:.1f} s")
            last = wait_delivered(store, faxes, timeout_s=120)
            took = last - restarted
            print(f"  restart → last delivery: {took:.1f} s (bar {BAR_S:.0f} s)")
            if took > BAR_S:
                problems.append(f"(a) last delivery {took:.1f} s after the restart")
            jobs = {j["id"] for j in store.jobs.recent(limit=1000)}
            if check_once(sends_per_job(harness), jobs, "provider"):
                problems.append("(a) a fax was sent twice or never")
            for job_id in sorted(unfinished):
                record = store.jobs.get(job_id)
                assert record is not None
                print(f"  job {job_id}, {unfinished[job_id]} at the kill:")
                for h in record["history"]:
                    print(f"    {h['at']:%H:%M:%S.%f} {h['status']:<11} {h['detail']}")
            wait_for(lambda: sum(reports(directory / "var" / "mail").values()) >= faxes, 60)
            mailed = reports(directory / "var" / "mail")
            print(
                f"  reports: {sum(mailed.values())} for {faxes} mails, "
                f"max per mail {max(mailed.values())}"
            )
            if max(mailed.values()) > 1 or len(mailed) != faxes:
                problems.append("(a) a report mailed twice or never")
        finally:
            settler.halt.set()
            store.close()
            bridge.stop()
    return problems


# -- (b) kill -9 while the provider stalls on the send -------------------------------------
def scenario_in_flight(directory: Path, db_url: str, stall_s: float = 10.0) -> list[str]:
    problems = []
    with make_harness() as harness:
        data = mfax_config(directory, db_url, harness)
        bridge = start_bridge_process(data, directory, "bridge").wait_ready()
        live = [bridge]
        settler = Settler(harness, lambda: [callback_url(b.http_url) for b in live], 0.5)
        settler.start()
        store = Store(db_url, directory / "var")
        try:
            harness.hang_next(stall_s)  # takes the fax, but only `stall_s` after the request
            send_mails(bridge, ["12125550400"])
            wait_for(lambda: sum(sends_per_job(harness).values()) == 1, 30, "the send")
            sent_at = time.monotonic()
            kill9(bridge)
            [job] = store.jobs.recent()
            print(
                f"  at the kill: job {job['status']}, "
                f"{time.monotonic() - sent_at:.1f} s into the send"
            )
            bridge = start_bridge_process(data, directory, "bridge")
            restarted = time.monotonic()
            live[:] = [bridge]
            bridge.wait_ready()
            print(f"  restart → ready: {time.monotonic() - restarted:.1f} s")
            last = wait_delivered(store, 1, timeout_s=120)
            took = last - restarted
            print(
                f"  restart → delivery: {took:.1f} s (bar {BAR_S:.0f} s); the provider took "
                f"the fax {stall_s:.0f} s after the request"
            )
            if took > BAR_S:
                problems.append(f"(b) delivered {took:.1f} s after the restart")
            if check_once(sends_per_job(harness), {job["id"]}, "provider"):
                problems.append("(b) the fax was sent twice")
            record = store.jobs.get(job["id"])
            assert record is not None
            lookups = sum(1 for r in harness.requests if r.path == "/v1/fax/history")
            adopted = any("adopted" in h["detail"] for h in record["history"])
            print(
                f"  history lookups: {lookups}; adopted: {adopted}; attempts {record['attempts']}"
            )
            for h in record["history"]:
                print(f"    {h['at']:%H:%M:%S.%f} {h['status']:<11} {h['detail']}")
            if not adopted:
                problems.append("(b) the fax the provider took was not adopted")
        finally:
            settler.halt.set()
            store.close()
            bridge.stop()
    return problems


# -- (c) two bridges on one PostgreSQL, kill -9 one mid-flight -----------------------------
class FailoverClient(threading.Thread):
    """An MTA with two MX hosts: sends its mails to its own bridge while it lives, then to
    the other; a message cut off by the kill (or answered 4xx) is sent again, same bytes."""

    def __init__(
        self,
        order: list[BridgeProcess],
        live: list[BridgeProcess],
        numbers: list[str],
        accepted: Counter[str],
    ) -> None:
        super().__init__(daemon=True)
        self.order, self.live, self.numbers, self.accepted = order, live, numbers, accepted
        self.message_ids: list[str] = []
        self.by_bridge: Counter[int] = Counter()
        self.retries = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._run()
        except BaseException as exc:
            self.error = exc

    def _run(self) -> None:
        client: smtplib.SMTP | None = None
        target = self.order[0]
        for number in self.numbers:
            to = f"{number}@fax.localhost"
            message = fax_mail(to=to, sender="alice@example.com")
            data = message.as_bytes(policy=SMTP)
            deadline = time.monotonic() + 120
            while True:
                if time.monotonic() > deadline:
                    raise BenchFailed(f"{to}: no 250 in 120 s")
                try:
                    if client is None:
                        target = next(b for b in self.order if b in self.live)
                        client = smtp_client(target.smtp_address)
                    client.sendmail("alice@example.com", [to], data)
                    break
                except smtplib.SMTPResponseException as exc:
                    if exc.smtp_code >= 500:
                        raise BenchFailed(f"{to}: {exc.smtp_code} {exc.smtp_error!r}") from exc
                    client = None
                except (smtplib.SMTPException, OSError):
                    client = None
                self.retries += 1
                time.sleep(0.2)
            self.message_ids.append(str(message["Message-ID"]))
            self.by_bridge[self.order.index(target)] += 1
            self.accepted[str(message["Message-ID"])] += 1
        if client is not None:
            client.quit()


def jobs_per_message(db_url: str) -> Counter[str]:
    import psycopg

    with psycopg.connect(db_url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        rows = conn.execute(
            "SELECT s.message_id FROM fax_jobs j JOIN smtplog s ON s.id = j.attempt_id"
        ).fetchall()
    return Counter(str(row[0]) for row in rows)


def scenario_peers(directory: Path, db_url: str, faxes: int = 200) -> list[str]:
    problems = []
    with make_harness() as harness:
        bridges = [
            start_bridge_process(mfax_config(directory, db_url, harness), directory, name)
            for name in ("first", "second")
        ]
        first, second = bridges
        live = list(bridges)
        # Callbacks go to any live bridge, the killed one first while it lives (a balancer).
        settler = Settler(harness, lambda: [callback_url(b.http_url) for b in live], 1.0)
        store = Store(db_url, directory / "var")
        try:
            for bridge in bridges:
                bridge.wait_ready()
            settler.start()
            numbers = [f"1212556{n:04d}" for n in range(faxes)]
            accepted: Counter[str] = Counter()
            clients = [
                FailoverClient(
                    [first, second] if i % 2 == 0 else [second, first],
                    live,
                    numbers[i::4],
                    accepted,
                )
                for i in range(4)  # two clients per bridge
            ]
            began = time.monotonic()
            for client in clients:
                client.start()
            wait_for(lambda: sum(accepted.values()) >= faxes // 2, 600, "half the mails in")
            harness.hang_next(3.0)  # the next send stalls: one is in flight at the kill
            kill9(first)
            live.remove(first)
            killed = time.monotonic()
            at_kill = statuses(store)
            print(
                f"  kill -9 of the first bridge after {sum(accepted.values())} 250s: "
                f"{dict(at_kill)}"
            )
            for client in clients:
                client.join(600)
                if client.error is not None:
                    raise client.error
            message_ids = [m for client in clients for m in client.message_ids]
            print(
                f"  {len(message_ids)} mails answered 250 in {time.monotonic() - began:.1f} s; "
                f"by bridge: first {sum(c.by_bridge[c.order.index(first)] for c in clients)}, "
                f"second {sum(c.by_bridge[c.order.index(second)] for c in clients)}; "
                f"client retries {sum(c.retries for c in clients)}"
            )
            last = wait_delivered(store, faxes, timeout_s=600)
            print(
                f"  kill → all {faxes} delivered: {last - killed:.1f} s "
                f"(first 250 → last delivery {last - began:.1f} s)"
            )
            jobs = {j["id"] for j in store.jobs.recent(limit=10_000)}
            if check_once(sends_per_job(harness), jobs, "provider"):
                problems.append("(c) a fax sent twice or never")
            per_message = jobs_per_message(db_url)
            extra = sum(n - 1 for n in per_message.values())
            print(
                f"  jobs: {len(jobs)} for {len(set(message_ids))} Message-IDs "
                f"({extra} duplicate job(s))"
            )
            if extra or set(per_message) != set(message_ids):
                problems.append("(c) a mail became two jobs, or a job had no 250")
            maildir = directory / "var" / "mail"
            wait_for(lambda: len(reports(maildir)) >= faxes, 300, f"{faxes} reports")
            drained = time.monotonic()
            mailed = reports(maildir)
            print(
                f"  kill → all {faxes} reports mailed: {drained - killed:.1f} s; "
                f"{sum(mailed.values())} report files, max per mail {max(mailed.values())}"
            )
            if set(mailed) != set(message_ids) or max(mailed.values()) != 1:
                problems.append("(c) a report mailed twice or never")
            sent_by = [Counter(SENDING.findall(b.log.read_text())) for b in bridges]
            print(
                f"  send attempts by bridge: first {sum(sent_by[0].values())}, "
                f"second {sum(sent_by[1].values())}; jobs both tried: "
                f"{len(set(sent_by[0]) & set(sent_by[1]))}"
            )
            adopted = sum(
                1
                for job_id in jobs
                if any("adopted" in h["detail"] for h in (store.jobs.get(job_id) or {})["history"])
            )
            print(f"  sends cut off by the kill and adopted by the survivor: {adopted}")
        finally:
            settler.halt.set()
            store.close()
            for bridge in bridges:
                bridge.stop()
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["restart", "in-flight", "peers"])
    parser.add_argument(
        "--db",
        help="PostgreSQL URL (default: SQLite for (a)/(b); for (c) "
        "FAXBRIDGE_TEST_DB or a private server)",
    )
    parser.add_argument("--faxes", type=int, default=200, help="faxes for (c)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="faxbridge-crash-"))
    problems: list[str] = []
    runs: list[tuple[str, Callable[[Path, str], list[str]], bool]] = [
        ("restart", scenario_restart, False),
        ("in-flight", scenario_in_flight, False),
        ("peers", lambda d, u: scenario_peers(d, u, args.faxes), True),
    ]
    for name, run, needs_postgres in runs:
        if args.only and args.only != name:
            continue
        directory = root / name
        directory.mkdir()
        print(f"({name})")
        pg = args.db or (
            os.environ.get("FAXBRIDGE_TEST_DB") or "private" if needs_postgres else None
        )
        if pg is None:
            problems += run(directory, f"sqlite:///{directory}/faxbridge.db")
        else:
            with database(pg) as url:
                problems += run(directory, url)
    print("all bars met" if not problems else "MISSED: " + "; ".join(problems))
    if args.keep:
        print(f"kept {root}")
    else:
        import shutil

        shutil.rmtree(root, ignore_errors=True)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
