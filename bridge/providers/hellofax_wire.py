"""HelloFax / Dropbox Fax v1 on the wire: transaction records, status letters, fax lines.

What the help.dropbox.com v1 pages show, read leniently; the adapter (`bridge.providers.hellofax`)
decides what to do with it. The pages disagree on some letters: the setup page
("setup-dropbox-fax-api") lists busy `B` and on hold `H`, the send page
("send-fax-using-dropbox-fax-api", newer) lists `R` and `O`; both spellings are read.
"""

from __future__ import annotations

import json
import re
from typing import Any

import phonenumbers

from bridge.errors import CallbackError
from bridge.models import CallbackRequest, FailureReason, JobStatus, StatusUpdate
from bridge.numbers import to_e164
from bridge.providers.values import as_int, from_epoch

# StatusCode (both pages): T transmitting, P pending/converting, S successfully sent.
PROGRESS: dict[str, tuple[JobStatus, str]] = {
    "P": (JobStatus.SUBMITTED, "Pending/converting"),
    "T": (JobStatus.SENDING, "Transmitting"),
    "S": (JobStatus.DELIVERED, "Successfully sent"),
}
# StatusCode H (setup page) / O (send page): unconfirmed account or out of fax pages.
ON_HOLD = frozenset({"H", "O"})
ON_HOLD_TEXT = "On hold: the account is unconfirmed or out of fax pages"
# ErrorCode, "reference only when StatusCode is set to E".
ERRORS: dict[str, tuple[FailureReason, str]] = {
    "B": (FailureReason.BUSY, "Received a busy signal"),
    "R": (FailureReason.BUSY, "Received a busy signal"),
    "N": (FailureReason.NO_ANSWER, "No answer"),
    "A": (FailureReason.BAD_NUMBER, "Unallocated number"),
    "D": (FailureReason.DISCONNECTED, "The line is disconnected or unreachable"),
    "L": (FailureReason.BLOCKED_DESTINATION, "This number is blacklisted / on the denied list"),
    "U": (FailureReason.UNKNOWN, "Unknown error during the fax transmission"),
}
# E without an ErrorCode: "Failed to convert or to send fully", and no line cause named, so
# the document is the likelier culprit (PROVIDERS.md, inferred).
NO_ERROR_CODE = (FailureReason.FILE_ERROR, "Error: failed to convert or to send fully")
# The callback and the status answer wrap one record; the key the official callback example
# shows is `Transaction` (help.dropbox.com "callback-event-example-dropbox-fax-api").
_RECORD_KEYS = ("Transaction", "Transmission")


class UnknownStatus(ValueError):
    """A transaction whose StatusCode no HelloFax page lists."""


def transaction(body: Any) -> dict[str, Any]:
    """The one transaction record in a callback or an answer, whatever wraps it."""
    if isinstance(body, dict):
        for key in _RECORD_KEYS:
            if isinstance(body.get(key), dict):
                return transaction(body[key])
        for key in ("Transactions", "Transmissions"):
            value = body.get(key)
            if isinstance(value, list) and len(value) == 1:
                return transaction(value[0])
        if body.get("Guid"):
            return body
    if isinstance(body, list) and len(body) == 1:
        return transaction(body[0])
    raise ValueError("no transaction with a Guid in it")


# The callback example's error record escapes its slashes twice (`\\/Transmissions\\/…`).
_TRANSMISSION_URI = re.compile(r"\\?/Transmissions\\?/([0-9A-Za-z]+)")


def sent_guid(body: Any) -> str | None:
    """The new transmission's GUID in a send answer of a shape `transaction` cannot read.

    SETUP only says the GUID is "in the JSON response" of a send. HelloFax has the fax once
    it answered 200, so rather than ask again (and, where nothing can tell, send again) the
    GUID is looked for anywhere: the record `transaction` finds, whatever its StatusCode; a
    record with `Guid` and `StatusCode` at any depth; or one `…/Transmissions/{guid}` URI
    (the `Uri` every transaction carries)."""
    try:
        return str(transaction(body)["Guid"])  # a record with no (known) StatusCode
    except ValueError:
        pass
    stack = [body]
    uris: list[str] = []
    while stack:
        value = stack.pop(0)
        if isinstance(value, dict):
            if value.get("Guid") and value.get("StatusCode"):
                return str(value["Guid"])
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
        elif isinstance(value, str) and (found := _TRANSMISSION_URI.search(value)):
            uris.append(found.group(1))
    return uris[0] if len(set(uris)) == 1 else None


def transactions(body: Any) -> list[dict[str, Any]]:
    """Every record of a `GET …/Transmissions` page. Its list key is not documented, so the
    records are the first list that holds any (a page may carry other lists, of links …)."""
    if isinstance(body, list):
        return [r for r in body if isinstance(r, dict) and r.get("Guid")]
    if isinstance(body, dict):
        for value in body.values():
            found = transactions(value) if isinstance(value, list | dict) else []
            if found:
                return found
    return []


def next_page(body: Any) -> bool:
    """Whether a listing has more pages (`NextPageUri`, as the setup page names it)."""
    return isinstance(body, dict) and bool(body.get("NextPageUri"))


def status_update(record: dict[str, Any]) -> StatusUpdate:
    """A transaction in the common status model; `UnknownStatus` for a letter no page lists."""
    guid = str(record["Guid"])
    code = str(record.get("StatusCode") or "").upper()
    error = str(record.get("ErrorCode") or "").upper()
    reason: FailureReason | None = None
    if code in PROGRESS:
        status, text = PROGRESS[code]
        raw = code
    elif code in ON_HOLD:
        status, reason, text, raw = JobStatus.FAILED, FailureReason.ON_HOLD, ON_HOLD_TEXT, code
    elif code == "E":
        if error:
            reason, text = ERRORS.get(error, (FailureReason.UNKNOWN, f"Error code {error}"))
        else:
            reason, text = NO_ERROR_CODE
        status, raw = JobStatus.FAILED, f"E/{error}" if error else "E"
    else:
        raise UnknownStatus(f"StatusCode {code or 'missing'!r} is in no HelloFax page")
    pages = as_int(record.get("NumPagesBilled"))
    return StatusUpdate(
        provider_fax_id=guid,
        status=status,
        reason=reason,
        provider_code=raw,
        provider_text=text,
        pages=pages if pages and pages > 0 else None,
        at=from_epoch(record.get("UpdatedAt")) or from_epoch(record.get("CreatedAt")),
    )


def is_inbound(record: dict[str, Any]) -> bool:
    value = record.get("IsInbound")
    if isinstance(value, str):
        return value.strip().lower() in {"true", "1", "yes"}
    return bool(value)


def callback_body(request: CallbackRequest) -> Any:
    """The decoded `json` form field (the callback example's only field), or a JSON body."""
    raw = request.form.get("json")
    if raw is None and request.content_type.startswith("application/json"):
        raw = request.body.decode("utf-8", "replace")
    if raw is None:
        raise CallbackError("HelloFax callback without its `json` field")
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise CallbackError(f"unreadable HelloFax callback: {exc}") from exc


def v3_event(body: Any) -> str | None:
    """The event name of a Dropbox Sign v3 style event (`{"event": {"event_type"}, …}`).

    The callback example page warns that an account with a hellosign.com Account Callback URL
    also gets fax events in that shape, which carry no v1 Transaction."""
    if isinstance(body, dict) and isinstance(body.get("event"), dict):
        return str(body["event"].get("event_type") or "") or "?"
    return None


def line_number(value: Any) -> str:
    """A fax line's `Number` in E.164. The DELETE example names a line by ten digits
    (`FaxLines/2132935579`), callbacks by eleven (`14154847140`): ten digits are NANP."""
    digits = re.sub(r"\D", "", str(value or ""))
    if not digits:
        return ""
    return to_e164(f"1{digits}" if len(digits) == 10 else digits)


def caller_number(value: Any) -> str:
    """A transaction's `From`/`To` in E.164 where it can be read as one. Transactions show
    eleven digits (CALLBACKS), but HelloFax writes its own lines in ten (SETUP's DELETE
    example); read plainly, ten NANP digits turn into another country's number (`6175550100`
    as +61 …), so ten digits that make a valid +1 number are taken as NANP. Anything else (a
    withheld caller ID) comes back as given."""
    text = str(value or "").strip()
    digits = re.sub(r"\D", "", text)
    if len(digits) == 10 and phonenumbers.is_valid_number(phonenumbers.parse(f"+1{digits}")):
        return f"+1{digits}"
    return to_e164(text)


def fax_line_numbers(body: Any) -> dict[str, str]:
    """The lines of a `/FaxLines` answer, E.164 → `Number` exactly as HelloFax spells it: a
    list (or a dict holding one) of line records with `Number`, or of bare numbers; the
    wrapper is not documented. The spelling matters: SETUP note A sends `From` "in the format
    of the Number field returned by calling /FaxLines"."""
    if isinstance(body, dict):
        if "Number" in body:
            raw = str(body["Number"] or "").strip()
            return {line_number(raw): raw} if line_number(raw) else {}
        for value in body.values():
            if isinstance(value, list | dict):
                found = fax_line_numbers(value)
                if found:
                    return found
        return {}
    if isinstance(body, list):
        out: dict[str, str] = {}
        for item in body:
            if isinstance(item, dict):
                out.update(fax_line_numbers(item))
            elif line_number(item):
                out[line_number(item)] = str(item).strip()
        return out
    return {}
