"""Emulators that deliver their own callbacks, over HTTP, like the real providers do.

The contract suite hands `CallbackHTTP` values straight to the adapter; end-to-end tests need
the provider to POST them to the bridge instead. A harness mixes in `CallsBack` and says where
its provider sends callbacks (`registered_callback_url`): the URL registered through its API
(HelloFax account callback URLs, Fax.Plus hooks, Kazoo webhooks, as `providers setup` does), or
for providers whose URL is set in a web app (Dropbox Sign, mFax) the one a test puts in
`callback_target`, as an admin would.

    harness.callback_target = f"{bridge.http_url}/callbacks/mfax?token=…"   # only if no API
    reply = harness.complete(provider_fax_id, "failed", "busy")
    assert reply.status_code == 200
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx

from tests.providers.harness import CallbackHTTP


class NoCallbackURL(RuntimeError):
    """The emulated provider does not know where to call back (nothing registered)."""


def with_query(url: str, extra: dict[str, str]) -> str:
    """`url` with `extra` merged into its query; `extra` wins (that is how a forgery swaps the
    bridge's token for its own)."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    query.update(extra)
    return urlunsplit(parts._replace(query=urlencode(query)))


def post_callback(callback: CallbackHTTP, url: str, timeout_s: float = 30.0) -> httpx.Response:
    """POST one callback exactly as built (headers and body bytes) to `url`."""
    with httpx.Client(timeout=timeout_s) as client:
        return client.post(
            with_query(url, callback.query), content=callback.body, headers=callback.headers
        )


class CallsBack:
    """Mixin for a harness: `post`, `complete` and `deliver_inbound` send over HTTP."""

    callback_target: str | None = None

    # Provided by the harness (see `EmulatorHarness`).
    def status_callback(
        self, provider_fax_id: str, status: str, reason: str | None = None
    ) -> CallbackHTTP:
        raise NotImplementedError

    def inbound_callback(self, from_number: str, to_number: str, pdf: bytes) -> CallbackHTTP:
        raise NotImplementedError

    def registered_callback_url(self, inbound: bool) -> str | None:
        """The URL this provider's account has for outbound (or inbound) fax callbacks."""
        return None

    def callback_url_for(self, inbound: bool) -> str:
        url = self.registered_callback_url(inbound) or self.callback_target
        if not url:
            kind = "inbound" if inbound else "outbound"
            raise NoCallbackURL(
                f"{type(self).__name__}: no {kind} callback URL registered; run the adapter's "
                "setup() or set callback_target"
            )
        return url

    def post(self, callback: CallbackHTTP, *, inbound: bool = False) -> httpx.Response:
        """Deliver `callback` to where this provider would send it."""
        return post_callback(callback, self.callback_url_for(inbound))

    def complete(
        self, provider_fax_id: str, status: str, reason: str | None = None
    ) -> httpx.Response:
        """Finish fax `provider_fax_id` (common model status and reason) and call back."""
        return self.post(self.status_callback(provider_fax_id, status, reason))

    def deliver_inbound(self, from_number: str, to_number: str, pdf: bytes) -> httpx.Response:
        """Receive a fax on `to_number` and announce it to the bridge."""
        return self.post(self.inbound_callback(from_number, to_number, pdf), inbound=True)
