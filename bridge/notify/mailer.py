"""Mail transports: one small interface the mail outbox sends through, and its backends.

Modelled on Django's e-mail backends: `Mailer.send` hands one message to one envelope and returns
where it went, or raises `MailDeliveryError` saying whether trying again can help — the only thing
the outbox worker has to decide. Backends:

- `MaildirMailer`, the embedded default: files in a Maildir, nothing to run;
- `SMTPRelayMailer`: a relay over SMTP (aiosmtplib), plain, STARTTLS or implicit TLS, with AUTH;
- `MemoryMailer`: a list in memory, for tests of the code that uses a mailer.

`send` takes either an `EmailMessage` or the bytes `as_smtp_bytes` made of one, so the outbox can
store the exact bytes once and every retry sends the same message (same Message-ID).
"""

from __future__ import annotations

import asyncio
import email.policy
import hashlib
import logging
import os
import ssl
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from types import TracebackType

import aiosmtplib

from bridge.config import MailConfig, RelayConfig
from bridge.errors import BridgeError, ConfigError

log = logging.getLogger(__name__)

# Codes a relay answers with for reasons of its own configuration rather than of this message.
_NOT_ABOUT_THE_MESSAGE = frozenset({530})


class MailDeliveryError(BridgeError):
    """The message was not handed over. `permanent`: the same message will never go through (the
    relay said 5xx); otherwise try again later. `reply` is the relay's reply (`550 5.1.1 user
    unknown`) or what went wrong locally (connection refused, certificate, disk)."""

    def __init__(self, reply: str, *, permanent: bool) -> None:
        super().__init__(reply)
        self.reply = reply
        self.permanent = permanent


def as_smtp_bytes(message: EmailMessage) -> bytes:
    """The message as it goes on the wire: CRLF line ends, RFC 2047 headers, 7-bit bodies."""
    return message.as_bytes(policy=email.policy.SMTP)


class Mailer(ABC):
    """Hands messages to the next hop. Implementations are safe to share between tasks."""

    @abstractmethod
    async def send(
        self, message: EmailMessage | bytes, *, sender: str, recipients: list[str]
    ) -> str:
        """Deliver `message` from envelope `sender` ("" = null sender) to `recipients`.

        Returns a short "where it went" for the outbox record. Raises `MailDeliveryError` and
        nothing else. Once this returns, the message is handed over and must not be sent again.
        """

    async def aclose(self) -> None:  # noqa: B027 - a no-op default, like Django's close()
        """Release connections; the mailer is not used afterwards."""

    async def __aenter__(self) -> Mailer:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


def _wire_bytes(message: EmailMessage | bytes) -> bytes:
    return message if isinstance(message, bytes) else as_smtp_bytes(message)


def _check_recipients(recipients: list[str]) -> None:
    if not recipients:
        raise MailDeliveryError("no recipients given", permanent=True)


class MaildirMailer(Mailer):
    """Writes each message as one file into `<path>/new` (Maildir, created on first use).

    The file holds the SMTP bytes unchanged (CRLF line ends, which Dovecot, mutt and Python's
    `mailbox` all read), preceded by `Return-Path:` and `X-Envelope-To:` lines, the way a local
    delivery agent records the envelope that otherwise would be lost. The file and its directory
    entry are fsynced before `send` returns, so "sent" survives a power cut.

    Delivery is idempotent: the file is named after a digest of its bytes, and the outbox sends
    a message's stored bytes unchanged on every try. A bridge killed between writing the file
    and recording "sent" sends the mail again after its restart; that second delivery finds the
    file (in `new/`, or in `cur/` once a reader has seen it) and writes nothing.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    async def send(
        self, message: EmailMessage | bytes, *, sender: str, recipients: list[str]
    ) -> str:
        _check_recipients(recipients)
        trace = f"Return-Path: <{sender}>\r\nX-Envelope-To: {', '.join(recipients)}\r\n"
        data = trace.encode("utf-8") + _wire_bytes(message)
        try:
            return await asyncio.to_thread(self._deliver, data)
        except OSError as exc:
            raise MailDeliveryError(
                f"cannot write to Maildir {self.path}: {exc.strerror or exc}", permanent=False
            ) from exc

    def _deliver(self, data: bytes) -> str:
        for sub in ("tmp", "new", "cur"):
            (self.path / sub).mkdir(mode=0o700, parents=True, exist_ok=True)
        name = f"faxbridge-{hashlib.sha256(data).hexdigest()[:40]}"
        final = self.path / "new" / name
        earlier = self._delivered(name)
        if earlier is not None:
            log.info("mail already in the Maildir as %s: not written again", earlier)
            return str(earlier)
        temporary = self.path / "tmp" / f"{name}.{os.getpid()}"
        with temporary.open("wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        try:
            os.link(temporary, final)  # atomic, and refuses to replace a file already there
        except FileExistsError:
            pass
        finally:
            temporary.unlink()
        directory = os.open(self.path / "new", os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
        return str(final)

    def _delivered(self, name: str) -> Path | None:
        """Where a message of this name already is: `new/name`, or `cur/name:2,<flags>`."""
        if (self.path / "new" / name).exists():
            return self.path / "new" / name
        for seen in (self.path / "cur").glob(f"{name}*"):
            if seen.name == name or seen.name.startswith(f"{name}:"):
                return seen
        return None


class SMTPRelayMailer(Mailer):
    """Sends through a relay, one connection per message (the outbox sends rarely and in bursts it
    retries anyway; a held connection would only go stale).

    TLS is verified against the system CAs, or `tls_context` when given (a private CA). Failures
    before the relay has seen the message — connect, greeting, TLS, EHLO, AUTH, timeouts — are
    transient: fixing the relay or the credentials lets the same mail through. Refusals of the
    message itself (MAIL, RCPT, DATA) follow the reply code: 5xx permanent, 4xx transient.
    When the relay takes the message for some recipients and refuses others, the mail counts as
    sent (retrying would duplicate it) and the refusals are named in the returned text.
    """

    def __init__(
        self,
        relay: RelayConfig,
        *,
        tls_context: ssl.SSLContext | None = None,
        local_hostname: str | None = None,
    ) -> None:
        if relay.tls and relay.starttls:
            raise ConfigError(
                "mail.smtp: `tls` (implicit TLS, usually port 465) and `starttls` (usually port "
                "587) exclude each other; set only one."
            )
        self.relay = relay
        self._where = f"{relay.host}:{relay.port}"
        self._local_hostname = local_hostname
        self._tls_context = tls_context
        if tls_context is None and (relay.tls or relay.starttls):
            self._tls_context = ssl.create_default_context()

    async def send(
        self, message: EmailMessage | bytes, *, sender: str, recipients: list[str]
    ) -> str:
        _check_recipients(recipients)
        data = _wire_bytes(message)
        client = aiosmtplib.SMTP(
            hostname=self.relay.host,
            port=self.relay.port,
            use_tls=self.relay.tls,
            start_tls=self.relay.starttls,  # False really means no STARTTLS, not "opportunistic"
            tls_context=self._tls_context,
            local_hostname=self._local_hostname,
            timeout=self.relay.timeout_s,
        )
        try:
            await self._open(client)
            refused, reply = await self._transfer(client, sender, recipients, data)
        finally:
            await _close(client)
        result = f"250 {_flat(reply)} [{self._where}]"
        if refused:
            log.warning("relay %s refused some recipients: %s", self._where, refused)
            result += "; refused: " + "; ".join(
                f"{_flat(f'{r.code} {r.message}')} <{address}>" for address, r in refused.items()
            )
        return result

    async def _open(self, client: aiosmtplib.SMTP) -> None:
        try:
            await client.connect()
            if self.relay.username:
                await client.login(self.relay.username, self.relay.password or "")
        except aiosmtplib.SMTPResponseException as exc:
            raise MailDeliveryError(
                f"relay {self._where}: {_flat(f'{exc.code} {exc.message}')}", permanent=False
            ) from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise MailDeliveryError(
                f"relay {self._where}: {_describe(exc)}", permanent=False
            ) from exc

    async def _transfer(
        self, client: aiosmtplib.SMTP, sender: str, recipients: list[str], data: bytes
    ) -> tuple[dict[str, aiosmtplib.SMTPResponse], str]:
        try:
            return await client.sendmail(sender, recipients, data)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            replies = "; ".join(
                f"{_flat(f'{r.code} {r.message}')} <{r.recipient}>" for r in exc.recipients
            )
            permanent = all(_permanent(r.code) for r in exc.recipients)
            raise MailDeliveryError(replies, permanent=permanent) from exc
        except aiosmtplib.SMTPResponseException as exc:
            reply = _flat(f"{exc.code} {exc.message}")
            raise MailDeliveryError(reply, permanent=_permanent(exc.code)) from exc
        except ValueError as exc:  # an address aiosmtplib cannot put on the wire
            raise MailDeliveryError(f"invalid address: {exc}", permanent=True) from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise MailDeliveryError(
                f"relay {self._where}: {_describe(exc)}", permanent=False
            ) from exc


def _permanent(code: int) -> bool:
    return 500 <= code < 600 and code not in _NOT_ABOUT_THE_MESSAGE


async def _close(client: aiosmtplib.SMTP) -> None:
    """QUIT politely; a failing QUIT after a 250 must not turn a sent mail into an error."""
    if not client.is_connected:
        return
    try:
        await client.quit()
    except (aiosmtplib.SMTPException, OSError, TimeoutError):
        client.close()


def _flat(text: str) -> str:
    return " ".join(text.split())


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError) and not str(exc):
        return "timed out"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate not trusted: {exc.verify_message}"
    text = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return _flat(str(text))


@dataclass(frozen=True)
class SentMail:
    sender: str
    recipients: list[str]
    data: bytes


@dataclass
class MemoryMailer(Mailer):
    """Keeps sent mail in `outbox` (Django's locmem backend). Errors put in `fail_with` are raised
    by the next sends, one each, to play a relay outage in tests of the mail worker."""

    outbox: list[SentMail] = field(default_factory=list)
    fail_with: list[MailDeliveryError] = field(default_factory=list)

    async def send(
        self, message: EmailMessage | bytes, *, sender: str, recipients: list[str]
    ) -> str:
        _check_recipients(recipients)
        if self.fail_with:
            raise self.fail_with.pop(0)
        self.outbox.append(SentMail(sender, list(recipients), _wire_bytes(message)))
        return f"memory #{len(self.outbox)}"


def make_mailer(
    config: MailConfig,
    *,
    tls_context: ssl.SSLContext | None = None,
    local_hostname: str | None = None,
) -> Mailer:
    """The transport `mail.transport` names. `local_hostname` is the EHLO name for a relay (pass
    `smtp.hostname`; without it aiosmtplib asks the resolver for this machine's FQDN)."""
    if config.transport == "smtp":
        return SMTPRelayMailer(config.smtp, tls_context=tls_context, local_hostname=local_hostname)
    return MaildirMailer(config.maildir)
