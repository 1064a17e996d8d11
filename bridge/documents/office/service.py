"""The managed LibreOffice: the bridge starts its helpers, watches them and starts them again.

Why not a shell-out per file: `soffice --convert-to` pays LibreOffice's start-up (about a
second warm, several cold) for every attachment, and two of them sharing a profile hang. Why not
`unoserver`: it converts but cannot set a spreadsheet's page style (fit to width, landscape)
before exporting, and it would need installing into Debian's Python, which owns `uno`.

So each helper (`uno_helper.py`, run by a Python that can import `uno`) owns one `soffice`
with a profile of its own in a private directory, converts one document at a time with a
per-document watchdog, and restarts `soffice` after a crash or a hang. This supervisor, in
the bridge's main process, restarts a helper that exits and kills the process group on stop.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from bridge.documents.office.client import OfficeEndpoint, OfficeFailure, request, spool_dir

log = logging.getLogger(__name__)

HELPER = Path(__file__).with_name("uno_helper.py")
_SOFFICE_CANDIDATES = (
    "soffice",
    "libreoffice",
    "/usr/lib/libreoffice/program/soffice",
    "/opt/libreoffice/program/soffice",
    "/Applications/LibreOffice.app/Contents/MacOS/soffice",
)
_PYTHON_CANDIDATES = ("/usr/bin/python3", "/usr/lib/libreoffice/program/python", "python3")
_READY_S = 120.0
_RESTART_PAUSE_S = 1.0


@cache
def find_soffice(setting: str | None = "auto") -> str | None:
    """The LibreOffice program: the configured path, or the first one found; None if none."""
    if setting is None:
        return None
    candidates = _SOFFICE_CANDIDATES if setting == "auto" else (setting,)
    for candidate in candidates:
        found = shutil.which(candidate)
        if found:
            return found
    return None


@cache
def find_uno_python(setting: str | None = "auto") -> str | None:
    """A Python that can `import uno` (Debian's python3 with python3-uno, or LibreOffice's own)."""
    if setting is None:
        return None
    candidates = _PYTHON_CANDIDATES if setting == "auto" else (setting,)
    for candidate in candidates:
        found = shutil.which(candidate)
        if found is None:
            continue
        try:
            probe = subprocess.run(
                [found, "-c", "import uno, unohelper"],
                capture_output=True,
                timeout=30,
                check=False,
                env={k: v for k, v in os.environ.items() if not k.startswith("PYTHON")},
            )
        except (OSError, subprocess.SubprocessError):
            continue
        if probe.returncode == 0:
            return found
    return None


@dataclass
class _Helper:
    socket: str
    profile: str
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0
    ready: threading.Event = field(default_factory=threading.Event)
    last_start_s: float = 0.0


class OfficeService:
    """`processes` helpers, each with its own soffice; `endpoint` is what clients need."""

    def __init__(
        self,
        soffice: str,
        python: str,
        *,
        timeout_s: float = 60.0,
        processes: int = 1,
        work_dir: str | None = None,
    ) -> None:
        self.soffice = soffice
        self.python = python
        self.timeout_s = timeout_s
        self._own_dir = work_dir is None
        self.work_dir = work_dir or tempfile.mkdtemp(prefix="faxbridge-office-")
        self.helpers = [
            _Helper(
                socket=os.path.join(self.work_dir, f"helper-{n}.sock"),
                profile=os.path.join(self.work_dir, f"profile-{n}"),
            )
            for n in range(processes)
        ]
        self.endpoint = OfficeEndpoint(
            sockets=tuple(h.socket for h in self.helpers),
            spool=spool_dir(self.work_dir),
            timeout_s=timeout_s,
        )
        self._stopping = threading.Event()
        self._watchers: list[threading.Thread] = []

    # -- life cycle ----------------------------------------------------------------------
    def start(self, *, wait: bool = True) -> OfficeService:
        """Start every helper; with `wait`, return once each has its LibreOffice running."""
        for helper in self.helpers:
            watcher = threading.Thread(
                target=self._watch, args=(helper,), name="office-supervisor", daemon=True
            )
            watcher.start()
            self._watchers.append(watcher)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout_s: float = _READY_S) -> None:
        deadline = time.monotonic() + timeout_s
        for helper in self.helpers:
            if not helper.ready.wait(max(0.0, deadline - time.monotonic())):
                raise OfficeFailure("unavailable", "LibreOffice did not start")

    def stop(self) -> None:
        self._stopping.set()
        for helper in self.helpers:
            _kill_group(helper.process)
        for watcher in self._watchers:
            watcher.join(15)
        if self._own_dir:
            shutil.rmtree(self.work_dir, ignore_errors=True)

    def __enter__(self) -> OfficeService:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    # -- what the helpers say ------------------------------------------------------------
    def status(self) -> list[dict[str, Any]]:
        """Per helper: soffice pid(s), RSS, starts, conversions (for tests, metrics, admins)."""
        out = []
        for helper in self.helpers:
            try:
                state = request(helper.socket, {"op": "status"}, timeout_s=10)
            except OfficeFailure as exc:
                state = {"ok": False, "error": exc.error}
            state["helper_pid"] = helper.process.pid if helper.process else None
            state["helper_starts"] = helper.starts
            state["start_s"] = round(helper.last_start_s, 3)
            out.append(state)
        return out

    # -- supervision ---------------------------------------------------------------------
    def _watch(self, helper: _Helper) -> None:
        """Run the helper; whenever it exits (crash, kill), start it again."""
        while not self._stopping.is_set():
            helper.ready.clear()
            began = time.monotonic()
            try:
                helper.process = self._spawn(helper)
            except OSError as exc:
                log.error("cannot start the LibreOffice helper: %s", exc)
                self._stopping.wait(10)
                continue
            helper.starts += 1
            self._await_ready(helper, began)
            helper.process.wait()
            _kill_group(helper.process)  # its soffice, if the helper died without it
            if not self._stopping.is_set():
                log.warning(
                    "LibreOffice helper %s exited (%s); starting it again",
                    helper.socket,
                    helper.process.returncode,
                )
                self._stopping.wait(_RESTART_PAUSE_S)

    def _spawn(self, helper: _Helper) -> subprocess.Popen[bytes]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
        return subprocess.Popen(
            [
                self.python,
                str(HELPER),
                "--socket",
                helper.socket,
                "--soffice",
                self.soffice,
                "--profile",
                helper.profile,
                "--timeout",
                str(self.timeout_s),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            start_new_session=True,  # its own process group: soffice dies with it on stop
        )

    def _await_ready(self, helper: _Helper, began: float) -> None:
        assert helper.process is not None and helper.process.stdout is not None
        with helper.process.stdout:  # it says one line, then nothing more
            line = helper.process.stdout.readline()
        try:
            said = json.loads(line) if line else {}
        except ValueError:
            said = {}
        if said.get("ready"):
            helper.last_start_s = time.monotonic() - began
            helper.ready.set()
            log.info(
                "LibreOffice ready in %.1f s (helper %d, soffice %s)",
                helper.last_start_s,
                helper.process.pid,
                said.get("soffice_pid"),
            )
        else:
            log.error("LibreOffice did not start: %s", said.get("error") or "no word from it")


def _kill_group(process: subprocess.Popen[bytes] | None) -> None:
    if process is None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(Exception):
        process.wait(10)
