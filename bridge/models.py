"""Value objects shared by every layer: statuses, reasons and what flows between them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path


class JobStatus(StrEnum):
    """A fax job's life; each state is what actually happened, never a merge of two."""

    QUEUED = "queued"
    SUBMITTING = "submitting"
    SUBMITTED = "submitted"
    SENDING = "sending"
    DELIVERED = "delivered"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATUSES

    @property
    def rank(self) -> int:
        """Order of progress, so an out-of-order callback never moves a job backwards."""
        return _RANK[self]


FINAL_STATUSES = frozenset({JobStatus.DELIVERED, JobStatus.FAILED, JobStatus.CANCELLED})
_RANK = {
    JobStatus.QUEUED: 0,
    JobStatus.SUBMITTING: 1,
    JobStatus.SUBMITTED: 2,
    JobStatus.SENDING: 3,
    JobStatus.DELIVERED: 4,
    JobStatus.FAILED: 4,
    JobStatus.CANCELLED: 4,
}


class FailureReason(StrEnum):
    """One vocabulary for every provider; the provider's own code is kept beside it."""

    BUSY = "busy"
    NO_ANSWER = "no_answer"
    BAD_NUMBER = "bad_number"
    DISCONNECTED = "disconnected"
    BLOCKED_DESTINATION = "blocked_destination"
    FILE_ERROR = "file_error"
    ON_HOLD = "on_hold"
    REJECTED = "rejected"
    PROVIDER_ERROR = "provider_error"
    EXPIRED = "expired"
    UNKNOWN = "unknown"

    @property
    def in_words(self) -> str:
        return _REASON_WORDS[self]


_REASON_WORDS = {
    FailureReason.BUSY: "the line was busy",
    FailureReason.NO_ANSWER: "nobody answered",
    FailureReason.BAD_NUMBER: "the number is not a working fax number",
    FailureReason.DISCONNECTED: "the call was disconnected during transmission",
    FailureReason.BLOCKED_DESTINATION: "the destination is blocked",
    FailureReason.FILE_ERROR: "the provider could not process the document",
    FailureReason.ON_HOLD: "the provider put the fax on hold (account or credit problem)",
    FailureReason.REJECTED: "the provider refused the fax",
    FailureReason.PROVIDER_ERROR: "the fax provider could not be reached",
    FailureReason.EXPIRED: "the fax could not be sent in time",
    FailureReason.UNKNOWN: "the provider reported an unknown error",
}


class Outcome(StrEnum):
    """How one SMTP attempt ended (smtplog `outcome`)."""

    ACCEPTED = "accepted"
    REJECTED = "rejected"
    ABORTED = "aborted"


class CoverPolicy(StrEnum):
    AUTO = "auto"
    ALWAYS = "always"
    NEVER = "never"


@dataclass(frozen=True)
class CoverNote:
    """What a cover page says; providers with native cover fields get these values."""

    to_name: str
    to_number: str
    from_name: str
    from_number: str
    subject: str
    notes: str
    date: datetime
    pages: int  # pages of the whole fax, cover included


@dataclass(frozen=True)
class OutboundFax:
    """One job as the worker hands it to a provider."""

    job_id: str
    to: str  # E.164
    caller_id: str | None
    document: Path  # the attachments, merged, without cover page
    pages: int  # pages of `document`
    cover: CoverNote | None
    cover_pdf: Path | None  # the bridge's own rendering of `cover`
    callback_url: str
    round: int = 0  # 0 for the first send; `jobs retry` / resubmit start a new round

    @property
    def send_key(self) -> str:
        """Idempotency key: the same for a re-send after a crash, new for a retry round."""
        return self.job_id if self.round == 0 else f"{self.job_id}-r{self.round}"

    @property
    def total_pages(self) -> int:
        return self.pages + (1 if self.cover_pdf is not None else 0)


@dataclass(frozen=True)
class SendResult:
    provider_fax_id: str
    status: JobStatus = JobStatus.SUBMITTED
    raw_status: str | None = None


@dataclass(frozen=True)
class StatusUpdate:
    """A provider's word on one outbound fax, in the common model."""

    provider_fax_id: str
    status: JobStatus
    reason: FailureReason | None = None
    provider_code: str | None = None
    provider_text: str | None = None
    pages: int | None = None
    job_id: str | None = None  # when the provider echoes our id back
    at: datetime | None = None


@dataclass(frozen=True)
class InboundFax:
    """A fax a provider received for one of our numbers."""

    provider_fax_id: str
    from_number: str
    to_number: str
    pages: int | None = None
    received: datetime | None = None
    remote_station_id: str | None = None
    document: bytes | None = None  # when the callback carries the file itself
    raw: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class CallbackRequest:
    """A provider's HTTP callback, independent of the web framework."""

    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes
    content_type: str
    form: dict[str, str] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)


@dataclass(frozen=True)
class CallbackResult:
    updates: list[StatusUpdate] = field(default_factory=list)
    inbound: list[InboundFax] = field(default_factory=list)
    reply_body: str = "OK"
