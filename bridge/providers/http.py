"""Plumbing every HTTP adapter shares: error mapping, rate limits, "no such fax".

Translating at this one boundary keeps the worker ignorant of httpx and of each API's quirks
(like `httpx/_transports/default.py: map_httpcore_exceptions`).
"""

from __future__ import annotations

import json
import time
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from bridge import metrics
from bridge.errors import PermanentProviderError, TransientProviderError
from bridge.providers.base import ConfigT, FaxProvider

_MESSAGE_KEYS = ("message", "error", "error_msg", "errorInfo", "description", "detail", "msg")


def retry_after_s(response: httpx.Response, now: float | None = None) -> float | None:
    """Seconds to wait, from `Retry-After` (seconds or HTTP date) or `X-Ratelimit-Reset`."""
    now = time.time() if now is None else now
    value = response.headers.get("retry-after")
    if value:
        value = value.strip()
        if value.isdigit():
            return float(value)
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - now)
        except (TypeError, ValueError):
            pass
    reset = response.headers.get("x-ratelimit-reset")
    if reset:
        try:
            number = float(reset)
        except ValueError:
            return None
        # An epoch timestamp (Dropbox Sign) or a number of seconds.
        return max(0.0, number - now) if number > 1_000_000_000 else number
    return None


def provider_message(response: httpx.Response) -> str:
    """The provider's own words from an error response, as short as it gives them."""
    text = response.text.strip()
    try:
        body: Any = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return text[:300] or response.reason_phrase
    found = _find_message(body)
    return (found or text)[:300]


def _find_message(body: Any) -> str | None:
    if isinstance(body, str):
        return body
    if isinstance(body, dict):
        for key in _MESSAGE_KEYS:
            value = body.get(key)
            if isinstance(value, str) and value:
                return value
            if isinstance(value, dict | list):
                inner = _find_message(value)
                if inner:
                    return inner
        for key in ("data", "errors"):
            if key in body:
                inner = _find_message(body[key])
                if inner:
                    return inner
    if isinstance(body, list):
        for item in body:
            inner = _find_message(item)
            if inner:
                return inner
    return None


class HTTPProvider(FaxProvider[ConfigT]):
    """An adapter that talks to an HTTP API through the injected `httpx.AsyncClient`.

    The rules every provider shares live here, so no adapter can forget one:
    - a 429 (or whatever `is_rate_limited` recognises as "slow down") raises a
      `TransientProviderError` with `rate_limited=True`: the worker waits and never counts it
      as an attempt;
    - a timeout or a connection lost after a write went out raises one with `maybe_sent=True`:
      the worker asks `find` before sending again;
    - `call_or_forgotten` turns the provider's "no such fax" (404/410) into None, which is what
      `status` returns for a fax the provider no longer knows.
    Adapters shape these through the small hooks below, never by re-implementing them.
    """

    default_base_url: str = ""
    #: Wait after a rate limit that names no wait of its own.
    rate_limit_wait_s: float = 60.0

    @property
    def base_url(self) -> str:
        return (self.config.base_url or self.default_base_url).rstrip("/")

    def url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}"

    @metrics.timed
    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send one request; map failures to Transient/PermanentProviderError."""
        kwargs.setdefault("timeout", self.config.timeout_s)
        writes = method.upper() not in _SAFE_METHODS
        try:
            response = await self.client.request(method, self.url(path), **kwargs)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            # Nothing reached the provider.
            raise TransientProviderError(
                f"{self.name}: cannot connect ({exc.__class__.__name__}: {exc})", code="connect"
            ) from exc
        except httpx.TimeoutException as exc:
            raise TransientProviderError(
                f"{self.name}: no answer within {self.config.timeout_s:g} s",
                code="timeout",
                maybe_sent=writes,
            ) from exc
        except httpx.TransportError as exc:
            raise TransientProviderError(
                f"{self.name}: connection lost ({exc.__class__.__name__}: {exc})",
                code="connect",
                maybe_sent=writes,
            ) from exc
        self.raise_for_status(response)
        return response

    async def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """An authenticated request: adapters add their credentials here."""
        return await self.request(method, path, **kwargs)

    async def call_or_forgotten(
        self, method: str, path: str, **kwargs: Any
    ) -> httpx.Response | None:
        """`call`, but None when the provider says the thing is not (or no longer) there."""
        try:
            return await self.call(method, path, **kwargs)
        except PermanentProviderError as exc:
            if exc.code in _FORGOTTEN_CODES:
                return None
            raise

    # -- hooks -----------------------------------------------------------------------------
    def error_text(self, response: httpx.Response) -> str:
        """The provider's own words for an error response."""
        return provider_message(response)

    def is_rate_limited(self, response: httpx.Response) -> bool:
        """Whether an error response asks us to slow down (always true of a 429)."""
        return response.status_code == 429

    def is_transient(self, response: httpx.Response) -> bool:
        """Whether an error response is worth trying again later."""
        return response.status_code >= 500 or response.status_code in (408, 425)

    # -- the shared rule -----------------------------------------------------------------
    def raise_for_status(self, response: httpx.Response) -> None:
        code = response.status_code
        if code < 400:
            return
        message = f"{self.name}: HTTP {code}: {self.error_text(response)}"
        if self.is_rate_limited(response):
            wait_s = retry_after_s(response)
            raise TransientProviderError(
                message,
                code=str(code),
                retry_after_s=self.rate_limit_wait_s if wait_s is None else wait_s,
                rate_limited=True,
            )
        if self.is_transient(response):
            raise TransientProviderError(
                message, code=str(code), retry_after_s=retry_after_s(response)
            )
        raise PermanentProviderError(message, code=str(code))


_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_FORGOTTEN_CODES = frozenset({"404", "410"})
