"""SMTP AUTH against argon2 hashes, with failures throttled per (user, address).

aiosmtpd calls the authenticator synchronously; argon2 verification is deliberately slow
(tens of ms), which is also what makes guessing expensive.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable, Mapping
from typing import Any

from aiosmtpd.smtp import AuthResult, LoginPassword
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from bridge.config import AuthConfig, SMTPUser
from bridge.login_throttle import LoginThrottle

log = logging.getLogger(__name__)


def throttled_reply(wait: str, username: str | None = None) -> str:
    who = f"as {username} " if username else ""
    return f"454 4.7.0 Too many failed logins {who}from your address; try again in {wait}"


def failed_reply(username: str) -> str:
    return f"535 5.7.8 Authentication credentials invalid for {username}"


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
    """The `authenticator=` callable for aiosmtpd.

    aiosmtpd answers a failed AUTH with its own 535; the reply that says why (throttled, or
    which user failed) is left on the session object as `auth_refusal` for the server's
    `push` to send instead.
    """

    def __init__(self, config: AuthConfig, throttle: LoginThrottle) -> None:
        self.users: dict[str, SMTPUser] = {u.username: u for u in config.users}
        self.throttle = throttle

    def __call__(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        peer = session.peer[0] if isinstance(session.peer, tuple) else None
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        username = auth_data.login.decode("utf-8", "replace")
        password = auth_data.password.decode("utf-8", "replace")
        if self.throttle.throttled(username, peer):
            log.warning("%s AUTH %s as %r refused: throttled", peer, mechanism, username)
            server.auth_refusal = throttled_reply(self.throttle.wait, username)
            return AuthResult(success=False, handled=False)
        user = self.users.get(username)
        if user is not None and self._verify(user, password):
            log.info("%s AUTH %s as %s succeeded", peer, mechanism, username)
            self.throttle.succeeded(username, peer)
            return AuthResult(success=True, auth_data=username)
        self.throttle.failed(username, peer)
        log.warning("%s AUTH %s as %r failed", peer, mechanism, username)
        server.auth_refusal = failed_reply(username)
        # handled=False: aiosmtpd then sends the 535 itself (True would leave the client hanging).
        return AuthResult(success=False, handled=False)

    @staticmethod
    def _verify(user: SMTPUser, password: str) -> bool:
        try:
            return _HASHER.verify(user.password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def may_use(self, username: str | None, faxbox: str) -> bool:
        return faxbox_check(self.users, username)(faxbox) is None


def faxbox_check(
    users: Mapping[str, SMTPUser], username: str | None
) -> Callable[[str], str | None]:
    """For a logged-in user (None: nobody logged in, no limit): the RCPT refusal for a faxbox
    the user may not send through, or None. The server and `explain` both ask this."""

    def check(faxbox: str) -> str | None:
        if username is None:
            return None
        user = users.get(username)
        if user is not None and ("*" in user.faxboxes or faxbox in user.faxboxes):
            return None
        return f"550 5.7.1 {username} may not send faxes through faxbox {faxbox}"

    return check
