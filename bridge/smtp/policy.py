"""Who may fax where: the RCPT-time decisions, as pure functions returning SMTP replies.

Deciding at RCPT (not after DATA) means a refused sender never uploads a 20 MB scan for
nothing, and a client learns about each bad recipient separately.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass

from bridge.config import Config, FaxboxConfig
from bridge.numbers import NumberError, parse_number, refusal_reason
from bridge.own_mail import is_own_local_part, postmaster_targets

NULL_SENDER_REPLY = "550 5.7.1 Mail from the null sender is not faxed"
AUTO_SUBMITTED_REPLY = "550 5.7.1 Automatic replies are not faxed"
TOO_MANY_RECIPIENTS_REPLY = "452 4.5.3 Too many recipients"
STORAGE_REPLY = "451 4.3.0 Temporary local problem, please try again later"
# Postfix's words for the same condition (queue_minfree), with a sentence for the person.
STORAGE_FULL_REPLY = (
    "452 4.3.1 Insufficient system storage: the fax bridge's disk is full, please try again later"
)
AUTH_REQUIRED_REPLY = "530 5.7.0 Authentication required"


@dataclass(frozen=True)
class Recipient:
    """An accepted RCPT: where the fax goes and through which faxbox."""

    address: str
    local_part: str
    faxbox: FaxboxConfig
    e164: str
    preview: bool = False  # preview+<number>@…: the sender gets the fax by mail, nothing is sent
    # postmaster@ / abuse@ (bridge.own_mail): never faxed, the message is forwarded here.
    forward_to: tuple[str, ...] = ()


@dataclass(frozen=True)
class RcptDecision:
    reply: str
    recipient: Recipient | None = None
    faxbox: str | None = None
    original_number: str | None = None
    translated_number: str | None = None

    @property
    def accepted(self) -> bool:
        return self.recipient is not None

    def log_entry(self, address: str) -> dict[str, object]:
        """The smtplog `recipients` entry (`preview` only on preview addresses)."""
        entry: dict[str, object] = {
            "address": address,
            "original_number": self.original_number,
            "translated_number": self.translated_number,
            "faxbox": self.faxbox,
            "accepted": self.accepted,
            "reply": self.reply,
        }
        if self.recipient is not None and self.recipient.preview:
            entry["preview"] = True
        if self.recipient is not None and self.recipient.forward_to:
            entry["forwarded_to"] = list(self.recipient.forward_to)
        return entry


def rate_limit_reply(
    faxbox: FaxboxConfig, sender: str, sender_count: int, faxbox_count: int
) -> str | None:
    """`450 4.7.1` when one more fax would exceed a per-hour limit (0 = unlimited)."""
    limits = faxbox.rate_limit
    if limits.per_sender_per_hour and sender_count >= limits.per_sender_per_hour:
        return (
            f"450 4.7.1 {sender} has sent {sender_count} faxes in the last hour; the limit is "
            f"{limits.per_sender_per_hour} per hour, please try again later"
        )
    if limits.per_faxbox_per_hour and faxbox_count >= limits.per_faxbox_per_hour:
        return (
            f"450 4.7.1 Faxbox {faxbox.name} has sent {faxbox_count} faxes in the last hour; "
            f"the limit is {limits.per_faxbox_per_hour} per hour, please try again later"
        )
    return None


def is_null_sender(sender: str | None) -> bool:
    return sender is None or sender.strip() in ("", "<>")


def sender_allowed(sender: str, faxbox: FaxboxConfig) -> bool:
    address = sender.strip().lower()
    return any(fnmatch.fnmatchcase(address, glob.lower()) for glob in faxbox.allowed_senders)


def split_address(address: str) -> tuple[str, str] | None:
    """`local@domain` → (local, domain); None for anything else (routes, no @, empty parts)."""
    text = address.strip()
    if text.startswith("<") and text.endswith(">"):
        text = text[1:-1]
    if not text or text.startswith("@") or ":" in text:
        return None  # source routes like @a,@b:user@c are never relayed
    local, at, domain = text.rpartition("@")
    if not at or not local or not domain:
        return None
    return local, domain.lower().rstrip(".")


def _faxbox_name(config: Config, address: str) -> str | None:
    """The faxbox an address belongs to by its domain, for the smtplog of a refusal."""
    parts = split_address(address)
    faxbox = config.faxbox_for_domain(parts[1]) if parts else None
    return faxbox.name if faxbox else None


def own_mailbox(config: Config, address: str) -> RcptDecision | None:
    """postmaster@ / abuse@ of a fax domain: taken for forwarding, or refused when there is
    nowhere to forward to; None for every other address."""
    parts = split_address(address)
    if parts is None or not is_own_local_part(parts[0]):
        return None
    local, domain = parts
    faxbox = config.faxbox_for_domain(domain)
    if faxbox is None:
        return None
    targets = postmaster_targets(config, faxbox)
    if not targets:
        return RcptDecision(
            f"550 5.1.1 <{address}>: no postmaster address is configured for {domain} "
            "(smtp.postmaster_to)",
            faxbox=faxbox.name,
        )
    return RcptDecision(
        f"250 2.1.5 Recipient OK, forwarded to the {local.lower()} of {domain}",
        recipient=Recipient(address, local, faxbox, "", forward_to=tuple(targets)),
        faxbox=faxbox.name,
    )


def decide_recipient(
    config: Config,
    sender: str | None,
    address: str,
    accepted_so_far: int,
    user_may_use: Callable[[str], str | None] = lambda _faxbox: None,
) -> RcptDecision:
    if accepted_so_far >= config.smtp.max_recipients:
        return RcptDecision(TOO_MANY_RECIPIENTS_REPLY, faxbox=_faxbox_name(config, address))
    if (own := own_mailbox(config, address)) is not None:
        return own  # before the sender checks: bounces (null sender) must reach the postmaster
    if is_null_sender(sender):
        return RcptDecision(NULL_SENDER_REPLY, faxbox=_faxbox_name(config, address))
    assert sender is not None
    parts = split_address(address)
    if parts is None:
        return RcptDecision(f'550 5.1.3 "{address}" is not a valid fax address')
    local, domain = parts
    prefix = config.smtp.preview_prefix
    preview = bool(prefix) and local.lower().startswith((prefix or "").lower())
    if preview:
        local = local[len(prefix or "") :]
    faxbox = config.faxbox_for_domain(domain)
    if faxbox is None:
        return RcptDecision(f"550 5.7.1 Relaying denied: {domain} is not a fax domain here")
    if refusal := user_may_use(faxbox.name):
        return RcptDecision(refusal, faxbox=faxbox.name)
    if not sender_allowed(sender, faxbox):
        return RcptDecision(
            f"550 5.7.1 {sender} may not send faxes through faxbox {faxbox.name}",
            faxbox=faxbox.name,
        )
    try:
        destination = parse_number(local, faxbox.default_region)
    except NumberError:
        return RcptDecision(
            f'550 5.1.3 "{local}" is not a valid fax number',
            faxbox=faxbox.name,
            original_number=local,
        )
    if refusal := refusal_reason(destination, faxbox):
        return RcptDecision(
            f"550 5.7.1 Faxing to {destination.e164} is not allowed for faxbox {faxbox.name}: "
            f"{refusal}",
            faxbox=faxbox.name,
            original_number=local,
            translated_number=destination.e164,
        )
    what = "preview of a fax" if preview else "fax"
    return RcptDecision(
        f"250 2.1.5 Recipient OK, {what} to {destination.e164}",
        recipient=Recipient(address, local, faxbox, destination.e164, preview=preview),
        faxbox=faxbox.name,
        original_number=local,
        translated_number=destination.e164,
    )
