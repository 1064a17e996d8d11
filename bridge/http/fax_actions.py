"""Kazoo's two fax actions (`cb_faxes.erl` `do_put_action`): outbox `resubmit`, inbox `forward`.

Kazoo copies the fax document under a new id, merges the request's `data` over the copy (so
`to_number`, `to_name` and `notifications` may change) and queues it as a new pending job; the
original stays as it was, whatever its status. The bridge does the same with its rows: a new
fax job with a new id and its own copy of the files (the retention sweep deletes a job's files
with it, so two jobs never share a cover), queued for the faxbox's provider of today.

Every job belongs to an smtplog attempt (the report quotes its mail). A resubmitted job keeps
the attempt of the mail it came from; a forwarded inbound fax never was a mail, so the forward
is logged as an attempt of its own (no raw message, a note saying who asked): that row is where
an admin looks for "where did this fax come from", and the report goes where `notifications`
says, else to the faxbox's `inbound.email_to`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bridge.config import Config, FaxboxConfig
from bridge.documents.convert import count_pages
from bridge.documents.cover import render_cover
from bridge.models import CoverNote, Outcome
from bridge.numbers import NumberError, format_for_people, parse_number, refusal_reason
from bridge.store import Attempt, NewJob, Store, new_id
from bridge.store.smtplog import NOT_A_MAIL

NO_NUMBER = "add a valid number to send the fax to"  # Kazoo's words (cb_faxes verify_number)


class InvalidTarget(ValueError):
    """The request names no number the faxbox may dial: Kazoo's 400 `invalid data`."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule = rule
        self.message = message


class NoDocument(LookupError):
    """The fax's document is gone (purged, or the provider never gave one)."""


@dataclass(frozen=True)
class Changes:
    """What the request's `data` may change on the copy (Kazoo's fax document fields)."""

    to_number: str | None = None
    to_name: str | None = None
    send_to: str | None = None  # first of `notifications.email.send_to`


def changes(data: dict[str, Any]) -> Changes:
    """The Kazoo fields the bridge acts on; anything else in `data` is ignored."""
    email = (data.get("notifications") or {}).get("email") or {}
    send_to = email.get("send_to") if isinstance(email, dict) else None
    if isinstance(send_to, list):
        send_to = next((a for a in send_to if isinstance(a, str) and a.strip()), None)
    number = data.get("to_number")
    name = data.get("to_name")
    return Changes(
        to_number=str(number) if number not in (None, "") else None,
        to_name=str(name) if isinstance(name, str) else None,
        send_to=send_to.strip() if isinstance(send_to, str) and send_to.strip() else None,
    )


@dataclass(frozen=True)
class Target:
    e164: str
    original: str
    address: str  # as if mailed: `<digits>@<the faxbox's first domain>`


def target(number: str, faxbox: FaxboxConfig) -> Target:
    """`number` as the SMTP side would take it: parsed in the faxbox's region, then checked
    against its destination policy (toll-fraud guard) — an API call gets no more than a mail."""
    try:  # spaces are no part of an address's local part, but people write them in JSON
        destination = parse_number("".join(number.split()), faxbox.default_region)
    except NumberError as exc:
        raise InvalidTarget("required", NO_NUMBER) from exc
    if refusal := refusal_reason(destination, faxbox):
        raise InvalidTarget(
            "forbidden",
            f"faxing to {destination.e164} is not allowed for faxbox {faxbox.name}: {refusal}",
        )
    address = f"{destination.e164.lstrip('+')}@{faxbox.domains[0]}"
    return Target(destination.e164, number, address)


def _copy(store: Store, source: str, relative: str) -> str:
    return store.db.write_file(relative, store.db.read_file(source))


def _cover(
    store: Store, job: Any, job_id: str, dest: Target | None, name: str | None
) -> tuple[str | None, dict[str, Any] | None]:
    """The old job's cover for the copy; redrawn when the copy goes to another number or name,
    so the cover never names a destination the fax is not going to."""
    if not job.cover_path:
        return None, None
    cover = dict(job.cover) if job.cover else None
    if cover is None or (dest is None and name is None):
        return _copy(store, job.cover_path, f"covers/{job_id}.pdf"), cover
    if dest is not None:
        cover["to_number"] = format_for_people(dest.e164)
    if name is not None:
        cover["to_name"] = name
    note = CoverNote(
        to_name=str(cover["to_name"]),
        to_number=str(cover["to_number"]),
        from_name=str(cover["from_name"]),
        from_number=str(cover["from_number"]),
        subject=str(cover["subject"]),
        notes=str(cover["notes"]),
        date=datetime.fromisoformat(str(cover["date"])),
        pages=int(cover["pages"]),
    )
    return store.db.write_file(f"covers/{job_id}.pdf", render_cover(note)), cover


def resubmit(config: Config, store: Store, job_id: str, data: dict[str, Any]) -> str:
    """Copy outbox job `job_id` into a new queued job; return the new id (blocking)."""
    job = store.jobs.row(job_id)
    if job is None:
        raise LookupError(job_id)
    faxbox = config.faxbox(job.faxbox)
    wanted = changes(data)
    dest = target(wanted.to_number, faxbox) if wanted.to_number else None
    new = new_id()
    try:
        document = _copy(store, job.document_path, f"documents/{job.attempt_id}-{new}.pdf")
        cover_path, cover = _cover(store, job, new, dest, wanted.to_name)
    except OSError as exc:
        raise NoDocument(job_id) from exc
    copy = NewJob(
        id=new,
        faxbox=faxbox.name,
        provider=faxbox.provider,
        sender=wanted.send_to or job.sender,
        address=dest.address if dest else job.address,
        to_number=dest.e164 if dest else job.to_number,
        to_name=wanted.to_name if wanted.to_name is not None else job.to_name,
        original_number=dest.original if dest else job.original_number,
        caller_id=faxbox.caller_id,
        pages=job.pages,
        document_pages=job.document_pages,
        document_path=document,
        cover_path=cover_path,
        cover=cover,
        redial=faxbox.redial_policy().as_dict(),
    )
    store.jobs.add(job.attempt_id, copy, f"resubmitted from fax {job_id} (Kazoo API)")
    return new


def forward(
    config: Config, store: Store, fax_id: str, data: dict[str, Any], peer: str | None
) -> str:
    """Send received fax `fax_id` on to `data.to_number` as a new job; return its id."""
    fax = store.inbound.row(fax_id)
    if fax is None:
        raise LookupError(fax_id)
    faxbox = config.faxbox(fax.faxbox)
    wanted = changes(data)
    if not wanted.to_number:
        raise InvalidTarget("required", NO_NUMBER)
    dest = target(wanted.to_number, faxbox)
    if not fax.document_path:
        raise NoDocument(fax_id)
    try:
        pdf = store.db.read_file(fax.document_path)
    except OSError as exc:
        raise NoDocument(fax_id) from exc
    new, attempt_id = new_id(), new_id()
    pages = fax.pages or count_pages(pdf)
    document = store.db.write_file(f"documents/{attempt_id}-{new}.pdf", pdf)
    sender = wanted.send_to or next(iter(faxbox.inbound.email_to), "")
    attempt = Attempt(
        session_id="",
        peer=peer,
        id=attempt_id,
        mail_from=sender or None,
        recipients=[
            {
                "address": dest.address,
                "original_number": dest.original,
                "translated_number": dest.e164,
                "faxbox": faxbox.name,
                "accepted": True,
                "reply": f"forward of inbound fax {fax_id} to {dest.e164}",
            }
        ],
        subject=f"Fax from {fax.from_number}, forwarded",
        pages=pages,
        outcome=Outcome.ACCEPTED,
        reply=f"200 Queued as fax {new}",
        faxbox=faxbox.name,
        fax_ids=[new],
        notes=[
            f"{NOT_A_MAIL}inbound fax {fax_id} (from {fax.from_number}) forwarded to "
            f"{dest.e164} through the Kazoo API (PUT …/faxes/inbox/{fax_id}, action forward)"
        ],
    )
    job = NewJob(
        id=new,
        faxbox=faxbox.name,
        provider=faxbox.provider,
        sender=sender,
        address=dest.address,
        to_number=dest.e164,
        to_name=wanted.to_name or "",
        original_number=dest.original,
        caller_id=faxbox.caller_id,
        pages=pages,
        document_pages=pages,
        document_path=document,
        cover_path=None,
        cover=None,
        redial=faxbox.redial_policy().as_dict(),
    )
    store.accept_one(attempt, job, f"forwarded from inbound fax {fax_id} (Kazoo API)")
    return new
