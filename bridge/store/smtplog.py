"""The SMTP attempt log: one row per attempt, accepted or not (DESIGN.md §5)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from bridge.models import Outcome
from bridge.store.db import Database, new_id, utcnow
from bridge.store.schema import smtplog

# Public record keys (the API and --json), in display order.
RECORD_KEYS = (
    "id created finished peer helo tls auth_user from header_from recipients message_id subject "
    "size attachments pages outcome reply error errors faxbox fax_ids preview notes"
).split()


@dataclass
class Attempt:
    """An SMTP transaction as it unfolds; written once, when it ends."""

    session_id: str
    peer: str | None
    helo: str | None = None
    tls: str | None = None
    auth_user: str | None = None
    mail_from: str | None = None
    id: str = field(default_factory=new_id)
    created: datetime = field(default_factory=utcnow)
    finished: datetime | None = None
    header_from: str | None = None
    recipients: list[dict[str, Any]] = field(default_factory=list)
    message_id: str | None = None
    subject: str | None = None
    size: int | None = None
    attachments: list[dict[str, Any]] = field(default_factory=list)
    pages: int | None = None
    outcome: Outcome = Outcome.ABORTED
    reply: str | None = None
    error: str | None = None
    errors: list[str] = field(default_factory=list)
    faxbox: str | None = None
    fax_ids: list[str] = field(default_factory=list)
    raw_path: str | None = None
    preview: bool = False  # answered with a preview mail (to some or all recipients)
    # What the bridge did to a message it did take: bare LFs normalised, a duplicate not
    # faxed again … (sentences; revision 0006)
    notes: list[str] = field(default_factory=list)
    repeat_key: str | None = None  # set on accepted messages (bridge.smtp.repeats)

    def refuse(self, reply: str, sentence: str | None = None) -> str:
        """Note a refusal (the decisive one is the latest) and return the reply to send."""
        why = sentence or reply_text(reply)
        self.errors.append(why)
        self.error = why
        self.reply = reply
        return reply

    def row(self) -> dict[str, Any]:
        values = asdict(self)
        values["outcome"] = self.outcome.value
        values["finished"] = self.finished or utcnow()
        return values


def reply_text(reply: str) -> str:
    """`454 4.7.0 TLS not available` → `TLS not available`: the code and the enhanced code
    go, every word of the text stays."""
    parts = reply.split(" ", 1)
    text = parts[1] if len(parts) > 1 and parts[0][:3].isdigit() else reply
    code, _, rest = text.partition(" ")
    if rest and code.count(".") == 2 and all(p.isdigit() for p in code.split(".")):
        return rest
    return text


def record_of(row: sa.Row[Any]) -> dict[str, Any]:
    """A row as the public record (JSON-ready except datetimes)."""
    data = dict(row._mapping)
    data["from"] = data.pop("mail_from")
    return {key: data.get(key) for key in RECORD_KEYS}


class SmtpLog:
    def __init__(self, db: Database) -> None:
        self.db = db

    def insert(self, attempt: Attempt, conn: sa.Connection | None = None) -> None:
        if conn is not None:
            conn.execute(smtplog.insert().values(**attempt.row()))
            return
        with self.db.begin() as own:
            own.execute(smtplog.insert().values(**attempt.row()))

    def get(self, attempt_id: str) -> dict[str, Any] | None:
        with self.db.begin() as conn:
            row = conn.execute(smtplog.select().where(smtplog.c.id == attempt_id)).first()
        return record_of(row) if row else None

    def add_note(self, attempt_id: str, note: str) -> bool:
        """Append `note` to a logged attempt's notes; False when no such row (yet)."""
        with self.db.begin() as conn:
            notes = conn.execute(
                sa.select(smtplog.c.notes).where(smtplog.c.id == attempt_id)
            ).scalar_one_or_none()
            if notes is None:
                return False
            conn.execute(
                smtplog.update()
                .where(smtplog.c.id == attempt_id)
                .values(notes=[*list(notes), note])
            )
        return True

    def first_accepted(self, repeat_key: str, since: datetime) -> dict[str, Any] | None:
        """The earliest accepted attempt with `repeat_key` since `since`, if any."""
        query = (
            smtplog.select()
            .where(smtplog.c.repeat_key == repeat_key, smtplog.c.created >= since)
            .where(smtplog.c.outcome == "accepted")
            .order_by(smtplog.c.created, smtplog.c.id)
            .limit(1)
        )
        with self.db.begin() as conn:
            row = conn.execute(query).first()
        return record_of(row) if row else None

    def raw_path(self, attempt_id: str) -> str | None:
        with self.db.begin() as conn:
            value = conn.execute(
                sa.select(smtplog.c.raw_path).where(smtplog.c.id == attempt_id)
            ).scalar()
        return str(value) if value else None

    def recent(
        self,
        *,
        faxbox: str | None = None,
        since: datetime | None = None,
        outcome: str | None = None,
        limit: int = 100,
        before_id: str | None = None,
    ) -> list[dict[str, Any]]:
        query = smtplog.select().order_by(smtplog.c.created.desc(), smtplog.c.id.desc())
        if faxbox:
            query = query.where(smtplog.c.faxbox == faxbox)
        if since:
            query = query.where(smtplog.c.created >= since)
        if outcome:
            query = query.where(smtplog.c.outcome == outcome)
        if before_id:
            query = query.where(smtplog.c.id <= before_id)
        with self.db.begin() as conn:
            rows = conn.execute(query.limit(limit)).fetchall()
        return [record_of(row) for row in rows]

    def search(
        self, query: SmtpLogQuery, limit: int = 50, start_key: str | None = None
    ) -> SmtpLogPage:
        """One page for the console, newest first by id (ids start with the time, `new_id`)."""
        return _search(self.db, query, limit, start_key)


# -- the console's search ------------------------------------------------------------------
# Number filters look inside the JSON `recipients` column: SQL narrows by a substring of the
# column's text, Python then checks the numbers themselves. The Python side reads at most
# SCAN_ROWS rows per call, so a needle that occurs only in addresses or replies cannot make one
# page read the whole table; the page then ends early and its `next_key` resumes the scan.
SCAN_ROWS = 2000
_SCAN_CHUNK = 200


@dataclass(frozen=True)
class SmtpLogQuery:
    """The console's filters; every one optional, all of them must hold."""

    faxbox: str | None = None
    outcome: str | None = None
    sender: str | None = None  # substring of the envelope or header sender, any case
    number: str | None = None  # substring of any recipient's original or translated number
    since: datetime | None = None  # created >= since
    until: datetime | None = None  # created < until


@dataclass(frozen=True)
class SmtpLogPage:
    records: list[dict[str, Any]]
    next_key: str | None  # id to pass as `start_key` for the next (older) page
    scanned: int  # rows read for the number filter (0 without one)


def _digits(text: str | None) -> str:
    return "".join(ch for ch in text or "" if ch.isdigit())


def _number_matches(recipients: list[dict[str, Any]], needle: str) -> bool:
    """Substring of the number as written or as E.164; digits alone match across separators."""
    needle = needle.strip()
    digits = _digits(needle)
    for recipient in recipients or []:
        for number in (recipient.get("original_number"), recipient.get("translated_number")):
            if not number:
                continue
            if needle in number or (digits and digits in _digits(number)):
                return True
    return False


def _json_fragment(text: str) -> str:
    """How `text` appears inside the column's JSON text (quotes and non-ASCII escaped)."""
    return json.dumps(text)[1:-1]


def _filters(query: SmtpLogQuery) -> list[sa.ColumnElement[bool]]:
    where: list[sa.ColumnElement[bool]] = []
    if query.faxbox:
        where.append(smtplog.c.faxbox == query.faxbox)
    if query.outcome:
        where.append(smtplog.c.outcome == query.outcome)
    if query.sender:
        needle = query.sender.strip().lower()
        where.append(
            sa.or_(
                sa.func.lower(smtplog.c.mail_from).contains(needle, autoescape=True),
                sa.func.lower(smtplog.c.header_from).contains(needle, autoescape=True),
            )
        )
    if query.since:
        where.append(smtplog.c.created >= query.since)
    if query.until:
        where.append(smtplog.c.created < query.until)
    if query.number and query.number.strip():
        text = sa.cast(smtplog.c.recipients, sa.Text)
        needles = {_json_fragment(query.number.strip()), _digits(query.number)} - {""}
        where.append(sa.or_(*(text.contains(n, autoescape=True) for n in needles)))
    return where


def _search(db: Database, query: SmtpLogQuery, limit: int, start_key: str | None) -> SmtpLogPage:
    select = smtplog.select().where(*_filters(query)).order_by(smtplog.c.id.desc())
    needle = (query.number or "").strip()
    if not needle:
        if start_key:
            select = select.where(smtplog.c.id <= start_key)
        with db.begin() as conn:
            rows = conn.execute(select.limit(limit + 1)).fetchall()
        next_key = str(rows[limit].id) if len(rows) > limit else None
        return SmtpLogPage([record_of(r) for r in rows[:limit]], next_key, 0)
    found: list[dict[str, Any]] = []
    scanned = 0
    key = start_key
    with db.begin() as conn:
        while scanned < SCAN_ROWS:
            chunk = select.where(smtplog.c.id <= key) if key else select
            rows = conn.execute(chunk.limit(_SCAN_CHUNK + 1)).fetchall()
            for row in rows[:_SCAN_CHUNK]:
                scanned += 1
                if _number_matches(row.recipients, needle):
                    if len(found) == limit:
                        return SmtpLogPage(found, str(row.id), scanned)
                    found.append(record_of(row))
            if len(rows) <= _SCAN_CHUNK:
                return SmtpLogPage(found, None, scanned)
            key = str(rows[_SCAN_CHUNK].id)
    return SmtpLogPage(found, key, scanned)


# The first note of an attempt the Kazoo API made (an inbound fax forwarded): no SMTP session
# took place, so `explain` tells the story from the note instead of replaying a mail.
NOT_A_MAIL = "not a mail: "
