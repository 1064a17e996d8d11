"""Dropbox Sign (formerly HelloSign) fax API v3, from hellosign/hellosign-openapi `openapi.yaml`.

Basic auth with the API key as user name (securitySchemes `api_key`). `POST /fax/send` takes the
recipient in E.164 (FaxSendRequest: "a phone number in E.164 format or email address"), the
files, Dropbox Sign's own cover fields and a `title`, which carries our reference
(`bridge.providers.reference`) and which every fax record echoes: callbacks and `GET /fax/list`
link back to the job by it. The API has no redial option, no cancel, and deletes nothing by
itself: `DELETE /fax/{fax_id}` removes a fax for good.

Callbacks are signed (`event_hash`, see `dropboxsign_wire`), so no callback token is needed.
A callback is read by what it carries (a `fax` or `transmission` object and its status code),
then by the official fax event name (hellosign-openapi examples/json/EventCallbackFax*.json:
their objects carry no status code, and flags that say nothing), then by the flags the
help.dropbox.com sample carries; one that carries no fax news is kept and logged, not
acknowledged and dropped. A callback is answered with the body `Hello API Event Received`,
else Dropbox Sign sends it again later.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from datetime import datetime
from typing import Any

import httpx

from bridge.config import DropboxSignConfig
from bridge.errors import CallbackAuthError, CallbackError, ProviderError, TransientProviderError
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
from bridge.providers.base import transmitted_pdf
from bridge.providers.dropboxsign_wire import (
    EVENTS,
    INBOUND_EVENT,
    REPLY_BODY,
    Transmission,
    answer_json,
    callback_payload,
    e164,
    event_hash,
    event_outcome,
    failure_from_words,
    names_inbound,
    status_outcome,
    transmission_of,
)
from bridge.providers.http import HTTPProvider
from bridge.providers.reference import linked, parse_reference, reference_text
from bridge.providers.values import as_int, from_epoch

log = logging.getLogger(__name__)

# GET /fax/list and /fax_line/list: `page_size` "between 1 and 100"; a look-up reads at most
# LIST_PAGES pages (500 faxes), newest first as far as the API orders them.
PAGE_SIZE = 100
LIST_PAGES = 5
LINE_PAGES = 10


class DropboxSignProvider(HTTPProvider[DropboxSignConfig]):
    type = "dropboxsign"
    default_base_url = "https://api.hellosign.com/v3"
    # A callback not answered with 200 + "Hello API Event Received" is retried with exponential
    # backoff "over approximately 3 days" (developers.hellosign.com glossary, Callbacks &
    # Events): a fax the API no longer knows may still be reported that late.
    forgotten_grace_s = 78 * 3600.0

    async def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        kwargs.setdefault("auth", httpx.BasicAuth(self.config.api_key, ""))
        return await self.request(method, path, **kwargs)

    # -- sending -------------------------------------------------------------------------
    async def send(self, fax: OutboundFax) -> SendResult:
        fields = {
            "recipient": fax.to,  # E.164 with its `+`, as FaxSendRequest says
            "title": reference_text(fax.reference),
            "test_mode": "1" if self.config.test_mode else "0",
        }
        if fax.caller_id:
            fields["sender"] = fax.caller_id  # "used only with fax number"
        if fax.cover is not None:
            # Dropbox Sign draws the cover page itself; our own rendering stays out.
            note = fax.cover
            fields["cover_page_to"] = note.to_name or note.to_number
            fields["cover_page_from"] = note.from_name or note.from_number
            fields["cover_page_message"] = "\n\n".join(
                part for part in (note.subject, note.notes) if part
            )
            document = await asyncio.to_thread(fax.document.read_bytes)
        else:
            document = await asyncio.to_thread(transmitted_pdf, fax)
        files = [("files[]", (f"{fax.job_id}.pdf", document, "application/pdf"))]
        response = await self.call("POST", "/fax/send", data=fields, files=files)
        record = _fax_record(response)
        found = Transmission(record, "fax") if record is not None else None
        fax_id = found.fax_id if found is not None else None
        if found is None or fax_id is None:
            # Dropbox Sign has the fax (2xx) but we cannot name it: never call it refused; the
            # next try looks it up by its title before anything is sent again.
            raise TransientProviderError(
                f"{self.name}: Dropbox Sign accepted the fax (HTTP {response.status_code}) but "
                f"its answer names no fax_id: {response.text[:200]}",
                code=str(response.status_code),
                maybe_sent=True,
            )
        update = self._update(found)
        log.info("%s: job %s accepted as fax %s", self.name, fax.reference, fax_id)
        status = JobStatus.SENDING if update and update.status is JobStatus.SENDING else None
        return SendResult(
            fax_id,
            status=status or JobStatus.SUBMITTED,
            raw_status=found.status_code,
        )

    # -- status and reconciliation -------------------------------------------------------
    async def status(
        self, provider_fax_id: str, *, job_id: str | None = None
    ) -> StatusUpdate | None:
        response = await self.call_or_forgotten("GET", f"/fax/{provider_fax_id}")
        if response is None:
            return None
        record = _fax_record(response)
        if record is None:
            raise TransientProviderError(f"{self.name}: unreadable fax record {provider_fax_id}")
        update = self._update(Transmission(record, "fax"))
        if update is None:  # a record without a status code: accepted, nothing more known
            return StatusUpdate(provider_fax_id, JobStatus.SUBMITTED, provider_code="unknown")
        return update

    async def find(self, fax: OutboundFax) -> Lookup:
        """The faxes in `GET /fax/list` whose title carries `fax.job_id` (any round); the list
        has no search, so at most LIST_PAGES pages of PAGE_SIZE are read."""
        found: list[tuple[int, StatusUpdate]] = []
        for page in range(1, LIST_PAGES + 1):
            params = {"page": page, "page_size": PAGE_SIZE}
            body = _json(await self.call("GET", "/fax/list", params=params))
            rows = body.get("faxes") if isinstance(body, dict) else None
            for row in rows if isinstance(rows, list) else []:
                update = self._update(Transmission(row, "fax")) if isinstance(row, dict) else None
                if update is not None and update.job_id == fax.job_id:
                    found.append((as_int(row.get("created_at")) or 0, update))
            info = answer_json(body, "list_info") or {}
            pages = as_int(info.get("num_pages"))
            if not rows or (pages is not None and page >= pages):
                break
        else:
            if not found:
                return Lookup(
                    certain=False,
                    detail=f"{self.name}: only the newest {LIST_PAGES * PAGE_SIZE} faxes of "
                    "Dropbox Sign's fax list were read; job "
                    f"{fax.job_id} is not among them",
                )
        found.sort(key=lambda pair: pair[0], reverse=True)
        return Lookup(faxes=tuple(update for _, update in found))

    def _update(
        self, fax: Transmission, event_type: str = "", at: datetime | None = None
    ) -> StatusUpdate | None:
        """A fax record or callback object in the common model, or None when it says nothing
        the bridge can act on. Its status code first; else the official fax event's name; else
        the flags the help.dropbox.com callback sample carries (`has_error`, `is_complete`)."""
        fax_id = fax.fax_id
        if fax_id is None:
            return None
        code = fax.status_code
        outcome = status_outcome(code) if code else None
        named = event_outcome(event_type) if event_type else None
        if outcome is not None:
            status, reason, text = outcome
            provider_code: str = code or ""
        elif named is not None:
            status, reason, text = named
            provider_code = event_type
        elif fax.record.get("has_error") is True:
            status, reason = JobStatus.FAILED, failure_from_words(event_type)
            provider_code = event_type or "has_error"
            text = f"Dropbox Sign reported an error ({provider_code})"
        elif fax.record.get("is_complete") is True:
            status, reason = JobStatus.DELIVERED, None
            provider_code, text = event_type or "is_complete", "Complete"
        else:
            return None
        first = fax.legs[0] if fax.legs else {}
        update = StatusUpdate(
            provider_fax_id=fax_id,
            status=status,
            reason=reason,
            provider_code=provider_code,
            provider_text=text,
            at=from_epoch(first.get("sent_at")) or at or from_epoch(fax.record.get("created_at")),
        )
        return linked(update, [fax.record.get("title"), fax.record.get("original_title")])

    # -- privacy and lines -----------------------------------------------------------------
    async def delete(self, provider_fax_id: str, *, inbound: bool = False) -> None:
        """`DELETE /fax/{fax_id}` (204) removes the fax and its files; gone already is done."""
        await self.call_or_forgotten("DELETE", f"/fax/{provider_fax_id}")

    async def fax_lines(self) -> list[str]:
        """`GET /fax_line/list`: the account's fax lines (`number`), in E.164."""
        lines: set[str] = set()
        for page in range(1, LINE_PAGES + 1):
            params = {"page": page, "page_size": PAGE_SIZE}
            body = _json(await self.call("GET", "/fax_line/list", params=params))
            rows = body.get("fax_lines") if isinstance(body, dict) else None
            rows = [r for r in rows if isinstance(r, dict)] if isinstance(rows, list) else []
            lines |= {e164(row.get("number")) for row in rows}
            pages = as_int((answer_json(body, "list_info") or {}).get("num_pages"))
            if not rows or (pages is not None and page >= pages):
                break
        return sorted(line for line in lines if line)

    # -- callbacks -----------------------------------------------------------------------
    async def parse_callback(self, request: CallbackRequest) -> CallbackResult:
        payload = callback_payload(request)
        event = payload["event"]
        event_time = str(event.get("event_time") or "")
        event_type = str(event.get("event_type") or "")
        given = str(event.get("event_hash") or "")
        expected = event_hash(self.config.api_key, event_time, event_type)
        if not given or not _hmac_equal(expected, given):
            raise CallbackAuthError("Dropbox Sign callback with a missing or wrong event_hash")
        fax = transmission_of(payload)
        if fax is None:
            return _kept("carries no fax or transmission object", event_type)
        if fax.fax_id is None:
            return _kept(f"has a {fax.key} object that names no fax", event_type)
        if self._is_inbound(fax, event_type):
            return await self._inbound(fax, event_type, event_time)
        update = self._update(fax, event_type, at=from_epoch(event_time))
        if update is None:
            why = f"status {fax.status_code or 'missing'}, no has_error or is_complete flag"
            return _kept(
                f"tells nothing the bridge can read of fax {fax.fax_id} ({why})", event_type, fax
            )
        return CallbackResult(updates=[update], reply_body=REPLY_BODY)

    def _is_inbound(self, fax: Transmission, event_type: str) -> bool:
        """The object's own direction, else the official event name (`fax_received`; the other
        six are outbound), else a fax carrying our reference is outbound, else the words of the
        event name or the called number say."""
        direction = fax.direction()
        if direction is not None:
            return direction == "inbound"
        name = event_type.strip().lower()
        if name == INBOUND_EVENT or name in EVENTS:
            return name == INBOUND_EVENT
        if parse_reference([fax.record.get("title"), fax.record.get("original_title")]):
            return False
        if names_inbound(event_type):
            return True
        return fax.numbers()[1] in self.context.inbound_numbers

    async def _inbound(self, fax: Transmission, event_type: str, event_time: str) -> CallbackResult:
        fax_id = str(fax.fax_id)
        code = fax.status_code
        outcome = status_outcome(code) if code else None
        failed = fax.record.get("has_error") is True or (
            outcome is not None and outcome[0] is JobStatus.FAILED
        )
        if failed:
            return _kept(
                f"tells of inbound fax {fax_id} that failed ({code or event_type}): nothing "
                "to mail",
                event_type,
                fax,
            )
        if outcome is not None and outcome[0] is not JobStatus.DELIVERED:
            # Still arriving (`transmitting`): mailed once a callback says it is complete.
            return _kept(f"tells of inbound fax {fax_id} still arriving ({code})", event_type, fax)
        caller, called = fax.numbers()
        if not (caller and called):
            # The callback names no numbers (or only an e-mail address); the record may.
            try:
                response = await self.call_or_forgotten("GET", f"/fax/{fax_id}")
            except ProviderError as exc:
                raise CallbackError(f"cannot look up received fax {fax_id}: {exc}") from exc
            record = _fax_record(response) if response is not None else None
            if record is not None:
                their_caller, their_called = Transmission(record, "fax").numbers()
                caller, called = caller or their_caller, called or their_called
        inbound = InboundFax(
            provider_fax_id=fax_id,
            from_number=caller,
            to_number=called,
            received=from_epoch(event_time),
            raw=dict(fax.record),
        )
        return CallbackResult(inbound=[inbound], reply_body=REPLY_BODY)

    async def fetch_document(self, fax: InboundFax) -> bytes:
        if fax.document is not None:
            return fax.document
        response = await self.call("GET", f"/fax/files/{fax.provider_fax_id}")
        return response.content

    # -- account -------------------------------------------------------------------------
    async def check(self) -> str:
        body = _json(await self.call("GET", "/fax/list", params={"page": 1, "page_size": 1}))
        total = (answer_json(body, "list_info") or {}).get("num_results", "?")
        return f"Dropbox Sign API key accepted ({total} faxes on the account)"

    async def setup(self) -> list[str]:
        return [
            "Dropbox Sign sends fax API v3 callbacks to the fax callback URL of the API",
            "settings page (developers.hellosign.com/docs/fax/v3migration); set it by hand:",
            "  1. Sign in at https://app.hellofax.com/home/myAccount?current_tab=api",
            f"  2. Set the fax API callback URL to {self.callback_url()}",
            f"  3. Send a test: the bridge answers {REPLY_BODY!r}.",
            "(help.dropbox.com notes that an account callback URL set on app.hellosign.com,",
            " or with PUT /v3/account callback_url, receives the fax events too.)",
            "Callbacks are verified by their event_hash (HMAC with the API key); "
            "no callback_token is needed.",
        ]


def _hmac_equal(expected: str, given: str) -> bool:
    return hmac.compare_digest(expected.encode(), given.strip().lower().encode())


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return {}


def _fax_record(response: httpx.Response) -> dict[str, Any] | None:
    """`fax` of a FaxGetResponse (send and get both answer one)."""
    return answer_json(_json(response), "fax")


def _kept(what: str, event_type: str, fax: Transmission | None = None) -> CallbackResult:
    title = [fax.record.get("title"), fax.record.get("original_title")] if fax else None
    job = parse_reference(title) if title else None
    kept = UnclassifiedCallback(
        reason=f"a Dropbox Sign {event_type or 'unnamed'} callback that {what}",
        event=event_type or None,
        provider_fax_id=fax.fax_id if fax else None,
        job_id=job.job_id if job else None,
    )
    log.warning("dropboxsign: kept, not understood: %s", kept.reason)
    return CallbackResult(unclassified=[kept], reply_body=REPLY_BODY)
