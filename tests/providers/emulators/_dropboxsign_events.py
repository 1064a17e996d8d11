"""The callbacks a Dropbox Sign fax account POSTs, as the official material shows them.

- Envelope: multipart/form-data with one field `json` (hellosign-openapi
  `markdown/en/tags/callbacks-tag-description.md`; `EventCallbackRequest` in openapi.yaml):
  `event {event_time, event_type, event_hash, event_metadata}`.
- `event_hash`: hex HMAC-SHA256 of event_time + event_type under the API key
  (dropbox-sign-python `dropbox_sign/event_callback_helper.py`).
- The seven fax events (`official_event`): hellosign-openapi `examples/json/EventCallbackFaxSent,
  FaxReceived, FaxOnHold, FaxBusy, FaxNoAnswer, FaxDisconnected, FaxBlacklisted.json` (the
  "seven Fax API v3 events" of the 2026-09-03 changelog; the openapi.yaml enum does not list
  them yet). Each is `event` + a `transmission` object with no fax_id, no status code, and
  `is_complete: false` even for `fax_sent`; `has_error` is true for the four failures only.
- The account-callback sample (`sample_callback`): help.dropbox.com
  "callback-event-example-dropbox-fax-api", `"event_type": "transmission_disconnected"`,
  `account_guid`, `client_id: null` and a `transmission` object (test_mode, title, … the
  sign-request flags is_complete / has_error and files_url); developers.hellosign.com/docs/fax/
  v3migration shows `transmission` with `test_mode` and `signature_request_id: ""`.
- `fax_callback` is no official sample: the sample's object with the FaxResponse fields of
  openapi.yaml added (`fax_id`, `transmissions[].status_code`), under any event name, for the
  adapter's lenient reading of a payload that does carry a status code.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

from tests.providers.emulators.hellofax import multipart
from tests.providers.harness import CallbackHTTP

ACCOUNT_ID = "63522885f9261e2b04eea043933ee7313eb674fd"  # test_fixtures/EventCallbackHelper_*
SAMPLE_EVENT = "transmission_disconnected"  # help.dropbox.com fax callback sample
# examples/json/EventCallbackFax*.json: the event name and its `has_error` flag.
OFFICIAL_EVENTS = {
    "fax_sent": False,
    "fax_received": False,
    "fax_on_hold": False,
    "fax_busy": True,
    "fax_no_answer": True,
    "fax_disconnected": True,
    "fax_blacklisted": True,
}


def event_hash(key: str, event_time: str, event_type: str) -> str:
    """hex(HMAC-SHA256(key=api_key, msg=event_time + event_type)), as EventCallbackHelper."""
    return hmac.new(key.encode(), f"{event_time}{event_type}".encode(), hashlib.sha256).hexdigest()


def sample_fields(fax: Any) -> dict[str, Any]:
    """The `transmission` object as far as the official sample shows it (no fax_id in it)."""
    failed = fax.status_code.startswith("error") or fax.status_code == "on_hold"
    return {
        "test_mode": fax.test_mode,
        "signature_request_id": "",
        "title": fax.title,
        "original_title": fax.title,
        "subject": fax.cover.get("cover_page_to"),
        "message": fax.cover.get("cover_page_message"),
        "metadata": {},
        "created_at": fax.created_at,
        "is_complete": fax.status_code == "success",
        "is_declined": False,
        "has_error": failed,
        "files_url": fax.files_url(),
        "final_copy_uri": f"/v3/transmission/final_copy/{fax.fax_id}",
    }


def official_event(
    key: str, event_type: str, fax: Any, event_time: int | None = None
) -> CallbackHTTP:
    """One of the seven fax events, keyed as examples/json/EventCallbackFax*.json: no
    account_guid or client_id beside `event`, no event_message, and a `transmission` whose
    final_copy_uri ends in the fax id (test_fixtures/FaxResponse.json) and whose files_url is
    the fax's own (another id, as in FaxGetResponse.json)."""
    when = str(event_time if event_time is not None else int(time.time()))
    transmission = {
        "test_mode": fax.test_mode,
        "signature_request_id": "",
        "title": fax.title,
        "original_title": fax.title,
        "subject": None,
        "message": fax.cover.get("cover_page_message"),
        "metadata": {},
        "created_at": fax.created_at,
        "is_complete": False,
        "is_declined": False,
        "has_error": OFFICIAL_EVENTS[event_type],
        "files_url": fax.files_url(),
        "cc_email_addresses": [],
        "final_copy_uri": f"/v3/transmission/final_copy/{fax.fax_id}",
        "template_ids": [],
        "custom_fields": [],
        "attachments": [],
        "response_data": [],
        "signatures": [],
    }
    payload = {
        "event": {
            "event_time": when,
            "event_type": event_type,
            "event_hash": event_hash(key, when, event_type),
            "event_metadata": {
                "related_signature_id": None,
                "reported_for_account_id": ACCOUNT_ID,
                "reported_for_app_id": None,
            },
        },
        "transmission": transmission,
    }
    return as_callback(payload)


def callback_test(key: str, event_time: int | None = None) -> CallbackHTTP:
    """examples/json/EventCallbackCallbackTest.json: the `event` alone, for no account."""
    when = str(event_time if event_time is not None else int(time.time()))
    metadata = dict.fromkeys(
        ("related_signature_id", "reported_for_account_id", "reported_for_app_id")
    )
    event = {
        "event_time": when,
        "event_type": "callback_test",
        "event_hash": event_hash(key, when, "callback_test"),
        "event_metadata": metadata,
    }
    return as_callback({"event": event})


def signed(
    key: str, event_type: str, body: dict[str, Any], event_time: int | None = None
) -> CallbackHTTP:
    """One callback POST: `body` (the objects) under a signed `event`."""
    when = str(event_time if event_time is not None else int(time.time()))
    payload = {
        "event": {
            "event_time": when,
            "event_type": event_type,
            "event_hash": event_hash(key, when, event_type),
            "event_metadata": {
                "related_signature_id": None,
                "reported_for_account_id": ACCOUNT_ID,
                "reported_for_app_id": None,
                "event_message": None,
            },
        },
        "account_guid": ACCOUNT_ID,
        "client_id": None,
        **body,
    }
    return as_callback(payload)


def as_callback(payload: dict[str, Any]) -> CallbackHTTP:
    body, content_type = multipart({"json": json.dumps(payload)})
    return CallbackHTTP(headers={"content-type": content_type}, body=body)


def sample_callback(key: str, fax: Any, event_time: int | None = None) -> CallbackHTTP:
    """The official sample: `transmission_disconnected`, a `transmission` without fax_id."""
    return signed(key, SAMPLE_EVENT, {"transmission": sample_fields(fax)}, event_time)


def fax_callback(
    key: str,
    fax: Any,
    event_type: str | None = None,
    *,
    event_time: int | None = None,
    object_key: str = "transmission",
) -> CallbackHTTP:
    """The sample's object with the FaxResponse fields added (status codes, fax id)."""
    record = {**sample_fields(fax), **fax.as_json()}
    name = event_type or f"transmission_{fax.status_code}"
    return signed(key, name, {object_key: record}, event_time)
