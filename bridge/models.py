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
    UNKNOWN = "unknown"  # the bridge stopped waiting for the provider's final word

    @property
    def is_final(self) -> bool:
        """No more work for the bridge (a late final word may still replace `unknown`)."""
        return self in FINAL_STATUSES

    @property
    def is_settled(self) -> bool:
        """Final, and nothing the provider says later changes it."""
        return self in SETTLED_STATUSES

    @property
    def rank(self) -> int:
        """Order of progress, so an out-of-order callback never moves a job backwards."""
        return _RANK[self]


SETTLED_STATUSES = frozenset({JobStatus.DELIVERED, JobStatus.FAILED, JobStatus.CANCELLED})
FINAL_STATUSES = SETTLED_STATUSES | {JobStatus.UNKNOWN}
_RANK = {
    JobStatus.QUEUED: 0,
    JobStatus.SUBMITTING: 1,
    JobStatus.SUBMITTED: 2,
    JobStatus.SENDING: 3,
    JobStatus.UNKNOWN: 4,  # below the settled states: the provider's late word still counts
    JobStatus.DELIVERED: 5,
    JobStatus.FAILED: 5,
    JobStatus.CANCELLED: 5,
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
class Redial:
    """How often one line-level cause (busy, no answer) is dialled, and how far apart."""

    tries: int = 1  # dial attempts in all, the first included
    interval_s: float = 300.0


@dataclass(frozen=True)
class RedialPolicy:
    """A faxbox's redial policy, frozen into each job when its mail is accepted."""

    busy: Redial = field(default_factory=lambda: Redial(3, 300.0))
    no_answer: Redial = field(default_factory=lambda: Redial(2, 600.0))

    def for_reason(self, reason: FailureReason | None) -> Redial | None:
        """The rule for a failure that is the line's doing; None for every other failure."""
        if reason is FailureReason.BUSY:
            return self.busy
        if reason is FailureReason.NO_ANSWER:
            return self.no_answer
        return None

    def as_dict(self) -> dict[str, list[float]]:
        return {
            "busy": [self.busy.tries, self.busy.interval_s],
            "no_answer": [self.no_answer.tries, self.no_answer.interval_s],
        }

    @classmethod
    def from_dict(cls, data: dict[str, list[float]] | None) -> RedialPolicy:
        if not data:
            return cls()
        busy, no_answer = data.get("busy"), data.get("no_answer")
        return cls(
            busy=Redial(int(busy[0]), float(busy[1])) if busy else Redial(3, 300.0),
            no_answer=Redial(int(no_answer[0]), float(no_answer[1]))
            if no_answer
            else Redial(2, 600.0),
        )


@dataclass(frozen=True)
class FaxReference:
    """Our mark on a fax at the provider: the job and the round it was sent in.

    Adapters write `str(reference)` into whatever the provider echoes back (a tag, comment,
    title or custom field) so callbacks, listings and reconciliation find the job again.
    """

    job_id: str
    round: int = 0

    def __str__(self) -> str:
        return self.job_id if self.round == 0 else f"{self.job_id}-r{self.round}"


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
    redial: RedialPolicy = field(default_factory=RedialPolicy)
    header: str | None = None  # the faxbox's name for the page header / station (TSI) line

    @property
    def reference(self) -> FaxReference:
        return FaxReference(self.job_id, self.round)

    @property
    def send_key(self) -> str:
        """Idempotency key: the same for a re-send after a crash, new for a retry round."""
        return str(self.reference)

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
    round: int | None = None  # the round our echoed reference names, when it names one
    tries: int | None = None  # dial attempts the provider itself made (native redial)


@dataclass(frozen=True)
class Lookup:
    """What a provider holds for one job, asked before anything is sent again.

    `faxes` are the provider's faxes carrying this job's reference (any round), newest first.
    `certain` is False when the API cannot search by our reference (or only part of the
    history), so an empty `faxes` proves nothing and a re-send may duplicate.
    """

    faxes: tuple[StatusUpdate, ...] = ()
    certain: bool = True
    detail: str = ""


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
class UnclassifiedCallback:
    """A callback the adapter authenticated but could not read as news about a fax.

    Kept in the store (`callback_log`) and shown by `explain`, never acknowledged and dropped in
    silence: the provider will not send it again.
    """

    reason: str  # why it could not be classified, a sentence
    event: str | None = None  # the provider's event name, if it gave one
    provider_fax_id: str | None = None
    job_id: str | None = None


@dataclass(frozen=True)
class CallbackResult:
    updates: list[StatusUpdate] = field(default_factory=list)
    inbound: list[InboundFax] = field(default_factory=list)
    reply_body: str = "OK"
    unclassified: list[UnclassifiedCallback] = field(default_factory=list)
