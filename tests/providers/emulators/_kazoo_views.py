"""Crossbar's listings on the emulator: view rows, paging, filters.

Sources (2600hz/kazoo): applications/crossbar/src/crossbar_view.erl (direction, `page_size`,
`start_key`/`next_start_key`, time ranges), crossbar_filter.erl (`filter_*` and the other
query-string filters, applied to each row's document), api_util.erl (`encode_start_key`),
cb_context.erl (`?PAGINATION_PAGE_SIZE`), and the fax views in
applications/fax/priv/couchdb/views/faxes.json and core/kazoo_modb/priv/couchdb/views/faxes.json.
"""

from __future__ import annotations

import base64
import json
from typing import Any

PAGE_SIZE = 50  # cb_context ?PAGINATION_PAGE_SIZE default
FILTER_KEYS = ("filter_", "has_key", "key_missing", "has_value", "value_missing",
               "created_from", "created_to", "modified_from", "modified_to")  # fmt: skip
Row = tuple[list[Any], dict[str, Any], dict[str, Any]]  # view key, document, what is shown


def positive(value: str | None, default: int) -> int:
    try:
        number = int(value) if value is not None else default
    except ValueError:
        return default
    return number if number > 0 else default


def outgoing_value(doc: dict[str, Any]) -> dict[str, Any]:
    """The value of view faxes/list_by_account (applications/fax/priv/couchdb/views)."""
    return {"id": doc["_id"], "faxbox_id": doc.get("faxbox_id"),
            "status": doc.get("pvt_job_status"), "to": doc.get("to_number"),
            "from": doc.get("from_number"), "attempts": doc.get("attempts"),
            "created": doc.get("pvt_created")}  # fmt: skip


def modb_row(doc: dict[str, Any]) -> dict[str, Any]:
    """normalize_modb_view_results: kz_doc:public_fields(merge(view value, doc))."""
    value = {"id": doc["_id"], "status": doc.get("pvt_job_status"), "to": doc.get("to_number"),
             "from": doc.get("from_number"), "created": doc.get("pvt_created")}  # fmt: skip
    shown = {k: v for k, v in {**doc, **value}.items() if not k.startswith(("_", "pvt_"))}
    return {**shown, "id": doc["_id"]}  # kz_doc:public_fields


def page(query: dict[str, str], rows: list[Row]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """crossbar_view: descending by view key unless `ascending=true`; crossbar_filter keeps
    the rows whose document passes every filter; `page_size` rows from `start_key` on, and
    `next_start_key` (api_util:encode_start_key: opaque base64url) when more remain."""
    descending = query.get("ascending", "false") != "true" or query.get("descending") == "true"
    rows = sorted(rows, key=lambda row: row[0], reverse=descending)
    if any(key.startswith(FILTER_KEYS) for key in query):
        rows = [row for row in rows if _passes(row[1], query)]
    start = _decode_key(query.get("start_key"))
    if start is not None:
        rows = [r for r in rows if (r[0] <= start if descending else r[0] >= start)]
    size = positive(query.get("page_size"), PAGE_SIZE)
    shown, rest = rows[:size], rows[size:]
    extra: dict[str, Any] = {"page_size": len(shown)}
    if shown:
        extra["start_key"] = _encode_key(shown[0][0])
    if rest:
        extra["next_start_key"] = _encode_key(rest[0][0])
    return [row[2] for row in shown], extra


def _passes(doc: dict[str, Any], query: dict[str, str]) -> bool:
    """crossbar_filter:filter_doc_by_querystring (the keys it knows; others pass)."""
    for key, value in query.items():
        if key.startswith("filter_not_"):
            ok = not _matches(doc, key[len("filter_not_") :], value)
        elif key.startswith("filter_"):
            ok = _matches(doc, key[len("filter_") :], value)
        elif key in ("has_key", "key_missing"):
            ok = (_get(doc, value) is not None) == (key == "has_key")
        elif key in ("has_value", "value_missing"):
            ok = (_get(doc, value) not in (None, "", [], {})) == (key == "has_value")
        elif key in ("created_from", "created_to", "modified_from", "modified_to"):
            stamp = doc.get("pvt_created" if key.startswith("created") else "pvt_modified", 0)
            bound = positive(value, 0)
            ok = stamp >= bound if key.endswith("_from") else stamp <= bound
        else:
            continue
        if not ok:
            return False
    return True


def _matches(doc: dict[str, Any], key: str, wanted: str) -> bool:
    """crossbar_filter:should_filter: the value as a string equals the filter, or the filter
    is a JSON list holding it."""
    value = _get(doc, key)
    text = "" if value is None else value if isinstance(value, str) else json.dumps(value)
    if text == wanted:
        return True
    try:
        listed = json.loads(wanted)
    except ValueError:
        return False
    return isinstance(listed, list) and text in [str(item) for item in listed]


def _get(doc: dict[str, Any], dotted: str) -> Any:
    value: Any = doc
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _encode_key(key: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode()


def _decode_key(encoded: str | None) -> list[Any] | None:
    if not encoded:
        return None
    try:
        key = json.loads(base64.urlsafe_b64decode(encoded.encode()))
    except ValueError:
        return None
    return key if isinstance(key, list) else None
