"""HelloFax / Dropbox Fax, legacy API v1 (help.dropbox.com v1 pages, seed 000, PROVIDERS.md).

help.dropbox.com says "the v1 endpoints will no longer being maintained"; Dropbox Sign's fax API
v3 (`type: dropboxsign`) is the successor. This adapter keeps existing accounts working and says
so in `check()`.

The API knows an account (by GUID), its fax lines and its transmissions (by GUID). It draws its
own cover page from `CoverPageTo`/`CoverPageFrom`/`CoverPageMessage`, so with a cover note the
bare document goes and HelloFax renders the cover. A transmission has no field that echoes our
reference, so callbacks are linked by the GUID stored as `provider_fax_id`, and `find` can never
be sure (a re-send is recorded as a possible duplicate).

Three quirks shape this module: a 429 means "already 200 transmissions pending", a reason to
wait, never to fail (the shared rule in `HTTPProvider`); a sent fax is removed once it has gone
("not stored on our servers once the fax has successfully been sent"), so a 404 from `status()`
is "forgotten", not failure, and the callback is the source of truth (polling never sees a
delivery); and HelloFax has no redial, cancel or delete call for a transmission. `From` is
spelled as the account's `/FaxLines` lists the line (setup page note A).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import replace
from typing import Any

import httpx

from bridge.config import HelloFaxConfig
from bridge.errors import (
    CallbackError,
    ConfigError,
    NotSupportedByProvider,
    PermanentProviderError,
    TransientProviderError,
)
from bridge.models import (
    CallbackRequest,
    CallbackResult,
    InboundFax,
    JobStatus,
    Lookup,
    OutboundFax,
    SendResult,
    StatusUpdate,
    UnclassifiedCallback,
)
from bridge.numbers import to_e164
from bridge.providers.base import transmitted_pdf
from bridge.providers.hellofax_wire import (
    UnknownStatus,
    callback_body,
    caller_number,
    fax_line_numbers,
    is_inbound,
    line_number,
    next_page,
    sent_guid,
    status_update,
    transaction,
    transactions,
    v3_event,
)
from bridge.providers.http import HTTPProvider
from bridge.providers.values import as_int, digits_only, from_epoch

log = logging.getLogger(__name__)

LEGACY_NOTICE = (
    "HelloFax API v1 is legacy: help.dropbox.com says its endpoints are no longer maintained; "
    "Dropbox Sign's fax API v3 (provider type dropboxsign) is its successor"
)
# The body a Dropbox Sign event must be answered with (v3 migration guide: "the same response
# detailed in the Events and Callbacks Walkthrough").
V3_EVENT_REPLY = "Hello API Event Received"
# `find` reads this many pages of `GET …/Transmissions` for in-flight faxes to the number.
LIST_PAGE_SIZE, LIST_PAGES = 100, 3
# How long `send` trusts the account's fax line listing (the spelling of `From`).
LINES_TTL_S = 3600.0


class HelloFaxProvider(HTTPProvider[HelloFaxConfig]):
    type = "hellofax"
    default_base_url = "https://api.hellofax.com/v1"
    # A 429 ("Please wait. You already have at least 200 transmissions that are currently
    # pending or transmitting.") names no wait of its own; the shared rule in HTTPProvider
    # marks it rate-limited and waits this long.
    rate_limit_wait_s = 60.0
    # A sent fax is gone from the API at once; its callback is retried on a schedule of 15 min,
    # 45 min, 1 h 30, 2 h 45, 4 h, 8 h 15 and 16 h 30 (setup page, "If your server is down"):
    # as offsets the last try is 16 h 30 after the first, as intervals 34 h. Wait for the
    # longer reading, and an hour more, before the job ends as unknown.
    forgotten_grace_s = 35 * 3600.0
    # The account's fax lines when last read: (monotonic time, E.164 → `Number` as HelloFax
    # spells it), for `_from_value`.
    _lines_cache: tuple[float, dict[str, str]] | None = None

    @property
    def _account(self) -> str:
        return f"/Accounts/{self.config.account_guid}"

    async def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        kwargs.setdefault("auth", httpx.BasicAuth(self.config.username, self.config.password))
        return await self.request(method, path, **kwargs)

    # -- sending -------------------------------------------------------------------------
    async def send(self, fax: OutboundFax) -> SendResult:
        # All digits, as the pages show To ("[phone number in all digits]"); From as the
        # account's fax line listing spells the number.
        params = {"To": digits_only(fax.to)}
        if fax.caller_id:
            params["From"] = await self._from_value(fax.caller_id)
        fields: dict[str, str] = {}
        if fax.cover is not None:
            # HelloFax draws the cover page itself; our own rendering stays out.
            # Note C: "one or more of" the three; an empty one is left out, not sent blank.
            note = fax.cover
            cover = {
                "CoverPageTo": note.to_name or note.to_number,
                "CoverPageFrom": note.from_name or note.from_number,
                "CoverPageMessage": "\n\n".join(p for p in (note.subject, note.notes) if p),
            }
            fields.update({key: value for key, value in cover.items() if value.strip()})
            document = await asyncio.to_thread(fax.document.read_bytes)
        else:
            document = await asyncio.to_thread(transmitted_pdf, fax)
        files = {"file": (f"{fax.job_id}.pdf", document, "application/pdf")}
        response = await self.call(
            "POST", f"{self._account}/Transmissions", params=params, data=fields, files=files
        )
        try:
            body = response.json()
        except ValueError:
            body = None
        try:
            update = status_update(transaction(body))
        except (ValueError, KeyError) as exc:
            # A 200 means HelloFax has the fax: never report it refused for the answer's shape,
            # and take its GUID from wherever the answer has it.
            guid = sent_guid(body)
            if guid:
                log.info("%s: job %s accepted as transmission %s", self.name, fax.job_id, guid)
                return SendResult(guid, status=JobStatus.SUBMITTED)
            raise TransientProviderError(
                f"{self.name}: a send was answered without a readable transmission: "
                f"{response.text[:200]}",
                maybe_sent=True,
            ) from exc
        log.info(
            "%s: job %s accepted as transmission %s", self.name, fax.job_id, update.provider_fax_id
        )
        if update.status is JobStatus.FAILED:
            # On hold (H/O) at once: the account cannot send. The job stays submitted until
            # a poll brings the outcome with its reason (HelloFax calls back only at E or S).
            log.warning(
                "%s: transmission %s: %s", self.name, update.provider_fax_id, update.provider_text
            )
        status = update.status if update.status is JobStatus.SENDING else JobStatus.SUBMITTED
        return SendResult(update.provider_fax_id, status=status, raw_status=update.provider_code)

    # -- status and reconciliation -------------------------------------------------------
    async def status(
        self, provider_fax_id: str, *, job_id: str | None = None
    ) -> StatusUpdate | None:
        """The transmission's status; None once HelloFax removed it (sent faxes go at once)."""
        path = f"{self._account}/Transmissions/{provider_fax_id}"
        response = await self.call_or_forgotten("GET", path)
        if response is None:
            return None
        try:
            return status_update(transaction(response.json()))
        except (ValueError, KeyError) as exc:
            raise TransientProviderError(
                f"{self.name}: unreadable transmission status: {response.text[:200]}"
            ) from exc

    async def find(self, fax: OutboundFax) -> Lookup:
        """Never certain: no transmission field echoes our reference, and sent ones are gone.

        The in-flight transmissions to the same number are named in the detail, so whoever
        reads the job's history can tell a duplicate from a first send."""
        why = (
            f"{self.name}: HelloFax v1 keeps no reference of ours on a transmission and removes "
            "sent ones, so it cannot tell whether it already has this fax"
        )
        try:
            candidates, complete = await self._in_flight_to(fax.to)
        except PermanentProviderError as exc:
            return Lookup(certain=False, detail=f"{why} (listing failed: {exc.message})")
        if candidates:
            why += f"; in flight to {fax.to}: {', '.join(candidates)}"
        if not complete:
            why += f" (only the newest {LIST_PAGES * LIST_PAGE_SIZE} transmissions were read)"
        return Lookup(certain=False, detail=why)

    async def _in_flight_to(self, number: str) -> tuple[list[str], bool]:
        """GUIDs of pending or transmitting faxes to `number` (E.164, compared in E.164
        however the record spells it); whether every page was read."""
        found: list[str] = []
        for page in range(1, LIST_PAGES + 1):
            params = {"Page": page, "PageSize": LIST_PAGE_SIZE}
            response = await self.call("GET", f"{self._account}/Transmissions", params=params)
            body = response.json()
            for record in transactions(body):
                outbound = not is_inbound(record) and caller_number(record.get("To")) == number
                if outbound and str(record.get("StatusCode") or "").upper() in {"P", "T"}:
                    found.append(str(record["Guid"]))
            if not next_page(body):
                return found, True
        return found, False

    # -- callbacks -----------------------------------------------------------------------
    async def parse_callback(self, request: CallbackRequest) -> CallbackResult:
        self.verify_callback_token(request)
        body = callback_body(request)
        event = v3_event(body)
        if event is not None:
            kept = _kept(
                f"a Dropbox Sign v3 style event {event!r} (sent when a hellosign.com Account "
                "Callback URL is set); the bridge reads HelloFax's v1 Transaction callbacks",
                event,
            )
            # Kept here, so acknowledged the way Dropbox Sign's events want (developers.
            # hellosign.com events walkthrough, as the v3 migration guide says): anything else
            # and it comes again for about three days.
            return replace(kept, reply_body=V3_EVENT_REPLY)
        try:
            record = transaction(body)
        except ValueError as exc:
            raise CallbackError(f"unreadable HelloFax callback: {exc}") from exc
        guid = str(record["Guid"])
        if is_inbound(record):
            return self._inbound(record, request)
        try:
            update = status_update(record)
        except UnknownStatus as exc:
            return _kept(f"a HelloFax callback for transmission {guid}: {exc}", None, guid)
        return CallbackResult(updates=[update])

    def _inbound(self, record: dict[str, Any], request: CallbackRequest) -> CallbackResult:
        guid = str(record["Guid"])
        # The PDF rides along as a file part; its field name is not documented.
        document = next(iter(request.files.values()), None)
        if not document:
            # Kept, never dropped: HelloFax keeps faxes it POSTed in its "documents" screen.
            return _kept(
                f"HelloFax announced inbound fax {guid} from {record.get('From') or '?'} to "
                f"{record.get('To') or '?'} without its document; it is in the Documents "
                "screen of the HelloFax web app",
                "inbound",
                guid,
            )
        return CallbackResult(
            inbound=[
                InboundFax(
                    provider_fax_id=guid,
                    # Our line and the caller, in E.164 however HelloFax spelled them.
                    from_number=caller_number(record.get("From")),
                    to_number=line_number(record.get("To")),
                    pages=as_int(record.get("NumPagesBilled")),
                    received=from_epoch(record.get("CreatedAt")),
                    document=document,
                    raw=dict(record),
                )
            ]
        )

    async def fetch_document(self, fax: InboundFax) -> bytes:
        if fax.document is None:
            raise PermanentProviderError(
                f"{self.name}: HelloFax delivers inbound faxes only inside the callback, and "
                f"the one for {fax.provider_fax_id} carried no document"
            )
        return fax.document

    async def delete(self, provider_fax_id: str, *, inbound: bool = False) -> None:
        """HelloFax v1 has no call that deletes a transmission; it removes a sent fax itself.

        Done when HelloFax no longer has the fax; otherwise say what stays where (a failed
        fax, and every received one, which "are available to view in your documents
        screen")."""
        if inbound:
            raise NotSupportedByProvider(
                f"{self.name}: HelloFax v1 has no call to delete a received fax; it stays in "
                "the Documents screen of the HelloFax web app (delete it there)"
            )
        update = await self.status(provider_fax_id)
        if update is None:
            return  # removed by HelloFax once sent
        raise NotSupportedByProvider(
            f"{self.name}: HelloFax v1 has no call to delete a transmission, and keeps "
            f"{provider_fax_id} ({update.provider_code}: {update.provider_text})"
        )

    # -- account -------------------------------------------------------------------------
    async def fax_lines(self) -> list[str]:
        return sorted(await self._read_lines())

    async def _read_lines(self) -> dict[str, str]:
        """`GET …/FaxLines` (setup page); `…/FaxLine` as the v3 migration guide spells it."""
        response = await self.call_or_forgotten("GET", f"{self._account}/FaxLines")
        if response is None:
            response = await self.call("GET", f"{self._account}/FaxLine")
        lines = fax_line_numbers(response.json())
        self._lines_cache = (time.monotonic(), lines)
        return lines

    async def _from_value(self, caller_id: str) -> str:
        """`From` for `caller_id`: SETUP note A asks for "the format of the From value" to be
        "the Number field returned by calling /FaxLines", which its DELETE example writes in
        ten digits (`FaxLines/2132935579`) while transactions show eleven. So the line's own
        `Number` goes out; a caller ID that is no line of the account goes as all digits, for
        HelloFax to take or refuse in its own words."""
        cached = self._lines_cache
        if cached is not None and time.monotonic() - cached[0] < LINES_TTL_S:
            lines = cached[1]
        else:
            # A transient failure (429 included) propagates: nothing was sent, and a guessed
            # spelling could turn a passing fault into a refused fax.
            try:
                lines = await self._read_lines()
            except (PermanentProviderError, ValueError) as exc:
                log.warning("%s: fax lines unreadable (%s); From as digits", self.name, exc)
                lines = {}
        number = lines.get(to_e164(caller_id))
        if number:
            return number
        if lines:
            log.warning(
                "%s: caller ID %s is not one of the account's fax lines (%s)",
                self.name,
                caller_id,
                ", ".join(sorted(lines)),
            )
        return digits_only(caller_id)

    async def check(self) -> str:
        """Credentials, and where the account's two callback URLs point (SETUP step 4): an
        inbound URL set elsewhere means received faxes never reach the bridge."""
        response = await self.call("GET", self._account)
        try:
            account = response.json()
            account = account.get("Account", account)
            urls = {
                kind: account.get(f"Default{kind.title()}FaxCallbackUrl")
                for kind in ("inbound", "outbound")
            }
        except (ValueError, AttributeError):
            urls = {"inbound": None, "outbound": None}
        ours = self.callback_url()
        said = []
        for kind, url in urls.items():
            if not url:
                where = "not set"
            elif url == ours:
                where = "this bridge"
            else:
                where = "elsewhere (run `faxbridge providers setup`)"
            said.append(f"{kind} callback URL: {where}")
        return (
            f"HelloFax account {self.config.account_guid}: credentials accepted "
            f"({'; '.join(said)}). Note: {LEGACY_NOTICE}"
        )

    async def setup(self) -> list[str]:
        if not self.callback_token:
            raise ConfigError(
                f"providers.{self.name}.callback_token: needed before registering callbacks, "
                "because HelloFax signs nothing and the token is what proves a callback real"
            )
        url = self.callback_url()
        await self.call(
            "POST",
            self._account,
            data={"DefaultInboundFaxCallbackUrl": url, "DefaultOutboundFaxCallbackUrl": url},
        )
        shown = url.replace(self.callback_token, "…")
        return [
            f"HelloFax account {self.config.account_guid}: inbound fax callback URL set to {shown}",
            f"HelloFax account {self.config.account_guid}: outbound fax callback URL set to "
            f"{shown}",
        ]


def _kept(reason: str, event: str | None, guid: str | None = None) -> CallbackResult:
    kept = UnclassifiedCallback(reason=reason, event=event, provider_fax_id=guid)
    log.warning("hellofax: callback kept, not understood: %s", reason)
    return CallbackResult(unclassified=[kept])
