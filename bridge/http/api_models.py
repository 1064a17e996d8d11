"""Response models of the Kazoo-compatible API: the records (DESIGN.md §5, §6) and envelopes.

They exist for the OpenAPI document and to check every answer against it: a record that does
not fit its model is a bug found here, not by a client. Fields a record may lack are optional,
so an old row never turns a read into a server error.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from bridge.models import FailureReason, JobStatus, Outcome


class _Record(BaseModel):
    model_config = ConfigDict(populate_by_name=True)


class SmtpRecipient(_Record):
    address: str | None = None
    original_number: str | None = None
    translated_number: str | None = None
    faxbox: str | None = None
    accepted: bool | None = None
    reply: str | None = None


class SmtpAttachment(_Record):
    filename: str | None = None
    content_type: str | None = None
    detected_type: str | None = None
    size: int | None = None
    pages: int | None = None
    used: bool | None = None
    reason: str | None = None


class SmtpLogRecord(_Record):
    """One SMTP attempt, accepted or not (DESIGN.md §5)."""

    id: str
    created: datetime
    finished: datetime | None = None
    peer: str | None = None
    helo: str | None = None
    tls: str | None = None
    auth_user: str | None = None
    from_: str | None = Field(None, alias="from", description="envelope sender (MAIL FROM)")
    header_from: str | None = None
    recipients: list[SmtpRecipient] = []
    message_id: str | None = None
    subject: str | None = None
    size: int | None = None
    attachments: list[SmtpAttachment] = []
    pages: int | None = None
    outcome: Outcome
    reply: str | None = None
    error: str | None = None
    errors: list[str] = []
    faxbox: str | None = None
    fax_ids: list[str] = []
    preview: bool = False  # a preview+<number> mail: answered with the fax, nothing sent
    notes: list[str] = []  # what the bridge did to the message it took (bare LFs, repeats)


class JobEvent(_Record):
    at: datetime
    status: JobStatus
    detail: str = ""


class FaxJob(_Record):
    """One outbound fax to one number (DESIGN.md §6)."""

    id: str
    attempt_id: str
    faxbox: str
    to: str = Field(description="destination, E.164")
    to_name: str | None = None
    status: JobStatus
    reason: FailureReason | None = Field(None, description="null unless failed")
    provider: str
    provider_fax_id: str | None = None
    provider_code: str | None = None
    provider_text: str | None = None
    attempts: int
    pages: int = Field(description="pages transmitted, cover page included")
    sender: str | None = None
    created: datetime
    updated: datetime
    finished: datetime | None = None


class FaxJobDetail(FaxJob):
    history: list[JobEvent] = Field([], description="every status change, oldest first")


class InboundFaxRecord(_Record):
    id: str
    faxbox: str
    provider: str
    provider_fax_id: str
    from_: str = Field(alias="from", description="the sending number")
    to: str
    pages: int | None = None
    received: datetime
    remote_station_id: str | None = None
    emailed: bool


class _Envelope(BaseModel):
    status: Literal["success"] = "success"
    request_id: str
    revision: str = Field(description="changes whenever `data` changes")
    timestamp: datetime


class _ListEnvelope(_Envelope):
    page_size: int = Field(description="number of records in `data`")
    start_key: str | None = Field(None, description="the `start_key` this page began at")
    next_start_key: str | None = Field(
        None, description="pass as `start_key` for the next page; null on the last page"
    )


class SmtpLogList(_ListEnvelope):
    data: list[SmtpLogRecord]


class SmtpLogOne(_Envelope):
    data: SmtpLogRecord


class FaxJobList(_ListEnvelope):
    data: list[FaxJob]


class FaxJobOne(_Envelope):
    data: FaxJobDetail


class InboundList(_ListEnvelope):
    data: list[InboundFaxRecord]


class InboundOne(_Envelope):
    data: InboundFaxRecord


class ErrorEnvelope(BaseModel):
    """Kazoo's error shape: `error` is the HTTP status as a string, `message` a short key."""

    data: dict[str, Any]
    error: str = Field(examples=["404"])
    message: str = Field(examples=["bad_identifier"])
    status: Literal["error"] = "error"
    request_id: str
    timestamp: datetime


class ResubmitAction(BaseModel):
    action: Literal["resubmit"]


class ResubmitEnvelope(BaseModel):
    """`{"data": {"action": "resubmit"}}`, as Kazoo clients send it."""

    data: ResubmitAction
