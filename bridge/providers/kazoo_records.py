"""Kazoo's fax documents and fax notifications, read into the common model.

What Kazoo writes, from its own source (2600hz/kazoo):
- A job document lives in the global `faxes` database while it runs; `GET faxes/outgoing/{id}`
  shows its `status` (`pvt_job_status`, or the worker's running text while `processing`:
  cb_faxes.erl `get_execution_status`). Once it ends, `fax_worker:move_doc` moves it to the
  account's month database as `YYYYMM-<id>` with `folder: outbox`, where the public fields have
  no `status` at all: `tx_result.success` tells.
- `fax_worker:release_failed_job` fills `tx_result`: `result_code` is the SIP code (`486`,
  `480`, `404` … from `Response-Code`/`Hangup-Code`), `result_cause` the hang-up cause
  (`USER_BUSY` …) when the call was answered, `result_text` the words. When the call was
  answered, `fax_util:fax_properties` adds the fax engine's own keys after them, and its
  `Fax-Result-Code` becomes a second `result_code` (the T.30 code, a string): a JSON reader
  keeps the last one. So a code of 100 or more is SIP, a smaller non-zero one T.30.
- `attempts` counts the dials the worker made; the job is dialled again while
  `retries - attempts >= 1` (`update_job_status`), whatever the failure.
- The notifications (`fax_worker:notify_fields`, normalised by the webhooks app) carry
  `fax_jobid`/`fax_id` (both the outbox id), `fax_error`, and `fax_info` with
  `fax_hangup_code`/`fax_hangup_cause` and the fax engine's `fax_result_code`/`_text`, pages as
  strings (crossbar `priv/webhooks_notifications-samples.json`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from bridge.errors import CallbackError
from bridge.models import CallbackRequest, FailureReason, JobStatus, StatusUpdate
from bridge.providers.http import provider_message
from bridge.providers.reference import linked
from bridge.providers.values import as_int

GREGORIAN_OFFSET_S = 62_167_219_200  # Kazoo times are Erlang gregorian seconds
JOB_ID_FIELD = "faxbridge_job_id"  # custom fields: Kazoo keeps unknown keys on the fax doc
REFERENCE_FIELD = "faxbridge_reference"

_JOB_STATUSES = {
    "attaching_files": JobStatus.SUBMITTED,  # cb_faxes initial_job_status (multipart)
    "attaching files": JobStatus.SUBMITTED,  # fax_smtp spelling
    "pending": JobStatus.SUBMITTED,
    "resubmitting": JobStatus.SUBMITTED,
    "locked": JobStatus.SUBMITTED,  # fax_ra: claimed, not dialling yet
    "processing": JobStatus.SENDING,
    "completed": JobStatus.DELIVERED,
    "failed": JobStatus.FAILED,
}
# Q.850 / FreeSWITCH hang-up causes that say whose fault the failure was.
_CAUSES = {
    "USER_BUSY": FailureReason.BUSY,
    "NO_ANSWER": FailureReason.NO_ANSWER,
    "NO_USER_RESPONSE": FailureReason.NO_ANSWER,
    "SUBSCRIBER_ABSENT": FailureReason.NO_ANSWER,
    "UNALLOCATED_NUMBER": FailureReason.BAD_NUMBER,
    "NO_ROUTE_DESTINATION": FailureReason.BAD_NUMBER,
    "NO_ROUTE_TRANSIT_NET": FailureReason.BAD_NUMBER,
    "INVALID_NUMBER_FORMAT": FailureReason.BAD_NUMBER,
    "NUMBER_CHANGED": FailureReason.BAD_NUMBER,
}
# SIP final responses for the same causes (RFC 3398 mapping, FreeSWITCH's hangup codes).
_SIP_CODES = {
    486: FailureReason.BUSY,
    600: FailureReason.BUSY,
    480: FailureReason.NO_ANSWER,
    408: FailureReason.NO_ANSWER,
    404: FailureReason.BAD_NUMBER,
    484: FailureReason.BAD_NUMBER,
    410: FailureReason.BAD_NUMBER,
    604: FailureReason.BAD_NUMBER,
}
# fax_worker's own words (release_failed_job, kz_fax_attachment), in the order to test them.
_PHRASES: tuple[tuple[str, FailureReason], ...] = (
    ("invalid fax cid number", FailureReason.REJECTED),  # from_number not the account's
    ("invalid fax number", FailureReason.BAD_NUMBER),
    ("busy", FailureReason.BUSY),
    ("no answer", FailureReason.NO_ANSWER),
    ("attachment", FailureReason.FILE_ERROR),
    ("convert", FailureReason.FILE_ERROR),
    ("tiff", FailureReason.FILE_ERROR),
    ("document", FailureReason.FILE_ERROR),
)
_TOKEN = re.compile(r"\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b")  # USER_BUSY, NORMAL_CLEARING
_CALL_ENDED = frozenset({"NORMAL_CLEARING"})


# -- ids and times -----------------------------------------------------------------------
def strip_month(fax_id: str) -> str:
    """`202405-<id>` (an outbox/MODB id) → `<id>` (the job id `send` returned)."""
    month, sep, rest = fax_id.partition("-")
    return rest if sep and len(month) == 6 and month.isdigit() and rest else fax_id


def is_outbox_id(fax_id: str) -> bool:
    return strip_month(fax_id) != fax_id


def outbox_ids(fax_id: str, now: datetime) -> list[str]:
    """Where a finished job may be: this month's database, then last month's (a job is filed
    under the month it was created in)."""
    previous = now.replace(day=1) - timedelta(days=1)
    return [f"{month:%Y%m}-{fax_id}" for month in (now, previous)]


def from_gregorian(value: Any) -> datetime | None:
    seconds = as_int(value)
    if seconds is None or seconds < GREGORIAN_OFFSET_S:
        return None
    return datetime.fromtimestamp(seconds - GREGORIAN_OFFSET_S, UTC)


def to_gregorian(moment: datetime) -> int:
    return int(moment.timestamp()) + GREGORIAN_OFFSET_S


# -- failures ----------------------------------------------------------------------------
def classify_failure(
    *,
    causes: Iterable[Any],
    texts: Iterable[Any],
    sip_code: Any,
    t30_code: Any,
    fallback: str,
) -> tuple[FailureReason, str]:
    """(reason, the provider code that decided it): hang-up cause first, then Kazoo's words,
    then the SIP code, then the fax engine's T.30 code."""
    words = [str(text) for text in texts if text not in (None, "")]
    tokens = _tokens([*causes, *words])
    for token in tokens:
        if token in _CAUSES:
            return _CAUSES[token], token
    sip = as_int(sip_code) or 0
    lowered = " ".join(words).lower()
    for phrase, reason in _PHRASES:
        if phrase in lowered:
            return reason, str(sip) if sip >= 100 else fallback
    if sip in _SIP_CODES:
        return _SIP_CODES[sip], str(sip)
    t30 = as_int(t30_code) or 0
    if 0 < t30 < 100:  # the call was up and the fax engine gave up: line or machine trouble
        return FailureReason.DISCONNECTED, str(t30)
    ended = next((token for token in tokens if token in _CALL_ENDED), None)
    if ended is not None or sip == 200:
        return FailureReason.DISCONNECTED, ended or "200"
    code = tokens[0] if tokens else (str(sip) if sip else fallback)
    return FailureReason.UNKNOWN, code


def _tokens(values: Iterable[Any]) -> list[str]:
    found: list[str] = []
    for value in values:
        if isinstance(value, str):
            found += [t for t in _TOKEN.findall(value) if t not in found]
    return found


def _split_result_code(value: Any) -> tuple[int | None, int | None]:
    """`tx_result.result_code` → (SIP code, T.30 code): see the module docstring."""
    code = as_int(value)
    if code is None or code == 0:
        return None, None
    return (code, None) if code >= 100 else (None, code)


# -- documents ---------------------------------------------------------------------------
def doc_status(doc: dict[str, Any]) -> tuple[JobStatus, str]:
    """The job's state and Kazoo's word for it, from any of its documents."""
    tx = as_dict(doc.get("tx_result"))
    raw = doc.get("status") or doc.get("pvt_job_status")
    if isinstance(raw, str) and raw in _JOB_STATUSES:
        return _JOB_STATUSES[raw], raw
    if doc.get("folder") == "outbox" or not isinstance(raw, str):
        done = _truthy(tx.get("success"))
        return (JobStatus.DELIVERED, "completed") if done else (JobStatus.FAILED, "failed")
    return JobStatus.SENDING, raw  # `processing` shows the worker's words ("Sent Page 1 of 2")


def doc_update(fax_id: str, doc: dict[str, Any]) -> StatusUpdate:
    """A job document (outgoing, outbox, or a listing row of either) as a status update."""
    status, raw = doc_status(doc)
    tx = as_dict(doc.get("tx_result"))
    attempts = as_int(doc.get("attempts"))
    update = StatusUpdate(
        provider_fax_id=fax_id,
        status=status,
        provider_code=raw,
        pages=as_int(tx.get("pages_sent") or tx.get("transferred_pages")) or None,
        tries=attempts if attempts and attempts > 0 else None,
    )
    update = doc_link(update, doc)
    if status is not JobStatus.FAILED:
        return update
    sip, t30 = _split_result_code(tx.get("result_code"))
    text = tx.get("result_text") or tx.get("error_message") or None
    reason, code = classify_failure(
        causes=[tx.get("result_cause")],
        texts=[tx.get("result_text"), tx.get("error_message")],
        sip_code=sip,
        t30_code=t30,
        fallback=raw,
    )
    return replace(
        update, reason=reason, provider_code=code, provider_text=str(text) if text else None
    )


def doc_link(update: StatusUpdate, doc: dict[str, Any]) -> StatusUpdate:
    """`update` naming the job and round our custom fields on the document name."""
    found = linked(update, doc.get(REFERENCE_FIELD))
    if found.job_id is None and isinstance(doc.get(JOB_ID_FIELD), str):
        found = replace(found, job_id=doc[JOB_ID_FIELD])
    return found


# -- notifications and errors ------------------------------------------------------------
def error_text(response: httpx.Response) -> str:
    """`message` plus the per-field validation messages Kazoo puts under `data`."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict) or not (body.get("message") or body.get("error")):
        return provider_message(response)
    message = str(body.get("message") or body.get("error"))
    data = body.get("data")
    details = [data] if isinstance(data, str) else []
    for key, value in data.items() if isinstance(data, dict) else ():
        if isinstance(value, dict):  # {"to_number": {"required": {"message": …}}}
            rules = [r for r in value.values() if isinstance(r, dict) and r.get("message")]
            details += [f"{key}: {rule['message']}" for rule in rules]
        elif key == "message" and isinstance(value, str):
            details.append(value)
    details = [text for text in details if text and text != message]
    return f"{message} ({'; '.join(details)})" if details else message


def notification_payload(request: CallbackRequest) -> dict[str, Any]:
    """A webhook's body: JSON (`format: json`) or a form (`format: form-data`, the schema's
    default), which kz_http_util:json_to_querystring flattens to `fax_info[fax_success]=true`
    and `key[]=item`; a `fax_info` sent as JSON text is read too."""
    try:
        payload: Any = json.loads(request.body) if request.body.strip() else None
    except ValueError:
        payload = None
    if payload is None:
        payload = _unflatten(request.form)
    if not isinstance(payload, dict) or not payload:
        raise CallbackError("Kazoo callback body is not a JSON object")
    if isinstance(payload.get("fax_info"), str):  # `format: form-data` hooks
        try:
            payload["fax_info"] = json.loads(payload["fax_info"])
        except ValueError as exc:
            raise CallbackError("Kazoo callback fax_info is not JSON") from exc
    return payload


_BRACKETS = re.compile(r"\[([^\[\]]*)\]")


def _unflatten(form: dict[str, str]) -> dict[str, Any]:
    """`a[b][c]=v` → {"a": {"b": {"c": v}}}; `a[]=v` → {"a": [v]}."""
    payload: dict[str, Any] = {}
    for key, value in form.items():
        head = key.split("[", 1)[0]
        path = [head, *_BRACKETS.findall(key[len(head) :])]
        if not head or "".join(f"[{p}]" for p in path[1:]) != key[len(head) :]:
            path = [key]  # not bracketed as Kazoo writes it: keep the key as it is
        node = payload
        for part, following in zip(path, [*path[1:], None], strict=True):
            if following is None:
                if part == "":
                    continue
                node[part] = value
            elif following == "":
                listed = node.setdefault(part, [])
                if isinstance(listed, list):
                    listed.append(value)
                break
            else:
                child = node.setdefault(part, {})
                if not isinstance(child, dict):
                    break
                node = child
    return payload


def callback_update(event: str, payload: dict[str, Any]) -> StatusUpdate | None:
    """An `outbound_fax` / `outbound_fax_error` notification, or None when it names no fax."""
    job = payload.get("fax_jobid") or payload.get("fax_id")
    if not isinstance(job, str) or not job:
        return None
    info = as_dict(payload.get("fax_info"))
    failed = event == "outbound_fax_error" or info.get("fax_success") in (False, "false")
    text = payload.get("fax_error") or info.get("fax_result_text") or None
    update = StatusUpdate(
        provider_fax_id=strip_month(job),
        status=JobStatus.FAILED if failed else JobStatus.DELIVERED,
        provider_code=event,
        provider_text=str(text) if text and failed else None,
        pages=as_int(info.get("fax_transferred_pages") or info.get("fax_total_pages")),
        at=from_gregorian(payload.get("fax_timestamp")),
    )
    if not failed:
        return update
    reason, code = classify_failure(
        causes=[info.get("fax_hangup_cause")],
        texts=[payload.get("fax_error"), info.get("fax_result_text")],
        sip_code=info.get("fax_hangup_code"),
        t30_code=info.get("fax_result_code"),
        fallback=event,
    )
    return replace(update, reason=reason, provider_code=code)


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _truthy(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")
