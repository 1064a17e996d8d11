"""Token login for the web console: one of `http.api_tokens` buys a signed session cookie.

The cookie holds no token and no secret, only when it was issued, a nonce and an HMAC over
both. The HMAC key is drawn at random when the process starts and mixed with the configured
token list, so a restart (or a changed token list) ends every session: the console is read-only
and logging in again is cheap, while a key that never leaves memory needs no rotation story.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

COOKIE = "faxbridge_console"
SESSION_S = 12 * 3600
PREFIX = "/console"


class LoginRequired(Exception):
    """Raised by the session check; the console's route class turns it into a redirect."""

    def __init__(self, location: str) -> None:
        super().__init__(location)
        self.location = location


class ConsoleAuth:
    """Checks tokens at login and signs and verifies the session cookies that follow."""

    def __init__(self, tokens: list[str], session_s: float = SESSION_S) -> None:
        self._tokens = [t.encode() for t in tokens if t]
        material = b"\0".join(hashlib.sha256(t).digest() for t in self._tokens)
        self._key = hmac.new(secrets.token_bytes(32), material, hashlib.sha256).digest()
        self.session_s = session_s

    @property
    def open(self) -> bool:
        """False when no token is configured: then nobody can log in."""
        return bool(self._tokens)

    def token_ok(self, given: str) -> bool:
        """Compare with every token, each in constant time, without stopping at a match."""
        candidate = given.encode()
        matched = False
        for token in self._tokens:
            matched |= hmac.compare_digest(candidate, token)
        return matched

    def _sign(self, payload: str) -> str:
        return hmac.new(self._key, payload.encode(), hashlib.sha256).hexdigest()

    def new_session(self) -> str:
        payload = f"{int(time.time()):x}.{secrets.token_hex(8)}"
        return f"{payload}.{self._sign(payload)}"

    def session_ok(self, value: str | None) -> bool:
        if not value or not self.open:
            return False
        payload, _, signature = value.rpartition(".")
        if not hmac.compare_digest(self._sign(payload), signature):
            return False
        try:
            issued = int(payload.split(".", 1)[0], 16)
        except ValueError:
            return False
        return 0 <= time.time() - issued < self.session_s

    def require(self, request: Request) -> None:
        """FastAPI dependency: pass with a valid cookie, else go to the login page."""
        if self.session_ok(request.cookies.get(COOKIE)):
            return
        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(f"{PREFIX}/login?next={quote(here, safe='')}")

    def set_cookie(self, response: Response, request: Request) -> None:
        response.set_cookie(
            COOKIE,
            self.new_session(),
            max_age=int(self.session_s),
            path=PREFIX,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )

    @staticmethod
    def clear_cookie(response: RedirectResponse) -> None:
        response.delete_cookie(COOKIE, path=PREFIX, httponly=True, samesite="strict")


def safe_next(target: str | None) -> str:
    """Where to go after login: only a console path, never another site (open redirect)."""
    if target and target.startswith(PREFIX) and "//" not in target and "\\" not in target:
        return target
    return f"{PREFIX}/"
