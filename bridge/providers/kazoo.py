"""Kazoo (2600Hz) v2 Faxes API: `X-Auth-Token`, multipart/mixed send, `notifications` webhooks.

Kazoo has no cover-page fields, so the receiver gets our cover page merged in front of the
document; the page header and the station id (CSID) are Kazoo's `fax_identity_name` and
`fax_identity_number`. Kazoo's webhooks fire only when a job ends (`outbound_fax` /
`outbound_fax_error`), so `submitted`/`sending` are seen only by polling
`faxes/outgoing/{id}`; a finished job moves to the month-prefixed outbox (`YYYYMM-<id>`), which
`status` follows. Kazoo redials itself (`retries`: dials in all, 0..4) whatever the failure.
What Kazoo's documents say is read in `bridge.providers.kazoo_records`; finding a job's faxes
by our custom field is in `bridge.providers.kazoo_lookup`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import httpx

from bridge.config import KazooConfig
from bridge.errors import (
    PermanentProviderError,
    ProviderError,
    TransientProviderError,
)
from bridge.models import (
    CallbackRequest,
    CallbackResult,
    InboundFax,
    JobStatus,
    OutboundFax,
    RedialPolicy,
    SendResult,
    StatusUpdate,
    UnclassifiedCallback,
)
from bridge.providers.base import ProviderContext, transmitted_pdf
from bridge.providers.kazoo_lookup import KazooLookup, body_data, json_object
from bridge.providers.kazoo_records import (
    JOB_ID_FIELD,
    REFERENCE_FIELD,
    as_dict,
    callback_update,
    doc_link,
    doc_update,
    error_text,
    from_gregorian,
    is_outbox_id,
    notification_payload,
    outbox_ids,
    strip_month,
)
from bridge.providers.reference import reference_text
from bridge.providers.values import as_int

log = logging.getLogger(__name__)

MAX_RETRIES = 4  # schemas/faxes.json: `retries` 0..4, the dials in all (fax_worker)
HOOK_EVENTS = ("outbound_fax", "outbound_fax_error", "inbound_fax", "inbound_fax_error")
OUTBOUND_EVENTS = frozenset({"outbound_fax", "outbound_fax_error"})
# Crossbar's 429 names no wait; its token bucket (kz_buckets: 100 tokens, 10 a second) is
# full again after 10 s.
RATE_LIMIT_WAIT_S = 10.0
# A callback is answered after at most this long spent asking Kazoo for the job's record.
CALLBACK_LOOKUP_TIMEOUT_S = 5.0
# webhooks.json: `retries` 0..4, the tries in all; webhooks_util retries only when the bridge
# cannot be reached, 2 s apart.
_HOOK = {"http_verb": "post", "hook": "notifications", "format": "json", "retries": 4}


def native_retries(policy: RedialPolicy) -> int:
    """Kazoo's `retries` for a faxbox's redial policy: the most dials any cause may have."""
    return max(1, min(MAX_RETRIES, max(policy.busy.tries, policy.no_answer.tries)))


class KazooProvider(KazooLookup):
    type = "kazoo"
    redials_natively = True
    requires_caller_id = True  # schemas/faxes.json requires from_number
    # webhooks_util.erl: a non-200 reply is never retried (and six in a minute disable the hook)
    retries_refused_callbacks = False
    # Kazoo keeps a finished job in the outbox until someone deletes it, and its webhooks are
    # retried for seconds only (webhooks_util:retry_hook), so nothing comes later: a fax gone
    # from both outgoing and outbox for 10 minutes (10 polls) was deleted.
    forgotten_grace_s = 600.0
    rate_limit_wait_s = RATE_LIMIT_WAIT_S

    def __init__(
        self, name: str, config: KazooConfig, client: httpx.AsyncClient, context: ProviderContext
    ) -> None:
        super().__init__(name, config, client, context)
        self._token: str | None = self.config.auth_token
        self._auth_lock = asyncio.Lock()

    # -- auth ----------------------------------------------------------------------------
    async def _authenticate(self, stale: str | None) -> str:
        """Trade the api_key for a token once; callers racing on a 401 share one exchange."""
        async with self._auth_lock:
            if self._token is not None and self._token != stale:
                return self._token
            if not self.config.api_key:
                raise PermanentProviderError(
                    f"{self.name}: no auth_token, and no api_key to obtain one", code="auth"
                )
            try:
                response = await self.request(
                    "PUT", "api_auth", json={"data": {"api_key": self.config.api_key}}
                )
            except PermanentProviderError as exc:
                # cb_api_auth answers an unknown key 404 "bad identifier": that must never
                # read as "Kazoo no longer knows this fax".
                raise PermanentProviderError(
                    f"{self.name}: Kazoo refused the api_key: {exc.message}", code="auth"
                ) from exc
            body = json_object(response)
            token = body.get("auth_token") or body_data(body).get("auth_token")
            if not isinstance(token, str) or not token:
                raise PermanentProviderError(f"{self.name}: api_auth returned no auth_token")
            log.info("%s: obtained an auth token with the api_key", self.name)
            self._token = token
            return token

    async def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """An authenticated request; with an api_key, a 401 re-authenticates once."""
        token = self._token or await self._authenticate(None)
        headers = dict(kwargs.pop("headers", {}))
        try:
            return await self.request(
                method, path, headers={**headers, "X-Auth-Token": token}, **kwargs
            )
        except PermanentProviderError as exc:
            if exc.code != "401" or not self.config.api_key:
                raise
        log.info("%s: token refused, authenticating again", self.name)
        token = await self._authenticate(token)
        return await self.request(
            method, path, headers={**headers, "X-Auth-Token": token}, **kwargs
        )

    def error_text(self, response: httpx.Response) -> str:
        """Kazoo's error envelope says what was wrong in `message` and, per field, in `data`."""
        return error_text(response)

    # -- sending -------------------------------------------------------------------------
    async def send(self, fax: OutboundFax) -> SendResult:
        if not fax.caller_id:
            raise PermanentProviderError(
                f"{self.name}: Kazoo refuses a fax without a caller ID (from_number); set "
                "caller_id on the faxbox",
                code="caller_id",
            )
        pdf = await asyncio.to_thread(transmitted_pdf, fax)
        body, content_type = _multipart_mixed(_fax_data(fax), pdf, f"{fax.job_id}.pdf")
        response = await self.call(
            "PUT", f"{self._account}/faxes", content=body, headers={"Content-Type": content_type}
        )
        fax_id, raw = _accepted(response)
        if fax_id is None:
            # Kazoo has the fax (2xx) but we cannot name it: never call it refused; the next
            # try asks Kazoo by our reference before anything is sent again.
            raise TransientProviderError(
                f"{self.name}: Kazoo accepted the fax (HTTP {response.status_code}) but its "
                "reply names no id",
                code=str(response.status_code),
                maybe_sent=True,
            )
        log.info("%s: job %s queued as Kazoo fax %s", self.name, fax.reference, fax_id)
        return SendResult(fax_id, JobStatus.SUBMITTED, raw_status=raw)

    # -- status --------------------------------------------------------------------------
    async def status(
        self, provider_fax_id: str, *, job_id: str | None = None
    ) -> StatusUpdate | None:
        bare = strip_month(provider_fax_id)
        for path in self._status_paths(provider_fax_id):
            doc = await self.get_doc(path)
            if doc is not None:
                return doc_update(bare, doc)
        return None

    def _status_paths(self, fax_id: str) -> list[str]:
        faxes = f"{self._account}/faxes"
        if is_outbox_id(fax_id):
            return [f"{faxes}/outbox/{fax_id}"]
        outbox = [f"{faxes}/outbox/{i}" for i in outbox_ids(fax_id, datetime.now(UTC))]
        return [f"{faxes}/outgoing/{fax_id}", *outbox]

    # -- callbacks -----------------------------------------------------------------------
    async def parse_callback(self, request: CallbackRequest) -> CallbackResult:
        self.verify_callback_token(request)
        payload = notification_payload(request)
        event = payload.get("event_name")
        fax_id = payload.get("fax_jobid") or payload.get("fax_id")
        fax_id = fax_id if isinstance(fax_id, str) and fax_id else None
        if event in OUTBOUND_EVENTS:
            update = callback_update(str(event), payload)
            if update is not None:
                return CallbackResult(updates=[await self._with_record(update, fax_id)])
            return _unclassified(f"a Kazoo {event} notification that names no fax", event)
        if event == "inbound_fax":
            if isinstance(payload.get("fax_id"), str) and payload["fax_id"]:
                return CallbackResult(inbound=[self._inbound(payload)])
            return _unclassified("a Kazoo inbound_fax notification that names no fax", event)
        if event == "inbound_fax_error":
            why = payload.get("fax_error") or "no reason given"
            reason = f"Kazoo could not receive an inbound fax ({why}); nothing to deliver"
        elif isinstance(event, str) and event:
            reason = f"a Kazoo {event!r} notification, which is not about a fax the bridge sent"
        else:
            reason = "a Kazoo notification without event_name"
        return _unclassified(reason, event if isinstance(event, str) else None, fax_id)

    async def _with_record(self, update: StatusUpdate, fax_id: str | None) -> StatusUpdate:
        """Notifications carry neither our reference nor the dial count: Kazoo's outbox
        record has both. Asked briefly; the callback counts without it."""
        if fax_id is None or not is_outbox_id(fax_id):
            return update
        try:
            doc = await self.get_doc(
                f"{self._account}/faxes/outbox/{fax_id}",
                timeout=min(self.config.timeout_s, CALLBACK_LOOKUP_TIMEOUT_S),
            )
        except ProviderError as exc:
            log.info("%s: cannot read Kazoo's record of %s: %s", self.name, fax_id, exc)
            return update
        if doc is None:
            return update
        recorded = doc_update(update.provider_fax_id, doc)
        update = replace(update, tries=recorded.tries)
        if update.status is JobStatus.FAILED and recorded.status is JobStatus.FAILED:
            # The record has all the notice has and more: a failed originate leaves its SIP
            # code only in tx_result (the notice's fax_hangup_code is then 0).
            update = replace(update, reason=recorded.reason, provider_code=recorded.provider_code)
        return doc_link(update, doc)

    def _inbound(self, payload: dict[str, Any]) -> InboundFax:
        info = as_dict(payload.get("fax_info"))
        station = info.get("fax_remote_station_id")
        return InboundFax(
            provider_fax_id=str(payload["fax_id"]),
            from_number=self._number(payload.get("caller_id_number")),
            to_number=self._number(payload.get("callee_id_number") or payload.get("to_user")),
            pages=as_int(info.get("fax_total_pages") or info.get("fax_transferred_pages")),
            received=from_gregorian(payload.get("fax_timestamp")),
            remote_station_id=station if isinstance(station, str) and station else None,
            raw=payload,
        )

    def _number(self, value: Any) -> str:
        """Kazoo may drop the `+`; restore it when that names one of our numbers."""
        number = str(value or "")
        if number.isdigit() and f"+{number}" in self.context.inbound_numbers:
            return f"+{number}"
        return number

    async def fetch_document(self, fax: InboundFax) -> bytes:
        if fax.document is not None:
            return fax.document
        path = f"{self._account}/faxes/inbox/{fax.provider_fax_id}/attachment"
        response = await self.call("GET", path, headers={"Accept": "application/pdf"})
        return response.content

    # -- privacy -------------------------------------------------------------------------
    async def delete(self, provider_fax_id: str, *, inbound: bool = False) -> None:
        """The document first (`DELETE …/attachment` removes it for good), then the record,
        hard-deleted (`should_soft_delete=false`: a soft delete keeps the data in CouchDB)."""
        faxes = f"{self._account}/faxes"
        if inbound or is_outbox_id(provider_fax_id):
            folder = "inbox" if inbound else "outbox"
            await self._delete_record(f"{faxes}/{folder}/{provider_fax_id}")
            return
        for outbox_id in outbox_ids(provider_fax_id, datetime.now(UTC)):
            if await self._delete_record(f"{faxes}/outbox/{outbox_id}"):
                return
        if await self.get_doc(f"{faxes}/outgoing/{provider_fax_id}") is not None:
            raise TransientProviderError(
                f"{self.name}: fax {provider_fax_id} is still in Kazoo's outgoing queue; it "
                "can be deleted once it is in the outbox",
                code="outgoing",
            )

    async def _delete_record(self, path: str) -> bool:
        """Delete a record and its document; False when Kazoo has no such record."""
        if await self.call_or_forgotten("DELETE", f"{path}/attachment") is None:
            return False
        await self.call_or_forgotten("DELETE", path, params={"should_soft_delete": "false"})
        return True

    # -- operations ----------------------------------------------------------------------
    async def check(self) -> str:
        account = body_data(json_object(await self.call("GET", self._account)))
        name = account.get("name") or account.get("realm") or "?"
        return f"Kazoo account {name} ({self.config.account_id}) accepts our credentials"

    async def setup(self) -> list[str]:
        if not self.callback_token:
            return [
                f"{self.name}: set callback_token first: Kazoo webhooks carry no signature, so "
                "the bridge authenticates them by the token in their URL. Nothing registered."
            ]
        uri = self.callback_url()
        listed = json_object(await self.call("GET", f"{self._account}/webhooks")).get("data")
        existing = {h.get("name"): h for h in listed or [] if isinstance(h, dict)}
        lines: list[str] = []
        for event in HOOK_EVENTS:
            name = f"faxbridge {self.name} {event}"
            hook = {**_HOOK, "name": name, "uri": uri, "custom_data": {"type": event}}
            found = existing.get(name)
            if found is None:
                await self.call("PUT", f"{self._account}/webhooks", json={"data": hook})
                lines.append(f"registered Kazoo webhook {name!r} → {self.callback_url()}")
            elif found.get("uri") != uri or found.get("enabled") is False:
                await self.call(
                    "POST",
                    f"{self._account}/webhooks/{found.get('id')}",
                    json={"data": {**hook, "enabled": True}},
                )
                lines.append(f"updated Kazoo webhook {name!r} → {self.callback_url()}")
            else:
                lines.append(f"Kazoo webhook {name!r} already points at this bridge")
        return lines


# -- wire helpers ----------------------------------------------------------------------
def _fax_data(fax: OutboundFax) -> dict[str, Any]:
    """The job document we ask for (schemas/faxes.json, plus the keys fax_worker reads)."""
    data: dict[str, Any] = {
        "to_number": fax.to,
        "from_number": fax.caller_id,
        "fax_identity_number": fax.caller_id,  # the station id (CSID) the receiver sees
        "retries": native_retries(fax.redial),
        JOB_ID_FIELD: fax.job_id,
        REFERENCE_FIELD: reference_text(fax.reference),
    }
    header = fax.header or (fax.cover.from_name if fax.cover is not None else None)
    if header:
        data["fax_identity_name"] = header  # the page header line
    if fax.cover is not None:  # no cover fields on Kazoo, but the job shows the names
        data.update(to_name=fax.cover.to_name, from_name=fax.cover.from_name)
    return data


def _accepted(response: httpx.Response) -> tuple[str | None, str]:
    """The new job's id and status from Kazoo's reply to `PUT faxes`, in any documented shape:
    the saved CouchDB document (`_id`, cb_faxes put/1) or its public form (`id`, faxes.md)."""
    try:
        data = body_data(json_object(response))
    except PermanentProviderError:
        data = {}
    fax_id = data.get("_id") or data.get("id") or response.headers.get("location")
    raw = data.get("pvt_job_status") or data.get("status") or "pending"
    if not isinstance(fax_id, str) or not fax_id.strip():
        return None, str(raw)
    return fax_id.strip().rsplit("/", 1)[-1], str(raw)


def _multipart_mixed(data: dict[str, Any], pdf: bytes, filename: str) -> tuple[bytes, str]:
    """Kazoo reads the JSON part by its content type and keeps the other part as the file."""
    boundary = f"faxbridge-{secrets.token_hex(16)}"
    body = b"".join(
        [
            f"--{boundary}\r\nContent-Type: application/json\r\n\r\n".encode(),
            json.dumps({"data": data}).encode(),
            f"\r\n--{boundary}\r\nContent-Type: application/pdf\r\n".encode(),
            f'Content-Disposition: attachment; filename="{filename}"\r\n\r\n'.encode(),
            pdf,
            f"\r\n--{boundary}--\r\n".encode(),
        ]
    )
    return body, f"multipart/mixed; boundary={boundary}"


def _unclassified(reason: str, event: str | None, fax_id: str | None = None) -> CallbackResult:
    log.warning("Kazoo callback kept, not understood: %s", reason)
    kept = UnclassifiedCallback(reason=reason, event=event, provider_fax_id=fax_id)
    return CallbackResult(unclassified=[kept])
