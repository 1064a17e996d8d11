"""Memory under slow senders: S connections each part-way through a big DATA, side by side.

Each of S sessions (default 20) sends MAIL, RCPT, DATA and then MB megabytes (default 20) of a
message it never finishes, the way scanners on a slow uplink or an attacker do. Measured, in
one run, for a bare aiosmtpd sink (which keeps DATA in memory) and for the bridge (which spools
DATA past 1 MiB to an unnamed file): the server's resident memory before and while the
sessions hold their data, and its peak. Then the sessions hang up, and one normal mail checks
that the bridge is still answering.

    python bench/slow_senders.py [--sessions 20] [--megabytes 20]
"""

from __future__ import annotations

import argparse
import smtplib
import socket
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from smtp_throughput import (  # bench scripts run as plain files
    HOST,
    RECIPIENT,
    SENDER,
    BenchError,
    children,
    free_port,
    memory_kib,
    start_bridge,
    start_sink,
    stop,
    wait_ready,
    write_config,
)

LINE = b"A" * 998 + b"\r\n"  # a full-length line, as base64 scans arrive


def open_session(port: int) -> socket.socket:
    sock = socket.create_connection((HOST, port), timeout=30)
    reader = sock.makefile("rb")

    def expect(code: bytes) -> None:
        while True:
            line = reader.readline()
            if not line:
                raise BenchError("the server hung up")
            if line[3:4] != b"-":
                break
        if not line.startswith(code):
            raise BenchError(f"expected {code.decode()}, got {line!r}")

    expect(b"220")
    for command, code in (
        (b"EHLO bench.example.com", b"250"),
        (f"MAIL FROM:<{SENDER}>".encode(), b"250"),
        (f"RCPT TO:<{RECIPIENT}>".encode(), b"250"),
        (b"DATA", b"354"),
    ):
        sock.sendall(command + b"\r\n")
        expect(code)
    return sock


def hold_data(port: int, sessions: int, megabytes: int) -> list[socket.socket]:
    """Open the sessions and send each one's data, unfinished."""
    held = [open_session(port) for _ in range(sessions)]
    block = b"Subject: slow sender\r\n\r\n" + LINE * (1024 * 1024 // len(LINE))
    for _ in range(megabytes):
        for sock in held:
            sock.sendall(block)
            block = LINE * (1024 * 1024 // len(LINE))
    return held


def tree_rss_kib(pid: int) -> int:
    total = memory_kib(pid).get("VmRSS", 0)
    for child in children(pid):
        try:
            total += memory_kib(child).get("VmRSS", 0)
        except OSError:
            continue
    return total


def measure(name: str, pid: int, port: int, args: argparse.Namespace) -> dict[str, float]:
    before = tree_rss_kib(pid)
    held = hold_data(port, args.sessions, args.megabytes)
    time.sleep(1.0)  # let the server read what is in its socket buffers
    during = tree_rss_kib(pid)
    peak = memory_kib(pid).get("VmHWM", 0)
    for sock in held:
        sock.close()
    print(
        f"{name:14} before {before / 1024:6.0f} MiB   holding {during / 1024:6.0f} MiB   "
        f"main-process peak {peak / 1024:6.0f} MiB   growth {(during - before) / 1024:6.0f} MiB"
    )
    return {"before": before, "during": during, "peak": peak}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--megabytes", type=int, default=20)
    args = parser.parse_args(argv)
    print(f"{args.sessions} sessions, each {args.megabytes} MB into an unfinished DATA")
    sink, sink_port = start_sink()
    try:
        assert sink.pid is not None
        sink_figures = measure("aiosmtpd sink", sink.pid, sink_port, args)
    finally:
        stop(sink)
    with tempfile.TemporaryDirectory(prefix="faxbridge-slow-") as tmp:
        workdir = Path(tmp)
        smtp_port, http_port = free_port(), free_port()
        config = write_config(workdir, smtp_port, http_port)
        log_path = workdir / "bridge.log"
        bridge = start_bridge(config, log_path)
        try:
            wait_ready(bridge, http_port, log_path)
            bridge_figures = measure("faxbridge", bridge.pid, smtp_port, args)
            with smtplib.SMTP(HOST, smtp_port, timeout=30) as client:
                code, _ = client.noop()
            print(f"after the sessions hung up the bridge still answers: {code}")
            spool = list((workdir / "spool").glob("*"))
            print(f"files left in the spool directory: {len(spool)}")
        finally:
            stop(bridge)
    growth_sink = sink_figures["during"] - sink_figures["before"]
    growth_bridge = bridge_figures["during"] - bridge_figures["before"]
    print(
        f"growth while holding: bridge {growth_bridge / 1024:.0f} MiB vs aiosmtpd sink "
        f"{growth_sink / 1024:.0f} MiB (ratio {growth_bridge / max(growth_sink, 1):.2f})"
    )
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as exc:
        print(f"bench failed: {exc}", file=sys.stderr)
        sys.exit(1)
