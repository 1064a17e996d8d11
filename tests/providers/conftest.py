"""Fixtures for the provider tests: every emulator, and an adapter wired to it.

The contract suite runs once per module in `tests/providers/emulators/` that defines
`make_harness`. An emulator that does not import (yet) is reported as skipped, so one helper's
half-finished emulator never breaks collection for everybody else. A provider's own test module
narrows the suite to its emulator by overriding the `harness` fixture.
"""

from __future__ import annotations

import importlib
import pkgutil
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from pydantic import TypeAdapter
from starlette.requests import Request

from bridge.config import ProviderConfig
from bridge.http.callbacks import to_callback_request
from bridge.models import CallbackRequest, CoverNote, OutboundFax
from bridge.providers.base import FaxProvider, ProviderContext
from bridge.providers.registry import provider_class
from tests.providers import emulators
from tests.providers.harness import CallbackHTTP, EmulatorHarness
from tests.providers.pdfs import write_pdf

CALLBACK_TOKEN = "cb-token-3f9a1c"
PUBLIC_URL = "http://127.0.0.1:9/bridge"

MakeProvider = Callable[..., FaxProvider[Any]]
ToRequest = Callable[..., Awaitable[CallbackRequest]]
MakeFax = Callable[..., OutboundFax]


def _emulator_params() -> list[Any]:
    params = []
    for info in sorted(pkgutil.iter_modules(emulators.__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        try:
            module = importlib.import_module(f"{emulators.__name__}.{info.name}")
        except Exception as exc:  # a helper's emulator in progress must not break collection
            reason = f"emulator {info.name!r} does not import: {exc.__class__.__name__}: {exc}"
            params.append(pytest.param(None, id=info.name, marks=pytest.mark.skip(reason=reason)))
            continue
        factory = getattr(module, "make_harness", None)
        if factory is None:
            continue
        params.append(pytest.param(factory, id=info.name))
    return params or [pytest.param(None, marks=pytest.mark.skip(reason="no emulators yet"))]


@pytest.fixture(scope="module", params=_emulator_params())
def harness(request: pytest.FixtureRequest) -> Iterator[EmulatorHarness]:
    """One running emulator per provider type, shared by a module's tests (servers are slow
    to start); tests look only at the requests made after they began."""
    with request.param() as running:
        yield running


@pytest.fixture
def callback_token() -> str:
    return CALLBACK_TOKEN


@pytest.fixture
async def http_client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


@pytest.fixture
def make_provider(
    harness: EmulatorHarness, http_client: httpx.AsyncClient, tmp_path: Path
) -> MakeProvider:
    """Build the adapter for the emulator; keyword arguments override config keys."""

    def build(**overrides: Any) -> FaxProvider[Any]:
        raw = {**harness.provider_config(CALLBACK_TOKEN), **overrides}
        config = TypeAdapter(ProviderConfig).validate_python(raw)
        context = ProviderContext(public_url=PUBLIC_URL, data_dir=tmp_path)
        return provider_class(config.type)(harness.provider_type, config, http_client, context)

    return build


@pytest.fixture
def provider(make_provider: MakeProvider) -> FaxProvider[Any]:
    return make_provider()


@pytest.fixture
def make_fax(tmp_path: Path) -> MakeFax:
    """An `OutboundFax` with a real one-page PDF ("DOCUMENT"); `cover=True` adds our cover
    note and a rendered cover page ("COVERPAGE")."""
    counter = iter(range(1, 1_000_000))

    def build(
        to: str = "+12125550123",
        *,
        cover: bool = False,
        caller_id: str | None = "+12125550100",
        round: int = 0,
        job_id: str | None = None,
    ) -> OutboundFax:
        # Ids shaped like the store's (`new_id`): hex milliseconds, then a counter.
        job_id = job_id or f"{int(time.time() * 1000):011x}{next(counter):06x}"
        document = write_pdf(tmp_path / f"{job_id}.pdf", "DOCUMENT")
        note = None
        cover_pdf = None
        if cover:
            from datetime import UTC, datetime

            note = CoverNote(
                to_name="Jane Doe",
                to_number=to,
                from_name="Front Desk",
                from_number=caller_id or "",
                subject="Quarterly figures",
                notes="Please call back after reading.",
                date=datetime(2024, 5, 6, 7, 8, tzinfo=UTC),
                pages=2,
            )
            cover_pdf = write_pdf(tmp_path / f"{job_id}-cover.pdf", "COVERPAGE")
        return OutboundFax(
            job_id=job_id,
            to=to,
            caller_id=caller_id,
            document=document,
            pages=1,
            cover=note,
            cover_pdf=cover_pdf,
            callback_url=f"{PUBLIC_URL}/callbacks/test?token={CALLBACK_TOKEN}",
            round=round,
        )

    return build


async def callback_request(
    callback: CallbackHTTP, token: str | None = CALLBACK_TOKEN
) -> CallbackRequest:
    """The callback as the bridge's HTTP layer hands it to the adapter (the real decoder).

    The bridge's `token` is added to the query unless the callback already names one."""
    query = dict(callback.query)
    if token is not None:
        query.setdefault("token", token)
    headers = {k.lower(): v for k, v in callback.headers.items()}
    headers.setdefault("content-length", str(len(callback.body)))
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/callbacks/test",
        "raw_path": b"/callbacks/test",
        "query_string": urlencode(query).encode(),
        "headers": [(k.encode(), v.encode()) for k, v in headers.items()],
        "scheme": "http",
        "server": ("127.0.0.1", 9),
        "client": ("127.0.0.1", 40000),
        "root_path": "",
        "http_version": "1.1",
    }
    delivered = False

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if delivered:
            return {"type": "http.disconnect"}
        delivered = True
        return {"type": "http.request", "body": callback.body, "more_body": False}

    return await to_callback_request(Request(scope, receive))


@pytest.fixture
def to_request() -> ToRequest:
    """`await to_request(callback)` → the `CallbackRequest` the adapter would get."""
    return callback_request
