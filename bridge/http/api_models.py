"""Response models of the Kazoo-compatible API: the records (DESIGN.md §5, §6) and envelopes.

They exist for the OpenAPI document and to check every answer against it: a record that does
not fit its model is a bug found here, not by a client. Fields a record may lack are optional,
so an old row never turns a read into a server error.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

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
    auth_token: str = Field(description="the `X-Auth-Token` the request came with, as Kazoo")


class _ListEnvelope(_Envelope):
    page_size: int = Field(description="number of records in `data`")
    start_key: str | None = Field(
        None, description="the key this page began at (its first record); absent when empty"
    )
    next_start_key: str | None = Field(
        None, description="pass as `start_key` for the next page; absent on the last page"
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
    auth_token: str = Field(description="the `X-Auth-Token` the request came with, as Kazoo")


class EmailNotifications(BaseModel):
    model_config = ConfigDict(extra="allow")
    send_to: str | list[str] | None = Field(
        None, description="who gets the delivery report (the first address)"
    )


class Notifications(BaseModel):
    model_config = ConfigDict(extra="allow")
    email: EmailNotifications | None = None


class FaxChanges(BaseModel):
    """Kazoo merges the request's `data` over the copied fax: these fields take effect."""

    model_config = ConfigDict(extra="allow")
    to_number: str | None = Field(
        None, max_length=64, description="send the copy here instead (checked as a mail would be)"
    )
    to_name: str | None = Field(None, max_length=200)
    notifications: Notifications | None = None


class ForwardChanges(FaxChanges):
    to_number: str = Field(max_length=64, description="the number to forward the fax to")


def _lift_action(value: Any) -> Any:
    """Also take `{"data": {"action": …}}`, the shape this API documented before it followed
    cb_faxes.erl (which reads `action` beside `data`, not inside it)."""
    if isinstance(value, dict) and "action" not in value and isinstance(value.get("data"), dict):
        data = dict(value["data"])
        if "action" in data:
            return {**value, "action": data.pop("action"), "data": data}
    return value


class ResubmitRequest(BaseModel):
    """`{"action": "resubmit", "data": {…}}`: copy an outbox fax into a new pending job."""

    model_config = ConfigDict(extra="allow")
    action: Literal["resubmit"]
    data: FaxChanges = FaxChanges()

    @model_validator(mode="before")
    @classmethod
    def _lift(cls, value: Any) -> Any:
        return _lift_action(value)


class ForwardRequest(BaseModel):
    """`{"action": "forward", "data": {"to_number": …}}`: send a received fax on."""

    model_config = ConfigDict(extra="allow")
    action: Literal["forward"]
    data: ForwardChanges

    @model_validator(mode="before")
    @classmethod
    def _lift(cls, value: Any) -> Any:
        return _lift_action(value)
