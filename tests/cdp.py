"""Drive the Debian `chromium` headless over the Chrome DevTools Protocol, with no downloads.

A test browser in ~150 lines: launch Chromium on a free debugging port, attach to one tab and
send it what a person does — load a page, type into a field, click (real mouse events at the
element's centre, so a hidden or covered button cannot be clicked), read text, and save a
full-page screenshot. Nothing here runs inside the page except read-only queries: the console
under test forbids scripts by its Content-Security-Policy, and DevTools evaluation is exempt.
"""

from __future__ import annotations

import base64
import itertools
import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import websocket

CHROMIUM = shutil.which("chromium")
FLAGS = [
    "--headless=new",
    "--remote-debugging-port=0",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--hide-scrollbars",
    "--window-size=1280,900",
]


class BrowserError(AssertionError):
    pass


class Chromium:
    """One headless browser with one tab; use as a context manager."""

    def __init__(self, profile: Path, timeout_s: float = 20.0) -> None:
        if CHROMIUM is None:
            raise BrowserError("chromium is not installed")
        self.timeout_s = timeout_s
        profile.mkdir(parents=True, exist_ok=True)
        self._log = (profile / "chromium.log").open("wb")
        self._process = subprocess.Popen(
            [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + timeout_s
        while not (port_file.exists() and len(port_file.read_text().splitlines()) >= 2):
            if time.monotonic() > deadline or self._process.poll() is not None:
                self.close()
                raise BrowserError(
                    f"chromium did not open its debugging port; see {self._log.name}"
                )
            time.sleep(0.05)
        port, path = port_file.read_text().splitlines()[:2]
        self._ws = websocket.create_connection(
            f"ws://127.0.0.1:{port}{path}", timeout=timeout_s, suppress_origin=True
        )
        self._ids = itertools.count(1)
        self._events: list[dict[str, Any]] = []
        self._session: str | None = None
        target = self.send("Target.createTarget", url="about:blank")["targetId"]
        attached = self.send("Target.attachToTarget", targetId=target, flatten=True)
        self._session = attached["sessionId"]
        self.send("Page.enable")
        self.send("Runtime.enable")

    def __enter__(self) -> Chromium:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if getattr(self, "_ws", None) is not None:
            self._ws.close()
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._log.close()

    # -- protocol ----------------------------------------------------------------------------
    def send(self, method: str, **params: Any) -> dict[str, Any]:
        message: dict[str, Any] = {"id": next(self._ids), "method": method, "params": params}
        if self._session is not None:
            message["sessionId"] = self._session
        self._ws.send(json.dumps(message))
        while True:
            reply = json.loads(self._ws.recv())
            if reply.get("id") == message["id"]:
                if "error" in reply:
                    raise BrowserError(f"{method}: {reply['error']}")
                return dict(reply.get("result", {}))
            if "method" in reply:
                self._events.append(reply)

    def wait_event(self, method: str) -> dict[str, Any]:
        deadline = time.monotonic() + self.timeout_s
        while True:
            for event in self._events:
                if event["method"] == method:
                    self._events.remove(event)
                    return event
            if time.monotonic() > deadline:
                raise BrowserError(f"no {method} within {self.timeout_s} s")
            self._events.append(json.loads(self._ws.recv()))

    def _loaded_after(self, action: Any) -> None:
        self._events = [e for e in self._events if e["method"] != "Page.loadEventFired"]
        action()
        self.wait_event("Page.loadEventFired")

    # -- what a person does ------------------------------------------------------------------
    def open(self, url: str) -> None:
        self._loaded_after(lambda: self.send("Page.navigate", url=url))

    def value(self, expression: str) -> Any:
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def text(self, selector: str = "body") -> str:
        found = self.value(f"document.querySelector({json.dumps(selector)})?.innerText ?? null")
        if found is None:
            raise BrowserError(f"nothing matches {selector!r} on {self.url}")
        return str(found)

    def texts(self, selector: str) -> list[str]:
        query = f"[...document.querySelectorAll({json.dumps(selector)})].map(e => e.innerText)"
        return list(self.value(query))

    def style(self, selector: str, prop: str) -> str:
        query = (
            f"getComputedStyle(document.querySelector({json.dumps(selector)}))[{json.dumps(prop)}]"
        )
        return str(self.value(query))

    @property
    def url(self) -> str:
        return str(self.value("location.href"))

    def _centre(self, selector: str) -> tuple[float, float]:
        box = self.value(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
            " if (!e) return null; e.scrollIntoView({block: 'center'});"
            " const r = e.getBoundingClientRect();"
            " return [r.x + r.width / 2, r.y + r.height / 2]; })()"
        )
        if box is None:
            raise BrowserError(f"nothing matches {selector!r} on {self.url}")
        return float(box[0]), float(box[1])

    def click(self, selector: str) -> None:
        """Click the element and wait for the page it leads to."""
        x, y = self._centre(selector)

        def press() -> None:
            for kind in ("mousePressed", "mouseReleased"):
                self.send(
                    "Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1
                )

        self._loaded_after(press)

    def type(self, selector: str, text: str) -> None:
        self._centre(selector)
        self.value(f"document.querySelector({json.dumps(selector)}).focus()")
        self.send("Input.insertText", text=text)

    def choose(self, selector: str, value: str) -> None:
        """Pick an option of a <select> (the dropdown itself is drawn outside the page)."""
        self.value(f"document.querySelector({json.dumps(selector)}).value = {json.dumps(value)}")

    def screenshot(self, path: Path, width: int = 1280) -> None:
        """The whole page, not just the viewport."""
        height = int(self.value("document.documentElement.scrollHeight"))
        self.send(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )
        shot = self.send("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        self.send("Emulation.clearDeviceMetricsOverride")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(shot["data"]))
