"""The exception tree, split by what the caller does next (retry or give up).

BridgeError
├── ConfigError                 bad or missing configuration; names the key path
├── StorageError                the store or data directory failed → SMTP 451
├── DocumentError               a message cannot become a fax → SMTP 554/552
│   ├── NoFaxableContent
│   ├── UnreadableAttachment
│   └── TooManyPages
├── ProviderError
│   ├── TransientProviderError  retry later (timeouts, 429, 5xx); carries retry_after_s
│   └── PermanentProviderError  give up; carries the provider's own message
│       └── NotSupportedByProvider  the provider's API has no such call (cancel, delete …)
└── CallbackError
    └── CallbackAuthError       forged or unauthenticated callback → 401/403
"""

from __future__ import annotations

from typing import Any


class BridgeError(Exception):
    """Base of every error the bridge raises on purpose."""


class ConfigError(BridgeError):
    pass


class StorageError(BridgeError):
    pass


class StorageFull(StorageError):
    """The disk (or quota) under the data directory or the database is full: a client is told
    452 4.3.1 and may come back when an admin has made room."""


class DocumentError(BridgeError):
    """The message cannot become a fax; `reply` is the whole SMTP reply line."""

    def __init__(self, reply: str, attachments: list[dict[str, Any]] | None = None) -> None:
        super().__init__(reply)
        self.reply = reply
        self.attachments = attachments or []


class NoFaxableContent(DocumentError):
    pass


class UnreadableAttachment(DocumentError):
    pass


class TooManyPages(DocumentError):
    pass


class AttachmentsTooLarge(DocumentError):
    pass


class ProviderError(BridgeError):
    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class TransientProviderError(ProviderError):
    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        retry_after_s: float | None = None,
        rate_limited: bool = False,
        maybe_sent: bool = False,
    ) -> None:
        super().__init__(message, code=code)
        self.retry_after_s = retry_after_s
        self.rate_limited = rate_limited  # a request to slow down, not a failed try
        # The request may have reached the provider (a timeout or a connection lost after it
        # went out): ask the provider (`find`) before sending again; not a failed try either.
        self.maybe_sent = maybe_sent


class PermanentProviderError(ProviderError):
    pass


class NotSupportedByProvider(PermanentProviderError):
    pass


class CallbackError(BridgeError):
    status_code = 400


class CallbackAuthError(CallbackError):
    status_code = 403
