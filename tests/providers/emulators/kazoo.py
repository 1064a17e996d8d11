"""A Kazoo v2 Faxes API on loopback, built from 2600hz/kazoo's source (not from our notes).

The Crossbar side (routes, envelopes, listings) is in `_kazoo_crossbar.py` and
`_kazoo_views.py`, the fax application's side (dials, the outbox move, notifications) in
`_kazoo_fax_worker.py`; each names the Erlang files it follows. This module is the contract
suite's handle on them (`tests/providers/harness.py`).
"""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from io import BytesIO
from typing import Any

from pypdf import PdfReader

from tests.providers.emulators._callbacks import CallsBack
from tests.providers.emulators._kazoo_crossbar import KazooState, make_app
from tests.providers.emulators._kazoo_fax_worker import (
    FAILURES,
    Dial,
    delivery,
    inbound_notice,
    inbox_doc,
    moved,
    outbound_notice,
    release,
    transmission,
)
from tests.providers.harness import CallbackHTTP, RecordedRequest, Recorder, serve

# Crossbar's own 429 (cb_token_auth → cb_context:add_system_error('too_many_requests')).
TOO_MANY_REQUESTS = {"status": "error", "error": "429", "message": "too_many_requests",
                     "data": {"message": "too many requests"}}  # fmt: skip


@dataclass
class KazooHarness(CallsBack):
    state: KazooState
    recorder: Recorder
    root: str
    provider_type: str = "kazoo"
    # Kazoo notifies only when a job ends; `submitted`/`sending` are seen by polling.
    supported_statuses: tuple[str, ...] = ("delivered", "failed")
    supported_failures: tuple[str, ...] = tuple(FAILURES)

    @property
    def base_url(self) -> str:
        return f"{self.root}/v2"

    @property
    def requests(self) -> list[RecordedRequest]:
        return self.recorder.requests

    def provider_config(self, callback_token: str) -> dict[str, Any]:
        return {
            "type": "kazoo",
            "base_url": self.base_url,
            "account_id": self.state.account_id,
            "auth_token": self.state.auth_token,
            "callback_token": callback_token,
            "timeout_s": 5,
        }

    def fail_next(
        self, status: int, body: Any = None, headers: dict[str, str] | None = None, count: int = 1
    ) -> None:
        """Crossbar's token-bucket 429 carries no Retry-After header, so none is added."""
        if isinstance(body, dict) and body.get("status") == "error":
            body = {"error": str(status), **body}
        self.recorder.fail_next(status, body, headers, count)

    def error_body(self, message: str) -> dict[str, Any]:
        """Crossbar's error envelope (`error` holds the HTTP status, added by `fail_next`)."""
        return {"auth_token": "", "data": {"message": message}, "message": message,
                "status": "error"}  # fmt: skip

    def hang_next(self, seconds: float) -> None:
        self.recorder.hang_next(seconds)

    def expire_tokens(self) -> None:
        """Tokens obtained through `api_auth` stop working, as after their lifetime."""
        self.state.tokens.intersection_update({self.state.auth_token})

    # -- the fax application ----------------------------------------------------------
    def job(self, fax_id: str) -> dict[str, Any]:
        return self.state.faxes_db[fax_id]

    def set_job_status(self, fax_id: str, status: str, running: str | None = None) -> None:
        """Move a queued job on: `locked` (fax_ra), `processing` (with the worker's words)."""
        self.job(fax_id)["pvt_job_status"] = status
        if running is not None:
            self.state.running[fax_id] = running

    def dial(self, fax_id: str, dial: Dial) -> dict[str, Any] | None:
        """One dial of the job ends as `dial` says; a final one moves the job to the outbox
        and returns its notice (the job stays pending while it has dials left)."""
        job = self.job(fax_id)
        number = job.get("fax_identity_number") or job.get("from_number")
        identity = {"Fax-Identity-Number": number, "Fax-Local-Station-ID": number,
                    "Fax-Identity-Name": job.get("fax_identity_name")}  # fmt: skip
        resp = release(job, dial, {k: v for k, v in identity.items() if v})
        if job["pvt_job_status"] == "pending":
            return None
        doc = moved(self.state.faxes_db.pop(fax_id))
        self.state.modb[doc["_id"]] = doc
        if fax_id in self.state.attachments:
            self.state.attachments[doc["_id"]] = self.state.attachments.pop(fax_id)
        return outbound_notice(doc, resp)

    def finish(self, fax_id: str, status: str, reason: str | None = None) -> dict[str, Any]:
        """Dial until the job ends `status` (every dial failing alike, as Kazoo retries), and
        return its notice."""
        while True:
            notice = self.dial(fax_id, self._dial_for(fax_id, status, reason))
            if notice is not None:
                return notice

    def _dial_for(self, fax_id: str, status: str, reason: str | None) -> Dial:
        if status == "failed":
            return FAILURES[reason or "unknown"]
        pdf = self.state.attachments.get(fax_id)
        pages = len(PdfReader(BytesIO(pdf)).pages) if pdf else 1
        return transmission(pages, ok=True)

    def outbox(self, fax_id: str) -> dict[str, Any]:
        """The finished job's outbox document (as stored)."""
        return next(d for d in self.state.modb.values() if d["_id"].endswith(f"-{fax_id}"))

    def settle(self, fax_id: str, status: str, reason: str | None = None) -> None:
        """The job ends without a webhook reaching anyone (polling sees it in the outbox)."""
        if status in ("delivered", "failed"):
            self.finish(fax_id, status, reason)
        else:
            self.set_job_status(fax_id, "processing" if status == "sending" else "pending")

    # -- webhooks ---------------------------------------------------------------------
    def _hook(self, event: str) -> dict[str, Any]:
        """The account's notifications hook for `event` (webhooks_notifications
        match_action_type: custom_data.type is the event, or `all`)."""
        for hook in self.state.webhooks.values():
            kind = (hook.get("custom_data") or {}).get("type")
            if hook.get("hook") == "notifications" and kind in (event, "all"):
                return hook
        return {"id": secrets.token_hex(16), "custom_data": {"type": event}}

    def registered_callback_url(self, inbound: bool) -> str | None:
        event = "inbound_fax" if inbound else "outbound_fax"
        hook = self._hook(event)
        return str(hook["uri"]) if hook.get("uri") and hook.get("enabled", True) else None

    def notify(self, notice: dict[str, Any]) -> CallbackHTTP:
        return delivery(notice, self._hook(str(notice["event_name"])))

    def status_callback(
        self, provider_fax_id: str, status: str, reason: str | None = None
    ) -> CallbackHTTP:
        if status not in self.supported_statuses:
            raise NotImplementedError(f"Kazoo sends no webhook when a job is {status}")
        return self.notify(self.finish(provider_fax_id, status, reason))

    def inbound_callback(self, from_number: str, to_number: str, pdf: bytes) -> CallbackHTTP:
        month = time.strftime("%Y%m", time.gmtime())
        fax_id = f"{month}-{secrets.token_hex(16)}"
        pages = len(PdfReader(BytesIO(pdf)).pages)
        doc = inbox_doc(self.state.account_id, fax_id, from_number, to_number, pages)
        self.state.modb[fax_id] = doc
        self.state.attachments[fax_id] = pdf
        return self.notify(inbound_notice(doc, pages))

    def unclassifiable_callback(self) -> CallbackHTTP:
        """A notification the bridge has no use for, shaped as the `low_balance` sample in
        crossbar's priv/webhooks_notifications-samples.json (a hook of custom_data type
        `all` delivers every notification to the bridge's URL)."""
        notice = {"account_id": self.state.account_id, "app_name": "crossbar",
                  "app_version": "4.3.0", "current_balance": 340000,
                  "event_category": "notification", "event_name": "low_balance",
                  "msg_id": secrets.token_hex(8), "node": "kazoo_apps@kazoo.test",
                  "server_id": secrets.token_hex(8)}  # fmt: skip
        return delivery(notice, {"id": secrets.token_hex(16), "custom_data": {"type": "all"}})

    def forged(self, callback: CallbackHTTP) -> CallbackHTTP:
        """Kazoo signs nothing: a forger knows the payload shape but not our URL's token."""
        query = {**callback.query, "token": f"forged-{secrets.token_hex(8)}"}
        return CallbackHTTP(headers=dict(callback.headers), body=callback.body, query=query)


@contextlib.contextmanager
def make_harness() -> Iterator[KazooHarness]:
    state = KazooState()
    # cb_phone_numbers: the account owns the test faxbox's caller ID.
    state.numbers["+12125550100"] = {"assigned_to": state.account_id, "state": "in_service",
                                     "features": ["local"], "created": 63_826_000_000,
                                     "updated": 63_826_000_000}  # fmt: skip
    recorder = Recorder(make_app(state))
    with serve(recorder) as root:
        yield KazooHarness(state=state, recorder=recorder, root=root)
