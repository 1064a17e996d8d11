"""The three servers of the throughput benchmark, and what is read off their processes.

- Postfix `smtp-sink`: C, one process, answers 250 to everything (the ceiling on this machine);
- a bare aiosmtpd server whose `handle_DATA` returns "250 OK", in its own process;
- the bridge (`bridge_without_deliveries.py`: `faxbridge serve`, fax worker held), on a
  generated config: simulator provider, SQLite or PostgreSQL, Maildir, free loopback ports.

Every server listens on 127.0.0.1 only and is stopped with SIGTERM (then SIGKILL after 30 s).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import yaml

HOST = "127.0.0.1"
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
BENCH = Path(__file__).resolve().parent


class BenchError(Exception):
    """Stops the benchmark with one readable line."""


@dataclass
class Server:
    name: str
    port: int
    pid: int
    stop: Callable[[], None]
    storage_url: str | None = None  # the bridge's store, where its jobs are counted
    log: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def find_tool(name: str) -> str:
    for folder in ("/usr/sbin", "/usr/bin"):
        if os.access(f"{folder}/{name}", os.X_OK):
            return f"{folder}/{name}"
    found = shutil.which(name)
    if found is None:
        raise BenchError(f"{name} not found: run `make system-deps` (Debian package postfix)")
    return found


def wait_port(port: int, alive: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if not alive():
            raise BenchError(f"{what} exited before it listened")
        try:
            with socket.create_connection((HOST, port), timeout=1) as sock:
                if sock.recv(4).startswith(b"220"):
                    return
        except OSError:
            time.sleep(0.05)
    raise BenchError(f"{what} did not listen on port {port} within {READY_TIMEOUT_S:.0f} s")


def _stopper(process: subprocess.Popen[bytes]) -> Callable[[], None]:
    def stop() -> None:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                print(f"pid {process.pid} ignored SIGTERM for {STOP_TIMEOUT_S:.0f} s; killed")
                process.kill()
                process.wait()

    return stop


# -- Postfix smtp-sink -------------------------------------------------------------------------
def start_smtp_sink(workdir: Path) -> Server:
    port = free_port()
    command = [find_tool("smtp-sink"), f"{HOST}:{port}", "256"]
    if os.geteuid() == 0:
        command[1:1] = ["-u", "postfix"]  # it refuses to keep running as root
    log = workdir / "smtp-sink.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    wait_port(port, lambda: process.poll() is None, "smtp-sink")
    return Server("Postfix smtp-sink", port, process.pid, _stopper(process), log=log)


# -- the bare aiosmtpd sink ----------------------------------------------------------------------
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


def start_aiosmtpd_sink() -> Server:
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe(duplex=False)
    process = context.Process(target=sink_main, args=(child,), name="aiosmtpd-sink")
    process.start()
    child.close()

    def stop() -> None:
        if process.is_alive():
            process.terminate()
            process.join(STOP_TIMEOUT_S)
            if process.is_alive():
                process.kill()
                process.join()

    if not parent.poll(READY_TIMEOUT_S):
        stop()
        raise BenchError("the aiosmtpd sink did not start")
    port = parent.recv()
    assert isinstance(port, int) and process.pid is not None
    return Server("aiosmtpd sink", port, process.pid, stop)


# -- the bridge --------------------------------------------------------------------------------
def write_config(workdir: Path, storage_url: str, smtp_port: int, http_port: int) -> Path:
    config = {
        "smtp": {"listen": f"{HOST}:{smtp_port}", "hostname": "fax.localhost"},
        "http": {"listen": f"{HOST}:{http_port}", "public_url": f"http://{HOST}:{http_port}"},
        "storage": {"url": storage_url, "data_dir": str(workdir)},
        "mail": {
            "from": "Fax Bridge <fax-noreply@fax.localhost>",
            "transport": "maildir",
            "maildir": str(workdir / "mail"),
        },
        "providers": {"sim": {"type": "simulator", "delay_s": 0.5}},
        # Neither mail has an Office attachment: no idle soffice in the figures.
        "documents": {"libreoffice": None},
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


def start_bridge(workdir: Path, storage_url: str) -> Server:
    workdir.mkdir(parents=True, exist_ok=True)
    smtp_port, http_port = free_port(), free_port()
    config = write_config(workdir, storage_url, smtp_port, http_port)
    log = workdir / "bridge.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, str(BENCH / "bridge_without_deliveries.py"), str(config)],
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = Server("faxbridge", smtp_port, process.pid, _stopper(process), storage_url, log)
    try:
        _wait_ready(process, http_port, log)
    except BaseException:
        server.stop()
        raise
    return server


def _wait_ready(process: subprocess.Popen[bytes], http_port: int, log: Path) -> None:
    """Poll GET /readyz until it answers 200 (the pool is warm by then)."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    url = f"http://{HOST}:{http_port}/readyz"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchError(f"the bridge exited with {process.returncode}:\n{tail(log)}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    raise BenchError(f"the bridge was not ready within {READY_TIMEOUT_S:.0f} s:\n{tail(log)}")


def tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# -- reading the processes ---------------------------------------------------------------------
def tree(pid: int) -> list[int]:
    """`pid` and its descendants (the bridge's document pool)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo += [child for child, parent in parents.items() if parent == current]
    return found


def cpu_s(pids: list[int]) -> float:
    """User + system CPU seconds of these processes (all their threads) so far."""
    total = 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def peak_rss_kib(pids: list[int]) -> int:
    """The sum of the processes' peak resident sets (VmHWM)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as status:
                for line in status:
                    if line.startswith("VmHWM:"):
                        total += int(line.split()[1])
        except OSError:
            continue
    return total
