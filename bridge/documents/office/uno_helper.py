"""The LibreOffice side of the managed converter; runs under a Python that has `uno`.

Debian's `uno` module is built for Debian's own python3, not for the bridge's interpreter, so
this file is started as a separate program (`python3 uno_helper.py …`) and imports nothing from
the bridge. It starts one headless `soffice` with its own profile, keeps a UNO connection to
it, and answers requests on a Unix socket, one JSON line each way:

    {"op": "convert", "input": PATH, "output": PATH, "kind": "docx"}
        → {"ok": true, "pages": N} | {"ok": false, "error": "password" | "timeout" | …}
    {"op": "status"} → {"ok": true, "soffice_pid": PID, "starts": N, "rss_kb": K, …}

A convert request may name an export `filter` (and a `password`) to save in another format
instead of PDF: tools and tests make .doc, .xls, .odt … files with it.

Conversions run one at a time (a LibreOffice process is single-document at heart). A watchdog
kills `soffice` when one takes longer than `--timeout`; a dead or hung `soffice` is started
again before the next document. Macros are never run and links are never updated.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Any

import uno  # type: ignore[import-not-found]
import unohelper  # type: ignore[import-not-found]
from com.sun.star.beans import PropertyValue  # type: ignore[import-not-found]
from com.sun.star.task import XInteractionHandler  # type: ignore[import-not-found]

_EXPORT_FILTERS = {
    "com.sun.star.sheet.SpreadsheetDocument": "calc_pdf_Export",
    "com.sun.star.presentation.PresentationDocument": "impress_pdf_Export",
    "com.sun.star.drawing.DrawingDocument": "draw_pdf_Export",
    "com.sun.star.text.WebDocument": "writer_web_pdf_Export",
    "com.sun.star.text.TextDocument": "writer_pdf_Export",
}
# Import filters for inputs LibreOffice would otherwise open as something else (or not at all).
_IMPORT_FILTERS = {
    "csv": ("Text - txt - csv (StarCalc)", "44,34,76,1,,0,false,true,false,false"),
    "html": ("HTML (StarWriter)", ""),  # a page for paper, not Writer/Web's endless screen
}
_NEVER_EXECUTE = 0  # com.sun.star.document.MacroExecMode.NEVER_EXECUTE
_NO_UPDATE = 0  # com.sun.star.document.UpdateDocMode.NO_UPDATE
_CONNECT_S = 60.0


def _prop(name: str, value: Any) -> Any:
    prop = PropertyValue()
    prop.Name = name
    prop.Value = value
    return prop


class _Refusals(unohelper.Base, XInteractionHandler):  # type: ignore[misc]
    """Answers every question LibreOffice would ask a user with "abort", noting passwords."""

    def __init__(self) -> None:
        self.password = False

    def handle(self, request: Any) -> None:
        name = getattr(request.getRequest(), "typeName", "") or type(request.getRequest()).__name__
        if "Password" in str(name):
            self.password = True
        abort = uno.getTypeByName("com.sun.star.task.XInteractionAbort")
        for choice in request.getContinuations():
            if abort in choice.getTypes():
                choice.select()
                return


class Office:
    """One soffice process and the UNO connection to it."""

    def __init__(self, soffice: str, profile: str, timeout_s: float) -> None:
        self.soffice = soffice
        self.profile = profile
        self.timeout_s = timeout_s
        self.process: subprocess.Popen[bytes] | None = None
        self.desktop: Any = None
        self.starts = 0
        self.conversions = 0
        self.last_start_s = 0.0
        self.lock = threading.Lock()
        self.pipe = f"faxbridge-{os.getpid()}"

    # -- the soffice process -------------------------------------------------------------
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        self.kill()
        began = time.monotonic()
        os.makedirs(self.profile, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(self.profile, "user", ".lock"))  # left by a killed soffice
        self.starts += 1
        self.pipe = f"faxbridge-{os.getpid()}-{self.starts}"
        env = dict(os.environ, HOME=self.profile, SAL_USE_VCLPLUGIN="svp")
        self.process = subprocess.Popen(
            [
                self.soffice,
                "--headless",
                "--invisible",
                "--nologo",
                "--norestore",
                "--nodefault",
                "--nolockcheck",
                f"-env:UserInstallation={uno.systemPathToFileUrl(self.profile)}",
                f"--accept=pipe,name={self.pipe};urp;StarOffice.ComponentContext",
            ],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        local = uno.getComponentContext()
        resolver = local.ServiceManager.createInstanceWithContext(
            "com.sun.star.bridge.UnoUrlResolver", local
        )
        url = f"uno:pipe,name={self.pipe};urp;StarOffice.ComponentContext"
        deadline = time.monotonic() + _CONNECT_S
        while True:
            try:
                context = resolver.resolve(url)
                break
            except Exception:
                if not self.alive() or time.monotonic() > deadline:
                    self.kill()
                    raise RuntimeError("LibreOffice did not start") from None
                time.sleep(0.05)
        self.desktop = context.ServiceManager.createInstanceWithContext(
            "com.sun.star.frame.Desktop", context
        )
        self.last_start_s = time.monotonic() - began

    def kill(self) -> None:
        """soffice and whatever it started (oosplash → soffice.bin)."""
        process, self.process, self.desktop = self.process, None, None
        if process is None:
            return
        for pid in [*_descendants(process.pid), process.pid]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(Exception):
            process.wait(10)

    # -- one conversion ------------------------------------------------------------------
    def convert(
        self, source: str, target: str, kind: str, save_as: tuple[str, str] | None = None
    ) -> dict[str, Any]:
        with self.lock:
            if not self.alive() or self.desktop is None:
                self.start()
            timed_out = threading.Event()

            def expire() -> None:
                timed_out.set()
                self.kill()

            watchdog = threading.Timer(self.timeout_s, expire)
            watchdog.start()
            try:
                return self._convert(source, target, kind, save_as)
            except Exception as exc:
                if timed_out.is_set():
                    return {"ok": False, "error": "timeout"}
                if not self._responsive():
                    self.kill()
                    return {"ok": False, "error": "crashed"}
                return {"ok": False, "error": "damaged", "detail": str(exc)[:300]}
            finally:
                watchdog.cancel()
                self.conversions += 1

    def _responsive(self) -> bool:
        if not self.alive() or self.desktop is None:
            return False
        try:
            self.desktop.getComponents()
        except Exception:
            return False
        return True

    def _convert(
        self, source: str, target: str, kind: str, save_as: tuple[str, str] | None
    ) -> dict[str, Any]:
        handler = _Refusals()
        props = [
            _prop("Hidden", True),
            _prop("ReadOnly", True),
            _prop("MacroExecutionMode", _NEVER_EXECUTE),
            _prop("UpdateDocMode", _NO_UPDATE),
            _prop("InteractionHandler", handler),
        ]
        if kind in _IMPORT_FILTERS:
            name, options = _IMPORT_FILTERS[kind]
            props.append(_prop("FilterName", name))
            if options:
                props.append(_prop("FilterOptions", options))
        url = uno.systemPathToFileUrl(source)
        document = self.desktop.loadComponentFromURL(url, "_blank", 0, tuple(props))
        if document is None:
            return {"ok": False, "error": "password" if handler.password else "damaged"}
        try:
            family = next((s for s in _EXPORT_FILTERS if document.supportsService(s)), None)
            if family is None:
                return {"ok": False, "error": "damaged", "detail": "not a document"}
            if save_as is not None:
                store = [_prop("FilterName", save_as[0])]
                if save_as[1]:
                    store.append(_prop("Password", save_as[1]))
                document.storeToURL(uno.systemPathToFileUrl(target), tuple(store))
                return {"ok": True, "family": family.rsplit(".", 1)[-1], "macros": False}
            if family == "com.sun.star.sheet.SpreadsheetDocument":
                _fit_sheets_to_width(document)
            document.storeToURL(
                uno.systemPathToFileUrl(target),
                (_prop("FilterName", _EXPORT_FILTERS[family]),),
            )
            return {
                "ok": True,
                "family": family.rsplit(".", 1)[-1],
                "macros": _has_macros(document),
            }
        finally:
            with contextlib.suppress(Exception):
                document.close(True)

    def status(self) -> dict[str, Any]:
        pid = self.process.pid if self.alive() and self.process else None
        return {
            "ok": True,
            "soffice_pid": pid,
            "soffice_pids": [*_descendants(pid), pid] if pid else [],
            "rss_kb": sum(_rss_kb(p) for p in ([*_descendants(pid), pid] if pid else [])),
            "starts": self.starts,
            "conversions": self.conversions,
            "last_start_s": round(self.last_start_s, 3),
            "busy": self.lock.locked(),
        }


def _fit_sheets_to_width(document: Any) -> None:
    """Every printed sheet one page wide (as many pages down as it needs); a sheet wider than
    a portrait page is turned to landscape first, so its text stays readable."""
    styles = document.StyleFamilies.getByName("PageStyles")
    for index in range(document.Sheets.getCount()):
        sheet = document.Sheets.getByIndex(index)
        style = styles.getByName(sheet.PageStyle)
        cursor = sheet.createCursor()
        cursor.gotoEndOfUsedArea(False)
        last_column = cursor.RangeAddress.EndColumn
        used = sum(sheet.Columns.getByIndex(i).Width for i in range(min(last_column, 1023) + 1))
        printable = style.Width - style.LeftMargin - style.RightMargin
        if used > printable and not style.IsLandscape:
            width, height = style.Width, style.Height
            style.IsLandscape = True
            style.Width, style.Height = max(width, height), min(width, height)
        style.ScaleToPagesX = 1
        style.ScaleToPagesY = 0


def _has_macros(document: Any) -> bool:
    """Basic or VBA code in the document (never run; reported so an empty one is refused)."""
    try:
        libraries = document.BasicLibraries
        for name in libraries.getElementNames():
            library = libraries.getByName(name)
            for module in library.getElementNames():
                if str(library.getByName(module)).strip():
                    return True
    except Exception:
        return False
    return False


def _descendants(pid: int | None) -> list[int]:
    if pid is None:
        return []
    found: list[int] = []
    stack = [pid]
    while stack:
        current = stack.pop()
        try:
            tasks = os.listdir(f"/proc/{current}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{current}/task/{task}/children") as handle:
                    children = [int(c) for c in handle.read().split()]
            except OSError:
                continue
            found += children
            stack += children
    return found


def _rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _serve(office: Office, path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    os.chmod(path, 0o600)
    server.listen(64)
    print(json.dumps({"ready": True, **office.status()}), flush=True)  # the supervisor waits
    while True:
        connection, _ = server.accept()
        threading.Thread(target=_answer, args=(office, connection), daemon=True).start()


def _answer(office: Office, connection: socket.socket) -> None:
    with connection, connection.makefile("rwb") as stream:
        try:
            request = json.loads(stream.readline() or b"{}")
            if request.get("op") == "convert":
                save_as = (request.get("filter") or "", request.get("password") or "")
                reply = office.convert(
                    request["input"],
                    request["output"],
                    request["kind"],
                    save_as if request.get("filter") else None,
                )
            elif request.get("op") == "status":
                reply = office.status()
            else:
                reply = {"ok": False, "error": "bad request"}
        except Exception as exc:
            reply = {"ok": False, "error": "helper", "detail": str(exc)[:300]}
        with contextlib.suppress(OSError):
            stream.write(json.dumps(reply).encode() + b"\n")
            stream.flush()


def _orphan_watch(office: Office, parent: int) -> None:
    """The bridge was killed without stopping us (SIGKILL, OOM): take soffice along and go."""
    while os.getppid() == parent:
        time.sleep(1.0)
    office.kill()
    os._exit(0)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--socket", required=True)
    parser.add_argument("--soffice", required=True)
    parser.add_argument("--profile", required=True)
    parser.add_argument("--timeout", type=float, required=True)
    args = parser.parse_args()
    office = Office(args.soffice, args.profile, args.timeout)

    def stop(_signum: int, _frame: object) -> None:
        office.kill()
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    threading.Thread(target=_orphan_watch, args=(office, os.getppid()), daemon=True).start()
    try:
        office.start()
    except Exception as exc:
        print(json.dumps({"ready": False, "error": str(exc)}), flush=True)
        return 1
    try:
        _serve(office, args.socket)
    finally:
        office.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
