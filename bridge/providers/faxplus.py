"""Fax.Plus REST API v3: AlohiHQ/faxplus-python docs/ and models/, AlohiHQ/faxplus-js models/,
and the apidoc.fax.plus pages (seed 001 only where they are silent).

A fax is sent in two calls: upload the PDF (`POST /files` → `{"path"}`), then post to the
outbox naming that path (`POST /outbox`, `return_ids: true` → `{"ids": {to: id}}`). The id we
get back names the fax only while it waits in the outbox; once sent, it is a fax record whose
id may differ, and a `fax_sent` webhook names the faxing session (`data.id`, which differs
again when Fax.Plus redialled: apidoc.fax.plus/concepts/webhook) and the fax (`hook.id`).
So every fax carries our reference in its comment, and every id is tried: the webhook's ids as
fax records (whose `comment` is the plain text we sent, not the outbox's `{text, tags}`), then
the sent faxes around the webhook's time. Polling and `find` read the outbox and the sent
faxes, the latter paged by time window and bounded (`bridge.providers.faxplus_lookup`).

Fax.Plus redials by itself (`options.retry`); it deletes nothing on its own, so the bridge can
remove a fax and its file (`DELETE /faxes/{id}`) and cancel an unsent one (`DELETE
/outbox/{id}`).
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import replace
from typing import Any

from bridge.errors import CallbackError, PermanentProviderError, TransientProviderError
from bridge.models import (
    CallbackRequest,
    CallbackResult,
    FailureReason,
    InboundFax,
    JobStatus,
    OutboundFax,
    RedialPolicy,
    SendResult,
    StatusUpdate,
    UnclassifiedCallback,
)
from bridge.providers.base import transmitted_pdf
from bridge.providers.faxplus_lookup import FaxPlusLookup
from bridge.providers.faxplus_wire import (
    answer,
    comment_reference,
    from_number,
    number,
    parse_time,
    to_number,
)
from bridge.providers.reference import reference_text
from bridge.providers.values import as_int

log = logging.getLogger(__name__)

BRIDGE_TAG = "faxbridge"
# The retry limits the sources give: help.alohi.com "Auto Retry on Failure" (at most 3
# retries, minutes apart, at most 720) and the fax record's `max_retry` (0 < x < 3) and
# `retry_delay` (0 < x < 30) (apidoc "Get a fax record"). Kept inside all of them.
MAX_NATIVE_RETRIES = 2
MAX_RETRY_DELAY_MIN = 29
_LINE_FAILURES = frozenset({FailureReason.BUSY, FailureReason.NO_ANSWER})


def native_retry(policy: RedialPolicy) -> dict[str, int] | None:
    """`options.retry` for a redial policy: the retries beyond the first dial, and the delay.

    `count`: docs/RetryOptions.md says "number of tries", help.alohi.com "how many additional
    times": read as retries (the fax record calls it `max_retry`), so one fewer than our
    `tries`. `delay`: docs/RetryOptions.md says seconds, the help centre minutes; minutes are
    sent, so a reading as seconds redials sooner rather than hours late.
    """
    rule = max((policy.busy, policy.no_answer), key=lambda r: r.tries)
    count = min(MAX_NATIVE_RETRIES, rule.tries - 1)
    if count < 1:
        return None
    delay = max(1, min(MAX_RETRY_DELAY_MIN, round(rule.interval_s / 60)))
    return {"count": count, "delay": delay}


class FaxPlusProvider(FaxPlusLookup):
    type = "faxplus"
    default_base_url = "https://restapi.fax.plus/v3"
    redials_natively = True
    # Fax.Plus keeps its records, so a fax neither the outbox nor the sent faxes show is not
    # coming back once its native redials are over (2 retries, at most 29 minutes apart).
    forgotten_grace_s = 2 * 3600.0
    # No source says Fax.Plus delivers a webhook again after an error answer: keep it instead.
    retries_refused_callbacks = False

    # -- sending -------------------------------------------------------------------------
    async def send(self, fax: OutboundFax) -> SendResult:
        # Native cover page: Fax.Plus renders it from `cover_page`, so the document goes
        # without ours. Only a cover PDF without a note (not expected) is merged in.
        if fax.cover is None and fax.cover_pdf is not None:
            pdf = await asyncio.to_thread(transmitted_pdf, fax)
        else:
            pdf = await asyncio.to_thread(fax.document.read_bytes)
        upload = await self.call(
            "POST",
            self.account_path("files"),
            params={"format": "pdf"},
            files={"fax_file": (f"{fax.job_id}.pdf", pdf, "application/pdf")},
        )
        # docs/FilePath.md names it `path`; docs/FilesApi.md upload_file's text says
        # "you would receive a `file_path`": either is read.
        body = answer(upload)
        path = body.get("path") or body.get("file_path")
        if not isinstance(path, str) or not path:
            raise PermanentProviderError(f"{self.name}: the upload answer names no file path")

        payload: dict[str, Any] = {
            # docs/OutboxApi.md: members without a number of their own send "no_number".
            "from": fax.caller_id or "no_number",
            "to": [fax.to],
            "files": [path],
            # The text survives as the sent fax's plain-string comment; the tags only on the
            # outbox record.
            "comment": {
                "text": reference_text(fax.reference),
                "tags": [BRIDGE_TAG, f"job:{fax.reference}"],
            },
            "return_ids": True,
        }
        if retry := native_retry(fax.redial):
            payload["options"] = {"retry": retry}
        if fax.cover is not None:
            payload["cover_page"] = {
                "name_to": fax.cover.to_name,
                "name_from": fax.cover.from_name,
                "subject": fax.cover.subject,
                "message": fax.cover.notes,
            }
        response = await self.call("POST", self.account_path("outbox"), json=payload)
        ids = answer(response).get("ids")
        outbox_id = None
        if isinstance(ids, dict) and ids:
            outbox_id = ids.get(fax.to) or next(iter(ids.values()))
        if not outbox_id:
            # Fax.Plus took the fax (2xx) but named no id: it may well send it. Never refuse
            # it (a retry would send it twice): the worker asks `find` before any re-send.
            raise TransientProviderError(
                f"{self.name}: the outbox took the fax but named no id; looking it up by "
                "its reference",
                code="no_id",
                maybe_sent=True,
            )
        log.info("%s: job %s queued as outbox fax %s", self.name, fax.job_id, outbox_id)
        return SendResult(str(outbox_id), JobStatus.SUBMITTED, raw_status="submitted")

    # -- status --------------------------------------------------------------------------
    async def status(
        self, provider_fax_id: str, *, job_id: str | None = None
    ) -> StatusUpdate | None:
        queued = await self.record("outbox", provider_fax_id)
        if queued is not None:
            return replace(self.update(queued, pending=True), provider_fax_id=provider_fax_id)
        sent = await self.record("faxes", provider_fax_id)
        if sent is not None:
            return replace(self.update(sent), provider_fax_id=provider_fax_id)
        if job_id is None:
            return None
        # Sent under a new id: find it by our reference among the sent faxes; the update
        # names the new id and our job, so the store adopts it.
        walk = await self.walk_sent(lambda r: _names_job(r, job_id), first=True, job_id=job_id)
        if not walk.found:
            return None
        update = self.update(walk.found[0])
        log.info(
            "%s: job %s (outbox fax %s) was sent as fax %s",
            self.name,
            job_id,
            provider_fax_id,
            update.provider_fax_id,
        )
        return update

    # -- callbacks -----------------------------------------------------------------------
    async def parse_callback(self, request: CallbackRequest) -> CallbackResult:
        self.verify_callback_token(request)
        hook, data = _hook_and_data(request)
        event = str(hook.get("event") or "")
        # `hook.id` is the fax (its record, its file), `data.id` the faxing session, which
        # "might differ from the one returned by listFaxes" (apidoc.fax.plus/concepts/webhook).
        fax_id = str(hook.get("id") or data.get("id") or "")
        if event == "fax_received" and fax_id:
            if str(data.get("status") or "") == "in_progress":
                # apidoc.fax.plus/concepts/fax: "currently being received" (fax streaming).
                # Recorded now, the fax would be mailed unfinished and its final webhook taken
                # for a repeat: kept instead, the final one is recorded.
                return _kept(
                    "a Fax.Plus fax_received webhook for a fax still being received",
                    event,
                    fax_id,
                )
            return CallbackResult(inbound=[self._inbound(fax_id, data)])
        if event != "fax_sent" or not fax_id or not data.get("status"):
            what = "names no fax" if not fax_id else "has no status"
            if event not in ("fax_sent", "fax_received"):
                what = "is of an event the bridge does not use"
            return _kept(f"a Fax.Plus {event or 'unnamed'} webhook that {what}", event, fax_id)
        return CallbackResult(updates=[await self._sent_update(hook, data)])

    async def _sent_update(self, hook: dict[str, Any], data: dict[str, Any]) -> StatusUpdate:
        """The `fax_sent` news, linked to our job from every id the webhook names."""
        ids = list(dict.fromkeys(str(i) for i in (data.get("id"), hook.get("id")) if i))
        update = self.update(data)
        at = parse_time(hook.get("event_time")) or update.at
        update = replace(update, provider_fax_id=str(hook.get("id") or ids[0]), at=at)
        kind, record = await self._sent_record(ids, data)
        if record is not None:
            linked = self.update(record)
            update = replace(
                update,
                provider_fax_id=linked.provider_fax_id or update.provider_fax_id,
                job_id=linked.job_id,
                round=linked.round,
            )
        if kind == "outbox" and update.reason in _LINE_FAILURES:
            # Still in the outbox after a busy or unanswered dial: Fax.Plus redials it
            # (`options.retry`), so this is not the end.
            text = f"{update.provider_text or update.provider_code}; Fax.Plus redials"
            update = replace(update, status=JobStatus.SUBMITTED, reason=None, provider_text=text)
        if update.job_id is None:
            log.warning(
                "%s: fax %s to %s carries no reference of ours; only its ids can link it",
                self.name,
                "/".join(ids),
                to_number(data),
            )
        return update

    async def _sent_record(
        self, ids: list[str], data: dict[str, Any]
    ) -> tuple[str, dict[str, Any] | None]:
        """Where the fax a `fax_sent` webhook is about is (`faxes` or `outbox`), and its record
        with our reference in the comment.

        By each id (`data.id` is the session, `hook.id` the fax), as a fax record and as an
        outbox record; else, when no id names a record at all, among the sent faxes around
        the webhook's start time with its destination. A record found without our reference
        is a fax of someone else's (`fax_sent` covers the whole account, web app included):
        nothing is searched for it.
        """
        if comment_reference(data) is not None:
            return "webhook", data
        try:
            known = False  # some id names a record, if not one with our reference
            for fax_id in ids:
                for kind in ("faxes", "outbox"):
                    record = await self.record(kind, fax_id)
                    if record is not None and comment_reference(record) is not None:
                        return kind, record
                    if record is not None:
                        known = True
                        break
            start, to = data.get("start_time"), to_number(data)
            moment = parse_time(start)
            if known or moment is None or not to:
                return "", None

            def same_call(row: dict[str, Any]) -> bool:
                same = row.get("start_time") == start and to_number(row) == to
                return same and comment_reference(row) is not None

            walk = await self.walk_sent(same_call, first=True, around=moment)
        except (PermanentProviderError, TransientProviderError) as exc:
            log.warning("%s: cannot read fax %s to link its webhook: %s", self.name, ids, exc)
            return "", None
        return ("faxes", walk.found[0]) if len(walk.found) == 1 else ("", None)

    def _inbound(self, fax_id: str, data: dict[str, Any]) -> InboundFax:
        return InboundFax(
            provider_fax_id=fax_id,
            from_number=from_number(data),
            to_number=to_number(data),
            pages=as_int(data.get("pages")),
            received=parse_time(data.get("start_time")),
            raw=dict(data),
        )

    async def fetch_document(self, fax: InboundFax) -> bytes:
        """`GET /files/{id}?format=pdf` (docs/FilesApi.md get_file), by every id that names the
        file: the fax (`hook.id`), the session (`data.id`: both "can be used with the API getFile
        handle", docs/WebhookCallbackData.md), then `data.file`, the "Fax file ID for the
        getFile handle" (docs/Fax.md), without and with its extension."""
        if fax.document is not None:
            return fax.document
        file = str(fax.raw.get("file") or "")
        names = [fax.provider_fax_id, str(fax.raw.get("id") or ""), file.rsplit(".", 1)[0], file]
        tried = [n for n in dict.fromkeys(names) if n]
        for name in tried:
            response = await self.call_or_forgotten(
                "GET",
                self.account_path("files", name),
                params={"format": "pdf"},
                headers={"Accept": "application/pdf"},
            )
            if response is not None:
                return response.content
        raise PermanentProviderError(
            f"{self.name}: Fax.Plus has no file for inbound fax {fax.provider_fax_id} "
            f"(tried {', '.join(tried)})",
            code="404",
        )

    # -- cancel, delete, lines -----------------------------------------------------------
    async def cancel(self, provider_fax_id: str) -> None:
        """`DELETE /outbox/{id}` (docs/OutboxApi.md delete_outbox_fax): only while unsent."""
        try:
            await self.call("DELETE", self.account_path("outbox", provider_fax_id))
        except PermanentProviderError as exc:
            if exc.code in ("404", "410"):
                raise PermanentProviderError(
                    f"{self.name}: fax {provider_fax_id} is no longer in the Fax.Plus outbox "
                    "(already sent, or unknown): it cannot be cancelled",
                    code=exc.code,
                ) from exc
            raise

    async def delete(self, provider_fax_id: str, *, inbound: bool = False) -> None:
        """`DELETE /faxes/{id}` (docs/FaxesApi.md delete_fax) removes the record and its file;
        a fax still in the outbox is removed there. Gone already is done."""
        if not inbound and await self.record("outbox", provider_fax_id) is not None:
            await self.call_or_forgotten("DELETE", self.account_path("outbox", provider_fax_id))
            return
        await self.call_or_forgotten("DELETE", self.account_path("faxes", provider_fax_id))

    async def fax_lines(self) -> list[str]:
        """The account's numbers (docs/NumbersApi.md list_numbers) that can send: cancelled
        ones and those still `waiting_verification` (docs/NumberStatus.md) left out."""
        body = answer(await self.call("GET", self.account_path("numbers")))
        rows = body.get("numbers")
        rows = [r for r in rows if isinstance(r, dict)] if isinstance(rows, list) else []
        usable = [
            r for r in rows if not r.get("is_canceled") and r.get("status") in (None, "active")
        ]
        lines = {number(r.get("number")) for r in usable}
        return sorted(line for line in lines if line)

    # -- admin ---------------------------------------------------------------------------
    async def check(self) -> str:
        account = answer(await self.call("GET", self.account_path()))
        who = account.get("email") or account.get("uid") or self.config.user_id
        kind = account.get("account_type") or "account"
        return f"Fax.Plus credentials work: {kind} {who} (status {account.get('status', '?')})"

    async def setup(self) -> list[str]:
        target = self.callback_url()
        lines = []
        for event in ("fax_sent", "fax_received"):
            listing = answer(await self.call("GET", "/hooks", params={"event": event}))
            hooks = listing.get("data")
            if any(h.get("target") == target for h in hooks or [] if isinstance(h, dict)):
                lines.append(f"Fax.Plus webhook {event} → {self._shown(target)} already exists")
                continue
            created = await self.call("POST", "/hooks", json={"target": target, "event": event})
            hook_id = answer(created).get("id", "?")
            lines.append(
                f"Registered Fax.Plus webhook {event} → {self._shown(target)} (id {hook_id})"
            )
        return lines

    def _shown(self, url: str) -> str:
        """The callback URL with its token masked, for terminal output and logs."""
        token = self.callback_token
        return url.replace(token, "***") if token else url


def _names_job(record: dict[str, Any], job_id: str) -> bool:
    found = comment_reference(record)
    return found is not None and found.job_id == job_id


def _hook_and_data(request: CallbackRequest) -> tuple[dict[str, Any], dict[str, Any]]:
    """apidoc.fax.plus/concepts/webhook: a JSON object with `hook` and `data`."""
    try:
        body = json.loads(request.body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CallbackError(f"Fax.Plus webhook body is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise CallbackError("Fax.Plus webhook body is not a JSON object")
    hook, data = body.get("hook"), body.get("data")
    if not isinstance(hook, dict) or not isinstance(data, dict):
        raise CallbackError("Fax.Plus webhook needs a `hook` and a `data` object")
    return hook, data


def _kept(reason: str, event: str, fax_id: str) -> CallbackResult:
    kept = UnclassifiedCallback(reason=reason, event=event or None, provider_fax_id=fax_id or None)
    log.warning("faxplus: %s", reason)
    return CallbackResult(unclassified=[kept])
