"""Plumbing every HTTP adapter shares: error mapping and rate-limit hints.

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
    """An adapter that talks to an HTTP API through the injected `httpx.AsyncClient`."""

    default_base_url: str = ""

    @property
    def base_url(self) -> str:
        return (self.config.base_url or self.default_base_url).rstrip("/")

    def url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}"

    @metrics.timed
    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send one request; map failures to Transient/PermanentProviderError."""
        kwargs.setdefault("timeout", self.config.timeout_s)
        try:
            response = await self.client.request(method, self.url(path), **kwargs)
        except httpx.TimeoutException as exc:
            raise TransientProviderError(
                f"{self.name}: no answer within {self.config.timeout_s:g} s", code="timeout"
            ) from exc
        except httpx.TransportError as exc:
            raise TransientProviderError(
                f"{self.name}: cannot connect ({exc.__class__.__name__}: {exc})", code="connect"
            ) from exc
        self.raise_for_status(response)
        return response

    def raise_for_status(self, response: httpx.Response) -> None:
        code = response.status_code
        if code < 400:
            return
        message = provider_message(response)
        if code == 429 or code >= 500:
            raise TransientProviderError(
                f"{self.name}: HTTP {code}: {message}",
                code=str(code),
                retry_after_s=retry_after_s(response),
                rate_limited=code == 429,
            )
        raise PermanentProviderError(f"{self.name}: HTTP {code}: {message}", code=str(code))
