"""What Crossbar makes of a request, and the envelopes it answers with.

Sources (2600hz/kazoo @ dcf86cbc): applications/crossbar/src/api_util.erl (`get_req_data`,
`extract_multipart`, `create_default_resp_envelope`), cb_context.erl (`add_system_error`,
`response/1`), crossbar_util.erl, crossbar_doc.erl (`handle_datamgr_errors`), kz_doc.erl
(`public_fields`), core/kazoo_schemas/src/kz_json_schema.erl (validation errors) with
applications/crossbar/priv/couchdb/schemas/faxes.json, core/kazoo_numbers/src/converters/
knm_converters.erl (`is_reconcilable`, `normalize`).
"""

from __future__ import annotations

import json
import re
import secrets
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from tests.providers.harness import RecordedRequest

GREGORIAN_OFFSET_S = 62_167_219_200
# knm_converters ?DEFAULT_RECONCILE_REGEX
RECONCILABLE = re.compile(r"^(\+?1)?\d{10}$|^\+[2-9]\d{7,}$|^011\d*$|^00\d*$")


def gregorian_now() -> int:
    return int(time.time()) + GREGORIAN_OFFSET_S


def public(doc: dict[str, Any]) -> dict[str, Any]:
    """kz_doc:public_fields/1: no `_`/`pvt_` keys, and `id` set from `_id`."""
    shown = {k: v for k, v in doc.items() if not k.startswith(("_", "pvt_"))}
    return {**shown, "id": doc.get("_id")}


def envelope(data: Any, code: int = 200, token: str = "", **extra: Any) -> JSONResponse:
    """api_util:create_default_resp_envelope: success (and 202 `accepted`) say "success"."""
    headers = extra.pop("headers", None)
    body = {"auth_token": token, "data": data, "request_id": secrets.token_hex(16),
            "revision": extra.pop("revision", secrets.token_hex(16)), "status": "success",
            "node": "kazoo_apps@kazoo.test", "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ"),
            **extra}  # fmt: skip
    return JSONResponse(body, status_code=code, headers=headers)


def error(code: int, message: str, data: Any = None) -> JSONResponse:
    """The same envelope for errors: `error` is the HTTP status, `message` the error name."""
    return envelope({} if data is None else data, code, error=str(code), message=message,
                    status="error")  # fmt: skip


def bad_identifier(fax_id: str) -> JSONResponse:
    """crossbar_doc:handle_datamgr_errors('not_found') → cb_context 'bad_identifier'."""
    return error(404, "bad_identifier", {"cause": fax_id, "message": "bad identifier"})


def validation_error(key: str, rule: str, message: str, **more: Any) -> JSONResponse:
    """kz_json_schema:build_validate_error: 400 "validation error", `{key: {rule: {…}}}`."""
    return error(400, "validation error", {key: {rule: {"message": message, **more}}})


def request_data(body: bytes) -> dict[str, Any]:
    """api_util:get_req_data: a JSON body's `data`."""
    try:
        parsed = json.loads(body or b"{}")
    except ValueError:
        return {}
    data = parsed.get("data") if isinstance(parsed, dict) else None
    return data if isinstance(data, dict) else {}


def fax_request(request: Request, body: bytes) -> tuple[dict[str, Any], bytes | None]:
    """api_util:extract_multipart: the application/json part is the request data, any other
    part a file (cb_context:req_files); a plain JSON body has `document.url` instead."""
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/"):
        return request_data(body), None
    recorded = RecordedRequest("PUT", "", {}, {"content-type": content_type}, body)
    data: dict[str, Any] = {}
    pdf = None
    for part in recorded.parts():
        if part.content_type == "application/json":
            data = request_data(part.data)
        else:
            pdf = part.data
    return data, pdf


def schema_problem(req: dict[str, Any]) -> JSONResponse | None:
    """schemas/faxes.json as kz_json_schema reports it; unknown keys are allowed (the schema
    has no `additionalProperties`), so our custom fields are kept."""
    for key in ("from_number", "to_number"):
        if key not in req:
            return validation_error(key, "required", "Field is required but missing", value=key)
    for key in ("from_number", "to_number", "from_name", "to_name"):
        if key in req and not isinstance(req[key], str):
            return validation_error(key, "type", "Value did not match type(s): string")
    for key in ("retries", "attempts"):
        value = req.get(key, 0)
        if not isinstance(value, int) or isinstance(value, bool):
            return validation_error(key, "type", "Value did not match type(s): integer")
        if value > 4:
            return validation_error(key, "maximum", "Value must be at most 4")
        if value < 0:
            return validation_error(key, "minimum", "Value must be at least 0")
    document = req.get("document")
    if document is not None and not re.match(r"^https?://", str(document.get("url", ""))):
        return validation_error("document.url", "pattern", "Failed to match pattern '^https?://'")
    return None


def normalize_number(number: str) -> str | None:
    """knm_converters:is_reconcilable, then normalize to E.164 (the default converter)."""
    if not RECONCILABLE.match(number):
        return None
    digits = number.lstrip("+")
    if len(digits) == 10:
        return f"+1{digits}"
    return f"+{digits}" if not number.startswith(("011", "00")) else number
