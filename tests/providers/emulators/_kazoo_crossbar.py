"""Kazoo's Crossbar API for faxes, on loopback, built from 2600hz/kazoo's own source.

Sources (github.com/2600hz/kazoo, master @ dcf86cbc): applications/crossbar/src/modules/
cb_faxes.erl (routes and what each does: PUT/GET/DELETE, `response_202`), crossbar_doc.erl
(save/load/delete, soft deletes), cb_webhooks.erl with priv/couchdb/schemas/webhooks.json,
cb_phone_numbers.erl with doc/phone_numbers.md, cb_api_auth.erl. Envelopes, request reading
and schema errors are in `_kazoo_requests.py`, listings in `_kazoo_views.py`. Each route names
its part. Documents are kept as CouchDB has them (`_id`, `_rev`, `pvt_*`); what Crossbar shows
of them is `public()`.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.convertors import Convertor, register_url_convertor
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.providers.emulators._kazoo_requests import (
    bad_identifier,
    envelope,
    error,
    fax_request,
    gregorian_now,
    normalize_number,
    public,
    request_data,
    schema_problem,
    validation_error,
)
from tests.providers.emulators._kazoo_views import (
    PAGE_SIZE,
    modb_row,
    outgoing_value,
    page,
    positive,
)

MAX_RANGE_S = 31 * 86_400 + 3_600  # crossbar.hrl ?MAX_RANGE: crossbar.maximum_range default
# schemas/faxes.json defaults for tx_result, as the PUT example of doc/faxes.md shows them.
TX_RESULT_DEFAULTS = {"error_message": "", "fax_bad_rows": 0, "fax_error_correction": False,
                      "fax_receiver_id": "", "fax_speed": 0, "pages_sent": 0, "success": False,
                      "time_elapsed": 0}  # fmt: skip
Handler = Callable[[Request, str], Awaitable[Response]]


class _Folder(Convertor[str]):
    """The month-database folders cb_faxes serves by id (`incoming`/`smtplog` are not ours)."""

    regex = "outbox|inbox"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("folder", _Folder())


@dataclass
class KazooState:
    account_id: str = field(default_factory=lambda: secrets.token_hex(16))
    auth_token: str = field(default_factory=lambda: secrets.token_hex(32))
    api_key: str = field(default_factory=lambda: secrets.token_hex(32))
    tokens: set[str] = field(default_factory=set)
    faxes_db: dict[str, dict[str, Any]] = field(default_factory=dict)  # the global `faxes` db
    modb: dict[str, dict[str, Any]] = field(default_factory=dict)  # YYYYMM-<id>: outbox, inbox
    attachments: dict[str, bytes] = field(default_factory=dict)  # doc id → the fax document
    webhooks: dict[str, dict[str, Any]] = field(default_factory=dict)
    numbers: dict[str, dict[str, Any]] = field(default_factory=dict)  # phone_numbers
    running: dict[str, str] = field(default_factory=dict)  # fax_worker's status while processing
    # How `PUT faxes` answers: cb_faxes put/1 is `crossbar_util:response_202` with the saved
    # document (`_id`); doc/faxes.md shows 200-style `id`. Tests switch to the other variants.
    put_status: int = 202
    put_data: str = "saved"  # "saved": the CouchDB document; "public": kz_doc:public_fields
    reply_delay_s: float = 0.0  # the fax is saved, then the reply is this late (a lost reply)

    def __post_init__(self) -> None:
        self.tokens.add(self.auth_token)


def make_app(state: KazooState) -> Starlette:
    def authed(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        """cb_token_auth and api_resource: a live token, its own account."""

        async def guarded(request: Request) -> Response:
            token = request.headers.get("x-auth-token", "")
            if token not in state.tokens:
                return error(401, "invalid credentials")  # crossbar_util:response_401
            if request.path_params.get("account") != state.account_id:
                return error(403, "forbidden", {"message": "forbidden"})
            return await handler(request, token)

        return guarded

    async def api_auth(request: Request) -> Response:
        """cb_api_auth.erl: PUT /v2/api_auth {"data": {"api_key"}} → a token
        (crossbar_auth:create_auth_token); a key no account has is `response_bad_identifier`."""
        data = request_data(await request.body())
        if not data.get("api_key"):
            return error(401, "invalid_credentials", {"message": "invalid credentials"})
        if data["api_key"] != state.api_key:
            return error(404, "bad identifier", [data["api_key"]])
        token = secrets.token_hex(32)
        state.tokens.add(token)
        account = {"account_id": state.account_id, "account_name": "Faxbridge Test"}
        return envelope({**account, "apply_to": "account"}, 201, token)

    async def account(request: Request, token: str) -> Response:
        """cb_accounts.erl: GET /v2/accounts/{id}."""
        data = {"id": state.account_id, "name": "Faxbridge Test", "realm": "fax.test.local"}
        return envelope({**data, "enabled": True}, token=token)

    async def create_fax(request: Request, token: str) -> Response:
        """cb_faxes put/1, put/2 (`outgoing`): create/1 validates against schemas/faxes.json,
        on_successful_validation wants a file or document.url and a reconcilable to_number,
        on_success adds the pvt fields; crossbar_doc:save, then response_202 with the saved
        document, and the attachment saved in the background (job status → pending)."""
        data, pdf = fax_request(request, await request.body())
        req = {k: v for k, v in data.items() if not k.startswith(("_", "pvt_"))}
        problem = schema_problem(req)
        if problem is not None:
            return problem
        if pdf is None and not (req.get("document") or {}).get("url"):
            return validation_error("document.url", "required",
                                    "add document url or upload a document")  # fmt: skip
        number = normalize_number(str(req["to_number"]))
        if number is None:
            return validation_error("document.to_number", "required",
                                    "add a valid number to send the fax to")  # fmt: skip
        now = gregorian_now()
        fax_id = secrets.token_hex(16)
        doc = {"retries": 1, "tx_result": dict(TX_RESULT_DEFAULTS), "fax_timezone": "undefined",
               **req, "to_number": number, "attempts": 0, "_id": fax_id,
               "_rev": f"1-{secrets.token_hex(16)}", "pvt_type": "fax",
               "pvt_job_status": "attaching_files" if pdf is not None else "pending",
               "pvt_created": now, "pvt_modified": now, "pvt_account_id": state.account_id,
               "pvt_account_db": "faxes", "pvt_reseller_id": state.account_id,
               "pvt_vsn": "1"}  # fmt: skip
        saved = dict(doc)
        if pdf is not None:  # maybe_save_attachment → prepare_attachment
            state.attachments[fax_id] = pdf
            doc.update(pvt_job_status="pending", _rev=f"2-{secrets.token_hex(16)}")
        state.faxes_db[fax_id] = doc
        if state.reply_delay_s:
            await asyncio.sleep(state.reply_delay_s)
        shown = saved if state.put_data == "saved" else public(saved)
        return envelope(shown, state.put_status, token, revision=saved["_rev"],
                        headers={"location": fax_id})  # fmt: skip

    async def list_outgoing(request: Request, token: str) -> Response:
        """cb_faxes outgoing_summary: view faxes/list_by_account over the faxes db, values
        only (id, faxbox_id, status, to, from, attempts, created), crossbar_filter on docs."""
        rows = [
            ([doc["pvt_created"], doc["_id"]], doc, outgoing_value(doc))
            for doc in state.faxes_db.values()
            if doc.get("pvt_type") == "fax" and not doc.get("pvt_deleted")
        ]
        data, extra = page(dict(request.query_params), rows)
        return envelope(data, token=token, **extra)

    async def get_outgoing(request: Request, token: str) -> Response:
        """cb_faxes load_outgoing_fax_doc + ?OUTGOING_FAX_DOC_MAP (created, delivered,
        status from get_execution_status)."""
        fax_id = request.path_params["fax_id"]
        doc = state.faxes_db.get(fax_id)
        if doc is None or doc.get("pvt_deleted"):
            return bad_identifier(fax_id)
        shown = {**public(doc), "created": doc["pvt_created"], "status": _execution_status(doc)}
        delivered = doc.get("pvt_delivered_date")
        if delivered is None and doc.get("pvt_job_status") == "completed":
            delivered = doc.get("pvt_modified")
        if delivered is not None:
            shown["delivered"] = delivered
        return envelope(shown, token=token, revision=doc["_rev"])

    def _execution_status(doc: dict[str, Any]) -> str:
        status = str(doc.get("pvt_job_status"))
        return state.running.get(doc["_id"], status) if status == "processing" else status

    async def list_modb(request: Request, token: str) -> Response:
        """cb_faxes fax_modb_summary: view faxes/list_by_folder in the month databases of the
        `created_from`..`created_to` range (crossbar_view:time_range), rows merged with their
        documents (normalize_modb_view_results), crossbar_filter on docs."""
        folder = request.path_params["folder"]
        query = request.query_params
        now = gregorian_now()
        created_to = positive(query.get("created_to"), now)
        created_from = positive(query.get("created_from"), created_to - MAX_RANGE_S)
        if created_to - created_from > MAX_RANGE_S:
            text = (f"created_to {created_to} is more than {MAX_RANGE_S} seconds from "
                    f"created_from {created_from}")  # fmt: skip
            return validation_error("created_from", "date_range", text, cause=created_to)
        if created_to < created_from:
            text = f"created_to {created_to} is prior to created_from {created_from}"
            return validation_error("created_from", "date_range", text, cause=created_from)
        rows = [
            ([folder, doc["pvt_created"], doc["_id"]], doc, modb_row(doc))
            for doc in state.modb.values()
            if doc.get("pvt_type") == "fax"
            and not doc.get("pvt_deleted")
            and doc.get("folder", "inbox") == folder
            and created_from <= doc["pvt_created"] <= created_to
        ]
        data, extra = page(dict(request.query_params), rows)
        return envelope(data, token=token, **extra)

    def _load_modb(request: Request) -> tuple[dict[str, Any] | None, Response | None]:
        """cb_faxes load_modb_fax_doc: the id's YYYYMM prefix picks the month database (an id
        without it is looked up in the account db, where no fax is); the folder must match."""
        fax_id = request.path_params["fax_id"]
        doc = state.modb.get(fax_id) if re.match(r"^\d{6}-", fax_id) else None
        if doc is None or doc.get("pvt_deleted"):
            return None, bad_identifier(fax_id)
        folder = request.path_params["folder"]
        if doc.get("folder") != folder:  # validate_fax_doc_folder → add_system_error (500)
            text = f"document is not in folder {folder}"
            return None, error(500, text, {"message": "unknown failure"})
        return doc, None

    async def get_modb(request: Request, token: str) -> Response:
        """cb_faxes validate_inbox_fax/validate_outbox_fax (GET) → load_modb_fax_doc."""
        doc, problem = _load_modb(request)
        if doc is None:
            assert problem is not None
            return problem
        return envelope(public(doc), token=token, revision=doc["_rev"])

    async def delete_modb(request: Request, token: str) -> Response:
        """cb_faxes delete/3 → crossbar_doc:delete: soft (`pvt_deleted`, hidden from views and
        loads) unless `should_soft_delete=false` (cb_context:should_soft_delete)."""
        doc, problem = _load_modb(request)
        if doc is None:
            assert problem is not None
            return problem
        if request.query_params.get("should_soft_delete", "true").lower() == "false":
            state.modb.pop(doc["_id"], None)
            state.attachments.pop(doc["_id"], None)
        else:
            doc["pvt_deleted"] = True
        shown = {**public(doc), "_read_only": {"deleted": True}}
        return envelope(shown, token=token)

    async def attachment(request: Request, token: str) -> Response:
        """cb_faxes load_fax_binary (GET) and delete/4 (DELETE: every attachment, for good)."""
        doc, problem = _load_modb(request)
        if doc is None:
            assert problem is not None
            return problem
        if request.method == "DELETE":
            state.attachments.pop(doc["_id"], None)
            return envelope({}, token=token)
        if doc["_id"] not in state.attachments:
            return bad_identifier(doc["_id"])
        disposition = request.query_params.get("disposition", "attachment")
        name = f"fax_document_{doc['pvt_created']}.pdf"  # get_file_name
        headers = {"content-disposition": f"{disposition}; filename={name}"}
        pdf = state.attachments[doc["_id"]]
        return Response(pdf, media_type="application/pdf", headers=headers)

    async def webhooks(request: Request, token: str) -> Response:
        """cb_webhooks.erl with schemas/webhooks.json (required hook, name, uri; retries 2)."""
        if request.method == "GET":
            return envelope(list(state.webhooks.values()), token=token)
        data = request_data(await request.body())
        for key in ("hook", "name", "uri"):
            if not data.get(key):
                return validation_error(key, "required", "Field is required but missing",
                                        value=key)  # fmt: skip
        hook_id = request.path_params.get("hook_id") or secrets.token_hex(16)
        if request.method == "POST" and hook_id not in state.webhooks:
            return bad_identifier(hook_id)
        state.webhooks[hook_id] = {"enabled": True, "retries": 2, **data, "id": hook_id}
        return envelope(state.webhooks[hook_id], 201 if request.method == "PUT" else 200, token)

    async def phone_numbers(request: Request, token: str) -> Response:
        """cb_phone_numbers summary (doc/phone_numbers.md "List Account's Phone Numbers"):
        `data.numbers` keyed by number, paged by number with start_key/next_start_key."""
        listed = sorted(state.numbers)
        start = request.query_params.get("start_key")
        if start:
            listed = [number for number in listed if number >= start]
        size = positive(request.query_params.get("page_size"), PAGE_SIZE)
        shown, rest = listed[:size], listed[size:]
        extra: dict[str, Any] = {"page_size": len(shown)}
        if start:
            extra["start_key"] = start
        if rest:
            extra["next_start_key"] = rest[0]
        numbers = {number: state.numbers[number] for number in shown}
        return envelope({"cascade_quantity": 0, "numbers": numbers}, token=token, **extra)

    fax = "/v2/accounts/{account}/faxes"
    return Starlette(
        routes=[
            Route("/v2/api_auth", api_auth, methods=["PUT"]),
            Route("/v2/accounts/{account}", authed(account), methods=["GET"]),
            Route(fax, authed(create_fax), methods=["PUT"]),
            # cb_faxes allowed_methods(outgoing, _) is GET only: no DELETE, so no cancel.
            Route(f"{fax}/outgoing", authed(create_fax), methods=["PUT"]),
            Route(f"{fax}/outgoing", authed(list_outgoing), methods=["GET"]),
            Route(fax + "/outgoing/{fax_id}", authed(get_outgoing), methods=["GET"]),
            Route(fax + "/{folder:folder}", authed(list_modb), methods=["GET"]),
            Route(fax + "/{folder:folder}/{fax_id}", authed(get_modb), methods=["GET"]),
            Route(fax + "/{folder:folder}/{fax_id}", authed(delete_modb), methods=["DELETE"]),
            Route(
                fax + "/{folder:folder}/{fax_id}/attachment",
                authed(attachment),
                methods=["GET", "DELETE"],
            ),
            Route("/v2/accounts/{account}/webhooks", authed(webhooks), methods=["GET", "PUT"]),
            Route("/v2/accounts/{account}/webhooks/{hook_id}", authed(webhooks), methods=["POST"]),
            Route("/v2/accounts/{account}/phone_numbers", authed(phone_numbers), methods=["GET"]),
        ]
    )
