"""`faxbridge healthcheck` (the Dockerfile's HEALTHCHECK) against a real bridge process.

Inside a container the check must see what a client outside sees. The "outside" address here is
one of a network namespace this test makes (`unshare -n`, a veth pair holding 10.203.0.2), so
no packet leaves the machine; the bridge and the check run in that namespace.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from bridge.config import parse_config
from bridge.store import Store
from tests.bridge_runner import BridgeThread
from tests.cli_runner import assert_error, run_cli, write_config
from tests.conftest import base_config, deep_merge
from tests.helpers import wait_for

OUTSIDE = "10.203.0.2"  # the namespace's own non-loopback address
_NETNS_SETUP = (
    "ip link set lo up && ip link add fb0 type veth peer name fb1 && "
    f"ip addr add {OUTSIDE}/24 dev fb0 && ip link set fb0 up && ip link set fb1 up"
)


def _netns_unavailable() -> str | None:
    if shutil.which("unshare") is None or shutil.which("nsenter") is None:
        return "unshare/nsenter (util-linux) are not installed"
    if shutil.which("ip") is None:
        return "ip (iproute2) is not installed"
    probe = subprocess.run(
        ["unshare", "-n", "sh", "-c", _NETNS_SETUP], capture_output=True, text=True, check=False
    )
    if probe.returncode != 0:
        return f"cannot make a network namespace with a veth pair: {probe.stderr.strip()}"
    return None


@pytest.fixture(scope="module")
def netns() -> None:
    reason = _netns_unavailable()
    if reason:
        print(f"test_healthcheck: skipped: {reason}")
        pytest.skip(reason)


def _container_config(tmp_path: Path, **overrides: Any) -> Path:
    """The bridge as config.docker.yaml runs it: both listeners on every address."""
    data = deep_merge(base_config(tmp_path, f"sqlite:///{tmp_path}/faxbridge.db"), overrides)
    data["smtp"]["listen"] = "0.0.0.0:2525"
    data["http"]["listen"] = "0.0.0.0:8025"
    data["http"]["public_url"] = f"http://{OUTSIDE}:8025"
    path = tmp_path / "docker.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def _in_netns(pid: int, *args: str) -> subprocess.CompletedProcess[str]:
    """Run in the namespace of `pid`, which must already hold OUTSIDE (see container_bridge)."""
    return subprocess.run(
        ["nsenter", f"--net=/proc/{pid}/ns/net", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def container_bridge(netns: None, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    """`faxbridge serve` listening on 0.0.0.0 in its own network namespace."""
    config = _container_config(tmp_path)
    log = (tmp_path / "bridge.log").open("w")
    marker = tmp_path / "netns-ready"
    process = subprocess.Popen(
        [
            "unshare",
            "-n",
            "sh",
            "-c",
            f'{_NETNS_SETUP} && touch "$2" && exec "$0" -m bridge serve -c "$1"',
            sys.executable,
            str(config),
            str(marker),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        # Only once the namespace holds its address may anything be probed in it: before,
        # /proc/PID/ns/net is still this machine's own namespace.
        wait_for(marker.exists, timeout_s=30, what="the network namespace")
        yield process, config
    finally:
        process.terminate()
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        log.close()


def test_healthy_when_smtp_and_http_answer_on_the_outside_address(
    container_bridge: tuple[subprocess.Popen[str], Path], tmp_path: Path
) -> None:
    process, config = container_bridge
    check = [sys.executable, "-m", "bridge", "healthcheck", "-c", str(config)]
    # Before the bridge listens the check fails (Docker's start period covers that) …
    result = None
    for _ in range(120):
        assert process.poll() is None, (tmp_path / "bridge.log").read_text()
        result = _in_netns(process.pid, *check, "--timeout", "1")
        if result.returncode == 0:
            break
        assert "unhealthy: SMTP at" in result.stderr or "unhealthy: HTTP" in result.stderr, (
            result.stderr
        )
        subprocess.run(["sleep", "0.5"], check=True)
    assert result is not None and result.returncode == 0, result.stderr
    # … then it answers from the address a client outside the container connects to.
    assert result.stdout.startswith(f"healthy: SMTP {OUTSIDE}:2525 answered '220 fax.localhost")
    assert f"HTTP {OUTSIDE}:8025/healthz 200" in result.stdout
    # A probe every 30 s must not fill the SMTP log an admin searches: it is no attempt.
    assert _in_netns(process.pid, *check).returncode == 0
    process.terminate()  # a stopped bridge has written every attempt it logs
    assert process.wait(60) == 0
    store = Store(f"sqlite:///{tmp_path}/faxbridge.db", tmp_path / "var")
    try:
        assert store.smtplog.recent(limit=10) == []
    finally:
        store.close()


def test_unhealthy_when_nothing_listens_on_the_outside_address(netns: None, tmp_path: Path) -> None:
    config = _container_config(tmp_path)
    done = subprocess.run(
        [
            "unshare",
            "-n",
            "sh",
            "-c",
            f'{_NETNS_SETUP} && exec "$0" -m bridge healthcheck -c "$1"',
            sys.executable,
            str(config),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert done.stderr.strip() == (
        f"faxbridge: unhealthy: SMTP at {OUTSIDE}:2525 (smtp.listen 0.0.0.0:2525) cannot be "
        "reached: Connection refused."
    )


def test_unhealthy_when_smtp_listens_on_loopback_although_it_answers_there(
    start_bridge: Any, tmp_path: Path, db_url: str
) -> None:
    """The old check (GET 127.0.0.1/healthz) passed here while nothing outside could connect."""
    path = tmp_path / "loopback.yaml"
    data = write_config(path, tmp_path, db_url)
    bridge: BridgeThread = start_bridge(parse_config(data))
    assert httpx.get(f"{bridge.http_url}/healthz").status_code == 200
    host, port = bridge.smtp_address
    result = run_cli("healthcheck", config=path)
    line = assert_error(result)
    assert line == (
        f"faxbridge: unhealthy: smtp.listen is {host}:{port}, a loopback address: nothing "
        f"outside this container can reach it; listen on 0.0.0.0:{port} instead."
    )


def test_unhealthy_when_http_listens_on_localhost(tmp_path: Path) -> None:
    """Refused before anything is probed: provider callbacks could never arrive."""
    config = _container_config(tmp_path)
    data = yaml.safe_load(config.read_text())
    data["http"]["listen"] = "localhost:8025"
    config.write_text(yaml.safe_dump(data), encoding="utf-8")
    line = assert_error(run_cli("healthcheck", config=config))
    assert "http.listen is localhost:8025, a loopback address" in line
