"""The one interface every fax provider implements (modelled on httpx's transports).

An adapter turns our `OutboundFax` into the provider's API calls and the provider's callbacks
back into `StatusUpdate`/`InboundFax` values. Nothing outside an adapter's module knows which
provider it talks to.
"""

from __future__ import annotations

import hmac
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Generic, TypeVar
from urllib.parse import urlencode

import httpx

from bridge.config import FaxboxConfig, _ProviderBase
from bridge.errors import CallbackAuthError, NotSupportedByProvider
from bridge.models import (
    CallbackRequest,
    CallbackResult,
    InboundFax,
    Lookup,
    OutboundFax,
    SendResult,
    StatusUpdate,
)

ConfigT = TypeVar("ConfigT", bound=_ProviderBase)


@dataclass(frozen=True)
class ProviderContext:
    """What an adapter may know about the bridge around it."""

    public_url: str  # base of the callback URLs, e.g. http://127.0.0.1:8025
    data_dir: Path
    inbound_numbers: frozenset[str] = field(default_factory=frozenset)


class FaxProvider(ABC, Generic[ConfigT]):
    """Base class of all adapters.

    Contract:
    - `send` either returns a `SendResult` (the provider accepted the fax) or raises
      `TransientProviderError` (try again later) / `PermanentProviderError` (give up). It
      writes `fax.reference` where the provider echoes it (tag, comment, title, custom field),
      so `find` and callbacks can name the job (`bridge.providers.reference`).
    - `status` asks the provider about one fax; `None` means the provider no longer knows it
      ("forgotten": not a failure by itself, some delete finished faxes; the worker then asks
      `find`, and after `forgotten_grace_s` ends the job as `unknown`).
    - `find` looks the job up by our reference before anything is sent again (after a crash
      mid-send, a timeout after the request went out, `jobs retry`).
    - `parse_callback` authenticates and parses one HTTP callback; forged ones raise
      `CallbackAuthError` and change nothing. A callback it cannot classify is not dropped in
      silence: it logs a warning and returns it in `CallbackResult.unclassified`.
    - `fetch_document` returns the PDF (or TIFF) of an inbound fax.
    - `cancel`, `delete`, `fax_lines` are optional: the defaults say the API cannot.
    """

    type: ClassVar[str]
    #: The provider redials busy / unanswered lines itself when `send` passes `fax.redial`
    #: (Fax.Plus `options.retry`, Kazoo `retries`); the bridge then does not redial on top.
    redials_natively: ClassVar[bool] = False
    #: How long a fax the provider no longer knows may stay unaccounted for before the job
    #: ends as `unknown` (a provider block's `forgotten_grace_s` overrides it).
    forgotten_grace_s: ClassVar[float] = 3600.0
    #: The provider refuses a fax without a caller ID (Kazoo's schema requires from_number).
    requires_caller_id: ClassVar[bool] = False
    #: The provider sends a callback again when the bridge answers it with an error. Where it
    #: does not (Kazoo), a callback naming no job yet is kept and answered 200 instead of 404.
    retries_refused_callbacks: ClassVar[bool] = True

    def __init__(
        self, name: str, config: ConfigT, client: httpx.AsyncClient, context: ProviderContext
    ) -> None:
        self.name = name
        self.config = config
        self.client = client
        self.context = context

    # -- the interface -------------------------------------------------------------------
    @abstractmethod
    async def send(self, fax: OutboundFax) -> SendResult: ...

    @abstractmethod
    async def status(
        self, provider_fax_id: str, *, job_id: str | None = None
    ) -> StatusUpdate | None:
        """The provider's view of one fax, or None when it no longer knows `provider_fax_id`.

        `job_id` (ours) lets an adapter find a fax whose provider id changed after submission
        (Fax.Plus: outbox id → fax id); an update naming a new id must then carry `job_id`.
        """

    async def find(self, fax: OutboundFax) -> Lookup:
        """Every fax the provider holds that carries `fax.job_id`'s reference (any round).

        The default cannot tell; an adapter whose API lists or searches faxes overrides it.
        """
        return Lookup(
            certain=False, detail=f"{self.type} cannot look a fax up by the bridge's reference"
        )

    @abstractmethod
    async def parse_callback(self, request: CallbackRequest) -> CallbackResult: ...

    @abstractmethod
    async def fetch_document(self, fax: InboundFax) -> bytes: ...

    async def cancel(self, provider_fax_id: str) -> None:
        """Stop a fax the provider has not sent yet; raises if it cannot (already sent …)."""
        raise NotSupportedByProvider(f"{self.name}: the {self.type} API cannot cancel a fax")

    async def delete(self, provider_fax_id: str, *, inbound: bool = False) -> None:
        """Remove a finished fax and its files from the provider (privacy); idempotent."""
        raise NotSupportedByProvider(f"{self.name}: the {self.type} API cannot delete a fax")

    async def fax_lines(self) -> list[str] | None:
        """The account's own fax numbers in E.164, or None when the API does not list them."""
        return None

    def forgotten_after_s(self) -> float:
        configured = self.config.forgotten_grace_s
        return self.forgotten_grace_s if configured is None else configured

    @classmethod
    def faxbox_problems(cls, faxbox: FaxboxConfig) -> list[str]:
        """What makes `faxbox` unusable with this provider (check-config, start-up)."""
        if cls.requires_caller_id and not faxbox.caller_id:
            return [
                f"faxbox {faxbox.name!r} uses a {cls.type} provider, which refuses a fax "
                "without a caller ID: set caller_id"
            ]
        return []

    async def check(self) -> str:
        """Make one harmless authenticated call; return what it showed."""
        return "nothing to check"

    async def setup(self) -> list[str]:
        """Register the bridge's callback URLs where the API allows it; else say how."""
        return [f"Set the provider's callback URL to {self.callback_url()}"]

    async def start(self) -> None:
        """Called once the bridge's HTTP listener is up."""

    async def aclose(self) -> None:
        """Release what the adapter holds (not the injected client: its owner closes it)."""

    # -- shared helpers ------------------------------------------------------------------
    @property
    def callback_token(self) -> str | None:
        return self.config.callback_token

    def callback_url(self, **params: str) -> str:
        query = dict(params)
        if self.callback_token:
            query["token"] = self.callback_token
        suffix = f"?{urlencode(query)}" if query else ""
        return f"{self.context.public_url}/callbacks/{self.name}{suffix}"

    def verify_callback_token(self, request: CallbackRequest) -> None:
        """Authenticate a callback by the `token` query parameter of its URL."""
        expected = self.callback_token
        given = request.query.get("token")
        if not expected:
            raise CallbackAuthError(
                f"provider {self.name!r} has no callback_token configured, so its callbacks "
                "cannot be authenticated"
            )
        if given is None or not hmac.compare_digest(given.encode(), expected.encode()):
            raise CallbackAuthError("callback token missing or wrong")


def transmitted_pdf(fax: OutboundFax) -> bytes:
    """The document as the receiver will see it: our cover page (if any) then the pages.

    For providers without native cover fields. Blocking (file I/O, PDF merge): call it
    through `asyncio.to_thread`.
    """
    from bridge.documents import merge_pdfs

    document = fax.document.read_bytes()
    if fax.cover_pdf is None:
        return document
    return merge_pdfs([fax.cover_pdf.read_bytes(), document])
