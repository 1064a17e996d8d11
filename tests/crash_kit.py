"""Pieces for crash tests and bench/crash_recovery.py: the mFax emulator as the fax network.

`sends_per_job` counts `POST /v1/faxes` requests by the job id in their custom fields, so
"transmitted once" is counted where it matters, at the provider. `Settler` finishes every fax
the emulator took a little later and posts the callback to a live bridge (a load balancer in
front of replicas); when none answers, the bridge's polling finds the result.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import base_config
from tests.providers.emulators.mfax import MFaxHarness

TOKEN = "crash-kit-token-7c1"


def sends_per_job(harness: MFaxHarness) -> Counter[str]:
    """`POST /v1/faxes` requests the emulator received, by the job id in their custom fields."""
    counts: Counter[str] = Counter()
    for request in list(harness.requests):
        if (request.method, request.path) == ("POST", "/v1/faxes"):
            custom = json.loads(request.form().get("cf", ["{}"])[0])
            counts[str(custom.get("faxbridgeJobId"))] += 1
    return counts


class Settler(threading.Thread):
    """Finishes every fax the emulator took, `after_s` after it appeared, and calls back."""

    def __init__(
        self, harness: MFaxHarness, targets: Callable[[], list[str]], after_s: float
    ) -> None:
        super().__init__(daemon=True)
        self.harness, self.targets, self.after_s = harness, targets, after_s
        self.seen: dict[str, float] = {}
        self.done: set[str] = set()
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.wait(0.05):
            now = time.monotonic()
            for fax_id, fax in list(self.harness.state.faxes.items()):
                if fax["direction"] != "outbound" or fax_id in self.done:
                    continue
                if now - self.seen.setdefault(fax_id, now) < self.after_s:
                    continue
                self.done.add(fax_id)
                callback = self.harness.status_callback(fax_id, "delivered")  # state: success
                for url in self.targets():
                    try:
                        with httpx.Client(timeout=5) as client:
                            reply = client.post(
                                url, content=callback.body, headers=callback.headers
                            )
                        if reply.status_code < 500:
                            break
                    except httpx.HTTPError:
                        continue  # that bridge is down; the next, or its polling, will see it


def callback_url(bridge_http_url: str) -> str:
    return f"{bridge_http_url}/callbacks/mfax?token={TOKEN}"


def mfax_config(directory: Path, db_url: str, harness: MFaxHarness) -> dict[str, Any]:
    data: dict[str, Any] = base_config(directory, db_url)
    data["worker"] = {"poll_interval_s": 0.2}  # lease, concurrency, attempts: the defaults
    data["providers"] = {"mfax": {**harness.provider_config(TOKEN), "status_poll_s": 5}}
    data["faxboxes"][0]["provider"] = "mfax"
    return data
