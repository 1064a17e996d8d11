"""The README's `console` examples, run as written against `make run`'s configuration.

A new user copies them into a shell in a fresh checkout: each must work there. The test copies
config.example.yaml into an empty directory (only the two ports are changed, to free ones, and
an API token is added for the curl example), links the checkout's `.venv` beside it, serves it
with `.venv/bin/faxbridge serve` and runs every `$ ` line of every console block in bash. The
example ids in the README are replaced by the ids the first command really got.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import httpx
import pytest
import yaml

from tests.conftest import free_port
from tests.helpers import wait_for
from tests.messages import make_pdf

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
EXAMPLE_ATTEMPT, EXAMPLE_JOB = "1a201dd15f2007b18", "1a201dd16088c5cf6"
QUEUED = re.compile(r"Queued as (\w+) \(fax (\w+)\)")
TOKEN = "readme-example-token"


def console_blocks(text: str) -> list[list[tuple[str, list[str]]]]:
    """Each console block as (command, the lines the README shows it printing)."""
    blocks = []
    for block in re.findall(r"```console\n(.*?)```", text, flags=re.S):
        commands: list[tuple[str, list[str]]] = []
        pending = ""
        for line in block.splitlines():
            if pending:
                pending += "\n" + line
            elif line.startswith("$ "):
                pending = line[2:]
            elif commands:
                commands[-1][1].append(line)
                continue
            if pending and not pending.endswith("\\"):
                commands.append((pending, []))
                pending = ""
        blocks.append(commands)
    return blocks


def test_the_readme_has_the_examples_this_test_runs() -> None:
    commands = [c for block in console_blocks(README.read_text()) for c, _ in block]
    assert any(c.startswith("swaks ") for c in commands)
    assert any(c.startswith(".venv/bin/faxbridge smtplog list") for c in commands)
    assert any(c.startswith("curl ") for c in commands)
    assert not [c for c in commands if c.startswith("faxbridge ")], "not on the PATH in a checkout"


@pytest.fixture
def checkout(tmp_path: Path) -> tuple[Path, int, int]:
    if not (ROOT / ".venv" / "bin" / "faxbridge").exists():
        pytest.skip("no .venv/bin/faxbridge in this checkout (run `make test`)")
    smtp_port, http_port = free_port(), free_port()
    text = (ROOT / "config.example.yaml").read_text()
    text = text.replace("127.0.0.1:2525", f"127.0.0.1:{smtp_port}")
    text = text.replace("127.0.0.1:8025", f"127.0.0.1:{http_port}")
    data = yaml.safe_load(text)
    data["http"]["api_tokens"] = [TOKEN]
    (tmp_path / "config.example.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    (tmp_path / ".venv").symlink_to(ROOT / ".venv")
    (tmp_path / "contract.pdf").write_bytes(make_pdf("contract", 2))
    return tmp_path, smtp_port, http_port


def test_every_console_example_runs_as_written(checkout: tuple[Path, int, int]) -> None:
    directory, smtp_port, http_port = checkout
    env = {**os.environ, "TOKEN": TOKEN}
    env.pop("FAXBRIDGE_CONFIG", None)
    with open(directory / "bridge.log", "wb") as log:
        # `make run` is `.venv/bin/faxbridge serve -c config.example.yaml` in the checkout.
        server = subprocess.Popen(
            [".venv/bin/faxbridge", "serve", "-c", "config.example.yaml"],
            cwd=directory,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:

        def ready() -> bool:
            assert server.poll() is None, (directory / "bridge.log").read_text()
            try:
                return httpx.get(f"http://127.0.0.1:{http_port}/readyz").status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(ready, timeout_s=90, what="make run's bridge")
        ids: dict[str, str] = {}
        ran = 0
        for block in console_blocks(README.read_text()):
            for command, shown in block:
                for example, real in ids.items():
                    command = command.replace(example, real)
                command = command.replace("127.0.0.1:2525", f"127.0.0.1:{smtp_port}")
                command = command.replace("127.0.0.1:8025", f"127.0.0.1:{http_port}")
                done = subprocess.run(
                    ["bash", "-c", command],
                    cwd=directory,
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=120,
                )
                output = done.stdout + done.stderr
                assert done.returncode == 0, f"$ {command}\n{output}"
                ran += 1
                if command.startswith("swaks "):
                    found = QUEUED.search(output)
                    assert found, output
                    ids = {EXAMPLE_ATTEMPT: found.group(1), EXAMPLE_JOB: found.group(2)}
                    for line in shown:  # the replies the README shows, ids aside
                        if line.startswith("<-") and "Queued as" not in line:
                            assert line in output, f"README shows {line!r}; swaks said:\n{output}"
                if "smtplog list" in command and "--json" not in command and shown:
                    assert output.split("\n")[0].split() == shown[0].split(), output
                if command.startswith("curl "):
                    assert '"status": "success"' in output or '"status":"success"' in output
                    assert ids[EXAMPLE_ATTEMPT] in output
                    job = ids[EXAMPLE_JOB]
                    wait_for(
                        lambda job=job: "delivered" in _job(directory, env, job),  # type: ignore[misc]
                        timeout_s=30,
                        what="the README's fax to be delivered",
                    )
        assert ran >= 6
    finally:
        server.terminate()
        server.wait(60)


def _job(directory: Path, env: dict[str, str], job_id: str) -> str:
    return subprocess.run(
        [".venv/bin/faxbridge", "jobs", "show", job_id],
        cwd=directory,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
