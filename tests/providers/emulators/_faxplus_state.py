"""What the Fax.Plus emulator holds: uploads, the outbox, fax records, numbers, hooks.

Record shapes follow AlohiHQ/faxplus-python docs/Outbox.md (an outbox record: `comment` is
`{text, tags}`, `to` a list, `page_count`, `options`) and the apidoc.fax.plus "Get a fax
record" example (a fax record: `comment` a plain string, `from_number`, `to` a string,
`max_retry`/`retry_delay`, `description`). No source says how the outbox id relates to the
sent fax's id; PROVIDERS.md reads "two ids", the case that is hardest for an adapter, so a
sent fax gets a new id here.
"""

from __future__ import annotations

import io
import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pypdf import PdfReader
from pypdf.errors import PyPdfError

USER_ID = "490ae330dbc749f0b6561dafa300f2fb"  # the apidoc webhook example's `uid`
ACCOUNT_NUMBER = "+12125550100"
TIME_TEXT = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")  # "YYYY-MM-DD HH:mm:ss"


def now_text(moment: datetime | None = None) -> str:
    return (moment or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M:%S")


def new_id() -> str:
    return secrets.token_hex(12)  # 24 hex digits, like the ids in the apidoc examples


def new_file_id() -> str:
    """A fax's `file`: 32 hex digits and `.tiff`, unlike its id (the apidoc "Get a fax record"
    example: id `5e7de3ad…`, file `ec28edc2….tiff`)."""
    return f"{secrets.token_hex(16)}.tiff"


def page_count(pdf: bytes) -> int:
    try:
        return len(PdfReader(io.BytesIO(pdf)).pages)
    except PyPdfError:
        return 1


def shown_number(e164: str) -> str:
    """`+12125550123` → `+1 212-555-0123`, as the apidoc webhook example writes numbers."""
    digits = e164.lstrip("+")
    if len(digits) == 11 and digits.startswith("1"):
        return f"+1 {digits[1:4]}-{digits[4:7]}-{digits[7:]}"
    return e164


# docs/Number.md: the account's line, one cancelled but not yet deleted, and one still
# `waiting_verification` (docs/NumberStatus.md).
NUMBERS = [
    {"id": new_id(), "number": "+1 212-555-0100", "status": "active", "is_canceled": False,
     "owner_id": USER_ID, "assigned_to": [USER_ID], "acquired_date": "2022-01-01 00:00:00"},
    {"id": new_id(), "number": "+1 212-555-0177", "status": "active", "is_canceled": True,
     "owner_id": USER_ID, "assigned_to": [], "acquired_date": "2022-01-01 00:00:00"},
    {"id": new_id(), "number": "+1 212-555-0188", "status": "waiting_verification",
     "is_canceled": False, "owner_id": USER_ID, "assigned_to": [USER_ID],
     "acquired_date": "2026-01-01 00:00:00"},
]  # fmt: skip


def retry_ok(retry: Any) -> bool:
    """The tightest limits the sources give: the fax record's `max_retry` 0 < x < 3 and
    `retry_delay` 0 < x < 30 (apidoc "Get a fax record")."""
    if not isinstance(retry, dict):
        return False
    count, delay = retry.get("count"), retry.get("delay")
    return isinstance(count, int) and 0 < count < 3 and isinstance(delay, int) and 0 < delay < 30


@dataclass
class Sent:
    """One sent fax: its record, and the id of the faxing session the webhook names."""

    record: dict[str, Any]
    session_id: str


@dataclass
class FaxPlusState:
    client_id: str | None
    files: dict[str, bytes] = field(default_factory=dict)  # uploaded path → PDF
    outbox: dict[str, dict[str, Any]] = field(default_factory=dict)
    faxes: dict[str, dict[str, Any]] = field(default_factory=dict)  # in the order sent
    sessions: dict[str, str] = field(default_factory=dict)  # session id → fax id
    sent_from: dict[str, str] = field(default_factory=dict)  # outbox id → fax id
    documents: dict[str, bytes] = field(default_factory=dict)  # fax id → PDF
    hooks: dict[str, dict[str, Any]] = field(default_factory=dict)
    numbers: list[dict[str, Any]] = field(default_factory=lambda: list(NUMBERS))
    deleted: list[str] = field(default_factory=list)  # ids DELETEd, outbox or fax
    # Sends still to be answered without `ids` although queued (a reply shape no source
    # shows, but a 2xx the adapter must not take for a refusal).
    answers_without_ids: int = 0
    # docs/FaxesApi.md list_faxes says `after` gives "records from that date" and `before`
    # "records before that date": served so (`after` inclusive). True serves the other reading
    # the words allow, `after` exclusive, which an adapter must survive too.
    after_exclusive: bool = False

    def refusal(self, body: dict[str, Any]) -> tuple[str, str] | None:
        """Why `POST /outbox` refuses `body` (`error`, `description`), or None: docs/
        PayloadOutbox.md's required fields, docs/OutboxCoverPage.md's, apidoc concepts/fax's
        limits."""
        to, files = body.get("to"), body.get("files")
        if not isinstance(to, list) or not to or not body.get("from"):
            return "invalid_parameters", "'from' and a non-empty 'to' are required"
        if not all(isinstance(n, str) and re.fullmatch(r"\+?\d{7,15}", n) for n in to):
            return "invalid_parameters", "'to' must list fax numbers"
        if not isinstance(files, list) or not files or any(f not in self.files for f in files):
            return "invalid_file", "'files' must name uploaded files"
        if len(files) > 10:  # more than 10 files is `too_many_files`
            return "too_many_files", "At most 10 files per fax"
        retry = (body.get("options") or {}).get("retry")
        if retry is not None and not retry_ok(retry):
            return "invalid_parameters", "options.retry is out of range"
        cover = body.get("cover_page")
        if cover is not None and not all(
            isinstance(cover.get(k), str) for k in ("name_to", "name_from", "subject")
        ):
            return "invalid_parameters", "cover_page needs name_to, name_from and subject"
        return None

    def queue(self, body: dict[str, Any], number: str, pages: int) -> str:
        outbox_id = new_id()
        options: dict[str, Any] = body.get("options") or {}
        self.outbox[outbox_id] = {
            "id": outbox_id,
            "uid": USER_ID,
            "to": [number],
            "files": body["files"],
            "comment": body.get("comment") or {"tags": [], "text": ""},
            "options": options,
            "retry": options.get("retry") or {},
            "cover_page": body.get("cover_page"),
            "send_time": body.get("send_time"),
            "src": body["from"],
            "status": "submitted",
            "submit_time": now_text(),
            "last_updated_status_time": now_text(),
            "page_count": pages,
        }
        return outbox_id

    def fax_id_for(self, any_id: str) -> str | None:
        """The fax record an outbox, session or fax id names, once sent."""
        if any_id in self.faxes:
            return any_id
        return self.sent_from.get(any_id) or self.sessions.get(any_id)

    def is_after(self, start_time: str, after: str) -> bool:
        """Whether a record started at `start_time` is within `after=` (see `after_exclusive`)."""
        return start_time > after if self.after_exclusive else start_time >= after

    def fax_id_for_file(self, file_id: str) -> str | None:
        """The fax record whose `file` is `file_id`, with or without its extension."""
        for fax_id, record in self.faxes.items():
            file = str(record.get("file") or "")
            if file_id and file_id in (file, file.rsplit(".", 1)[0]):
                return fax_id
        return None

    def complete(self, any_id: str, raw_status: str, *, redialled: bool = False) -> Sent:
        """The outbox fax `any_id` ends as `raw_status`: it leaves the outbox and becomes a fax
        record under a new id. `redialled`: Fax.Plus dialled more than once, so the faxing
        session's id differs from the fax's (apidoc.fax.plus/concepts/webhook)."""
        known = self.fax_id_for(any_id)
        if known is not None:
            record = self.faxes[known]
            record["status"] = raw_status
            session = next((s for s, f in self.sessions.items() if f == known), known)
            return Sent(record, session)
        queued = self.outbox.pop(any_id, None) or {
            "to": ["+12125550199"],
            "files": [],
            "src": ACCOUNT_NUMBER,
            "comment": {"text": "", "tags": []},
            "page_count": 1,
        }
        fax_id = new_id()
        retry = queued.get("retry") or {}
        comment = queued.get("comment") or {}
        record = {
            "comment": comment.get("text", "") if isinstance(comment, dict) else str(comment),
            "cost": queued.get("page_count", 1),
            "cost_details": {"multiplier": 1, "notification_cost": 0},
            # The apidoc "Get a fax record" example says "OK" beside `"status": "failed"`.
            "description": "OK",
            "direction": "outgoing",
            "duration": 0,
            "file": new_file_id(),
            "file_name": f"fax-to-{queued['to'][0].lstrip('+')}",
            "from_number": queued.get("src", ACCOUNT_NUMBER),
            "header": None,
            "id": fax_id,
            "is_read": False,
            "is_spam": False,
            "last_update": now_text(),
            "max_retry": retry.get("count"),
            "owner_id": USER_ID,
            "pages": queued.get("page_count", 1),
            "retry_delay": retry.get("delay"),
            "scheduled_time": None,
            "start_time": now_text(),
            "status": raw_status,
            "submit_time": queued.get("submit_time", now_text()),
            "to": queued["to"][0],
            "cover_page": queued.get("cover_page"),
        }
        self.faxes[fax_id] = record
        self.sent_from[str(queued.get("id", fax_id))] = fax_id
        session = new_id() if redialled else fax_id
        self.sessions[session] = fax_id
        files = queued.get("files") or []
        self.documents[fax_id] = self.files.get(files[0], b"") if files else b""
        return Sent(record, session)

    def seed_sent(self, count: int, start_time: datetime, comment: str = "") -> list[str]:
        """`count` sent faxes of someone else's, all started at `start_time`."""
        ids = []
        for _ in range(count):
            sent = self.complete(f"seed-{new_id()}", "success")
            sent.record["start_time"] = now_text(start_time)
            sent.record["comment"] = comment
            ids.append(sent.record["id"])
        return ids
