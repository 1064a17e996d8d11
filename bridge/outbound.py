"""A job as the worker hands it to a provider, and which provider fax a job may adopt."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bridge.models import CoverNote, JobStatus, Lookup, OutboundFax, RedialPolicy, StatusUpdate
from bridge.store import Store


def outbound_fax(
    store: Store, job: Any, callback_url: str, header: str | None = None
) -> OutboundFax:
    cover = None
    if job.cover:
        data = dict(job.cover)
        data["date"] = datetime.fromisoformat(data["date"])
        cover = CoverNote(**data)
    return OutboundFax(
        job_id=job.id,
        to=job.to_number,
        caller_id=job.caller_id,
        document=store.db.path(job.document_path),
        pages=job.document_pages,
        cover=cover,
        cover_pdf=store.db.path(job.cover_path) if job.cover_path else None,
        callback_url=callback_url,
        round=job.round,
        redial=RedialPolicy.from_dict(job.redial),
        header=header,
    )


def adoptable(job: Any, lookup: Lookup) -> StatusUpdate | None:
    """The provider's fax this job should adopt instead of sending again, if any.

    One of this round in any state (the send went through before the crash or timeout), or of
    an earlier round that did not fail (a refusal of ours while the provider went on sending).
    """
    for fax in lookup.faxes:
        same_round = fax.round is None or fax.round == job.round
        if same_round or fax.status not in (JobStatus.FAILED, JobStatus.CANCELLED):
            return fax
    return None
