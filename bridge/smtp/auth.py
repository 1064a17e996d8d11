"""SMTP AUTH against argon2 hashes, with a per-address throttle on failures.

aiosmtpd calls the authenticator synchronously; argon2 verification is deliberately slow
(tens of ms), which is also what makes guessing expensive.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections import defaultdict, deque
from typing import Any

from aiosmtpd.smtp import AuthResult, LoginPassword
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from bridge.config import AuthConfig, SMTPUser

log = logging.getLogger(__name__)

MAX_FAILURES = 5
FAILURE_WINDOW_S = 600.0
THROTTLED_REPLY = "454 4.7.0 Too many failed logins from your address; try again in 10 minutes"
_HASHER = PasswordHasher()


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def in_networks(peer: str | None, networks: list[str]) -> bool:
    if not peer or not networks:
        return False
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(n, strict=False) for n in networks)


class Authenticator:
    """The `authenticator=` callable for aiosmtpd, plus who is throttled."""

    def __init__(self, config: AuthConfig, clock: Any = time.monotonic) -> None:
        self.users: dict[str, SMTPUser] = {u.username: u for u in config.users}
        self.clock = clock
        self._failures: dict[str, deque[float]] = defaultdict(deque)

    def throttled(self, peer: str | None) -> bool:
        if peer is None:
            return False
        failures = self._failures.get(peer)
        if not failures:
            return False
        cutoff = self.clock() - FAILURE_WINDOW_S
        while failures and failures[0] < cutoff:
            failures.popleft()
        return len(failures) >= MAX_FAILURES

    def __call__(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        peer = session.peer[0] if isinstance(session.peer, tuple) else None
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        username = auth_data.login.decode("utf-8", "replace")
        password = auth_data.password.decode("utf-8", "replace")
        user = self.users.get(username)
        if user is not None and self._verify(user, password):
            log.info("%s AUTH %s as %s succeeded", peer, mechanism, username)
            return AuthResult(success=True, auth_data=username)
        if peer is not None:
            self._failures[peer].append(self.clock())
        log.warning("%s AUTH %s as %r failed", peer, mechanism, username)
        # handled=False: aiosmtpd then sends the 535 itself (True would leave the client hanging).
        return AuthResult(success=False, handled=False)

    @staticmethod
    def _verify(user: SMTPUser, password: str) -> bool:
        try:
            return _HASHER.verify(user.password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def may_use(self, username: str | None, faxbox: str) -> bool:
        if username is None:
            return True
        user = self.users.get(username)
        return user is not None and ("*" in user.faxboxes or faxbox in user.faxboxes)
