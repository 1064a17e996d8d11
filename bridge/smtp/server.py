"""The SMTP listener: aiosmtpd's protocol with our hooks, created in the app's own loop.

`FaxSMTP` (one per connection) owns the attempt being built; `FaxHandler` answers the hooks.
Every reply passes through `FaxSMTP.push`, so aiosmtpd's own refusals (size, sequence) are
worded like ours and land in the smtplog too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from aiosmtpd.smtp import MISSING, SMTP, Envelope, Session, syntax

from bridge import logsetup, metrics
from bridge.config import Config, split_host_port
from bridge.errors import ConfigError, StorageError
from bridge.login_throttle import LoginThrottle
from bridge.models import Outcome
from bridge.smtp.auth import Authenticator, faxbox_check, in_networks, throttled_reply
from bridge.smtp.budget import ByteBudget
from bridge.smtp.data import Data, read_data
from bridge.smtp.intake import Intake
from bridge.smtp.policy import (
    AUTH_REQUIRED_REPLY,
    STORAGE_FULL_REPLY,
    STORAGE_REPLY,
    Recipient,
    decide_recipient,
    rate_limit_reply,
)
from bridge.smtp.tls import server_context
from bridge.store import Attempt, Store, new_id
from bridge.store.smtplog import reply_text

log = logging.getLogger(__name__)


class FaxSMTP(SMTP):
    """One SMTP connection; tracks the transaction so every attempt is logged once."""

    def __init__(self, handler: FaxHandler, **kwargs: Any) -> None:
        self.session_id = new_id()
        self.attempt_id = new_id()  # the next attempt's; every log line of it carries it
        logsetup.bind_session(self.session_id, self.attempt_id)  # aiosmtpd logs from __init__
        super().__init__(handler, **kwargs)
        self.fax_handler = handler
        self.attempt: Attempt | None = None
        self.recipients: list[Recipient] = []
        self.pre_mail_refusals: list[str] = []
        self.had_mail = False
        self.raw_rcpt: str | None = None
        self.refused_mail_from: str | None = None
        self.tls: str | None = None
        self.in_data = False  # from DATA until its reply is sent
        self.auth_refusal: str | None = None  # the reply to send instead of aiosmtpd's 535
        self.refused_connection = False  # over smtp.max_connections: 421 and no session
        self.buffered_bytes = 0  # of smtp.max_buffered_mb, held for this message's intake
        smtp = handler.config.smtp
        self.size_reply = f"552 5.3.4 Message exceeds the size limit of {smtp.size_limit} bytes"
        if smtp.max_message_bytes is None:  # the limit follows from the documents' size
            self.size_reply += f" (documents up to {smtp.max_attachment_mb:g} MB once decoded)"

    def connection_made(self, transport: Any) -> None:
        first = self.transport is None
        if first:
            self.session_began()  # before aiosmtpd starts the session's task: it inherits
            peername = transport.get_extra_info("peername")
            peer = peername[0] if isinstance(peername, tuple) else None
            if refusal := self.fax_handler.connection_refusal(peer):
                self._refuse_connection(transport, peer, refusal)
                return
        super().connection_made(transport)
        ssl_object = transport.get_extra_info("ssl_object")
        if isinstance(ssl_object, ssl.SSLObject):
            self.tls = ssl_object.version()  # read now: a closing transport cannot tell
        if not first:
            return  # the STARTTLS upgrade of a connection we already set up
        self.fax_handler.session_opened(self)
        peer = _peer(self.session)
        auth = self.fax_handler.config.smtp.auth
        implicit_tls = transport.get_extra_info("ssl_object") is not None
        # AUTH in the clear only from networks the admin named (old scanners).
        self._auth_require_tls = not (implicit_tls or in_networks(peer, auth.plaintext_from))
        if implicit_tls:
            self.require_starttls = False

    async def smtp_AUTH(self, arg: str) -> None:
        throttle = self.fax_handler.authenticator.throttle
        if await asyncio.to_thread(throttle.address_throttled, _peer(self.session)):
            await self.push(throttled_reply(throttle.wait))
            return
        self.auth_refusal = None
        await super().smtp_AUTH(arg)

    async def smtp_RCPT(self, arg: str | None) -> None:
        # Keep the address as the client wrote it: aiosmtpd's parser drops "(212)" as an
        # RFC 5322 comment and strips source routes, both of which we must see.
        self.raw_rcpt = raw_rcpt_address(arg)
        await super().smtp_RCPT(arg)

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:
        """aiosmtpd's DATA, with our reader (bridge.smtp.data): bare LF normalised like
        Postfix, big reads, and RFC 3463 codes for what it refuses."""
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await self.push(self._no_recipient_reply())
            return
        if arg:
            await self.push("501 5.5.4 Syntax: DATA")
            return
        self.in_data = True
        try:
            await self.push("354 End data with <CR><LF>.<CR><LF>")
            data = await read_data(
                self._reader,
                size_limit=self.data_size_limit,
                max_line_octets=self.fax_handler.config.smtp.max_line_octets,
                on_progress=self._reset_timeout,
                spool_dir=self.fax_handler.config.storage.data_dir / "spool",
                before_loading=self._hold_buffer,
            )
            if data is None:
                return  # the client went away; connection_lost logs the attempt
            await self._end_of_data(data)
        finally:
            self.in_data = False
            if self.buffered_bytes:  # not handed to an intake (refused, or the client left)
                self.fax_handler.buffered.release(self.buffered_bytes)
                self.buffered_bytes = 0
        self._shut_down_if_idle()

    async def _hold_buffer(self, size: int) -> None:
        self.buffered_bytes = await self.fax_handler.buffered.acquire(size)

    async def _end_of_data(self, data: Data) -> None:
        assert self.envelope is not None
        refusal = None
        why = None
        if data.too_big:
            refusal = self.size_reply
        elif data.spool_error is not None:  # a full disk, or another storage fault
            refusal = STORAGE_FULL_REPLY if data.spool_full else STORAGE_REPLY
            why = data.spool_error
        elif data.long_line is not None:
            line = data.long_line
            refusal = (
                f"500 5.5.2 Line {line.number} of the message is {line.octets} octets long; "
                f"this server takes at most {self.fax_handler.config.smtp.max_line_octets} per line"
            )
        if refusal is not None:
            if self.attempt is not None:
                self.attempt.size = data.size
                self.attempt.refuse(refusal, why)
                self.end_transaction(Outcome.REJECTED)
            self._set_post_data_state()  # type: ignore[no-untyped-call]
            await self.push(refusal)
            return
        if data.bare_lf and self.attempt is not None:
            self.attempt.notes.append(
                f"{data.bare_lf} bare LF line ending(s) taken as CRLF, as Postfix's "
                "smtpd_forbid_bare_newline = normalize does"
            )
        self.envelope.content = self.envelope.original_content = data.content
        status = await self._call_handler_hook("DATA")
        self._set_post_data_state()  # type: ignore[no-untyped-call]
        await self.push("250 OK" if status is MISSING else status)

    def _no_recipient_reply(self) -> str:
        """DATA after every RCPT was refused: repeat the refusal that decided, not aiosmtpd's
        bare `503 Error: need RCPT command`."""
        if self.attempt is not None and self.attempt.reply:
            return f"554 5.5.1 No valid recipients: {reply_text(self.attempt.reply)}"
        return "503 5.5.1 Error: need RCPT command"

    # -- every reply ---------------------------------------------------------------------
    async def push(self, status: Any) -> None:
        text = status.decode() if isinstance(status, bytes) else str(status)
        if text.startswith("552 Error:"):  # aiosmtpd's size refusals (SIZE= and DATA)
            text = self.size_reply
        elif text.startswith("535 ") and self.auth_refusal:  # set by the Authenticator
            text, self.auth_refusal = self.auth_refusal, None
        else:
            text = with_enhanced_code(text)
        text = within_line_limit(text)
        if text[:1] in ("4", "5") and not text.startswith("421"):
            self._note_refusal(text)
        await super().push(text)
        if not text.startswith(("221", "421")):  # those hang up by themselves
            self._shut_down_if_idle()  # the reply that ended a transaction during shutdown

    def _note_refusal(self, reply: str) -> None:
        if self.attempt is None:
            if not self.had_mail:
                self.pre_mail_refusals.append(reply)
            return
        if reply == self.size_reply:
            # aiosmtpd refused DATA itself: the transaction is over.
            self.attempt.refuse(reply)
            self.end_transaction(Outcome.REJECTED)
        elif not self.attempt.reply or self.attempt.reply != reply:
            # RCPT refusals are noted by the handler; this catches the protocol's own.
            if not any(r.get("reply") == reply for r in self.attempt.recipients):
                self.attempt.refuse(reply)

    # -- shutting down -------------------------------------------------------------------
    @property
    def waiting_for_client(self) -> bool:
        """Mid-transaction and waiting for the client's next line (MAIL given, or in DATA)."""
        return self.attempt is not None

    @property
    def busy(self) -> bool:
        """A transaction is open, or its message is being taken in; shutdown waits for it."""
        return self.attempt is not None or self.in_data

    def _shut_down_if_idle(self) -> None:
        if self.fax_handler.closing and not self.busy:
            self.shut_down()

    def shut_down(self) -> None:
        """Say why and hang up (RFC 5321 §3.8: a server going down may send 421 at any time)."""
        transport = self.transport
        if not isinstance(transport, asyncio.WriteTransport) or transport.is_closing():
            return
        reply = f"421 4.3.2 {self.hostname} Service shutting down, try again later"
        if self.attempt is not None:
            self.attempt.refuse(reply, "the bridge shut down before the client finished")
        transport.write(reply.encode() + b"\r\n")
        transport.close()

    # -- transaction lifecycle -----------------------------------------------------------
    def trusted(self) -> bool:
        return in_networks(_peer(self.session), self.fax_handler.config.smtp.trusted_networks)

    def begin_transaction(self, session: Session, mail_from: str) -> Attempt:
        self.had_mail = True
        self.attempt = Attempt(
            id=self.attempt_id,
            session_id=self.session_id,
            peer=_peer(session),
            helo=session.host_name,
            tls=self.tls_version(),
            auth_user=_auth_user(session),
            mail_from=mail_from,
        )
        self.recipients = []
        return self.attempt

    def end_transaction(self, outcome: Outcome | None = None) -> None:
        """Log the open attempt unless DATA already did; forget it."""
        attempt, self.attempt = self.attempt, None
        self.recipients = []
        if attempt is None:
            return
        if outcome is None:
            accepted = any(r.get("accepted") for r in attempt.recipients)
            outcome = Outcome.ABORTED if accepted or not attempt.errors else Outcome.REJECTED
        attempt.outcome = outcome
        if outcome is Outcome.ABORTED and attempt.error is None:
            attempt.error = "the client ended the transaction before sending the message"
        self.fax_handler.log_later(attempt)
        self.next_attempt()

    def session_began(self) -> None:
        metrics.smtp_session()
        logsetup.bind_session(self.session_id, self.attempt_id)

    def next_attempt(self) -> None:
        """An attempt ended: log lines from here on belong to the next one."""
        self.attempt_id = new_id()
        logsetup.bind_attempt(self.attempt_id)

    def tls_version(self) -> str | None:
        return self.tls

    def _timeout_cb(self) -> None:
        """Say why before hanging up on an idle client, and log it."""
        seconds = self.fax_handler.config.smtp.timeout_s
        reply = f"421 4.4.2 {self.hostname} Idle for {seconds:g} seconds, closing connection"
        transport = self.transport
        if isinstance(transport, asyncio.WriteTransport) and not transport.is_closing():
            transport.write(reply.encode() + b"\r\n")
        if self.attempt is not None:
            self.attempt.refuse(reply)
        elif not self.had_mail:
            self.pre_mail_refusals.append(reply)
        super()._timeout_cb()  # type: ignore[no-untyped-call]

    def eof_received(self) -> bool | None:
        logsetup.bind_session(self.session_id, self.attempt_id)  # a transport callback
        return super().eof_received()

    def _refuse_connection(self, transport: Any, peer: str | None, reply: str) -> None:
        """Over a connection limit: one 421 instead of the greeting, logged, and hang up."""
        self.refused_connection = True
        log.warning("%s refused: %s", peer, reply)
        transport.write(reply.encode() + b"\r\n")
        transport.close()
        attempt = Attempt(
            id=self.attempt_id, session_id=self.session_id, peer=peer, outcome=Outcome.REJECTED
        )
        attempt.refuse(reply)
        self.fax_handler.log_later(attempt)

    def connection_lost(self, error: Exception | None) -> None:
        if self.refused_connection:
            return  # never a session: aiosmtpd's side was not started
        logsetup.bind_session(self.session_id, self.attempt_id)  # a transport callback
        self.end_transaction()
        if not self.had_mail and self.pre_mail_refusals:
            attempt = Attempt(
                id=self.attempt_id,
                session_id=self.session_id,
                peer=_peer(self.session),
                helo=self.session.host_name if self.session else None,
                tls=self.tls_version(),
                auth_user=_auth_user(self.session) if self.session else None,
                mail_from=self.refused_mail_from,
                outcome=Outcome.REJECTED,
            )
            for reply in self.pre_mail_refusals:
                attempt.refuse(reply)
            self.fax_handler.log_later(attempt)
        super().connection_lost(error)
        self.fax_handler.session_closed(self)  # last: its attempt is already queued for the log


def raw_rcpt_address(arg: str | None) -> str | None:
    """`TO:<addr> PARAMS` → `addr` exactly as sent (None when it has no angle brackets)."""
    if not arg:
        return None
    text = arg.strip()
    if text[:3].upper() == "TO:":
        text = text[3:].strip()
    if not text.startswith("<"):
        return None
    end = text.find(">")
    return text[1:end] if end > 0 else None


# RFC 3463 codes for aiosmtpd's own replies that carry none, by reply code.
_ENHANCED = {
    "454": "4.7.0",
    "500": "5.5.2",
    "501": "5.5.4",
    "502": "5.5.1",
    "503": "5.5.1",
    "504": "5.5.4",
    "530": "5.7.0",
    "550": "5.0.0",
    "552": "5.3.4",
    "553": "5.1.3",
    "554": "5.0.0",
}


# RFC 5321 §4.5.3.1.5: a reply line is at most 512 octets, its CRLF included.
MAX_REPLY_LINE_OCTETS = 512


def within_line_limit(reply: str) -> str:
    """Every line of `reply` cut to 510 octets (+ CRLF), at a character boundary, marked `...`.

    Replies are written to stay short (long lists are summarised where they are made); this is
    the backstop that keeps a strict client from dropping the connection over a long reason.
    """
    lines = reply.split("\r\n")
    limit = MAX_REPLY_LINE_OCTETS - 2
    fitted = []
    for line in lines:
        data = line.encode("utf-8")
        if len(data) > limit:
            line = data[: limit - 3].decode("utf-8", errors="ignore") + "..."
        fitted.append(line)
    return "\r\n".join(fitted)


def with_enhanced_code(reply: str) -> str:
    """`503 Error: need MAIL command` → `503 5.5.1 Error: need MAIL command`."""
    code, _, text = reply.partition(" ")
    enhanced = _ENHANCED.get(code)
    if enhanced is None or not text:
        return reply
    first = text.split(" ", 1)[0]
    if first.count(".") == 2 and first.replace(".", "").isdigit():
        return reply  # it has one
    return f"{code} {enhanced} {text}"


def _peer(session: Session | None) -> str | None:
    if session is None:
        return None
    peer = session.peer
    if isinstance(peer, tuple | list) and peer:
        return str(peer[0])
    return str(peer) if peer else None


def _auth_user(session: Session) -> str | None:
    data = session.auth_data
    if data is None:
        return None
    login = getattr(data, "login", data)
    return login.decode() if isinstance(login, bytes) else str(login)


class FaxHandler:
    """aiosmtpd handler hooks; each returns the reply line to send."""

    def __init__(self, config: Config, store: Store, intake: Intake) -> None:
        self.config = config
        auth = config.smtp.auth
        throttle = LoginThrottle(
            store,
            "smtp",
            max_failures=auth.max_failures,
            address_max_failures=auth.address_max_failures,
            window_s=auth.failure_window,
        )
        self.authenticator = Authenticator(auth, throttle)
        self.store = store
        self.intake = intake
        self._log_tasks: set[asyncio.Task[Any]] = set()  # smtplog writes, intakes
        # asyncio.Server.wait_closed() does not wait for open connections (Python 3.11), so
        # the handler keeps the live sessions itself for a graceful shutdown.
        self.sessions: set[FaxSMTP] = set()
        self.closing = False
        self._all_closed = asyncio.Event()
        self.buffered = ByteBudget(config.smtp.max_buffered_mb * 1024 * 1024)

    async def handle_MAIL(
        self, server: FaxSMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        server.end_transaction()  # a stale, unlogged transaction (should not happen)
        if self.config.smtp.auth.required and not session.authenticated and not server.trusted():
            server.refused_mail_from = address
            return AUTH_REQUIRED_REPLY
        server.begin_transaction(session, address)
        if shortfall := await asyncio.to_thread(self._space_shortfall, options):
            assert server.attempt is not None
            server.attempt.refuse(STORAGE_FULL_REPLY, shortfall)
            server.end_transaction(Outcome.REJECTED)
            return STORAGE_FULL_REPLY
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 2.1.0 Sender OK"

    def _space_shortfall(self, options: list[str]) -> str | None:
        """Why the disk cannot take this message (as Postfix checks queue_minfree), or None."""
        storage = self.config.storage
        declared = next(
            (int(o[5:]) for o in options if o.upper().startswith("SIZE=") and o[5:].isdigit()), 0
        )
        needed = storage.min_free_bytes + declared
        try:
            free = self.store.db.free_bytes()
        except OSError as exc:
            return f"cannot read the free space under {storage.data_dir}: {exc.strerror}"
        if free >= needed:
            return None
        declared_note = f" and the client declared SIZE={declared}" if declared else ""
        return (
            f"{free // (1024 * 1024)} MB free under {storage.data_dir}; storage.min_free_mb is "
            f"{storage.min_free_mb}{declared_note}"
        )

    async def handle_RCPT(
        self, server: FaxSMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        attempt = server.attempt
        assert attempt is not None  # aiosmtpd refuses RCPT before MAIL
        address = server.raw_rcpt or address
        accepted = len(server.recipients)
        decision = decide_recipient(
            self.config, envelope.mail_from, address, accepted, self._user_check(session)
        )
        attempt.recipients.append(decision.log_entry(address))
        # The faxbox an admin filters by, refused or not (the smtplog API is per faxbox).
        attempt.faxbox = attempt.faxbox or decision.faxbox
        if decision.recipient is None:
            attempt.refuse(decision.reply)
            return decision.reply
        if not decision.recipient.forward_to and (
            limited := await self._rate_limited(
                server, decision.recipient, envelope.mail_from or ""
            )
        ):
            attempt.recipients[-1].update(accepted=False, reply=limited)
            attempt.refuse(limited)
            return limited
        server.recipients.append(decision.recipient)
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return decision.reply

    async def _rate_limited(self, server: FaxSMTP, recipient: Recipient, sender: str) -> str | None:
        limits = recipient.faxbox.rate_limit
        if not (limits.per_sender_per_hour or limits.per_faxbox_per_hour):
            return None
        since = datetime.now(UTC) - timedelta(hours=1)
        box = recipient.faxbox.name
        by_sender = by_faxbox = 0
        if limits.per_sender_per_hour:
            by_sender = await asyncio.to_thread(self.store.jobs.count_since, since, sender=sender)
            by_sender += len(server.recipients)
        if limits.per_faxbox_per_hour:
            by_faxbox = await asyncio.to_thread(self.store.jobs.count_since, since, faxbox=box)
            by_faxbox += sum(1 for r in server.recipients if r.faxbox.name == box)
        return rate_limit_reply(recipient.faxbox, sender, by_sender, by_faxbox)

    def _user_check(self, session: Session) -> Callable[[str], str | None]:
        """For an authenticated session: which faxboxes this user may send through."""
        return faxbox_check(self.authenticator.users, _auth_user(session))

    async def handle_DATA(self, server: FaxSMTP, session: Session, envelope: Envelope) -> str:
        attempt, recipients = server.attempt, list(server.recipients)
        assert attempt is not None
        server.attempt = None  # the intake logs it from here on
        server.recipients = []
        held, server.buffered_bytes = server.buffered_bytes, 0  # the intake gives it back
        raw = envelope.original_content or b""
        # The intake runs as a task of its own: aiosmtpd cancels the session when the client
        # hangs up or times out, and a message half converted must neither vanish without an
        # smtplog row nor leave files behind. Like Postfix after end-of-data, it is taken all
        # the same; a client that sends it again is answered as a repeat (bridge.smtp.repeats).
        intake = asyncio.get_running_loop().create_task(self._take(attempt, raw, recipients))
        self._log_tasks.add(intake)
        intake.add_done_callback(self._log_tasks.discard)
        if held:
            intake.add_done_callback(lambda _done: self.buffered.release(held))
        try:
            return await asyncio.shield(intake)
        except asyncio.CancelledError:
            log.warning("%s: the client left before the reply; finishing the message", attempt.id)
            intake.add_done_callback(lambda done: self._unseen(attempt, done))
            raise
        finally:
            server.next_attempt()

    async def _take(self, attempt: Attempt, raw: bytes, recipients: list[Recipient]) -> str:
        try:
            reply = await self.intake.accept(attempt, raw, recipients)
            metrics.attempt_ended(attempt)
            return reply
        except Exception:
            log.exception("%s failed while taking in the message", attempt.id)
            attempt.outcome = Outcome.REJECTED
            reply = attempt.refuse(STORAGE_REPLY, "internal error while taking in the message")
            self.log_later(attempt)
            return reply

    def _unseen(self, attempt: Attempt, intake: asyncio.Task[str]) -> None:
        """Note on the smtplog row that the client never saw its reply."""
        if intake.cancelled() or intake.exception() is not None:
            return
        note = f"the client hung up or timed out before the reply; it never saw: {intake.result()}"
        task = asyncio.get_running_loop().create_task(self._add_note(attempt.id, note))
        self._log_tasks.add(task)
        task.add_done_callback(self._log_tasks.discard)

    async def _add_note(self, attempt_id: str, note: str) -> None:
        try:
            await asyncio.to_thread(self.store.smtplog.add_note, attempt_id, note)
        except StorageError as exc:
            log.error("%s: cannot note that the client left: %s", attempt_id, exc)

    async def handle_RSET(self, server: FaxSMTP, session: Session, envelope: Envelope) -> str:
        server.end_transaction()
        return "250 2.0.0 Reset OK"

    async def handle_exception(self, error: Exception) -> str:
        log.exception("SMTP session error", exc_info=error)
        return STORAGE_REPLY

    # -- logging attempts that end outside DATA ------------------------------------------
    def log_later(self, attempt: Attempt) -> None:
        metrics.attempt_ended(attempt)
        task = asyncio.get_running_loop().create_task(self._log(attempt))
        self._log_tasks.add(task)
        task.add_done_callback(self._log_tasks.discard)

    async def _log(self, attempt: Attempt) -> None:
        try:
            await asyncio.to_thread(self.store.smtplog.insert, attempt)
        except StorageError as exc:
            log.error("%s could not be logged: %s", attempt.id, exc)

    async def drain(self) -> None:
        if self._log_tasks:
            await asyncio.gather(*self._log_tasks, return_exceptions=True)

    # -- sessions, for a graceful shutdown -----------------------------------------------
    def connection_refusal(self, peer: str | None) -> str | None:
        """The 421 for a connection over `smtp.max_connections` (all, or from one address)."""
        limits = self.config.smtp
        if len(self.sessions) >= limits.max_connections:
            return (
                f"421 4.7.0 {limits.hostname} has {len(self.sessions)} connections open, its "
                "limit; try again later"
            )
        if peer is not None:
            mine = sum(1 for s in self.sessions if _peer(s.session) == peer)
            if mine >= limits.max_connections_per_client:
                return (
                    f"421 4.7.0 {limits.hostname} has {mine} connections open from your "
                    "address, its limit; try again later"
                )
        return None

    def session_opened(self, session: FaxSMTP) -> None:
        self.sessions.add(session)
        self._all_closed.clear()
        if self.closing:
            session.shut_down()  # accepted just before the listener closed

    def session_closed(self, session: FaxSMTP) -> None:
        self.sessions.discard(session)
        if not self.sessions:
            self._all_closed.set()

    async def shut_down(self, grace_s: float) -> None:
        """Hang up on idle sessions now; let open transactions finish within `grace_s`.

        Each busy session hangs up by itself right after the reply that ends its
        transaction (see `FaxSMTP.push`). After the grace period, sessions still waiting for
        their client are cut off (the attempt is logged as aborted); a message already being
        taken in is given one more grace period, since cutting it off could store the fax
        without the client ever hearing the 250, so the client would send it again.
        """
        self.closing = True
        for session in list(self.sessions):
            if not session.busy:
                session.shut_down()
        if not self.sessions:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._all_closed.wait(), grace_s)
        for session in list(self.sessions):
            if session.waiting_for_client:
                log.warning(
                    "%s: closing a session still open after %g s", session.session_id, grace_s
                )
                session.shut_down()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._all_closed.wait(), grace_s)


async def start_smtp_servers(config: Config, handler: FaxHandler) -> list[asyncio.Server]:
    """Listen in the running loop (aiosmtpd's threaded Controller is for tests only).

    One plain listener (with STARTTLS when a certificate is configured) and, when
    `smtp.tls.implicit_listen` is set, one that speaks TLS from the first byte (port 465).
    """
    loop = asyncio.get_running_loop()
    smtp = config.smtp
    context = server_context(smtp.tls)

    def factory(starttls_context: ssl.SSLContext | None) -> Callable[[], FaxSMTP]:
        def make() -> FaxSMTP:
            return FaxSMTP(
                handler,
                hostname=smtp.hostname,
                ident="faxbridge ESMTP",
                data_size_limit=smtp.size_limit,
                timeout=smtp.timeout_s,
                tls_context=starttls_context,
                require_starttls=bool(starttls_context and smtp.tls.require),
                authenticator=handler.authenticator,
                auth_require_tls=True,
                loop=loop,
            )

        return make

    host, port = split_host_port(smtp.listen)
    starttls = context if smtp.tls.starttls else None
    servers = [await loop.create_server(factory(starttls), host=host, port=port)]
    if smtp.tls.implicit_listen:
        if context is None:
            raise ConfigError("smtp.tls.implicit_listen needs smtp.tls.cert and smtp.tls.key")
        host, port = split_host_port(smtp.tls.implicit_listen)
        servers.append(await loop.create_server(factory(None), host=host, port=port, ssl=context))
    return servers
