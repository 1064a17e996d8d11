"""SMTP intake throughput: Postfix smtp-sink, a bare aiosmtpd sink and the bridge, one run.

For each of two mails (13.6 kB with a 1-page scanned PDF; 3.8 MB with 10 grey JPEG pages,
see `bench_mail.py`) Postfix's `smtp-source -s 20` sends N copies to each server in turn,
while one more client (the probe) sends copies one after another on its own connection and
times each from its final "." to the 250. Per server it prints msg/s, the ratio to the
aiosmtpd sink, accept latency p50/p99 (the probe's), CPU ms per message (the whole process
tree: the bridge with its document pool) and peak RSS (the sum of VmHWM over that tree).

The bridge runs its whole intake (parse, convert, cover page, files, smtplog, fsync, commit)
with the simulator provider; its fax worker is held (`bridge_without_deliveries.py`), so no
delivery runs in the window. The run fails unless every message sent to the bridge (probe
included) became exactly one accepted smtplog attempt with exactly one fax job.

    python bench/smtp_throughput.py [--small 300] [--large 30] [--sessions 20]
                                    [--postgres URL] [--no-sqlite] [--keep]

`--postgres URL` adds a bridge on PostgreSQL (a fresh schema, dropped at the end).
"""

from __future__ import annotations

import argparse
import os
import platform
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_mail import RECIPIENT, SENDER, Mail, write_mails
from bench_servers import (
    HOST,
    BenchError,
    Server,
    cpu_s,
    find_tool,
    peak_rss_kib,
    start_aiosmtpd_sink,
    start_bridge,
    start_smtp_sink,
    tree,
)


# -- the latency probe ---------------------------------------------------------------------------
class Probe(threading.Thread):
    """One more client: sends the mail again and again until told to stop, timing each
    final "." → 250 (what a sender waits for once its last byte is out)."""

    def __init__(self, port: int, mail: Mail) -> None:
        super().__init__(name="probe", daemon=True)
        self.port = port
        self.body = _wire_body(mail.path.read_bytes())
        self.stopping = threading.Event()
        self.latencies_s: list[float] = []
        self.error: str | None = None

    def run(self) -> None:
        try:
            with socket.create_connection((HOST, self.port), timeout=300) as sock:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no Nagle wait
                replies = sock.makefile("rb")
                _expect(replies, b"220")
                sock.sendall(b"EHLO probe.localhost\r\n")
                _expect(replies, b"250")
                while not self.stopping.is_set():
                    for command in (f"MAIL FROM:<{SENDER}>", f"RCPT TO:<{RECIPIENT}>"):
                        sock.sendall(command.encode() + b"\r\n")
                        _expect(replies, b"250")
                    sock.sendall(b"DATA\r\n")
                    _expect(replies, b"354")
                    sock.sendall(self.body)
                    started = time.perf_counter()
                    sock.sendall(b".\r\n")
                    _expect(replies, b"250")
                    self.latencies_s.append(time.perf_counter() - started)
                sock.sendall(b"QUIT\r\n")
        except (OSError, BenchError) as exc:
            self.error = str(exc)


def _wire_body(data: bytes) -> bytes:
    lines = data.replace(b"\r\n", b"\n").split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return b"".join((b"." + line if line.startswith(b".") else line) + b"\r\n" for line in lines)


def _expect(replies: object, code: bytes) -> None:
    assert hasattr(replies, "readline")
    while True:
        line: bytes = replies.readline()
        if not line:
            raise BenchError("the server closed the probe's connection")
        if not line.startswith(code):
            raise BenchError(f"probe expected {code.decode()}, got {line.decode().strip()!r}")
        if line[3:4] != b"-":
            return


# -- one measurement -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Result:
    server: str
    mail: str
    messages: int  # sent by smtp-source
    probes: int
    seconds: float
    cpu_s: float
    peak_rss_kib: int  # the process and its children (the bridge's pool) together
    main_rss_kib: int  # the process alone
    latencies_ms: list[float]

    @property
    def rate(self) -> float:
        return self.messages / self.seconds

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def measure(server: Server, mail: Mail, messages: int, sessions: int) -> Result:
    pids = tree(server.pid)
    cpu_before = cpu_s(pids)
    probe = Probe(server.port, mail)
    command = [find_tool("smtp-source"), "-s", str(sessions), "-m", str(messages), "-d"]
    command += ["-F", str(mail.path), "-M", "bench.localhost", "-f", SENDER, "-t", RECIPIENT]
    command.append(f"{HOST}:{server.port}")
    timeout_s = 120 + messages * (2.0 if mail.size > 1e6 else 0.5)
    started = time.perf_counter()
    probe.start()
    try:
        done = subprocess.run(command, capture_output=True, check=False, timeout=timeout_s)
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"smtp-source did not finish within {timeout_s:.0f} s") from exc
    finally:
        probe.stopping.set()
    seconds = time.perf_counter() - started
    probe.join(300)
    if done.returncode != 0 or done.stderr.strip():
        raise BenchError(
            f"smtp-source against {server.name} exited with {done.returncode}: "
            + done.stderr.decode(errors="replace").strip()
        )
    if probe.error or not probe.latencies_s:
        raise BenchError(f"the probe against {server.name} failed: {probe.error or 'no reply'}")
    pids = tree(server.pid)
    return Result(
        server=server.name,
        mail=mail.name,
        messages=messages,
        probes=len(probe.latencies_s),
        seconds=seconds,
        cpu_s=cpu_s(pids) - cpu_before,
        peak_rss_kib=peak_rss_kib(pids),
        main_rss_kib=peak_rss_kib([server.pid]),
        latencies_ms=[x * 1000 for x in probe.latencies_s],
    )


def check_jobs(server: Server, expected: int) -> None:
    """Every message sent became one accepted attempt with exactly one fax job."""
    import sqlalchemy as sa

    from bridge.store.db import make_engine
    from bridge.store.schema import fax_jobs, smtplog

    assert server.storage_url is not None
    engine = make_engine(server.storage_url)
    try:
        with engine.connect() as conn:
            outcomes = dict(
                conn.execute(
                    sa.select(smtplog.c.outcome, sa.func.count()).group_by(smtplog.c.outcome)
                ).all()
            )
            jobs = conn.execute(sa.select(sa.func.count()).select_from(fax_jobs)).scalar_one()
            per_attempt = sa.select(fax_jobs.c.attempt_id).group_by(fax_jobs.c.attempt_id)
            attempts_with_one = conn.execute(
                sa.select(sa.func.count()).select_from(
                    per_attempt.having(sa.func.count() == 1).subquery()
                )
            ).scalar_one()
    finally:
        engine.dispose()
    if not (outcomes == {"accepted": expected} and jobs == attempts_with_one == expected):
        raise BenchError(
            f"{expected} messages sent to the bridge, but smtplog outcomes {outcomes}, "
            f"{jobs} fax jobs, {attempts_with_one} attempts with exactly one job; "
            f"see {server.log}"
        )


# -- the run ------------------------------------------------------------------------------------
def run(args: argparse.Namespace, workdir: Path) -> tuple[list[Result], dict[str, Mail]]:
    mails = write_mails(workdir)
    counts = {"small": args.small, "large": args.large}
    stores: list[tuple[str, Callable[[Path], tuple[str, Callable[[], None]]]]] = []
    if not args.no_sqlite:
        stores.append(("SQLite", lambda d: (f"sqlite:///{d / 'faxbridge.db'}", lambda: None)))
    if args.postgres:
        stores.append(("PostgreSQL", lambda d: _pg_schema(args.postgres)))
    results: list[Result] = []
    for mail in mails.values():
        messages = counts[mail.name]
        if messages < 1:
            continue
        print(f"{mail.label}: {messages} messages, {args.sessions} sessions", flush=True)
        for start in (lambda: start_smtp_sink(workdir), start_aiosmtpd_sink):
            server = start()
            try:
                results.append(measure(server, mail, messages, args.sessions))
            finally:
                server.stop()
        for store, make_store in stores:
            folder = workdir / f"bridge-{mail.name}-{store}"
            folder.mkdir()
            url, drop = make_store(folder)
            try:
                server = start_bridge(folder, url)
                try:
                    result = measure(server, mail, messages, args.sessions)
                    check_jobs(server, result.messages + result.probes)
                finally:
                    server.stop()
            finally:
                drop()
            results.append(replace(result, server=f"faxbridge, {store}"))
    return results, mails


def _pg_schema(url: str) -> tuple[str, Callable[[], None]]:
    import psycopg

    schema = f"bench_{secrets.token_hex(6)}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")

    def drop() -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")

    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options=-csearch_path%3D{schema}", drop


def table(results: list[Result], mails: dict[str, str]) -> str:
    head = (
        "| mail | server | msg/s | ÷ aiosmtpd | accept p50 | accept p99 | CPU ms/msg "
        "| peak RSS (main + pool) |\n"
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
    )
    rows = [head]
    for mail, label in mails.items():
        mine = [r for r in results if r.mail == mail]
        base = next((r.rate for r in mine if r.server == "aiosmtpd sink"), None)
        for r in mine:
            ratio = f"{r.rate / base:.3f}" if base else "-"
            rows.append(
                f"| {label} | {r.server} | {r.rate:,.1f} | {ratio} | {r.percentile(0.5):.1f} ms "
                f"| {r.percentile(0.99):.1f} ms | {r.cpu_s * 1000 / (r.messages + r.probes):.1f} "
                f"| {_rss(r)} |"
            )
    return "\n".join(rows)


def _rss(r: Result) -> str:
    if r.peak_rss_kib == r.main_rss_kib:
        return f"{r.peak_rss_kib / 1024:.0f} MiB"
    pool = (r.peak_rss_kib - r.main_rss_kib) / 1024
    return f"{r.peak_rss_kib / 1024:.0f} MiB ({r.main_rss_kib / 1024:.0f} + {pool:.0f})"


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{model}, {os.cpu_count()} CPUs, {memory:.0f} GiB; {platform.system()} "
        f"{platform.release()}; Python {platform.python_version()}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--small", type=int, default=300, metavar="N", help="13.6 kB mails (300)")
    parser.add_argument("--large", type=int, default=30, metavar="N", help="3.8 MB mails (30)")
    parser.add_argument("--sessions", type=int, default=20, metavar="S", help="parallel (20)")
    parser.add_argument("--postgres", metavar="URL", help="also run the bridge on PostgreSQL")
    parser.add_argument("--no-sqlite", action="store_true", help="skip the bridge on SQLite")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)
    if args.sessions < 1 or min(args.small, args.large) < 0:
        parser.error("--sessions must be at least 1, counts at least 0")

    workdir = Path(tempfile.mkdtemp(prefix="faxbridge-bench-"))
    began = time.monotonic()
    try:
        results, mails = run(args, workdir)
        labels = {mail.name: mail.label for mail in mails.values()}
        print()
        print(table(results, labels))
        print(
            f"\nsmtp-source -s {args.sessions} -d, plus the probe; "
            f"{sum(r.messages + r.probes for r in results)} messages in "
            f"{time.monotonic() - began:.0f} s. Machine: {machine()}"
        )
        return 0
    except BenchError as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 1
    finally:
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
