"""The HTTP side (FastAPI): provider callbacks and health checks."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from bridge import metrics
from bridge.config import Config
from bridge.documents.pool import DocumentPool
from bridge.errors import CallbackError, ProviderError, StorageError
from bridge.events import apply_status, record_inbound
from bridge.http.api import API_DESCRIPTION, kazoo_api, kazoo_not_routed, operator_checker
from bridge.http.callbacks import to_callback_request
from bridge.http.console import console_router
from bridge.http.console_auth import PREFIX as CONSOLE
from bridge.models import (
    CallbackRequest,
    CallbackResult,
    InboundFax,
    StatusUpdate,
    UnclassifiedCallback,
)
from bridge.providers.base import FaxProvider
from bridge.store import Store

log = logging.getLogger(__name__)


def create_app(
    config: Config,
    store: Store,
    providers: dict[str, FaxProvider[Any]],
    ready: asyncio.Event | None = None,
    pool: DocumentPool | None = None,
) -> FastAPI:
    # FastAPI's own docs routes cannot take a dependency: ours below check the token.
    app = FastAPI(
        title="faxbridge",
        version="0.1.0",
        description=API_DESCRIPTION,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.include_router(kazoo_api(config, store))  # /v2/accounts/{faxbox}/faxes/…
    app.add_exception_handler(HTTPException, kazoo_not_routed)  # …and its 404s and 405s
    metrics_guard = _token_unless(config.http.open_metrics, config, "http.open_metrics")
    app.include_router(metrics.router(store), dependencies=metrics_guard)  # /metrics
    _add_docs(app, _token_unless(config.http.open_docs, config, "http.open_docs"))
    app.include_router(console_router(config, store))  # /console: the web console
    listeners_up = ready or asyncio.Event()

    @app.post("/callbacks/{provider_name}")
    @metrics.counts_callbacks
    async def callback(provider_name: str, request: Request) -> Response:
        provider = providers.get(provider_name)
        if provider is None:
            return JSONResponse({"error": f"no provider {provider_name!r}"}, status_code=404)
        try:
            incoming = await to_callback_request(request)
        except ClientDisconnect:
            log.info("callback for %s: the caller hung up before sending it all", provider_name)
            return Response(status_code=400)
        try:
            result = await provider.parse_callback(incoming)
        except CallbackError as exc:
            log.warning("callback for %s refused: %s", provider_name, exc)
            return JSONResponse({"error": str(exc)}, status_code=exc.status_code)
        try:
            known = True
            for update in result.updates:
                found = await apply_status(store, provider_name, update, "callback")
                known = known and (found or await _job_known(store, provider_name, update))
            for inbound in result.inbound:
                stored = await record_inbound(config, store, provider, inbound)
                if stored is None and not await _inbound_known(store, provider_name, inbound):
                    await _keep(store, provider_name, incoming, unowned(inbound))
            for item in result.unclassified:
                log.warning("callback for %s kept, not understood: %s", provider_name, item.reason)
                await _keep(store, provider_name, incoming, item)
        except StorageError as exc:
            log.error("callback for %s not stored: %s", provider_name, exc)
            return JSONResponse({"error": "temporarily unavailable"}, status_code=503)
        except ProviderError as exc:
            log.error("callback for %s: cannot fetch the document: %s", provider_name, exc)
            if provider.retries_refused_callbacks:
                return JSONResponse({"error": "document not available yet"}, status_code=503)
            # A 503 would not bring it again (Kazoo): keep what it said, answer 200.
            await _keep(store, provider_name, incoming, undelivered(result, exc))
            return PlainTextResponse(result.reply_body)
        if not known:
            if provider.retries_refused_callbacks:
                # Ask the provider to try again later: the send may not be recorded yet.
                return JSONResponse({"error": "unknown fax"}, status_code=404)
            # It would never come again: keep it, so nothing it said is lost.
            for update in result.updates:
                await _keep(store, provider_name, incoming, unmatched(update))
        return PlainTextResponse(result.reply_body)

    @app.get("/", include_in_schema=False)
    async def landing() -> Response:
        """Someone who types the bridge's address into a browser gets the console (its login
        page when not signed in), not a 404."""
        return RedirectResponse(f"{CONSOLE}/", status_code=303)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> Response:
        # A store slower than a second is not ready either: SMTP clients are waiting on it.
        try:
            store_ok = await asyncio.wait_for(asyncio.to_thread(store.db.ping), 1.0)
        except TimeoutError:
            store_ok = False
        body: dict[str, Any] = {"store": store_ok, "listeners": listeners_up.is_set()}
        # Below storage.min_free_mb new mail gets 452 4.3.1: not ready for more.
        try:
            free = await asyncio.to_thread(store.db.free_bytes)
        except OSError:
            free = 0
        disk_ok = free >= config.storage.min_free_bytes
        body["disk"] = disk_ok
        body["disk_free_mb"] = free // (1024 * 1024)
        ok = store_ok and disk_ok and listeners_up.is_set()
        if pool is not None:
            body["documents"] = pool.healthy
            body["document_pool_restarts"] = pool.restarts
            if pool.last_fault:
                body["document_pool_last_fault"] = pool.last_fault
            ok = ok and pool.healthy
        return JSONResponse(body, status_code=200 if ok else 503)

    return app


def _token_unless(opened: bool, config: Config, key: str) -> list[Any]:
    """Route dependencies: one of http.api_tokens, unless `key` opened the routes."""
    return [] if opened else [Depends(operator_checker(config.http.api_tokens, key))]


def _add_docs(app: FastAPI, guard: list[Any]) -> None:
    """/openapi.json, /docs (Swagger UI) and /redoc, behind `guard` (http.open_docs)."""

    @app.get("/openapi.json", include_in_schema=False, dependencies=guard)
    async def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False, dependencies=guard)
    async def swagger() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title="faxbridge API")

    @app.get("/redoc", include_in_schema=False, dependencies=guard)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(openapi_url="/openapi.json", title="faxbridge API")


async def _job_known(store: Store, provider: str, update: Any) -> bool:
    return await asyncio.to_thread(store.jobs.find, provider, update) is not None


async def _inbound_known(store: Store, provider: str, fax: InboundFax) -> bool:
    return await asyncio.to_thread(store.inbound.known, provider, fax.provider_fax_id)


def unmatched(update: StatusUpdate) -> UnclassifiedCallback:
    return UnclassifiedCallback(
        reason=f"status {update.status.value} for fax {update.provider_fax_id}, which names "
        "no fax job of this bridge",
        event=update.provider_code,
        provider_fax_id=update.provider_fax_id or None,
        job_id=update.job_id,
    )


def undelivered(result: CallbackResult, exc: ProviderError) -> UnclassifiedCallback:
    """An inbound fax whose document could not be fetched from a provider that will not
    send the callback again: kept, so `explain` and the callback log show it."""
    fax = result.inbound[0] if result.inbound else None
    return UnclassifiedCallback(
        reason=f"inbound fax {fax.provider_fax_id if fax else '?'} from "
        f"{fax.from_number if fax else '?'}: its document could not be fetched ({exc}); "
        "the provider will not send this callback again, the fax is still at the provider",
        event="inbound",
        provider_fax_id=fax.provider_fax_id if fax else None,
    )


def unowned(fax: InboundFax) -> UnclassifiedCallback:
    return UnclassifiedCallback(
        reason=f"inbound fax from {fax.from_number or 'an unknown number'} to "
        f"{fax.to_number or 'an unknown number'}: no faxbox has that number in inbound.numbers",
        event="inbound",
        provider_fax_id=fax.provider_fax_id,
    )


async def _keep(
    store: Store, provider: str, request: CallbackRequest, item: UnclassifiedCallback
) -> None:
    await asyncio.to_thread(
        store.callbacks.record, provider, item, request.content_type, request.body
    )
