"""A Fax.Plus v3 emulator built from Fax.Plus's own material, served on a loopback port.

Sources, named again at each route: AlohiHQ/faxplus-python `docs/*Api.md` (routes, parameters,
return types) and `faxplus/models/*.py` (wire names, e.g. PayloadOutbox `from`), AlohiHQ/
faxplus-js `models/*.ts`, and the apidoc.fax.plus pages ("Send a fax", "Get a fax record",
concepts/webhook, concepts/outbox, concepts/fax: what each status means). Where they disagree
the emulator serves the official example: a fax record says `from_number` (the "Get a fax
record" example; the schema says `from`), a webhook says `from`/`to` with formatted numbers
(the concepts/webhook example; the SDK models say `from_number`/`to_number`), a record's
`description` is "OK" and its `file` an id of its own. A fax record's `comment` is a plain
string.
Fax.Plus has no webhook for the outbox stages (`submitted` … `sending`): those are seen only
by polling, so `status_callback` refuses them with `NotImplementedError`.
"""

from __future__ import annotations

import contextlib
import json
import secrets
from collections.abc import Iterator
from typing import Any

from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.providers.emulators._callbacks import CallsBack
from tests.providers.emulators._faxplus_state import (
    TIME_TEXT,
    USER_ID,
    FaxPlusState,
    new_file_id,
    new_id,
    now_text,
    page_count,
    shown_number,
)
from tests.providers.harness import CallbackHTTP, RecordedRequest, Recorder, serve

ACCESS_TOKEN = "fp-test-access-token"
CLIENT_ID = "fp-test-client"

# Which Fax.Plus status (docs/FaxStatus.md) the emulator reports for each failure reason, by
# the meanings of apidoc.fax.plus/concepts/fax: a dropped call is `partially_sent` ("the call
# dropped due to connection issues"); `failed_normal_clearing` is busy there, not a drop.
FAILURE_STATUSES = {
    "busy": "failed_user_busy",
    "no_answer": "failed_no_answer",
    "bad_number": "failed_unallocated_number",
    "disconnected": "partially_sent",
    "file_error": "failed_office_converter_issue",
    "on_hold": "insufficient_credit",
    "unknown": "failed",
}


def _error(status: int, error: str, description: str) -> JSONResponse:
    """docs/Error.md: `{"error", "description"}`."""
    return JSONResponse({"error": error, "description": description}, status_code=status)


def build_app(state: FaxPlusState) -> Starlette:
    async def guard(request: Request) -> Response | None:
        # README.md (faxplus-python, 3.0.4): Bearer token; `x-fax-clientid` for OAuth2 apps.
        if request.headers.get("authorization") != f"Bearer {ACCESS_TOKEN}":
            return _error(401, "invalid_token", "The access token is invalid or has expired")
        if state.client_id is not None and request.headers.get("x-fax-clientid") != state.client_id:
            return _error(401, "invalid_client", "x-fax-clientid is missing or wrong")
        uid = request.path_params.get("uid")
        if uid is not None and uid not in ("self", USER_ID):
            return _error(403, "forbidden", f"No access to account {uid}")
        return None

    # docs/AccountsApi.md get_user, docs/Account.md.
    async def account(request: Request) -> Response:
        if denied := await guard(request):
            return denied
        return JSONResponse(
            {
                "uid": USER_ID,
                "email": "faxes@example.com",
                "account_type": "corporate_admin",
                "status": "active",
                "creation_date": "2022-01-01 00:00:00",
            }
        )

    # docs/FilesApi.md upload_file: multipart `fax_file`, `format` pdf|tiff → docs/FilePath.md.
    async def upload(request: Request) -> Response:
        if denied := await guard(request):
            return denied
        if request.query_params.get("format", "pdf") not in ("pdf", "tiff"):
            return _error(400, "invalid_format", "format must be 'pdf' or 'tiff'")
        async with request.form() as form:
            part = form.get("fax_file")
            if not isinstance(part, UploadFile):
                return _error(400, "missing_file", "multipart field 'fax_file' is required")
            data = await part.read()
        path = f"/transient-{new_id()}.pdf"
        state.files[path] = data
        return JSONResponse({"path": path})

    # docs/OutboxApi.md send_fax; docs/PayloadOutbox.md with models/payload_outbox.py's wire
    # names (`from`); apidoc "Send a fax": 201, `ids` only with `return_ids`.
    async def send(request: Request) -> Response:
        if denied := await guard(request):
            return denied
        try:
            body = json.loads(await request.body())
        except json.JSONDecodeError:
            return _error(400, "invalid_json", "The request body is not JSON")
        if refused := state.refusal(body):
            return _error(400, *refused)
        to, files = body["to"], body["files"]
        pages = sum(page_count(state.files[f]) for f in files) + bool(body.get("cover_page"))
        ids = {number: state.queue(body, number, pages) for number in to}
        if state.answers_without_ids:
            state.answers_without_ids -= 1
            return JSONResponse({}, status_code=201)
        return JSONResponse({"ids": ids} if body.get("return_ids") else {}, status_code=201)

    # docs/OutboxApi.md list_outbox_faxes → docs/OutboxList.md `{"records": [Outbox]}`.
    async def list_outbox(request: Request) -> Response:
        if denied := await guard(request):
            return denied
        return JSONResponse({"records": list(state.outbox.values())})

    # docs/OutboxApi.md get_outbox_fax / delete_outbox_fax (void).
    async def outbox_fax(request: Request) -> Response:
        if denied := await guard(request):
            return denied
        fax_id = request.path_params["fax_id"]
        if fax_id not in state.outbox:
            return _error(404, "not_found", "Fax not found")
        if request.method == "DELETE":
            state.outbox.pop(fax_id)
            state.deleted.append(fax_id)
            return Response(status_code=200)
        return JSONResponse(state.outbox[fax_id])

    # docs/FaxesApi.md list_faxes: category inbox|sent|spam, after/before, limit (default 50)
    # → docs/FaxList.md `{"data": {"records": [Fax]}}`. No order is documented: served in the
    # order the faxes were recorded (oldest first), so nothing may rely on newest first.
    async def list_faxes(request: Request) -> Response:
        if denied := await guard(request):
            return denied
        query = request.query_params
        category = query.get("category")
        if category not in (None, "inbox", "sent", "spam"):
            return _error(400, "invalid_parameters", "category must be inbox, sent or spam")
        try:
            limit = int(query.get("limit", "50"))
        except ValueError:
            return _error(400, "invalid_parameters", "limit must be a number")
        if limit < 1:
            return _error(400, "invalid_parameters", "limit must be positive")
        direction = {"inbox": "incoming", "sent": "outgoing"}.get(category or "")
        after, before = query.get("after"), query.get("before")
        # "Format: *YYYY-MM-DD HH:mm:ss*" for both (docs/FaxesApi.md list_faxes).
        if any(t is not None and not TIME_TEXT.fullmatch(t) for t in (after, before)):
            return _error(400, "invalid_parameters", "after/before must be YYYY-MM-DD HH:mm:ss")
        rows = [
            record
            for record in state.faxes.values()
            if category != "spam"  # the emulator marks nothing as spam
            and direction in (None, record.get("direction"))
            and (after is None or state.is_after(record["start_time"], after))
            and (before is None or record["start_time"] < before)
        ]
        return JSONResponse({"data": {"records": rows[:limit]}})

    # docs/FaxesApi.md get_fax (the apidoc example's shape) / delete_fax (void). Only the
    # record's own id: a session id "might differ from the one returned by listFaxes".
    async def fax(request: Request) -> Response:
        if denied := await guard(request):
            return denied
        fax_id = request.path_params["fax_id"]
        if fax_id not in state.faxes:
            return _error(404, "not_found", "Fax not found")
        if request.method == "DELETE":
            state.faxes.pop(fax_id)
            state.documents.pop(fax_id, None)
            state.deleted.append(fax_id)
            return Response(status_code=200)
        return JSONResponse(state.faxes[fax_id])

    # docs/FilesApi.md get_file; docs/WebhookCallbackData.md: the session id and the fax id
    # "can be used with the API getFile handle"; docs/Fax.md: `file` is the "Fax file ID for
    # the getFile handle" (served with or without its extension).
    async def download(request: Request) -> Response:
        if denied := await guard(request):
            return denied
        fax_id = state.fax_id_for(request.path_params["fax_id"]) or state.fax_id_for_file(
            request.path_params["fax_id"]
        )
        if fax_id is None or fax_id not in state.documents:
            return _error(404, "not_found", "File not found")
        return Response(state.documents[fax_id], media_type="application/pdf")

    # docs/NumbersApi.md list_numbers → docs/NumberList.md `{"numbers": [Number]}`.
    async def numbers(request: Request) -> Response:
        if denied := await guard(request):
            return denied
        return JSONResponse({"numbers": state.numbers})

    # docs/WebhooksApi.md get_webhooks (by `event`) → docs/WebhookList.md; create_webhook
    # (docs/Webhook.md) → docs/WebhookId.md.
    async def hooks(request: Request) -> Response:
        if denied := await guard(request):
            return denied
        if request.method == "GET":
            event = request.query_params.get("event")  # required (docs/WebhooksApi.md)
            if event not in ("fax_sent", "fax_received"):
                return _error(400, "invalid_parameters", "'event' must be fax_sent or fax_received")
            found = [h for h in state.hooks.values() if event in (None, h["event"])]
            return JSONResponse({"data": found})
        body = json.loads(await request.body() or b"{}")
        if body.get("event") not in ("fax_sent", "fax_received") or not body.get("target"):
            return _error(400, "invalid_parameters", "'target' and a known 'event' are required")
        hook_id = new_id()
        state.hooks[hook_id] = {"id": hook_id, "target": body["target"], "event": body["event"]}
        return JSONResponse({"id": hook_id}, status_code=201)

    # docs/WebhooksApi.md delete_webhook (void).
    async def delete_hook(request: Request) -> Response:
        if denied := await guard(request):
            return denied
        state.hooks.pop(request.path_params["hook_id"], None)
        return Response(status_code=200)

    prefix = "/v3/accounts/{uid}"
    return Starlette(
        routes=[
            Route(prefix, account, methods=["GET"]),
            Route(f"{prefix}/files", upload, methods=["POST"]),
            Route(f"{prefix}/files/{{fax_id}}", download, methods=["GET"]),
            Route(f"{prefix}/outbox", send, methods=["POST"]),
            Route(f"{prefix}/outbox", list_outbox, methods=["GET"]),
            Route(f"{prefix}/outbox/{{fax_id}}", outbox_fax, methods=["GET", "DELETE"]),
            Route(f"{prefix}/faxes", list_faxes, methods=["GET"]),
            Route(f"{prefix}/faxes/{{fax_id}}", fax, methods=["GET", "DELETE"]),
            Route(f"{prefix}/numbers", numbers, methods=["GET"]),
            Route("/v3/hooks", hooks, methods=["GET", "POST"]),
            Route("/v3/hooks/{hook_id}", delete_hook, methods=["DELETE"]),
        ]
    )


class FaxPlusHarness(CallsBack):
    provider_type = "faxplus"
    supported_failures: tuple[str, ...] = tuple(FAILURE_STATUSES)

    def __init__(self, recorder: Recorder, state: FaxPlusState, base_url: str) -> None:
        self.recorder = recorder
        self.state = state
        self.base_url = base_url

    @property
    def requests(self) -> list[RecordedRequest]:
        return self.recorder.requests

    def provider_config(self, callback_token: str) -> dict[str, Any]:
        config: dict[str, Any] = {
            "type": "faxplus",
            "base_url": self.base_url,
            "access_token": ACCESS_TOKEN,
            "user_id": "self",
            "callback_token": callback_token,
        }
        if self.state.client_id:
            config["client_id"] = self.state.client_id
        return config

    def fail_next(
        self, status: int, body: Any = None, headers: dict[str, str] | None = None, count: int = 1
    ) -> None:
        if status == 429 and not headers:
            headers = {"Retry-After": "30"}  # a rate-limited answer says when to come back
        self.recorder.fail_next(status, body, headers, count)

    def error_body(self, message: str) -> dict[str, str]:
        return {"error": "invalid_request", "description": message}

    def hang_next(self, seconds: float) -> None:
        self.recorder.hang_next(seconds)

    def registered_callback_url(self, inbound: bool) -> str | None:
        """The target of the `fax_received` / `fax_sent` hook (`POST /hooks`)."""
        event = "fax_received" if inbound else "fax_sent"
        return next((h["target"] for h in self.state.hooks.values() if h["event"] == event), None)

    def webhook(self, event: str, hook_id: str, data: dict[str, Any]) -> CallbackHTTP:
        """apidoc.fax.plus/concepts/webhook: `{"hook": {id, event, event_time, target},
        "data": {…}}` as a JSON POST."""
        target = next(
            (h["target"] for h in self.state.hooks.values() if h["event"] == event),
            "http://bridge.invalid/callbacks/faxplus",
        )
        body = {
            "hook": {"id": hook_id, "event": event, "event_time": now_text(), "target": target},
            "data": data,
        }
        return CallbackHTTP(
            headers={"content-type": "application/json"}, body=json.dumps(body).encode()
        )

    def raw_callback(
        self, provider_fax_id: str, raw_status: str, *, redialled: bool = False
    ) -> CallbackHTTP:
        """The `fax_sent` webhook for fax `provider_fax_id` ending in `raw_status`: `hook.id`
        the fax, `data.id` the faxing session (another id when Fax.Plus redialled)."""
        sent = self.state.complete(provider_fax_id, raw_status, redialled=redialled)
        record = sent.record
        data = {
            "id": sent.session_id,
            "uid": USER_ID,
            "pages": record["pages"],
            "from": shown_number(record["from_number"]),
            "to": shown_number(record["to"]),
            "start_time": record["start_time"],
            "file": record["file"],
            "file_name": record["file_name"],
            "cost": record["cost"],
            "status": raw_status,
        }
        return self.webhook("fax_sent", record["id"], data)

    def redial_callback(self, outbox_id: str, raw_status: str) -> CallbackHTTP:
        """A failed dial of a fax Fax.Plus will redial (`options.retry`): the fax stays in the
        outbox. The seed says `fax_sent` fires on failure too; concepts/webhook says only on
        success: this is the case the adapter must survive if the seed is right."""
        queued = self.state.outbox[outbox_id]
        queued["status"] = "scheduled_for_sending"
        data = {
            "id": new_id(),
            "uid": USER_ID,
            "pages": queued["page_count"],
            "from": shown_number(queued["src"]),
            "to": shown_number(queued["to"][0]),
            "start_time": now_text(),
            "status": raw_status,
        }
        return self.webhook("fax_sent", outbox_id, data)

    def settle(self, provider_fax_id: str, status: str, reason: str | None = None) -> None:
        """The fax moves on without a webhook reaching anyone."""
        if status == "delivered":
            self.state.complete(provider_fax_id, "success")
        elif status == "failed":
            self.state.complete(provider_fax_id, FAILURE_STATUSES[reason or "unknown"])
        else:
            queued = self.state.outbox[provider_fax_id]
            queued["status"] = "sending" if status == "sending" else "submitted"
            queued["last_updated_status_time"] = now_text()

    def status_callback(
        self, provider_fax_id: str, status: str, reason: str | None = None
    ) -> CallbackHTTP:
        if status == "delivered":
            return self.raw_callback(provider_fax_id, "success")
        if status == "failed":
            return self.raw_callback(provider_fax_id, FAILURE_STATUSES[reason or "unknown"])
        # docs/WebhookEventType.md: only fax_sent and fax_received; the outbox stages are
        # visible only by polling `GET /outbox/{id}`.
        raise NotImplementedError(f"Fax.Plus sends no webhook for {status!r}")

    def inbound_callback(self, from_number: str, to_number: str, pdf: bytes) -> CallbackHTTP:
        """concepts/webhook: the `fax_received` payload "is identical to the fax_sent event"."""
        fax_id = new_id()
        record = {
            "comment": "",
            "direction": "incoming",
            "from_number": from_number,
            "id": fax_id,
            "owner_id": USER_ID,
            "pages": page_count(pdf),
            "status": "success",
            "file": new_file_id(),
            "file_name": f"fax-from-{from_number.lstrip('+')}",
            "start_time": now_text(),
            "to": to_number,
            "cost": 1,
        }
        self.state.faxes[fax_id] = record
        self.state.documents[fax_id] = pdf
        data = {k: record[k] for k in ("id", "pages", "start_time", "file", "file_name", "cost")}
        data |= {"uid": USER_ID, "from": shown_number(from_number), "to": shown_number(to_number)}
        return self.webhook("fax_received", fax_id, data | {"status": "success"})

    def unclassifiable_callback(self) -> CallbackHTTP:
        """concepts/webhook's third event, `fax_page_received` (fax streaming, on request):
        one page of a fax still arriving, no news the bridge acts on."""
        fax_id = new_id()
        data = {"id": fax_id, "uid": USER_ID, "pages": 1, "start_time": now_text()}
        return self.webhook("fax_page_received", fax_id, data)

    def forged(self, callback: CallbackHTTP) -> CallbackHTTP:
        """Fax.Plus signs nothing: a forgery is the same body without the bridge's token."""
        query = {**callback.query, "token": "forged-" + secrets.token_hex(4)}
        return CallbackHTTP(headers=dict(callback.headers), body=callback.body, query=query)


@contextlib.contextmanager
def make_harness(client_id: str | None = CLIENT_ID) -> Iterator[FaxPlusHarness]:
    state = FaxPlusState(client_id=client_id)
    recorder = Recorder(build_app(state))
    with serve(recorder) as root:
        yield FaxPlusHarness(recorder, state, f"{root}/v3")
