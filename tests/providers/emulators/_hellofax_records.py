"""What the HelloFax v1 emulator holds and how it writes it, from the help.dropbox.com v1 pages.

Pages followed (cited by these names in comments here and in `hellofax.py`):
- SETUP: help.dropbox.com/integrations/setup-dropbox-fax-api ("How to set up the Dropbox Fax
  API": account, callback URLs, FaxLines, send, statuses, 200-pending 429, status checks,
  paging, callback retries, "not stored … once the fax has successfully been sent").
- SEND: help.dropbox.com/integrations/send-fax-using-dropbox-fax-api (newer letters: busy `R`,
  on hold `O`).
- CALLBACKS: help.dropbox.com/integrations/callback-event-example-dropbox-fax-api (the
  multipart `json` field, the `Transaction` record, the v3 style event an account with a
  hellosign.com callback URL also gets).
- MIGRATION: developers.hellosign.com/docs/fax/v3migration (lists fax lines as `/FaxLine`).
Where they say nothing (the account and error bodies, the listing's list key), the emulator
says "[inferred]".
"""

from __future__ import annotations

import io
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from pypdf import PdfReader

USERNAME = "fax@example.com"
PASSWORD = "s3cret-password"
# SETUP step 3's example GUID.
ACCOUNT_GUID = "15da1c48b10c96a903eb1bac3d592fbed24ebc35"
# The caller's number as transactions spell it (CALLBACKS: "From":"14154847140").
FAX_LINE = "12125550100"
# The same line as `/FaxLines` spells its `Number`: ten digits, as SETUP's DELETE example
# names a line (`FaxLines/2132935579`, "that FaxLine's Uri"). [inferred: no page shows the
# listing itself.]
LINE_NUMBER = FAX_LINE[1:]
# SETUP note E, word for word.
PENDING_MESSAGE = (
    "Please wait. You already have at least {limit} transmissions that are currently pending "
    "or transmitting."
)

Letters = Literal["setup", "send"]
# Common model → (StatusCode, ErrorCode). SETUP lists busy B and on hold H; SEND lists R and O.
PROGRESS_CODES = {"submitted": "P", "sending": "T", "delivered": "S"}
FAILURE_CODES: dict[Letters, dict[str, tuple[str, str | None]]] = {
    "setup": {
        "busy": ("E", "B"),
        "no_answer": ("E", "N"),
        "bad_number": ("E", "A"),
        "disconnected": ("E", "D"),
        "blocked_destination": ("E", "L"),
        "file_error": ("E", None),  # "E = Error. Failed to convert …", no ErrorCode [inferred]
        "on_hold": ("H", None),
        "unknown": ("E", "U"),
    },
}
FAILURE_CODES["send"] = {
    **FAILURE_CODES["setup"],
    "busy": ("E", "R"),
    "on_hold": ("O", None),
}


def error_body(message: str, name: str = "bad_request") -> dict[str, Any]:
    """[inferred] No page shows an error body; SETUP note E quotes only "Status: 429; Message:
    …". This is the HelloSign family's shape, carrying that message."""
    return {"error": {"error_msg": message, "error_name": name}}


def multipart(
    fields: dict[str, str], files: dict[str, tuple[str, bytes, str]] | None = None
) -> tuple[bytes, str]:
    """A multipart/form-data body as CALLBACKS shows HelloFax POSTing it."""
    boundary = "-" * 27 + secrets.token_hex(6)
    chunks = []
    for name, value in fields.items():
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
        chunks.append(head.encode() + value.encode() + b"\r\n")
    for name, (filename, data, content_type) in (files or {}).items():
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
            f'filename="{filename}"\r\nContent-Type: {content_type}\r\n\r\n'
        )
        chunks.append(head.encode() + data + b"\r\n")
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), f"multipart/form-data; boundary={boundary}"


def count_pages(data: bytes) -> int:
    try:
        return len(PdfReader(io.BytesIO(data)).pages)
    except Exception:
        return 1


@dataclass
class Transmission:
    """One fax, written as CALLBACKS' `Transaction` record (all its keys, times as strings)."""

    guid: str
    to: str
    from_: str
    files: list[bytes]
    cover: dict[str, str]
    status_code: str = "P"
    error_code: str | None = None
    is_inbound: bool = False
    created_at: int = field(default_factory=lambda: int(time.time()))
    updated_at: int = field(default_factory=lambda: int(time.time()))

    @property
    def pages(self) -> int:
        return sum(count_pages(f) for f in self.files) + (1 if self.cover else 0)

    def as_json(self) -> dict[str, Any]:
        # CALLBACKS' error example bills 0 pages for a fax that never went through.
        billed = 0 if self.status_code == "E" and self.error_code == "A" else self.pages
        return {
            "Guid": self.guid,
            "To": self.to,
            "From": self.from_,
            "IsInbound": self.is_inbound,
            "IsDraft": False,
            "TypeCode": "F",
            "StatusCode": self.status_code,
            "ErrorCode": self.error_code,
            "CreatedAt": str(self.created_at),
            "UpdatedAt": str(self.updated_at),
            "Uri": f"/v1/Accounts/{ACCOUNT_GUID}/Transmissions/{self.guid}",
            "NumPagesBilled": billed,
        }

    def callback_json(self) -> str:
        """CALLBACKS: the `json` field holds `{"Transaction": {…}}`."""
        return json.dumps({"Transaction": self.as_json()})


@dataclass
class HelloFaxState:
    pending_limit: int = 200
    # SETUP (curl examples) and MIGRATION disagree on the fax line listing's name; the
    # emulator serves SETUP's `/FaxLines` unless a test asks for MIGRATION's `/FaxLine`.
    fax_lines_path: Literal["FaxLines", "FaxLine"] = "FaxLines"
    account: dict[str, Any] = field(
        default_factory=lambda: {
            "Guid": ACCOUNT_GUID,
            "Uri": f"/v1/Accounts/{ACCOUNT_GUID}",
            "EmailAddress": USERNAME,
            "DefaultInboundFaxCallbackUrl": None,
            "DefaultOutboundFaxCallbackUrl": None,
        }
    )
    transmissions: dict[str, Transmission] = field(default_factory=dict)
    # Answers the next fax line listings give instead of the lines (status, message).
    lines_failures: list[tuple[int, str]] = field(default_factory=list)

    def pending(self) -> int:
        return sum(1 for t in self.transmissions.values() if t.status_code in {"P", "T"})

    def remove_if_sent(self, guid: str) -> None:
        """SETUP note D: a fax sent by the API "is not stored on our servers once the fax has
        successfully been sent"; received ones and errors stay."""
        found = self.transmissions.get(guid)
        if found is not None and found.status_code == "S" and not found.is_inbound:
            del self.transmissions[guid]


def v3_style_event(event_type: str = "transmission_disconnected") -> dict[str, Any]:
    """CALLBACKS' note: an account with a hellosign.com Account Callback URL also receives fax
    events in this shape (the page's own example, cut where its text ends)."""
    return {
        "event": {
            "event_type": event_type,
            "event_time": "1475766511",
            "event_hash": "9a306f1874007d9f40f946e21480dcb9a1688516776cbea6f471c4c1e0db1502",
            "event_metadata": {
                "related_signature_id": None,
                "reported_for_account_id": ACCOUNT_GUID,
                "reported_for_app_id": None,
                "event_message": None,
            },
        },
        "account_guid": ACCOUNT_GUID,
        "client_id": None,
        "transmission": {
            "test_mode": False,
            "title": "fillable w9 test doc",
            "original_title": "fillable w9 test doc",
            "subject": None,
        },
    }
