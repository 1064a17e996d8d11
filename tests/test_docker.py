"""The Docker image: its Dockerfile read as Docker reads it (always), and where a Docker engine
answers (`docker info`), the image built and a fax sent through it.

hadolint is not available on the build machines, so the static checks below parse the
Dockerfile themselves: instructions joined across line continuations, JSON-form commands.
"""

from __future__ import annotations

import json
import mailbox
import os
import platform
import re
import secrets
import shlex
import shutil
import signal
import smtplib
import subprocess
import sys
import time
from collections.abc import Iterator
from email import message_from_bytes
from email import policy as email_policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from bridge.config import parse_config, split_host_port
from tests.bridge_process import connection_refused
from tests.conftest import base_config, free_port
from tests.helpers import smtp_client, wait_for
from tests.messages import fax_mail

ROOT = Path(__file__).resolve().parent.parent
CONFIG_IN_IMAGE = "/etc/faxbridge/config.yaml"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    found: list[tuple[str, str]] = []
    pending = ""
    for raw in (ROOT / "Dockerfile").read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue  # a comment inside a continued instruction
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        whole = (pending + line).strip()
        pending = ""
        name, _, args = whole.partition(" ")
        found.append((name.upper(), args.strip()))
    assert not pending, "the Dockerfile ends inside a continued line"
    return found


def only(name: str) -> str:
    matches = [args for instr, args in instructions() if instr == name]
    assert len(matches) == 1, f"{name}: {matches}"
    return matches[0]


def exec_form(args: str) -> list[str]:
    """A JSON-form command (`["tini", "--"]`): no shell between Docker and the program."""
    parsed = json.loads(args)
    assert isinstance(parsed, list) and all(isinstance(a, str) for a in parsed), args
    return parsed


def test_base_image_is_an_exact_python_version_the_tests_run_on() -> None:
    image = only("FROM")
    match = re.fullmatch(
        r"python:(\d+\.\d+\.\d+)-slim-(bookworm|trixie)(@sha256:[0-9a-f]{64})?", image
    )
    assert match, f"FROM {image} is not an exact python:X.Y.Z-slim-<debian> tag"
    assert match.group(1) == platform.python_version(), (
        "the image's Python differs from the one running these tests"
    )


def test_dependencies_come_from_the_lock_and_the_bridge_adds_none() -> None:
    runs = [args for instr, args in instructions() if instr == "RUN"]
    copies = [args for instr, args in instructions() if instr == "COPY"]
    assert any(c.split()[0] == "requirements.lock" for c in copies)
    installs = [r for r in runs if "pip install" in r]
    assert installs[0] == "pip install -r /src/requirements.lock"
    assert re.match(r"pip install --no-deps /src\b", installs[1]), installs[1]
    assert len(installs) == 2, installs
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    assert "!requirements.lock" in ignored  # else the build context has no lock


def test_runs_as_a_numeric_user_the_image_creates() -> None:
    user = only("USER")
    assert re.fullmatch(r"\d+:\d+", user), f"USER {user} is not numeric uid:gid"
    uid, gid = user.split(":")
    assert int(uid) >= 10000  # clear of any host account
    setup = " ".join(args for instr, args in instructions() if instr == "RUN")
    assert f"useradd --uid {uid} --gid {gid}" in setup
    assert f"groupadd --gid {gid}" in setup


def test_tini_from_debian_is_pid_1() -> None:
    entrypoint = exec_form(only("ENTRYPOINT"))
    assert entrypoint == ["/usr/bin/tini", "--"]
    apt = next(args for instr, args in instructions() if instr == "RUN" and "apt-get" in args)
    assert "tini" in shlex.split(apt)
    command = exec_form(only("CMD"))
    assert command == ["faxbridge", "serve", "-c", CONFIG_IN_IMAGE]
    assert only("STOPSIGNAL") == "SIGTERM"


def test_healthcheck_runs_faxbridge_healthcheck_on_the_served_config() -> None:
    args = only("HEALTHCHECK")
    options, sep, command = args.partition("CMD ")
    assert sep, args
    probe = exec_form(command)
    assert probe[:2] == ["faxbridge", "healthcheck"]
    assert probe[probe.index("-c") + 1] == CONFIG_IN_IMAGE
    timeout = float(probe[probe.index("--timeout") + 1])
    docker_timeout = re.search(r"--timeout=(\d+)s", options)
    assert docker_timeout, options
    # Two probes (SMTP, then HTTP) must fit in Docker's timeout, with time to start Python.
    assert 2 * timeout < int(docker_timeout.group(1))


def _compose_env() -> dict[str, str]:
    return {
        "POSTGRES_HOST": "db",
        "POSTGRES_USER": "faxbridge",
        "POSTGRES_PASSWORD": "secret",
        "POSTGRES_DB": "faxbridge",
        "FAXBRIDGE_HOSTNAME": "fax.example.com",
        "FAXBRIDGE_FAX_DOMAIN": "fax.example.com",
        "FAXBRIDGE_MAIL_DOMAIN": "example.com",
        "FAXBRIDGE_PUBLIC_URL": "https://fax.example.com",
        "FAXBRIDGE_RELAY_HOST": "host.docker.internal",
        "FAXBRIDGE_API_TOKEN": "compose-token",
    }


def test_the_image_config_listens_outside_and_closes_metrics_and_docs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in _compose_env().items():
        monkeypatch.setenv(name, value)
    data = yaml.safe_load((ROOT / "deploy" / "config.docker.yaml").read_text(encoding="utf-8"))
    config = parse_config(data, "deploy/config.docker.yaml")
    assert split_host_port(config.smtp.listen) == ("0.0.0.0", 2525)
    assert split_host_port(config.http.listen) == ("0.0.0.0", 8025)
    assert config.http.api_tokens == ["compose-token"]
    assert config.http.open_metrics is False and config.http.open_docs is False


class _NoDuplicates(yaml.SafeLoader):
    """A loader that refuses a key given twice (PyYAML keeps the last; Compose refuses)."""


def _mapping(loader: _NoDuplicates, node: yaml.MappingNode) -> dict[Any, Any]:
    keys = [loader.construct_object(key) for key, _ in node.value]
    duplicated = {key for key in keys if keys.count(key) > 1}
    assert not duplicated, f"line {node.start_mark.line + 1}: {duplicated} given twice"
    return loader.construct_mapping(node)


_NoDuplicates.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def test_compose_publishes_http_only_with_a_token_and_leaves_pid_1_to_tini() -> None:
    text = (ROOT / "deploy" / "docker-compose.yml").read_text(encoding="utf-8")
    compose = yaml.load(text, Loader=_NoDuplicates)  # a SafeLoader: nothing is executed
    bridge = compose["services"]["bridge"]
    assert "init" not in bridge  # docker-init would make tini PID 2, not the subreaper
    assert bridge["environment"]["FAXBRIDGE_API_TOKEN"].startswith("${FAXBRIDGE_API_TOKEN:?")
    assert f"./config.docker.yaml:{CONFIG_IN_IMAGE}:ro" in bridge["volumes"]
    assert "127.0.0.1:2525:2525" in bridge["ports"]
    env_example = (ROOT / "deploy" / "env.example").read_text(encoding="utf-8")
    assert re.search(r"^FAXBRIDGE_API_TOKEN=", env_example, re.MULTILINE)


def _tini_unavailable() -> str | None:
    if shutil.which("tini") is None:
        return "tini (Debian package) is not installed"
    probe = subprocess.run(
        ["unshare", "--pid", "--fork", "--mount-proc", "true"],
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.returncode != 0:
        return f"cannot make a PID namespace: {probe.stderr.strip()}"
    return None


def _children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(child) for child in text.split()]


def test_the_image_command_under_tini_as_pid_1_passes_sigterm_to_the_bridge(
    tmp_path: Path, db_url: str
) -> None:
    """ENTRYPOINT + CMD exactly as `docker run` starts them, as PID 1 of a PID namespace (what
    a container is, without an engine): `docker stop`'s SIGTERM goes to tini, and the bridge
    must still shut down gracefully, finishing the message it is receiving, and exit 0."""
    reason = _tini_unavailable()
    if reason:
        print(f"test_docker: tini test skipped: {reason}")
        pytest.skip(reason)
    data = base_config(tmp_path, db_url)
    data["smtp"]["shutdown_grace_s"] = 10
    config = tmp_path / "bridge.yaml"
    config.write_text(yaml.safe_dump(data), encoding="utf-8")
    command = exec_form(only("CMD"))
    assert command[0] == "faxbridge"
    command = [sys.executable, "-m", "bridge", *command[1:]]
    command[command.index(CONFIG_IN_IMAGE)] = str(config)
    entrypoint = [shutil.which("tini") or "tini", *exec_form(only("ENTRYPOINT"))[1:]]
    log = tmp_path / "bridge.log"
    with log.open("wb") as out:
        container = subprocess.Popen(
            ["unshare", "--pid", "--fork", "--mount-proc", *entrypoint, *command],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    parsed = parse_config(data)
    smtp = split_host_port(parsed.smtp.listen)
    try:
        host, port = split_host_port(parsed.http.listen)

        def ready() -> bool:
            assert container.poll() is None, log.read_text()
            try:
                return httpx.get(f"http://{host}:{port}/readyz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(ready, timeout_s=60, what="the bridge under tini to be ready")
        (tini,) = _children(container.pid)
        status = Path(f"/proc/{tini}/status").read_text()
        assert re.search(rf"^NSpid:\s+{tini}\s+1$", status, re.MULTILINE), "tini is not PID 1"
        assert Path(f"/proc/{tini}/comm").read_text().strip() == "tini"
        (bridge,) = _children(tini)
        assert b"bridge\0serve" in Path(f"/proc/{bridge}/cmdline").read_bytes()

        raw = fax_mail(to="12125550123@fax.localhost").as_bytes(policy=email_policy.SMTP)
        payload = re.sub(rb"(?m)^\.", b"..", raw)
        client = smtp_client(smtp)
        try:
            client.mail("alice@example.com")
            client.rcpt("12125550123@fax.localhost")
            client.putcmd("data")
            assert client.getreply()[0] == 354
            client.send(payload[: len(payload) // 2])
            signalled = time.monotonic()
            os.kill(tini, signal.SIGTERM)  # what `docker stop` does to PID 1
            wait_for(lambda: connection_refused(smtp), timeout_s=5, what="SMTP to close")
            client.send(payload[len(payload) // 2 :] + b".\r\n")
            code, text = client.getreply()
            assert code == 250, text  # the message under way at SIGTERM is still taken
            code, text = client.getreply()
            assert code == 421 and b"shutting down" in text
        finally:
            client.close()
        assert container.wait(30) == 0, log.read_text()  # tini exits with the bridge's status
        assert time.monotonic() - signalled < 15
    finally:
        if container.poll() is None:
            container.kill()  # unshare: its PID namespace dies with it
            container.wait(10)


# --- with a Docker engine ------------------------------------------------------------------


def _docker(*args: str, timeout: float = 120, check: bool = True) -> str:
    done = subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check:
        assert done.returncode == 0, f"docker {' '.join(args)}: {done.stderr}"
    return done.stdout.strip()


def _engine_missing() -> str | None:
    if shutil.which("docker") is None:
        return "no docker CLI"
    try:
        info = subprocess.run(
            ["docker", "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return "`docker info` did not answer within 30 s"
    if info.returncode != 0:
        reason = info.stderr.strip().splitlines()[-1:] or ["no reason given"]
        return f"`docker info` failed: {reason[0]}"
    return None


@pytest.fixture(scope="module")
def image() -> Iterator[str]:
    reason = _engine_missing()
    if reason:
        print(f"test_docker: image not built: {reason}")
        pytest.skip(f"no Docker engine: {reason}")
    tag = f"faxbridge-test:{secrets.token_hex(4)}"
    _docker("build", "-t", tag, str(ROOT), timeout=3600)
    yield tag
    _docker("rmi", "-f", tag, check=False)


def _container_config(data_dir: Path, smtp_host: str) -> dict[str, Any]:
    data = base_config(data_dir, "sqlite:////var/lib/faxbridge/faxbridge.db")
    data["smtp"]["listen"] = f"{smtp_host}:2525"
    data["http"] = {"listen": "0.0.0.0:8025", "public_url": "http://127.0.0.1:8025"}
    data["storage"]["data_dir"] = "/var/lib/faxbridge"
    data["mail"]["maildir"] = "/var/lib/faxbridge/mail"
    return data


def _run(image: str, tmp_path: Path, name: str, smtp_host: str) -> tuple[str, int]:
    """A container serving a config like config.docker.yaml, SQLite and a Maildir in a
    bind-mounted data directory; SMTP published on a free port of 127.0.0.1."""
    data_dir = tmp_path / name
    data_dir.mkdir()
    os.chmod(data_dir, 0o777)  # the image's user 10001 writes here
    config = tmp_path / f"{name}.yaml"
    config.write_text(yaml.safe_dump(_container_config(data_dir, smtp_host)), encoding="utf-8")
    port = free_port()
    container = _docker(
        "run",
        "-d",
        "--health-interval=2s",  # the image's check, run more often
        "--health-retries=2",
        "-v",
        f"{config}:{CONFIG_IN_IMAGE}:ro",
        "-v",
        f"{data_dir}:/var/lib/faxbridge",
        "-p",
        f"127.0.0.1:{port}:2525",
        image,
    )
    return container, port


def _health(container: str) -> str:
    return _docker("inspect", "--format", "{{.State.Health.Status}}", container)


@pytest.mark.slow
def test_the_image_faxes_a_mail_and_reports_it(image: str, tmp_path: Path) -> None:
    container, port = _run(image, tmp_path, "good", "0.0.0.0")
    try:
        status = wait_for(
            lambda: (s := _health(container)) != "starting" and s,
            timeout_s=180,
            what="the container's first health verdict",
        )
        assert status == "healthy", _docker("logs", container)
        assert _docker("exec", container, "cat", "/proc/1/comm") == "tini"
        assert _docker("exec", container, "id", "-u") == "10001"

        message: EmailMessage = fax_mail(to="12125550123@fax.localhost", pdf_pages=1)
        with smtplib.SMTP("127.0.0.1", port, timeout=60) as client:
            client.send_message(message, "alice@example.com", ["12125550123@fax.localhost"])

        maildir = tmp_path / "good" / "mail"

        def report() -> EmailMessage | None:
            if not (maildir / "new").is_dir():
                return None
            box = mailbox.Maildir(maildir, create=False)
            for key in box.keys():
                found = message_from_bytes(box.get_bytes(key), policy=email_policy.default)
                if isinstance(found, EmailMessage):
                    return found
            return None

        delivered = wait_for(report, timeout_s=120, what="the delivery report in the Maildir")
        assert delivered["To"] == "alice@example.com"
        assert delivered["Subject"] == "Fax to +1 212-555-0123 delivered (2 pages)"

        started = time.monotonic()
        _docker("stop", "-t", "60", container, timeout=90)
        assert time.monotonic() - started < 60  # tini handed SIGTERM on: no SIGKILL needed
        assert _docker("inspect", "--format", "{{.State.ExitCode}}", container) == "0"
    finally:
        _docker("rm", "-f", container, check=False)


@pytest.mark.slow
def test_the_image_is_unhealthy_when_smtp_listens_on_loopback(image: str, tmp_path: Path) -> None:
    container, _ = _run(image, tmp_path, "loopback", "127.0.0.1")
    try:
        status = wait_for(
            lambda: (s := _health(container)) != "starting" and s,
            timeout_s=180,
            what="the container's first health verdict",
        )
        assert status == "unhealthy"
        done = subprocess.run(
            ["docker", "exec", container, "faxbridge", "healthcheck", "-c", CONFIG_IN_IMAGE],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 1
        assert "a loopback address: nothing outside this container can reach it" in done.stderr
    finally:
        _docker("rm", "-f", container, check=False)
