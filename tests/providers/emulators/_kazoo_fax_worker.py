"""Kazoo's fax application on the emulator's documents: dials ending, jobs moving, notices.

Sources (2600hz/kazoo @ dcf86cbc): applications/fax/src/fax_worker.erl (`release_failed_job`
for each way a dial ends, `release_successful_job`, `release_job` → `update_job_status`,
`move_doc`, `notify_fields`, `fax_error`), fax_util.erl (`fax_properties`), fax_request.erl
(the inbox document and the inbound notice), stepswitch_originate.erl (what a failed originate
answers: `Response-Message` = the hang-up cause, `Response-Code` = the SIP code),
ecallmgr's priv/mod_kazoo/definitions/fax_data.xml (the `Fax-*` keys), webhooks_util.erl
(`fire_hook`: custom_data without `type`, `X-Hook-ID`/`X-Account-ID`, JSON or form body),
kz_http_util.erl (`json_to_querystring`) and
crossbar's priv/webhooks_notifications-samples.json (the notices as delivered: numbers as
strings, `fax_jobid` = `fax_id` = the outbox id).
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote_plus

from tests.providers.emulators._kazoo_requests import GREGORIAN_OFFSET_S, gregorian_now
from tests.providers.harness import CallbackHTTP

DEFAULT_RETRY_PERIOD_S = 300  # fax_worker ?DEFAULT_RETRY_PERIOD (fax.default_retry_period)


@dataclass(frozen=True)
class Dial:
    """How one dial ended, as fax_worker hears it; `path` names its release clause."""

    # tx_resp | fax_result | bad_file | invalid_cid | job_timeout | uncontrolled_termination
    path: str
    response_code: str = ""  # offnet resp `Response-Code` (tx_resp), e.g. "sip:486"
    response_message: str = ""  # … `Response-Message`: the hang-up cause
    hangup_code: str | None = None  # CHANNEL_FAX_STATUS `Hangup-Code` (fax_result)
    hangup_cause: str | None = None
    fax_data: dict[str, Any] = field(default_factory=dict)  # `Application-Data` Fax-* keys
    message: str = ""  # bad_file's error (kz_fax_attachment); job_timeout's stage


def line_trouble(code: int, cause: str) -> Dial:
    """The originate failed before any fax tone (stepswitch_originate:originate_failure)."""
    return Dial("tx_resp", response_code=f"sip:{code}", response_message=cause)


def transmission(pages: int, *, ok: bool, code: str = "0", text: str = "OK") -> Dial:
    """The call was answered and the fax engine ended (`fax_status` result event)."""
    data = {"Fax-Success": ok, "Fax-Result-Code": code, "Fax-Result-Text": text,
            "Fax-ECM-Used": False, "Fax-Transferred-Pages": str(pages if ok else 0),
            "Fax-Total-Pages": str(pages), "Fax-Bad-Rows": "0", "Fax-Transfer-Rate": "9600",
            "Fax-Remote-Station-ID": "REMOTE FAX" if ok else ""}  # fmt: skip
    return Dial("fax_result", hangup_code="sip:200", hangup_cause="NORMAL_CLEARING",
                fax_data=data)  # fmt: skip


# How each common failure reason comes about on Kazoo.
FAILURES: dict[str, Dial] = {
    "busy": line_trouble(486, "USER_BUSY"),
    "no_answer": line_trouble(480, "NO_ANSWER"),
    "bad_number": line_trouble(404, "UNALLOCATED_NUMBER"),
    "disconnected": transmission(1, ok=False, code="49", text="The call dropped prematurely"),
    "file_error": Dial("bad_file", message="invalid format for attachment"),
    # handle_info('timeout') in a stage (?FAX_ORIGINATE = "originate"): result_code 500, and
    # then `stop` → move_doc → notify, as for every other release. (An uncontrolled
    # termination is no `unknown` webhook: terminate/2 never notifies.)
    "unknown": Dial("job_timeout", message="originate"),
}


def release(job: dict[str, Any], dial: Dial, identity: dict[str, Any]) -> dict[str, Any]:
    """fax_worker:release_job on the job document in place; returns the `Resp` it keeps."""
    elapsed = gregorian_now() - int(job.get("pvt_created", gregorian_now()))
    resp: dict[str, Any] = {}
    result: dict[str, Any]
    if dial.path == "tx_resp":
        msg = dial.response_message
        result = {"success": False, "result_code": int(dial.response_code[4:]),
                  "result_text": msg, "pages_sent": 0, "time_elapsed": elapsed}  # fmt: skip
        resp = {"Call-ID": secrets.token_hex(8), "Response-Message": msg,
                "Response-Code": dial.response_code,
                "Application-Data": {"Fax-Result-Text": msg}}  # fmt: skip
    elif dial.path == "fax_result":
        data = {**identity, **dial.fax_data}
        resp = {"Call-ID": secrets.token_hex(8), "Hangup-Code": dial.hangup_code,
                "Hangup-Cause": dial.hangup_cause, "Application-Data": data}  # fmt: skip
        result = {"time_elapsed": elapsed, "result_code": int(str(dial.hangup_code)[4:]),
                  "result_cause": dial.hangup_cause}  # fmt: skip
        if data.get("Fax-Success") is True:  # release_successful_job
            result["pvt_delivered_date"] = gregorian_now()
        else:
            result["success"] = False
        # fax_util:fax_properties follows, and its `result_code` (T.30) comes twice in Kazoo's
        # list: a JSON reader keeps the last one, as this assignment does.
        result.update({_normalize(key[4:]): v for key, v in data.items() if key[:4] == "Fax-"})
    elif dial.path == "bad_file":
        result = {"success": False, "result_code": 0, "result_text": dial.message,
                  "pages_sent": 0, "time_elapsed": elapsed, "fax_bad_rows": 0, "fax_speed": 0,
                  "fax_receiver_id": "", "fax_error_correction": False}  # fmt: skip
    elif dial.path == "job_timeout":
        result = {"success": False, "result_code": 500,
                  "result_text": f"fax job timed out - {dial.message}", "pages_sent": 0,
                  "time_elapsed": elapsed, "fax_bad_rows": 0, "fax_speed": 0,
                  "fax_receiver_id": "", "fax_error_correction": False}  # fmt: skip
    elif dial.path == "invalid_cid":
        text = f"invalid fax cid number: {job.get('from_number')}"
        result = {"success": False, "result_code": 400, "result_text": text,
                  "pages_sent": 0, "time_elapsed": elapsed}  # fmt: skip
    else:  # uncontrolled_termination: terminate/2 sets retries to 0 first
        job["retries"] = 0
        text = "process terminated. please contact your support for details"
        result = {"success": False, "result_code": 500, "result_text": text,
                  "pages_sent": 0, "time_elapsed": elapsed}  # fmt: skip
    job["attempts"] = int(job.get("attempts", 0)) + 1
    job["tx_result"] = result
    job.pop("pvt_queue", None)
    job.update(pvt_modified=gregorian_now(), retry_after=DEFAULT_RETRY_PERIOD_S)
    job["_rev"] = f"{int(job['_rev'].split('-')[0]) + 1}-{secrets.token_hex(16)}"
    job["pvt_job_status"] = _job_status(job, success=result.get("success", False) is True)
    return resp


def _job_status(job: dict[str, Any], *, success: bool) -> str:
    """update_job_status: pending again while `retries - attempts >= 1` (default retries 1)."""
    if success:
        return "completed"
    return "pending" if int(job.get("retries", 1)) - int(job["attempts"]) >= 1 else "failed"


def moved(job: dict[str, Any]) -> dict[str, Any]:
    """move_doc: the job under `YYYYMM-<id>` (the month it was created) in `folder: outbox`."""
    month = time.strftime("%Y%m", time.gmtime(int(job["pvt_created"]) - GREGORIAN_OFFSET_S))
    outbox_id = f"{month}-{job['_id']}"
    account = job["pvt_account_id"]  # kzs_util:format_account_modb(…, 'encoded')
    account_db = f"account%2F{account[:2]}%2F{account[2:4]}%2F{account[4:]}-{month}"
    return {**job, "_id": outbox_id, "_rev": f"1-{secrets.token_hex(16)}", "folder": "outbox",
            "pvt_account_db": account_db}  # fmt: skip


def outbound_notice(doc: dict[str, Any], resp: dict[str, Any]) -> dict[str, Any]:
    """notify_fields (+ `Fax-Error` for a failure) as the webhooks app normalises them."""
    status = doc["pvt_job_status"]
    info: dict[str, Any] = {"fax_hangup_code": int(str(resp.get("Hangup-Code", "sip:0"))[4:])}
    if resp.get("Hangup-Cause"):
        info["fax_hangup_cause"] = resp["Hangup-Cause"]
    data = resp.get("Application-Data") or {}
    info.update({_normalize(key): v for key, v in data.items() if key[:4] == "Fax-"})
    to_number = str(doc.get("to_number"))
    notice = {
        "caller_id_name": doc.get("from_name"),
        "caller_id_number": doc.get("from_number"),
        "callee_id_number": to_number,
        "callee_id_name": doc.get("to_name", to_number),
        "account_id": doc["pvt_account_id"],
        "account_db": doc["pvt_account_db"],
        "fax_jobid": doc["_id"],
        "fax_id": doc["_id"],
        "faxbox_id": doc.get("faxbox_id"),
        "fax_notifications": {"email": {"send_to": []}},
        "fax_info": info,
        "call_id": resp.get("Call-ID"),
        "fax_timestamp": gregorian_now(),
        "fax_timezone": doc.get("fax_timezone"),
        **_default_headers("outbound_fax" if status == "completed" else "outbound_fax_error"),
    }
    if status == "failed":  # fax_worker:fax_error
        notice["fax_error"] = data.get("Fax-Result-Text") or doc["tx_result"].get("result_text")
    return {k: v for k, v in notice.items() if v not in (None, "", [])}  # props:filter_empty


def inbox_doc(account_id: str, fax_id: str, sender: str, to: str, pages: int) -> dict[str, Any]:
    """fax_request's inbox document (store_fax): `rx_result` from fax_properties."""
    now = gregorian_now()
    rx = {"success": True, "result_code": "0", "result_text": "OK",
          "transferred_pages": str(pages), "total_pages": str(pages)}  # fmt: skip
    return {"_id": fax_id, "_rev": f"1-{secrets.token_hex(16)}", "name": "fax message received",
            "to_number": to, "from_number": sender, "folder": "inbox",
            "source_type": "incoming_fax", "media_type": "tiff", "rx_result": rx,
            "pvt_type": "fax", "pvt_created": now, "pvt_modified": now,
            "pvt_account_id": account_id}  # fmt: skip


# The `inbound_fax` sample's callee ID: kapps_call:callee_id_number of the inbound call, which
# the sample shows differing from `to_user` (the number dialled, kapps_call:to_user).
SAMPLE_CALLEE_ID = "+16282037452"


def inbound_notice(doc: dict[str, Any], pages: int) -> dict[str, Any]:
    """fax_request notify_fields (+ notify_success), shaped as the `inbound_fax` sample:
    `to_user` is the number dialled, `callee_id_number` the call's callee ID."""
    info = {"fax_success": True, "fax_result_code": "0", "fax_result_text": "OK",
            "fax_total_pages": str(pages), "fax_transferred_pages": str(pages),
            "fax_remote_station_id": "SENDER FAX", "fax_doc_id": doc["_id"],
            "fax_bad_rows": "0", "fax_transfer_rate": "9600"}  # fmt: skip
    return {"account_id": doc["pvt_account_id"], "call_id": secrets.token_hex(8),
            "callee_id_name": SAMPLE_CALLEE_ID, "callee_id_number": SAMPLE_CALLEE_ID,
            "caller_id_name": doc["from_number"], "caller_id_number": doc["from_number"],
            "fax_id": doc["_id"], "fax_info": info,
            "fax_notifications": {"email": {"send_to": []}}, "fax_timestamp": gregorian_now(),
            "from_realm": "10.20.0.1", "from_user": doc["from_number"],
            "to_realm": "fax.test.local", "to_user": doc["to_number"],
            **_default_headers("inbound_fax")}  # fmt: skip


def delivery(notice: dict[str, Any], hook: dict[str, Any]) -> CallbackHTTP:
    """webhooks_util:fire_hook/do_fire: custom_data merged in without `type`/`action`, the
    cluster id added, POSTed with X-Hook-ID and X-Account-ID: as pretty JSON for a hook of
    `format: json`, else (schemas/webhooks.json: `format` defaults to `form-data`) as
    kz_http_util:json_to_querystring makes it, `application/x-www-form-urlencoded`."""
    custom = dict(hook.get("custom_data") or {})
    custom = {k: v for k, v in custom.items() if k not in ("type", "action")}
    payload = {**notice, **custom, "cluster_id": "kazoo-test-cluster"}
    headers = {"x-hook-id": str(hook.get("id")), "x-account-id": str(notice.get("account_id"))}
    if hook.get("format", "form-data") == "json":
        body = json.dumps(payload, indent=2).encode()
        return CallbackHTTP(headers={"content-type": "application/json", **headers}, body=body)
    form = "&".join(_querystring(payload, ""))
    headers["content-type"] = "application/x-www-form-urlencoded"
    return CallbackHTTP(headers=headers, body=form.encode())


def _querystring(value: dict[str, Any], prefix: str) -> list[str]:
    """kz_http_util:json_to_querystring: `key[inner]=v` for objects, `key[]=v` per list item,
    `true`/`false`, values url-encoded (`legacy`: spaces as `+`)."""
    pairs: list[str] = []
    for key, item in value.items():
        name = f"{prefix}[{key}]" if prefix else str(key)
        if isinstance(item, dict):
            pairs += _querystring(item, name)
        elif isinstance(item, list):
            pairs += [f"{name}[]={quote_plus(str(v))}" for v in item]
        elif isinstance(item, bool):
            pairs.append(f"{name}={'true' if item else 'false'}")
        elif item is not None:
            pairs.append(f"{name}={quote_plus(str(item))}")
    return pairs


def _default_headers(event: str) -> dict[str, Any]:
    """kz_api:default_headers as normalised: app, event category and name, ids."""
    return {"app_name": "fax", "app_version": "4.3.0", "event_category": "notification",
            "event_name": event, "msg_id": secrets.token_hex(8), "node": "kazoo_apps@kazoo.test",
            "server_id": secrets.token_hex(8)}  # fmt: skip


def _normalize(key: str) -> str:
    """kz_json:normalize_key: `Result-Code` → `result_code`."""
    return key.lower().replace("-", "_")
