"""A PostgreSQL server of a test's own, so it can be restarted without disturbing anyone.

The machine's PostgreSQL is shared; a test that restarts the server under load starts its own
with `initdb` + `pg_ctl` from /usr/lib/postgresql/*/bin, in a temporary directory, on a free
port, with `fsync=on` (a commit that answered must survive the restart). As root, the server
runs as the `postgres` user (PostgreSQL refuses to run as root).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg

from tests.conftest import free_port


def postgres_bin() -> Path | None:
    """The newest installed server's bin directory, or None when no initdb is installed."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_version)
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _version(path: str) -> tuple[int, ...]:
    part = Path(path).parent.parent.name
    return tuple(int(x) for x in part.split(".") if x.isdigit())


def missing_reason() -> str | None:
    """Why no private server can run here, or None."""
    if postgres_bin() is None:
        return "no initdb found (install the PostgreSQL server package, e.g. postgresql-16)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no `postgres` user to run the server as"
    return None


class PrivatePostgres:
    """`initdb` once, then `start`, `restart(mode)` and `stop` a server on 127.0.0.1:`port`."""

    def __init__(self, root: Path | None = None) -> None:
        bindir = postgres_bin()
        assert bindir is not None, missing_reason()
        self.bindir = bindir
        self._owns_root = root is None
        self.root = Path(root or tempfile.mkdtemp(prefix="faxbridge-pg-"))
        self.data = self.root / "data"
        self.logfile = self.root / "postgres.log"
        self.port = free_port()
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            user = pwd.getpwnam("postgres")
            os.chown(self.root, user.pw_uid, user.pw_gid)
            os.chmod(self.root, 0o700)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8")

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, program: str, *args: str) -> None:
        command = [str(self.bindir / program), *args]
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            log = self.logfile.read_text() if self.logfile.exists() else ""
            raise RuntimeError(f"{program} failed: {done.stdout}{done.stderr}\n{log[-3000:]}")

    def _options(self) -> str:
        # No Unix socket (its default directory may not be writable), loopback only, durable.
        return (
            f"-p {self.port} -k '' -c listen_addresses=127.0.0.1 -c fsync=on -c max_connections=200"
        )

    def _pg_ctl(self, *args: str) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.logfile), "-o", self._options(),
                  "-w", "-t", "60", *args)  # fmt: skip

    def start(self) -> PrivatePostgres:
        self._pg_ctl("start")
        self.wait_accepting()
        return self

    def restart(self, mode: str = "fast") -> float:
        """`pg_ctl restart -m mode`; returns the seconds the server was away."""
        began = time.monotonic()
        self._pg_ctl("-m", mode, "restart")
        self.wait_accepting()
        return time.monotonic() - began

    def wait_accepting(self, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                with psycopg.connect(self.url, connect_timeout=2) as conn:
                    conn.execute("SELECT 1")
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        if self._owns_root:
            shutil.rmtree(self.root, ignore_errors=True)
