"""The web console: server-rendered, read-only pages over the smtplog, jobs, inbound and outbox.

What an admin opens when a user says "my scan never arrived": the SMTP log with filters, one
attempt with every decision in order, the fax jobs it made and their status timelines, and each
fax itself, sent or received, as page images with its PDF to download (`fax_view`). Plain
HTML and one stylesheet, no JavaScript; every page but the login needs the session cookie
(see `console_auth`). Jinja2 escapes everything it prints, and the Content-Security-Policy
forbids scripts outright, so a hostile subject line stays text.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import jinja2
from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute

from bridge.config import Config
from bridge.http.console_auth import PREFIX, ConsoleAuth, LoginRequired, safe_next
from bridge.http.fax_view import PageRenderer, RenderError, inbound_pdf, job_pdf, page_count
from bridge.login_throttle import LoginThrottle
from bridge.models import Outcome
from bridge.store import Store
from bridge.store.smtplog import SmtpLogQuery

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).resolve().parent.parent / "templates" / "console"
PAGE_SIZE = 50
_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

Text = Annotated[str | None, Query(max_length=200)]
Key = Annotated[str | None, Query(max_length=32, pattern=r"^[0-9a-f]*$")]
Size = Annotated[int, Query(ge=1, le=500)]
Next = Annotated[str | None, Query(max_length=2048)]


class _ConsoleRoute(APIRoute):
    """Turns `LoginRequired` into a redirect and adds the security headers to every page."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                response = await handler(request)
            except LoginRequired as exc:
                response = RedirectResponse(exc.location, status_code=303)
            response.headers.update(_HEADERS)
            return response

        return route


def _utc(value: datetime | None, seconds: bool = True) -> str:
    if value is None:
        return "—"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC" if seconds else "%Y-%m-%d %H:%M")


def _size(value: int | None) -> str:
    if value is None:
        return "—"
    if value < 1024:
        return f"{value} B"
    if value < 1024 * 1024:
        return f"{value / 1024:.1f} KiB"
    return f"{value / 1024 / 1024:.1f} MiB"


def make_templates() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,  # every template, whatever its name: nothing is printed raw
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["utc"] = _utc
    env.filters["size"] = _size
    env.globals["prefix"] = PREFIX
    return env


def _day(value: str | None, field: str, errors: list[str]) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        errors.append(f"{field}: {value!r} is not a date (YYYY-MM-DD)")
        return None


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def console_router(config: Config, store: Store) -> APIRouter:
    """The `/console` pages; `create_app` includes this router."""
    auth = ConsoleAuth(config.http.api_tokens)
    limits = config.smtp.auth  # one policy for both ways in
    throttle = LoginThrottle(
        store,
        "console",
        max_failures=limits.max_failures,
        address_max_failures=limits.address_max_failures,
        window_s=limits.failure_window,
    )
    env = make_templates()
    renderer = PageRenderer()
    stylesheet = (TEMPLATES / "console.css").read_text(encoding="utf-8")
    faxboxes = [box.name for box in config.faxboxes]
    router = APIRouter(prefix=PREFIX, route_class=_ConsoleRoute, include_in_schema=False)
    signed_in = [Depends(auth.require)]

    def page(name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        html = env.get_template(name).render(signed_in=name != "login.html", **context)
        return HTMLResponse(html, status_code=status_code)

    def missing(what: str, ident: str) -> HTMLResponse:
        return page("missing.html", 404, title="Not found", what=what, ident=ident)

    @router.get("/console.css")
    async def css() -> Response:
        return Response(stylesheet, media_type="text/css")

    @router.get("/login")
    async def login_form(next: Next = None) -> HTMLResponse:
        return page(
            "login.html", title="Sign in", next=safe_next(next), error=None, closed=not auth.open
        )

    @router.post("/login")
    async def login(
        request: Request,
        token: Annotated[str, Form(max_length=4096)] = "",
        next: Annotated[str, Form(max_length=2048)] = "",
    ) -> Response:
        address = request.client.host if request.client else None
        if await asyncio.to_thread(throttle.throttled, "", address):
            return page(
                "login.html",
                429,
                title="Sign in",
                next=safe_next(next),
                error=f"Too many failed sign-ins from your address; try again in {throttle.wait}.",
                closed=not auth.open,
            )
        if not auth.token_ok(token):
            await asyncio.to_thread(throttle.failed, "", address)
            log.warning("console sign-in from %s failed: wrong token", address)
            error = "That token is not one of http.api_tokens."
            return page(
                "login.html",
                401,
                title="Sign in",
                next=safe_next(next),
                error=error,
                closed=not auth.open,
            )
        await asyncio.to_thread(throttle.succeeded, "", address)
        response = RedirectResponse(safe_next(next), status_code=303)
        auth.set_cookie(response, request)
        return response

    @router.post("/logout")
    async def logout() -> Response:
        response = RedirectResponse(f"{PREFIX}/login", status_code=303)
        auth.clear_cookie(response)
        return response

    @router.get("/", dependencies=signed_in)
    async def smtp_log(
        request: Request,
        faxbox: Text = None,
        outcome: Text = None,
        sender: Text = None,
        number: Text = None,
        date_from: Text = None,
        date_to: Text = None,
        start: Key = None,
        page_size: Size = PAGE_SIZE,
    ) -> HTMLResponse:
        errors: list[str] = []
        day_from = _day(date_from, "From", errors)
        day_to = _day(date_to, "To", errors)
        if outcome and outcome not in {o.value for o in Outcome}:
            errors.append(f"Outcome: {outcome!r} is not accepted, rejected or aborted")
        query = SmtpLogQuery(
            faxbox=faxbox or None,
            outcome=outcome or None,
            sender=sender or None,
            number=number or None,
            since=_midnight(day_from) if day_from else None,
            until=_midnight(day_to) + timedelta(days=1) if day_to else None,
        )
        result = None
        if not errors:
            result = await asyncio.to_thread(store.smtplog.search, query, page_size, start or None)
        params = {k: v for k, v in request.query_params.items() if k != "start" and v}
        return page(
            "smtplog.html",
            title="SMTP log",
            section="smtplog",
            filters=params,
            faxboxes=faxboxes,
            outcomes=[o.value for o in Outcome],
            errors=errors,
            result=result,
            first_page=not start,
        )

    @router.get("/attempts/{attempt_id}", dependencies=signed_in)
    async def attempt(attempt_id: str) -> HTMLResponse:
        record = await asyncio.to_thread(store.smtplog.get, attempt_id)
        if record is None:
            return missing("SMTP attempt", attempt_id)
        jobs = []
        for job_id in record["fax_ids"] or []:
            job = await asyncio.to_thread(store.jobs.get, job_id)
            jobs.append(job or {"id": job_id, "status": "purged", "history": []})
        return page(
            "attempt.html", title=f"Attempt {attempt_id}", section="smtplog", a=record, jobs=jobs
        )

    @router.get("/jobs/{job_id}", dependencies=signed_in)
    async def job(job_id: str) -> HTMLResponse:
        record = await asyncio.to_thread(store.jobs.get, job_id)
        if record is None:
            return missing("fax job", job_id)
        return page("job.html", title=f"Fax job {job_id}", section="smtplog", job=record)

    async def fax_view(
        record: dict[str, Any] | None,
        pdf_of: Callable[[Store, str], bytes | None],
        ident: str,
        *,
        what: str,
        title: str,
        section: str,
        kind: str,
        base: str,
    ) -> HTMLResponse:
        """A sent or received fax as page images (they load from `base`/N.png)."""
        if record is None:
            return missing(what, ident)
        pdf = await asyncio.to_thread(pdf_of, store, ident)
        return page(
            "fax.html",
            title=title,
            section=section,
            kind=kind,
            fax=record,
            pages=await asyncio.to_thread(page_count, pdf) if pdf else 0,
            stored=pdf is not None,
            base=base,
        )

    @router.get("/jobs/{job_id}/fax", dependencies=signed_in)
    async def job_fax(job_id: str) -> HTMLResponse:
        record = await asyncio.to_thread(store.jobs.get, job_id)
        return await fax_view(
            record,
            job_pdf,
            job_id,
            what="fax job",
            title=f"Fax {job_id}",
            section="smtplog",
            kind="sent",
            base=f"{PREFIX}/jobs/{job_id}/fax",
        )

    @router.get("/inbound/{fax_id}", dependencies=signed_in)
    async def inbound_fax(fax_id: str) -> HTMLResponse:
        record = await asyncio.to_thread(store.inbound.get, fax_id)
        return await fax_view(
            record,
            inbound_pdf,
            fax_id,
            what="inbound fax",
            title=f"Inbound fax {fax_id}",
            section="inbound",
            kind="received",
            base=f"{PREFIX}/inbound/{fax_id}/fax",
        )

    loaders = {
        "jobs": (job_pdf, "fax job"),
        "inbound": (inbound_pdf, "inbound fax"),
    }

    @router.get("/{kind}/{ident}/fax.pdf", dependencies=signed_in)
    async def fax_pdf(kind: str, ident: str) -> Response:
        if kind not in loaders:
            return missing("page", f"{kind}/{ident}/fax.pdf")
        load, what = loaders[kind]
        pdf = await asyncio.to_thread(load, store, ident)
        if pdf is None:
            return missing(what, ident)
        disposition = f'attachment; filename="fax-{ident}.pdf"'
        return Response(
            pdf, media_type="application/pdf", headers={"Content-Disposition": disposition}
        )

    @router.get("/{kind}/{ident}/fax/{name}", dependencies=signed_in)
    async def fax_page(kind: str, ident: str, name: str) -> Response:
        """`…/fax/3.png`: page 3 drawn as an image; 404 for a page the fax does not have."""
        number = name.removesuffix(".png")
        if kind not in loaders or not name.endswith(".png") or not number.isdigit():
            return missing("page", f"{kind}/{ident}/fax/{name}")
        load, what = loaders[kind]
        try:
            png = await asyncio.to_thread(
                renderer.page, f"{kind}:{ident}", int(number), lambda: load(store, ident)
            )
        except RenderError as exc:
            log.warning("%s %s, page %s: %s", what, ident, number, exc)
            return Response(f"{exc}\n", status_code=500, media_type="text/plain")
        if png is None:
            return missing(f"page {number} of {what}", ident)
        return Response(png, media_type="image/png")

    @router.get("/inbound", dependencies=signed_in)
    async def inbound(faxbox: Text = None, start: Key = None) -> HTMLResponse:
        result = await asyncio.to_thread(
            store.views.console_inbound_page, PAGE_SIZE, start or None, faxbox or None
        )
        return page(
            "inbound.html",
            title="Inbound faxes",
            section="inbound",
            result=result,
            faxboxes=faxboxes,
            filters={"faxbox": faxbox} if faxbox else {},
            first_page=not start,
        )

    @router.get("/outbox", dependencies=signed_in)
    async def outbox(status: Text = None, start: Key = None) -> HTMLResponse:
        result = await asyncio.to_thread(
            store.views.console_outbox_page, PAGE_SIZE, start or None, status or None
        )
        return page(
            "outbox.html",
            title="Mail outbox",
            section="outbox",
            result=result,
            statuses=["pending", "sent", "failed", "skipped"],
            filters={"status": status} if status else {},
            first_page=not start,
        )

    return router
