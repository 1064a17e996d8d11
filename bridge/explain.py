"""`faxbridge explain ID`: replay a logged attempt and say, step by step, what was decided.

The tool for "my scan never arrived": it reads the smtplog record and the stored raw message,
runs today's policy and document pipeline on them again (nothing is sent or stored), and
points out where today's answer would differ from what the client was told then.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, timedelta
from typing import Any

from bridge.config import Config
from bridge.documents import prepare_document
from bridge.documents.external import Converters
from bridge.errors import DocumentError
from bridge.smtp.auth import faxbox_check, in_networks
from bridge.smtp.intake import auto_submitted, document_options
from bridge.smtp.policy import AUTH_REQUIRED_REPLY, decide_recipient, rate_limit_reply
from bridge.store import Store
from bridge.store.smtplog import NOT_A_MAIL


@dataclass
class Explanation:
    attempt_id: str
    steps: list[str] = field(default_factory=list)
    differences: list[str] = field(default_factory=list)

    def say(self, text: str) -> None:
        self.steps.append(text)

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.attempt_id, "steps": self.steps, "differences": self.differences}

    def render(self) -> str:
        lines = [f"Attempt {self.attempt_id}"]
        lines += [f"{n:>2}. {step}" for n, step in enumerate(self.steps, 1)]
        if self.differences:
            lines.append("Today's configuration would decide differently:")
            lines += [f"  - {d}" for d in self.differences]
        return "\n".join(lines)


def explain(
    config: Config, store: Store, attempt_id: str, converters: Converters | None = None
) -> Explanation:
    record = store.smtplog.get(attempt_id)
    if record is None:
        raise LookupError(f"no smtplog record {attempt_id}")
    out = Explanation(attempt_id)
    if (record["notes"] or [""])[0].startswith(NOT_A_MAIL):  # a Kazoo API forward
        story = record["notes"][0].removeprefix(NOT_A_MAIL)
        out.say(f"{story[:1].upper()}{story[1:]}; no mail was received.")
        _jobs(out, store, record)
        return out
    _session(out, record)
    _session_today(out, config, record)
    _recipients(out, config, record)
    _rate_limits_today(out, config, store, record)
    raw_path = store.smtplog.raw_path(attempt_id)
    if raw_path is None:
        out.say(
            "The client never sent the message itself (no DATA), so there is nothing to "
            "replay beyond the recipients."
        )
    else:
        try:
            raw = store.db.read_file(raw_path)
        except OSError:
            out.say(f"The stored message {raw_path} is gone (purged or moved); cannot replay it.")
        else:
            _message(out, config, record, raw, converters or Converters.found())
    out.say(
        f"The final reply was: {record['reply'] or '(none: the client left)'} "
        f"— outcome {record['outcome']}."
    )
    _jobs(out, store, record)
    return out


def _session(out: Explanation, record: dict[str, Any]) -> None:
    tls = f"over {record['tls']}" if record["tls"] else "without TLS"
    auth = f"logged in as {record['auth_user']}" if record["auth_user"] else "without AUTH"
    out.say(
        f"{record['peer'] or 'an unknown peer'} connected (HELO {record['helo'] or '-'}) "
        f"{tls}, {auth}."
    )
    sender = record["from"]
    if sender is None:
        out.say("The session ended before MAIL FROM: " + "; ".join(record["errors"] or []))
    else:
        out.say(f"MAIL FROM:<{'' if sender == '<>' else sender}>.")


def _tls_version(name: str) -> tuple[int, ...]:
    digits = name.removeprefix("TLSv")
    try:
        return tuple(int(d) for d in digits.split("."))
    except ValueError:
        return ()


def _session_today(out: Explanation, config: Config, record: dict[str, Any]) -> None:
    """TLS, AUTH and trusted networks as today's configuration would treat the same client."""
    smtp = config.smtp
    peer, user, tls = record["peer"], record["auth_user"], record["tls"]
    trusted = in_networks(peer, smtp.trusted_networks)
    where = peer or "the client's address"
    if record["from"] is None:
        return
    if tls is None and smtp.tls.require and smtp.tls.cert:
        out.differences.append(
            "TLS: today the client must use STARTTLS before MAIL (smtp.tls.require is on); "
            "it sent this mail without TLS"
        )
    elif tls and _tls_version(tls) and _tls_version(tls) < _tls_version(smtp.tls.min_version):
        out.differences.append(
            f"TLS: today {tls} is refused (smtp.tls.min_version is {smtp.tls.min_version})"
        )
    refused_for_auth = (record["reply"] or "").startswith(AUTH_REQUIRED_REPLY)
    needs_auth = smtp.auth.required and not user and not trusted
    if needs_auth and not refused_for_auth:
        out.differences.append(
            f"AUTH: today MAIL FROM gets {AUTH_REQUIRED_REPLY}: smtp.auth.required is on, the "
            f"client did not log in, and {where} is not in smtp.trusted_networks"
        )
    elif refused_for_auth and not needs_auth:
        why = f"{where} is now in smtp.trusted_networks" if trusted else "smtp.auth.required is off"
        out.differences.append(f"AUTH: today MAIL FROM is accepted without a login: {why}")
    if user and not any(u.username == user for u in smtp.auth.users):
        out.differences.append(f"AUTH: user {user} no longer exists, so the login would fail")
    elif user and not tls and not in_networks(peer, smtp.auth.plaintext_from):
        out.differences.append(
            f"AUTH: today a login in the clear from {where} is refused (not in "
            "smtp.auth.plaintext_from)"
        )


def _rate_limits_today(
    out: Explanation, config: Config, store: Store, record: dict[str, Any]
) -> None:
    """Would today's per-hour limits have refused what was accepted, or the reverse?"""
    created = record["created"]
    if created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    sender = record["from"] or ""
    for rcpt in record["recipients"]:
        try:
            faxbox = config.faxbox(rcpt.get("faxbox") or "")
        except KeyError:
            continue
        was_limited = (rcpt["reply"] or "").startswith("450 4.7.1")
        if not rcpt["accepted"] and not was_limited:
            continue
        limits = faxbox.rate_limit
        if not (limits.per_sender_per_hour or limits.per_faxbox_per_hour):
            if was_limited:
                out.differences.append(
                    f"RCPT {rcpt['address']}: today no rate limit applies to faxbox {faxbox.name}"
                )
            continue
        since, until = created - timedelta(hours=1), created
        by_sender = store.jobs.count_since(since, until=until, sender=sender)
        by_faxbox = store.jobs.count_since(since, until=until, faxbox=faxbox.name)
        today = rate_limit_reply(faxbox, sender, by_sender, by_faxbox)
        if today and not was_limited:
            out.differences.append(f"RCPT {rcpt['address']}: today {today}")
        elif was_limited and not today:
            out.differences.append(
                f"RCPT {rcpt['address']}: today's rate limits would let it through"
            )


def _todays_rights(config: Config, record: dict[str, Any]) -> Callable[[str], str | None]:
    users = {u.username: u for u in config.smtp.auth.users}
    return faxbox_check(users, record["auth_user"])


def _recipients(out: Explanation, config: Config, record: dict[str, Any]) -> None:
    accepted = 0
    for rcpt in record["recipients"]:
        verdict = "accepted" if rcpt["accepted"] else "refused"
        number = rcpt.get("translated_number")
        via = f" as {number}" if number else ""
        box = f" for faxbox {rcpt['faxbox']}" if rcpt.get("faxbox") else ""
        out.say(f"RCPT TO:<{rcpt['address']}> {verdict}{via}{box}: {rcpt['reply']}")
        today = decide_recipient(
            config, record["from"], rcpt["address"], accepted, _todays_rights(config, record)
        )
        if today.accepted:
            accepted += 1
        if today.accepted != bool(rcpt["accepted"]):
            out.differences.append(f"RCPT {rcpt['address']}: today {today.reply}")


def _message(
    out: Explanation, config: Config, record: dict[str, Any], raw: bytes, converters: Converters
) -> None:
    out.say(f"The message was {len(raw)} bytes, subject {record['subject']!r}.")
    for note in record.get("notes") or []:
        out.say(f"On receipt: {note}.")
    if why := auto_submitted(raw):
        out.say(f"It is marked Auto-Submitted: {why}, so it is never faxed (no mail loops).")
        return
    name = record["faxbox"] or next(
        (r["faxbox"] for r in record["recipients"] if r.get("faxbox")), None
    )
    if name is None:
        out.say("No recipient belonged to a faxbox, so the documents were never looked at.")
        return
    try:
        faxbox = config.faxbox(name)
    except KeyError:
        out.say(f"Faxbox {name} no longer exists in the configuration; cannot replay.")
        return
    try:
        options = document_options(
            faxbox,
            record["from"],
            converters,
            config.smtp.size_limit,
            config.smtp.max_attachment_bytes,
        )
        doc = prepare_document(raw, options)
    except DocumentError as exc:
        for refused in exc.attachments:
            out.say(_part_line(refused))
        out.say(f"Documents: refused — {exc.reply}")
        if record["outcome"] == "accepted":
            out.differences.append(f"documents: today {exc.reply}")
        return
    for item in doc.attachments:
        out.say(_part_line(item.as_dict()))
    policy = faxbox.cover_page.value
    if doc.wants_cover:
        why = "the subject or body has text" if policy == "auto" else "cover_page is always"
        out.say(f"Cover page: yes ({why}); notes: {doc.cover_notes[:120]!r}.")
    else:
        why = "cover_page is never" if policy == "never" else "no subject and no body text left"
        out.say(f"Cover page: no ({why}).")
    pages = doc.pages + (1 if doc.wants_cover else 0)
    out.say(f"The fax has {pages} page(s); the faxbox allows {faxbox.max_pages}.")
    if record["pages"] is not None and record["pages"] != pages:
        out.differences.append(f"pages: then {record['pages']}, today {pages}")


def _part_line(item: dict[str, Any]) -> str:
    name = item.get("filename") or "(unnamed part)"
    kind = f"{item.get('content_type')}, looks like {item.get('detected_type') or 'unknown'}"
    if item.get("used"):
        return f"Part {name} ({kind}): used, {item.get('pages')} page(s)."
    return f"Part {name} ({kind}): skipped — {item.get('reason')}."


def _jobs(out: Explanation, store: Store, record: dict[str, Any]) -> None:
    for job_id in record["fax_ids"] or []:
        job = store.jobs.get(job_id)
        if job is None:
            out.say(f"Fax job {job_id} is no longer stored.")
            continue
        reason = f" ({job['reason']}: {job['provider_text']})" if job["reason"] else ""
        tries = f", dialled {job['dials']} time(s)" if job["dials"] else ""
        out.say(
            f"Fax job {job_id} to {job['to']} via {job['provider']}: {job['status']}{reason}, "
            f"{job['attempts']} attempt(s){tries}."
        )
        if job["status"] == "unknown":
            out.say(
                "    The provider never gave its final word, so the bridge stopped waiting and "
                "told the sender the outcome is unknown; a late callback still settles it, and "
                "`jobs retry` asks the provider before sending again."
            )
        if job["possible_duplicate"]:
            out.say(
                "    It was sent again without the provider being able to say whether an "
                "earlier try had gone through: the recipient may have it twice."
            )
        for event in job["history"]:
            out.say(f"    {event['at']:%Y-%m-%d %H:%M:%S} {event['status']}: {event['detail']}")
        fax_ids = [job["provider_fax_id"]] if job["provider_fax_id"] else []
        for kept in store.callbacks.recent(job_id=job_id, provider_fax_ids=fax_ids, limit=20):
            out.say(
                f"    {kept['received']:%Y-%m-%d %H:%M:%S} callback kept, not understood "
                f"({kept['event'] or 'no event name'}): {kept['reason']} "
                f"[faxbridge callbacks list --job {job_id}]"
            )
