"""SMTP intake throughput: a bare aiosmtpd sink against the real bridge, same message, one run.

Postfix's `smtp-source` sends N copies of one pre-formatted mail (a 1-page PDF for
12125550123@fax.localhost) over S parallel sessions, first to an aiosmtpd server whose
handle_DATA only answers "250 OK", then to `python -m bridge serve` on a generated config
(simulator provider, SQLite and Maildir in a temporary directory). It prints messages per
second for both, their ratio, the bridge's memory and its per-message latency, and checks in
the smtplog that the bridge accepted every message (so the figure is not of refused mail).

    python bench/smtp_throughput.py [--messages 400] [--sessions 20] [--reconnect] [--keep]

All traffic goes to 127.0.0.1; both servers are stopped (SIGTERM) before it exits.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import formatdate
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import yaml

HOST = "127.0.0.1"
SENDER = "bench@example.com"
RECIPIENT = "12125550123@fax.localhost"
SMTP_SOURCE_PATHS = ("/usr/sbin/smtp-source", "/usr/bin/smtp-source")
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0


class BenchError(Exception):
    """Stops the benchmark with one readable line."""


# -- the message ---------------------------------------------------------------------------
def one_page_pdf() -> bytes:
    from fpdf import FPDF

    pdf = FPDF(format="letter")
    pdf.add_page()
    pdf.set_font("helvetica", size=14)
    pdf.cell(text="faxbridge benchmark: one page")
    pdf.ln(12)
    pdf.set_font("helvetica", size=11)
    for line in range(40):
        pdf.cell(text=f"Line {line + 1:02d}: The quick brown fox jumps over the lazy dog.")
        pdf.ln(6)
    return bytes(pdf.output())


def write_message(path: Path) -> int:
    """The mail smtp-source sends; returns its size in bytes.

    LF line ends on purpose: `smtp-source -F` strips the LF and appends CRLF to each line, so
    a CRLF file would arrive as CR CR LF.
    """
    message = EmailMessage()
    message["From"] = f"Benchmark <{SENDER}>"
    message["To"] = RECIPIENT
    message["Date"] = formatdate(localtime=False)
    message.add_attachment(
        one_page_pdf(), maintype="application", subtype="pdf", filename="bench.pdf"
    )
    data = message.as_bytes()  # email.policy.compat32 joins lines with "\n"
    path.write_bytes(data)
    return len(data)


# -- the bare aiosmtpd sink (its own process) -----------------------------------------------
class SinkHandler:
    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        return "250 OK"


async def _serve_sink(conn: Connection) -> None:
    from aiosmtpd.smtp import SMTP

    loop = asyncio.get_running_loop()
    handler = SinkHandler()
    server = await loop.create_server(
        lambda: SMTP(handler, hostname="sink.localhost"), host=HOST, port=0
    )
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    conn.send(server.sockets[0].getsockname()[1])
    conn.close()
    async with server:
        await stop.wait()


def sink_main(conn: Connection) -> None:
    asyncio.run(_serve_sink(conn))


def start_sink() -> tuple[multiprocessing.process.BaseProcess, int]:
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe(duplex=False)
    process = context.Process(target=sink_main, args=(child,), name="aiosmtpd-sink")
    process.start()
    child.close()
    if not parent.poll(READY_TIMEOUT_S):
        stop(process)
        raise BenchError("the aiosmtpd sink did not start")
    port = parent.recv()
    assert isinstance(port, int)
    return process, port


# -- the bridge (a subprocess) --------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def write_config(workdir: Path, smtp_port: int, http_port: int) -> Path:
    config = {
        "smtp": {"listen": f"{HOST}:{smtp_port}", "hostname": "fax.localhost"},
        "http": {"listen": f"{HOST}:{http_port}", "public_url": f"http://{HOST}:{http_port}"},
        "storage": {"url": f"sqlite:///{workdir / 'faxbridge.db'}", "data_dir": str(workdir)},
        "mail": {
            "from": "Fax Bridge <fax-noreply@fax.localhost>",
            "transport": "maildir",
            "maildir": str(workdir / "mail"),
        },
        "providers": {"sim": {"type": "simulator", "delay_s": 0.5}},
        "faxboxes": [
            {
                "name": "main",
                "domains": ["fax.localhost"],
                "provider": "sim",
                "caller_id": "+12125550100",
                "default_region": "US",
                "allowed_countries": [1],
            }
        ],
    }
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def start_bridge(config: Path, log_path: Path) -> subprocess.Popen[bytes]:
    with open(log_path, "wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "bridge", "serve", "-c", str(config)],
            cwd=config.parent,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def wait_ready(process: subprocess.Popen[bytes], http_port: int, log_path: Path) -> None:
    """Poll GET /readyz until it answers 200."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    url = f"http://{HOST}:{http_port}/readyz"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchError(f"the bridge exited with {process.returncode}:\n{tail(log_path)}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    raise BenchError(f"the bridge was not ready within {READY_TIMEOUT_S:.0f} s:\n{tail(log_path)}")


def tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@dataclass(frozen=True)
class SmtpLogSummary:
    outcomes: dict[str, int]
    latencies_s: list[float]


def read_smtplog(config: Path) -> SmtpLogSummary:
    """Every attempt, through the CLI (`faxbridge smtplog list --json`)."""
    command = [sys.executable, "-m", "bridge", "smtplog", "list", "-c", str(config)]
    result = subprocess.run(
        [*command, "--limit", "1000000", "--json"],
        capture_output=True,
        check=False,
        timeout=120,
    )
    if result.returncode != 0:
        raise BenchError(f"smtplog list failed: {result.stderr.decode(errors='replace')}")
    records: list[dict[str, Any]] = json.loads(result.stdout)
    outcomes: dict[str, int] = {}
    latencies: list[float] = []
    for record in records:
        outcomes[record["outcome"]] = outcomes.get(record["outcome"], 0) + 1
        if record["outcome"] == "accepted" and record["created"] and record["finished"]:
            created = datetime.fromisoformat(record["created"])
            finished = datetime.fromisoformat(record["finished"])
            latencies.append((finished - created).total_seconds())
    return SmtpLogSummary(outcomes, latencies)


# -- measuring -------------------------------------------------------------------------------
def smtp_source() -> str:
    for path in SMTP_SOURCE_PATHS:
        if os.access(path, os.X_OK):
            return path
    found = shutil.which("smtp-source")
    if found is None:
        raise BenchError("smtp-source not found: run `make system-deps` (Debian package postfix)")
    return found


def drive(port: int, message: Path, args: argparse.Namespace) -> float:
    """Send the messages with smtp-source; return the wall time in seconds."""
    command = [smtp_source(), "-s", str(args.sessions), "-m", str(args.messages)]
    command += [] if args.reconnect else ["-d"]
    command += ["-F", str(message), "-M", "bench.localhost", "-f", SENDER, "-t", RECIPIENT]
    command.append(f"{HOST}:{port}")
    timeout_s = 60 + args.messages * 0.5
    started = time.perf_counter()
    try:
        result = subprocess.run(command, capture_output=True, check=False, timeout=timeout_s)
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"smtp-source did not finish within {timeout_s:.0f} s") from exc
    elapsed = time.perf_counter() - started
    if result.returncode != 0 or result.stderr.strip():
        raise BenchError(
            f"smtp-source exited with {result.returncode}: "
            + result.stderr.decode(errors="replace").strip()
        )
    return elapsed


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of one process, in KiB."""
    values: dict[str, int] = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0])
    return values


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of one process (all its threads) so far."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu_s(pid: int) -> tuple[float, float]:
    """CPU seconds of a process and of its children (the bridge's document pool)."""
    return cpu_s(pid), sum(cpu_s(child) for child in children(pid))


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def stop(process: subprocess.Popen[bytes] | multiprocessing.process.BaseProcess) -> None:
    if isinstance(process, subprocess.Popen):
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                print(f"pid {process.pid} ignored SIGTERM for {STOP_TIMEOUT_S:.0f} s; killed")
                process.kill()
                process.wait()
    elif process.is_alive():
        process.terminate()
        process.join(STOP_TIMEOUT_S)
        if process.is_alive():
            process.kill()
            process.join()


def mib(kib: int) -> str:
    return f"{kib / 1024:.0f} MiB"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--messages", type=int, default=400, metavar="N", help="in all (400)")
    parser.add_argument("--sessions", type=int, default=20, metavar="S", help="parallel (20)")
    parser.add_argument(
        "--reconnect", action="store_true", help="a new connection per message (no -d)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)
    if args.messages < 1 or args.sessions < 1:
        parser.error("--messages and --sessions must be at least 1")

    workdir = Path(tempfile.mkdtemp(prefix="faxbridge-bench-"))
    servers: list[subprocess.Popen[bytes] | multiprocessing.process.BaseProcess] = []
    try:
        message = workdir / "message.eml"
        size = write_message(message)
        print(
            f"{args.messages} messages of {size} bytes (1-page PDF), {args.sessions} sessions, "
            f"{'a connection per message' if args.reconnect else 'connections reused (-d)'}"
        )

        sink, sink_port = start_sink()
        servers.append(sink)
        sink_s = drive(sink_port, message, args)

        smtp_port, http_port = free_port(), free_port()
        config = write_config(workdir, smtp_port, http_port)
        bridge = start_bridge(config, workdir / "bridge.log")
        servers.append(bridge)
        wait_ready(bridge, http_port, workdir / "bridge.log")
        cpu_before = tree_cpu_s(bridge.pid)
        bridge_s = drive(smtp_port, message, args)
        if bridge.poll() is not None:
            raise BenchError(f"the bridge exited with {bridge.returncode} during the run")
        cpu_after = tree_cpu_s(bridge.pid)
        main_mem = memory_kib(bridge.pid)
        pool_mem = [memory_kib(child) for child in children(bridge.pid)]

        log = read_smtplog(config)
        accepted = log.outcomes.get("accepted", 0)
        if accepted != args.messages:
            raise BenchError(
                f"the bridge accepted {accepted} of {args.messages} messages "
                f"(smtplog outcomes: {log.outcomes}); see {workdir / 'bridge.log'}"
            )

        print(f"\n{'target':<8} {'messages':>9} {'seconds':>9} {'msg/s':>9}")
        for name, seconds in (("sink", sink_s), ("bridge", bridge_s)):
            print(f"{name:<8} {args.messages:>9} {seconds:>9.2f} {args.messages / seconds:>9.1f}")
        print(f"ratio bridge/sink: {sink_s / bridge_s:.3f}")
        print(
            f"bridge memory after the run: VmRSS {mib(main_mem['VmRSS'])} "
            f"(peak VmHWM {mib(main_mem['VmHWM'])}); its {len(pool_mem)} child processes "
            f"(document pool, multiprocessing tracker): VmRSS "
            f"{mib(sum(m['VmRSS'] for m in pool_mem))} in all"
        )
        main_cpu, pool_cpu = cpu_after[0] - cpu_before[0], cpu_after[1] - cpu_before[1]
        print(
            f"bridge CPU during the run: {main_cpu:.1f} s in the main process "
            f"({main_cpu / bridge_s:.0%} of one core), {pool_cpu:.1f} s in the document pool "
            f"({os.cpu_count()} CPUs)"
        )
        if log.latencies_s:
            ms = sorted(x * 1000 for x in log.latencies_s)
            print(
                "bridge latency, MAIL FROM to just before the commit (smtplog created→finished): "
                f"mean {statistics.fmean(ms):.0f} ms, median {statistics.median(ms):.0f} ms, "
                f"p95 {ms[int(len(ms) * 0.95) - 1]:.0f} ms"
            )
        print(
            "per-message time seen by a client (seconds * sessions / messages): "
            f"sink {sink_s * args.sessions / args.messages * 1000:.0f} ms, "
            f"bridge {bridge_s * args.sessions / args.messages * 1000:.0f} ms"
        )
        return 0
    except BenchError as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 1
    finally:
        for server in reversed(servers):
            stop(server)
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
