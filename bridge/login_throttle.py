"""Failed logins slow down who failed: the (user, address) pair, not everyone at the address.

An office sends from one NAT address; a scanner with an old password must not lock out every
colleague, while guessing one user's password stays slow. Spraying many user names from one
address meets a wider per-address limit. Failures live in the store (`login_failures`), so
`faxbridge auth unlock USER` lifts a throttle on a running bridge and bridges sharing a
database count together. While a pair is throttled even the right password is refused; once
the window has passed it works again. If the store cannot be read the check lets the login
through (a database outage must not lock everyone out) and says so in the log.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from bridge.errors import StorageError
from bridge.store import Store, utcnow

log = logging.getLogger(__name__)


def _duration(seconds: float) -> str:
    minutes = round(seconds / 60)
    if minutes > 1:
        return f"{minutes} minutes"
    return f"{seconds:g} second" + ("" if seconds == 1 else "s")


class LoginThrottle:
    def __init__(
        self,
        store: Store,
        service: str,
        *,
        max_failures: int = 5,
        address_max_failures: int = 50,
        window_s: float = 600.0,
    ) -> None:
        self.store = store
        self.service = service
        self.max_failures = max_failures
        self.address_max_failures = address_max_failures
        self.window_s = window_s

    @property
    def wait(self) -> str:
        """How long a throttled login waits, for the reply (`10 minutes`)."""
        return _duration(self.window_s)

    def address_throttled(self, address: str | None) -> bool:
        """Too many failures of any users from `address` (checked before the name is known)."""
        return self._over(address, None, self.address_max_failures)

    def throttled(self, username: str, address: str | None) -> bool:
        return self._over(address, username, self.max_failures) or self.address_throttled(address)

    def failed(self, username: str, address: str | None) -> None:
        if address is None:
            return
        try:
            self.store.login_failures.record(self.service, username, address)
        except StorageError as exc:
            log.error("cannot record the failed login of %r from %s: %s", username, address, exc)

    def succeeded(self, username: str, address: str | None) -> None:
        if address is None:
            return
        try:
            self.store.login_failures.clear(username, service=self.service, address=address)
        except StorageError as exc:
            log.error("cannot clear the failed logins of %r from %s: %s", username, address, exc)

    def _over(self, address: str | None, username: str | None, limit: int) -> bool:
        if address is None:
            return False
        since = utcnow() - timedelta(seconds=self.window_s)
        try:
            count = self.store.login_failures.count(self.service, address, since, username)
        except StorageError as exc:
            log.error("login throttle cannot read the store (letting the login through): %s", exc)
            return False
        return count >= limit
