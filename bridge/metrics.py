"""Prometheus metrics on `GET /metrics`: what an operator graphs and alerts on.

Each bridge owns a `Metrics` with its own registry, so several bridges in one process (the test
suite) never mix their counts. Call sites use the module-level functions below: they find the
running bridge's `Metrics` through a ContextVar that `Bridge.start` sets before it starts any
listener or worker (every task and thread started afterwards inherits it), and do nothing when
none is installed (the CLI, unit tests).

Events are counters, counted where they happen. State is read from the store at scrape time:
jobs by status and provider, and the mail outbox backlog. Counting job transitions instead
would be wrong as soon as a second bridge shares the database (each would see only the
transitions it made) and after every restart; a query over `fax_jobs` is the truth, and cheap
(one GROUP BY over an indexed column).
"""

from __future__ import annotations

import asyncio
import functools
import re
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Iterator
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

from bridge.errors import StorageError
from bridge.models import JobStatus, Outcome

if TYPE_CHECKING:
    from fastapi import APIRouter

    from bridge.store import Attempt, Store

disable_created_metrics()  # type: ignore[no-untyped-call]  # no `_created` twin per series

P = ParamSpec("P")
R = TypeVar("R")

# `550 5.7.1 Relaying denied…` → `5.7.1`; aiosmtpd's own `500 Error: bad syntax` → `500`.
_ENHANCED = re.compile(r"^[45]\d\d[ -]([245]\.\d{1,3}\.\d{1,3})\b")
_BASIC = re.compile(r"^([45]\d\d)\b")
_CALLBACK_RESULTS = {
    200: "ok",
    400: "malformed",
    401: "refused",
    403: "refused",
    404: "unknown",
    503: "unavailable",
}
_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


def refusal_code(reply: str | None) -> str:
    """A short, bounded label for a refusal: the enhanced status code, else the basic one."""
    if not reply:
        return ""
    found = _ENHANCED.match(reply) or _BASIC.match(reply)
    return found.group(1) if found else ""


class _StoreCollector(Collector):
    """Gauges computed from the store on every scrape."""

    def __init__(self, store: Store, providers: Iterable[str]) -> None:
        self.store = store
        self.providers = list(providers)

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("faxbridge_store_up", "1 when the store answered this scrape")
        try:
            counts = self.store.views.job_counts()
            backlog = self.store.views.outbox_backlog()
        except StorageError:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        jobs = GaugeMetricFamily(
            "faxbridge_fax_jobs", "Fax jobs by current status", labels=["provider", "status"]
        )
        seen = {(provider, status): n for provider, status, n in counts}
        for provider in self.providers:  # zeros too, so a series never vanishes
            for state in JobStatus:
                seen.setdefault((provider, state.value), 0)
        for (provider, status), n in sorted(seen.items()):
            jobs.add_metric([provider, status], n)
        yield jobs
        yield GaugeMetricFamily(
            "faxbridge_mail_outbox_pending",
            "Reports and inbound-fax mails not yet delivered",
            value=backlog.pending,
        )
        age = 0.0
        if backlog.oldest_created is not None:
            age = max(0.0, (datetime.now(UTC) - backlog.oldest_created).total_seconds())
        yield GaugeMetricFamily(
            "faxbridge_mail_outbox_oldest_age_seconds",
            "Age of the oldest pending mail (0 when none is pending)",
            value=age,
        )


class Metrics:
    def __init__(self, store: Store | None = None, providers: Iterable[str] = ()) -> None:
        self.providers = set(providers)
        self.registry = CollectorRegistry()
        r = self.registry
        self.smtp_sessions = Counter(
            "faxbridge_smtp_sessions", "SMTP connections accepted", registry=r
        )
        self.smtp_attempts = Counter(
            "faxbridge_smtp_attempts",
            "SMTP attempts (transactions) by outcome; reason is the refusal's status code",
            ["outcome", "reason"],
            registry=r,
        )
        self.pages_accepted = Counter(
            "faxbridge_fax_pages_accepted",
            "Fax pages queued (cover pages included, counted once per destination)",
            registry=r,
        )
        self.provider_latency = Histogram(
            "faxbridge_provider_request_duration_seconds",
            "Requests to fax providers; outcome is 2xx/4xx/5xx, timeout, connect or error",
            ["provider", "outcome"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.callbacks = Counter(
            "faxbridge_callbacks",
            "Provider callbacks by result (ok, refused, malformed, unknown, unavailable)",
            ["provider", "result"],
            registry=r,
        )
        self.mails = Counter(
            "faxbridge_mails",
            "Outbox mails by kind and result (sent, retry, failed)",
            ["kind", "result"],
            registry=r,
        )
        self.pool_restarts = Counter(
            "faxbridge_document_pool_restarts",
            "Document pool rebuilds by reason (died: a worker process ended; hung: a task ran "
            "past documents.worker_timeout_s)",
            ["reason"],
            registry=r,
        )
        for reason in ("died", "hung"):
            self.pool_restarts.labels(reason)
        for outcome in (Outcome.ACCEPTED, Outcome.ABORTED):  # a rejection always has a code
            self.smtp_attempts.labels(outcome.value, "")
        if store is not None:
            r.register(_StoreCollector(store, sorted(self.providers)))

    def render(self) -> bytes:
        return generate_latest(self.registry)


_current: ContextVar[Metrics | None] = ContextVar("faxbridge_metrics", default=None)


def install(metrics: Metrics) -> Metrics:
    """Make `metrics` the one the functions below report to, in this task and its children."""
    _current.set(metrics)
    return metrics


def current() -> Metrics | None:
    return _current.get()


# -- call sites ---------------------------------------------------------------------------
def smtp_session() -> None:
    if m := _current.get():
        m.smtp_sessions.inc()


def attempt_ended(attempt: Attempt) -> None:
    if m := _current.get():
        accepted = attempt.outcome is Outcome.ACCEPTED
        reason = "" if accepted else refusal_code(attempt.reply)
        m.smtp_attempts.labels(attempt.outcome.value, reason).inc()
        if accepted:
            m.pages_accepted.inc((attempt.pages or 0) * len(attempt.fax_ids))


def pool_restarted(reason: str) -> None:
    if m := _current.get():
        m.pool_restarts.labels(reason).inc()


def mail_done(kind: str, result: str) -> None:
    if m := _current.get():
        m.mails.labels(kind, result).inc()


def _outcome(error: BaseException | None, result: object) -> str:
    if error is None:
        code = str(getattr(result, "status_code", 200))  # an httpx.Response, or anything else
    else:
        code = str(getattr(error, "code", "") or "")  # TransientProviderError(code="503") …
    if code.isdigit() and len(code) == 3:
        return f"{code[0]}xx"
    return code if code in ("timeout", "connect") else "error"


def timed(func: Callable[P, Coroutine[Any, Any, R]]) -> Callable[P, Coroutine[Any, Any, R]]:
    """Decorates a provider method (`self.name` is the provider): latency by outcome."""

    @functools.wraps(func)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        m = _current.get()
        if m is None:
            return await func(*args, **kwargs)
        provider = str(getattr(args[0], "name", "?"))
        started = time.perf_counter()
        try:
            result = await func(*args, **kwargs)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            m.provider_latency.labels(provider, _outcome(exc, None)).observe(
                time.perf_counter() - started
            )
            raise
        m.provider_latency.labels(provider, _outcome(None, result)).observe(
            time.perf_counter() - started
        )
        return result

    return wrapper


def counts_callbacks(func: Callable[P, Awaitable[Any]]) -> Callable[P, Awaitable[Any]]:
    """Decorates the callback route: counts each callback by provider and result."""

    @functools.wraps(func)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
        response = await func(*args, **kwargs)
        if m := _current.get():
            name = str(kwargs.get("provider_name", ""))
            status = int(getattr(response, "status_code", 200))
            result = _CALLBACK_RESULTS.get(status, str(status))
            m.callbacks.labels(name if name in m.providers else "-", result).inc()
        return response

    return wrapper


def router(store: Store) -> APIRouter:
    """`GET /metrics` (create_app puts it behind the API token unless http.open_metrics); the
    store is read in a thread."""
    from fastapi import APIRouter
    from fastapi.responses import Response

    metrics = current() or Metrics(store)
    api = APIRouter()

    @api.get("/metrics", include_in_schema=False)
    async def scrape() -> Response:
        body = await asyncio.to_thread(metrics.render)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return api
