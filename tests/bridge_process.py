"""Run `python -m bridge serve` as a real process, for tests that signal it or run two."""

from __future__ import annotations

import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from bridge.config import Config, parse_config, split_host_port
from tests.helpers import wait_for


@dataclass
class BridgeProcess:
    config: Config
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def smtp_address(self) -> tuple[str, int]:
        return split_host_port(self.config.smtp.listen)

    @property
    def http_url(self) -> str:
        host, port = split_host_port(self.config.http.listen)
        return f"http://{host}:{port}"

    def wait_ready(self) -> BridgeProcess:
        def probe() -> bool:
            assert self.process.poll() is None, f"the bridge exited:\n{self.log.read_text()}"
            try:
                return httpx.get(f"{self.http_url}/readyz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(probe, timeout_s=60, what="the bridge to be ready")
        return self

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def start_bridge_process(data: dict[str, Any], directory: Path, name: str) -> BridgeProcess:
    """Write `data` as `<name>.yaml` in `directory` and serve it; output goes to `<name>.log`."""
    config_path = directory / f"{name}.yaml"
    config_path.write_text(yaml.safe_dump(data))
    log = directory / f"{name}.log"
    with log.open("ab") as out:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen(
            [sys.executable, "-m", "bridge", "serve", "-c", str(config_path)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return BridgeProcess(parse_config(data), process, log)


def connection_refused(address: tuple[str, int]) -> bool:
    try:
        with socket.create_connection(address, timeout=1):
            return False
    except ConnectionRefusedError:
        return True
