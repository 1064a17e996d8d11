"""The Kazoo-compatible API (DESIGN.md §7): `/v2/accounts/{faxbox}/faxes/…`.

Tools written for Kazoo's fax API read the bridge with a changed base URL: one "account" per
faxbox, Kazoo's envelope as crossbar's api_util builds it (`data`, `status`, `request_id`,
`revision`, `timestamp`, `auth_token`; lists add crossbar_view's `page_size`, `start_key` and,
unless it is the last page, `next_start_key`) and its error shape (`{"error": "404",
"message": "bad_identifier", "data": {"cause": <id>, …}}`). The actions `resubmit` and
`forward` are `bridge.http.fax_actions`. The
token is checked before anything else, so without one nothing is revealed, not even which
faxboxes exist. Every error, validation errors included, leaves through `KazooRoute` in the
Kazoo shape rather than FastAPI's `{"detail": …}`.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import uuid
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, Request, Security
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException

from bridge.config import Config
from bridge.documents import merge_pdfs
from bridge.errors import StorageError
from bridge.http import fax_actions
from bridge.http.api_models import (
    ErrorEnvelope,
    FaxJobList,
    FaxJobOne,
    ForwardRequest,
    InboundList,
    InboundOne,
    ResubmitRequest,
    SmtpLogList,
    SmtpLogOne,
)
from bridge.models import JobStatus
from bridge.store import Store, utcnow
from bridge.store.inbound import inbound_record
from bridge.store.views import Page

API_DESCRIPTION = """\
Kazoo-compatible view of the bridge: one *account* per faxbox (the account id in
the path is the faxbox name). Every request needs an `X-Auth-Token` header holding one of the
tokens listed under `http.api_tokens` in the configuration. **When no token is configured the
API is closed: every request is answered `401`.** Lists are newest first; pass `page_size`
(default 50) and the previous answer's `next_start_key` as `start_key` to page (it is absent
on the last page). `PUT …/outbox/{id}` `{"action": "resubmit"}` and `PUT …/inbox/{id}`
`{"action": "forward", "data": {"to_number": …}}` make a new fax job, as Kazoo's cb_faxes.
"""

_ID = re.compile(r"[0-9a-f]{1,32}")
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
_PDF = {"application/pdf": {"schema": {"type": "string", "format": "binary"}}}
_RULES = {
    "greater_than_equal": "minimum",
    "less_than_equal": "maximum",
    "string_pattern_mismatch": "pattern",
    "missing": "required",
    "int_parsing": "type",
    "literal_error": "enum",
}

PageSize = Annotated[int, Query(ge=1, le=1000, description="records per page")]
StartKey = Annotated[
    str | None,
    Query(pattern=r"^[0-9a-f]{1,32}$", description="`next_start_key` of the previous page"),
]
RecordId = Annotated[str, Path(description="the record's id")]
Faxbox = Annotated[str, Path(description="the faxbox name: Kazoo's account id")]
_TOKEN_HEADER = APIKeyHeader(
    name="X-Auth-Token",
    auto_error=False,
    description="One of `http.api_tokens`; with none configured, every request gets 401.",
)
Token = Annotated[str | None, Security(_TOKEN_HEADER)]


class KazooError(Exception):
    def __init__(self, status: int, message: str, data: dict[str, Any]) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.data = data


def bad_identifier(cause: str, reason: str | None = None) -> KazooError:
    """crossbar_doc's answer for a document not found: `{"cause": <id>, "message": "bad
    identifier"}`; `reason` says more where the id exists but its fax is gone."""
    data = {"cause": cause, "message": "bad identifier"}
    return KazooError(404, "bad_identifier", data | ({"reason": reason} if reason else {}))


def _now() -> datetime:
    """Kazoo's timestamps are whole seconds (`kz_time:iso8601(now_s())`)."""
    return utcnow().replace(microsecond=0)


def error_response(request: Request, exc: KazooError) -> JSONResponse:
    body = ErrorEnvelope(
        data=exc.data,
        error=str(exc.status),
        message=exc.message,
        request_id=request.state.request_id,
        timestamp=_now(),
        auth_token=request.state.auth_token,
    )
    return JSONResponse(body.model_dump(mode="json"), status_code=exc.status)


_PARSE_ERROR = KazooError(400, "parse_error", {"message": "failed to parse request body"})


def _action_error(exc: RequestValidationError) -> KazooError | None:
    """cb_faxes.erl's words for a PUT without a known `action`: "action required", "invalid
    action" (Kazoo answers them with 500, a server error; here they are the client's, 400)."""
    for error in exc.errors():
        where = tuple(str(part) for part in error.get("loc", ()))
        if where in (("body",), ("body", "action")):
            word = "invalid action" if error.get("type") == "literal_error" else "action required"
            return KazooError(400, word, {"message": word})
    return None


def _invalid_data(exc: RequestValidationError) -> KazooError:
    """Kazoo's validation errors: `{"page_size": {"minimum": {"message": …}}}`."""
    if any(error.get("type") == "json_invalid" for error in exc.errors()):
        return _PARSE_ERROR
    if action := _action_error(exc):
        return action
    data: dict[str, Any] = {}
    for error in exc.errors():
        where = [str(part) for part in error.get("loc", ())]
        if where == ["body", "data", "to_number"] and error.get("type") == "missing":
            data["to_number"] = {"required": {"message": fax_actions.NO_NUMBER}}
            continue
        field = ".".join(where[1:]) or (where[0] if where else "request")
        rule = _RULES.get(str(error.get("type")), str(error.get("type", "invalid")))
        data.setdefault(field, {})[rule] = {"message": str(error.get("msg", "invalid"))}
    return KazooError(400, "invalid data", data)


def identify(request: Request) -> None:
    """The request's id (the client's `X-Request-ID` when it is a sane one) and token."""
    given = request.headers.get("x-request-id", "")
    request.state.request_id = given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
    request.state.auth_token = request.headers.get("x-auth-token", "")


async def kazoo_not_routed(request: Request, exc: Exception) -> Response:
    """A path under `/v2/` that no route has (404 `not_found`) or a method it does not take
    (405 `invalid_method`), answered as crossbar's api_resource does; elsewhere FastAPI's."""
    assert isinstance(exc, HTTPException)  # registered for HTTPException only
    if not request.url.path.startswith("/v2/"):
        return await http_exception_handler(request, exc)
    identify(request)
    if exc.status_code == 405:
        error = KazooError(405, "invalid_method", {"message": "method not allowed"})
    elif exc.status_code == 404:
        error = KazooError(404, "not_found", {"message": "not found"})
    else:
        error = KazooError(exc.status_code, "error", {"message": str(exc.detail)})
    response = error_response(request, error)
    response.headers.update(exc.headers or {})  # a 405 names the methods it takes (Allow)
    response.headers["X-Request-ID"] = request.state.request_id
    return response


class KazooRoute(APIRoute):
    """Gives each request an id and turns every refusal into Kazoo's error envelope."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def route(request: Request) -> Response:
            identify(request)
            try:
                response = await handle(request)
            except KazooError as exc:
                response = error_response(request, exc)
            except RequestValidationError as exc:
                response = error_response(request, _invalid_data(exc))
            except HTTPException as exc:  # FastAPI's own: a body that is not even text
                error = _PARSE_ERROR if exc.status_code == 400 else None
                error = error or KazooError(exc.status_code, "error", {"message": str(exc.detail)})
                response = error_response(request, error)
            except StorageError:
                unreachable = {"message": "datastore timeout"}
                response = error_response(
                    request, KazooError(503, "datastore_unreachable", unreachable)
                )
            response.headers["X-Request-ID"] = request.state.request_id
            return response

        return route


def _meta(request: Request, data: Any) -> dict[str, Any]:
    digest = hashlib.sha256(json.dumps(data, default=str, sort_keys=True).encode()).hexdigest()
    return {
        "status": "success",
        "request_id": request.state.request_id,
        "revision": digest[:32],
        "timestamp": _now(),
        "auth_token": request.state.auth_token,
    }


def _listing(request: Request, page: Page, start_key: str | None) -> dict[str, Any]:
    """crossbar_view's paging: `start_key` is where this page began (given or not), and
    `next_start_key` is absent, not null, on the last page. The list routes leave out unset
    keys (`response_model_exclude_unset`), so every record carries all its keys explicitly."""
    body: dict[str, Any] = {"data": page.records, "page_size": len(page.records)}
    first = start_key or (str(page.records[0]["id"]) if page.records else None)
    if first:
        body["start_key"] = first
    if page.next_key:
        body["next_start_key"] = page.next_key
    return body | _meta(request, page.records)


def _one(request: Request, record: dict[str, Any]) -> dict[str, Any]:
    return {"data": record, **_meta(request, record)}


def _pdf(data: bytes, name: str) -> Response:
    disposition = f'inline; filename="{name}.pdf"'
    return Response(
        data, media_type="application/pdf", headers={"Content-Disposition": disposition}
    )


def _bad_number(exc: fax_actions.InvalidTarget) -> KazooError:
    return KazooError(400, "invalid data", {"to_number": {exc.rule: {"message": exc.message}}})


def token_matches(tokens: list[str]) -> Callable[[str | None], bool]:
    """Is a given X-Auth-Token one of `tokens`? (none configured: never)"""
    wanted = [token.encode() for token in tokens]

    def matches(token: str | None) -> bool:
        given = (token or "").encode()
        matched = False
        for candidate in wanted:  # no early exit: the time taken says nothing about the tokens
            matched |= hmac.compare_digest(given, candidate)
        return bool(token) and matched

    return matches


def token_checker(tokens: list[str]) -> Callable[..., None]:
    matches = token_matches(tokens)

    def authenticate(token: Token = None) -> None:
        if not matches(token):
            raise KazooError(401, "invalid_credentials", {"message": "invalid credentials"})

    return authenticate


_BEARER = HTTPBearer(
    auto_error=False,
    description="One of `http.api_tokens` as a bearer token (Prometheus' `authorization:`).",
)
Bearer = Annotated[HTTPAuthorizationCredentials | None, Security(_BEARER)]


def operator_checker(tokens: list[str], key: str) -> Callable[..., None]:
    """The token check for /metrics and the docs: X-Auth-Token as the API takes it, or
    `Authorization: Bearer` as Prometheus sends it; a 401 says which key opens them instead."""
    matches = token_matches(tokens)

    def authenticate(token: Token = None, bearer: Bearer = None) -> None:
        if not (matches(token) or matches(bearer.credentials if bearer else None)):
            raise HTTPException(
                401,
                "send one of http.api_tokens as X-Auth-Token (or Authorization: Bearer), "
                f"or set {key}: true",
            )

    return authenticate


def kazoo_api(config: Config, store: Store) -> APIRouter:
    """The router; `create_app` includes it. Authentication applies to every route in it."""
    faxboxes = {box.name for box in config.faxboxes}
    router = APIRouter(
        prefix="/v2/accounts/{faxbox}/faxes",
        route_class=KazooRoute,
        dependencies=[Depends(token_checker(config.http.api_tokens))],
        tags=["Kazoo-compatible API"],
        responses={
            401: {"model": ErrorEnvelope, "description": "no valid X-Auth-Token"},
            404: {"model": ErrorEnvelope, "description": "unknown faxbox or id"},
            "4XX": {"model": ErrorEnvelope, "description": "400 invalid data, 409 conflict"},
            503: {"model": ErrorEnvelope, "description": "the store is unreachable"},
        },
    )

    def account(faxbox: str) -> str:
        if faxbox not in faxboxes:
            raise bad_identifier(faxbox, "no such account (faxbox)")
        return faxbox

    async def job_of(faxbox: str, job_id: str, *, final: bool) -> dict[str, Any]:
        box = account(faxbox)
        job = await asyncio.to_thread(store.jobs.get, job_id) if _ID.fullmatch(job_id) else None
        if job is None or job["faxbox"] != box or JobStatus(job["status"]).is_final != final:
            raise bad_identifier(job_id)
        return job

    async def inbound_row(faxbox: str, fax_id: str) -> Any:
        box = account(faxbox)
        row = await asyncio.to_thread(store.inbound.row, fax_id) if _ID.fullmatch(fax_id) else None
        if row is None or row.faxbox != box:
            raise bad_identifier(fax_id)
        return row

    @router.get("/smtplog", response_model=SmtpLogList, response_model_exclude_unset=True)
    async def smtplog_list(
        request: Request, faxbox: Faxbox, page_size: PageSize = 50, start_key: StartKey = None
    ) -> dict[str, Any]:
        """Every SMTP attempt for this faxbox, accepted or not, newest first."""
        box = account(faxbox)
        page = await asyncio.to_thread(store.views.smtplog_page, box, page_size, start_key)
        return _listing(request, page, start_key)

    @router.get("/smtplog/{attempt_id}", response_model=SmtpLogOne)
    async def smtplog_one(request: Request, faxbox: Faxbox, attempt_id: RecordId) -> dict[str, Any]:
        box = account(faxbox)
        found = None
        if _ID.fullmatch(attempt_id):
            found = await asyncio.to_thread(store.smtplog.get, attempt_id)
        if found is None or found["faxbox"] != box:
            raise bad_identifier(attempt_id)
        return _one(request, found)

    @router.get("/outgoing", response_model=FaxJobList, response_model_exclude_unset=True)
    async def outgoing_list(
        request: Request, faxbox: Faxbox, page_size: PageSize = 50, start_key: StartKey = None
    ) -> dict[str, Any]:
        """Fax jobs not final yet: queued, being submitted, or in the provider's hands."""
        page = await asyncio.to_thread(
            store.views.jobs_page,
            account(faxbox),
            final=False,
            limit=page_size,
            start_key=start_key,
        )
        return _listing(request, page, start_key)

    @router.get("/outgoing/{job_id}", response_model=FaxJobOne)
    async def outgoing_one(request: Request, faxbox: Faxbox, job_id: RecordId) -> dict[str, Any]:
        return _one(request, await job_of(faxbox, job_id, final=False))

    @router.get("/outbox", response_model=FaxJobList, response_model_exclude_unset=True)
    async def outbox_list(
        request: Request, faxbox: Faxbox, page_size: PageSize = 50, start_key: StartKey = None
    ) -> dict[str, Any]:
        """Fax jobs that reached a final status: delivered, failed or cancelled."""
        box = account(faxbox)
        page = await asyncio.to_thread(
            store.views.jobs_page, box, final=True, limit=page_size, start_key=start_key
        )
        return _listing(request, page, start_key)

    @router.get("/outbox/{job_id}", response_model=FaxJobOne)
    async def outbox_one(request: Request, faxbox: Faxbox, job_id: RecordId) -> dict[str, Any]:
        return _one(request, await job_of(faxbox, job_id, final=True))

    @router.get(
        "/outbox/{job_id}/attachment",
        response_class=Response,
        responses={200: {"content": _PDF, "description": "the fax as transmitted"}},
    )
    async def outbox_attachment(faxbox: Faxbox, job_id: RecordId) -> Response:
        """The fax as transmitted: the cover page (when there was one), then the document."""
        await job_of(faxbox, job_id, final=True)
        row = await asyncio.to_thread(store.jobs.row, job_id)
        if row is None:  # purged a moment ago
            raise bad_identifier(job_id)
        paths = [p for p in (row.cover_path, row.document_path) if p]
        try:
            parts = [await asyncio.to_thread(store.db.read_file, p) for p in paths]
        except OSError as exc:
            raise bad_identifier(job_id, "the fax document is no longer stored") from exc
        pdf = await asyncio.to_thread(merge_pdfs, parts) if len(parts) > 1 else parts[0]
        return _pdf(pdf, f"fax-{job_id}")

    async def queued(request: Request, job_id: str) -> dict[str, Any]:
        job = await asyncio.to_thread(store.jobs.get, job_id)
        if job is None:  # cancelled and purged already: hardly, but not a 500
            raise bad_identifier(job_id)
        return _one(request, job)

    @router.put("/outbox/{job_id}", response_model=FaxJobOne)
    async def outbox_resubmit(
        request: Request,
        faxbox: Faxbox,
        job_id: RecordId,
        body: Annotated[ResubmitRequest, Body()],
    ) -> dict[str, Any]:
        """`{"action": "resubmit", "data": {}}` copies any outbox fax (delivered, failed,
        cancelled, unknown) into a new queued job with a new id; the original is untouched.
        `data` may change `to_number`, `to_name` and `notifications.email.send_to`. The answer
        is the new job, found under `outgoing` until it is final."""
        await job_of(faxbox, job_id, final=True)
        data = body.data.model_dump(exclude_none=True)
        try:
            new = await asyncio.to_thread(fax_actions.resubmit, config, store, job_id, data)
        except fax_actions.InvalidTarget as exc:
            raise _bad_number(exc) from exc
        except fax_actions.NoDocument as exc:
            raise bad_identifier(job_id, "the fax document is no longer stored") from exc
        except LookupError as exc:  # purged meanwhile
            raise bad_identifier(job_id) from exc
        return await queued(request, new)

    @router.put("/inbox/{fax_id}", response_model=FaxJobOne)
    async def inbox_forward(
        request: Request,
        faxbox: Faxbox,
        fax_id: RecordId,
        body: Annotated[ForwardRequest, Body()],
    ) -> dict[str, Any]:
        """`{"action": "forward", "data": {"to_number": "+1…"}}` sends a received fax on to
        another number as a new outbound job (no cover page), checked against the faxbox's
        allowed destinations as a mail would be. The answer is the new job."""
        await inbound_row(faxbox, fax_id)
        data = body.data.model_dump(exclude_none=True)
        peer = request.client.host if request.client else None
        try:
            new = await asyncio.to_thread(fax_actions.forward, config, store, fax_id, data, peer)
        except fax_actions.InvalidTarget as exc:
            raise _bad_number(exc) from exc
        except fax_actions.NoDocument as exc:
            raise bad_identifier(fax_id, "the fax document is no longer stored") from exc
        except LookupError as exc:
            raise bad_identifier(fax_id) from exc
        return await queued(request, new)

    @router.get("/inbox", response_model=InboundList, response_model_exclude_unset=True)
    async def inbox_list(
        request: Request, faxbox: Faxbox, page_size: PageSize = 50, start_key: StartKey = None
    ) -> dict[str, Any]:
        """Faxes received on this faxbox's numbers, newest first."""
        box = account(faxbox)
        page = await asyncio.to_thread(store.views.inbound_page, box, page_size, start_key)
        return _listing(request, page, start_key)

    @router.get("/inbox/{fax_id}", response_model=InboundOne)
    async def inbox_one(request: Request, faxbox: Faxbox, fax_id: RecordId) -> dict[str, Any]:
        return _one(request, inbound_record(await inbound_row(faxbox, fax_id)))

    @router.get(
        "/inbox/{fax_id}/attachment",
        response_class=Response,
        responses={200: {"content": _PDF, "description": "the received fax"}},
    )
    async def inbox_attachment(faxbox: Faxbox, fax_id: RecordId) -> Response:
        """The received fax as the provider delivered it (PDF)."""
        row = await inbound_row(faxbox, fax_id)
        if not row.document_path:
            raise bad_identifier(fax_id, "the provider gave no document for this fax")
        try:
            pdf = await asyncio.to_thread(store.db.read_file, row.document_path)
        except OSError as exc:
            raise bad_identifier(fax_id, "the fax document is no longer stored") from exc
        return _pdf(pdf, f"fax-{fax_id}")

    return router
