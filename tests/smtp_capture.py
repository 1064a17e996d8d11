"""A capture SMTP server for tests: a real aiosmtpd on a free loopback port that keeps what it got.

Use it wherever the bridge sends mail (reports, inbound faxes, the outbox worker): as a plain relay,
one that requires STARTTLS, implicit TLS or AUTH, one that refuses with a chosen reply at MAIL,
RCPT or DATA, or one that goes away and comes back on the same port (relay-outage tests). The
refusal attributes may be changed while it runs.

    def test_x(smtp_capture, tls_cert):   # fixtures: import them from tests.smtp_capture
        relay = smtp_capture(tls_cert=tls_cert, require_starttls=True, users={"u": "p"})
        ...                                       # send to relay.host, relay.port
        assert relay.envelopes[0].rcpt_tos == ["a@example.com"]

`SelfSignedCert` makes a certificate for localhost / 127.0.0.1 at test time (`cryptography`) and
gives a client context that trusts exactly that certificate, so clients keep verifying.
"""

from __future__ import annotations

import asyncio
import datetime
import email
import email.policy
import ipaddress
import socket
import ssl
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

SERVER_NAME = "capture.localhost"


@dataclass(frozen=True)
class CapturedMail:
    """One accepted transaction, as the server saw it."""

    mail_from: str  # "" for the null sender
    rcpt_tos: list[str]
    data: bytes  # the DATA bytes as received (CRLF line ends)
    tls: bool
    auth_user: str | None

    @property
    def message(self) -> EmailMessage:
        return email.message_from_bytes(self.data, policy=email.policy.default)


@dataclass(frozen=True)
class SelfSignedCert:
    cert_file: Path
    key_file: Path

    @classmethod
    def create(cls, directory: Path, common_name: str = "localhost") -> SelfSignedCert:
        """An EC certificate valid for DNS:localhost and IP:127.0.0.1, its own CA."""
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(
                x509.SubjectAlternativeName(
                    [
                        x509.DNSName("localhost"),
                        x509.IPAddress(ipaddress.IPv4Address("127.0.0.1")),
                    ]
                ),
                critical=False,
            )
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .sign(key, hashes.SHA256())
        )
        directory.mkdir(parents=True, exist_ok=True)
        cert_file, key_file = directory / "cert.pem", directory / "key.pem"
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_file.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return cls(cert_file, key_file)

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context

    def client_context(self) -> ssl.SSLContext:
        """Verifies the server (hostname included) against this certificate only."""
        return ssl.create_default_context(cafile=str(self.cert_file))


class _Controller(Controller):
    """Sets `auth_required` after construction: aiosmtpd warns (an error under
    `filterwarnings = error`) when AUTH is required without TLS, which is what plain-relay
    tests want."""

    def __init__(self, *args: Any, auth_required: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._auth_required = auth_required

    def factory(self) -> SMTP:
        server = SMTP(self.handler, **self.SMTP_kwargs)
        server._auth_required = self._auth_required
        return server


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


class CaptureServer:
    """aiosmtpd in a thread on `host:port`; `envelopes` collects what it accepted.

    `refuse_mail`, `refuse_rcpt`, `refuse_data`: a whole reply line ("550 5.1.1 user unknown",
    "451 4.3.0 try later") given at that stage; `refuse_recipients` does it per address.
    `users` turns on AUTH (LOGIN and PLAIN; `exclude_mechanisms` to offer only one); AUTH is
    offered without TLS unless `auth_require_tls`. `tls_cert` enables STARTTLS (or implicit TLS
    with `implicit_tls`); `require_starttls` refuses mail before it.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        tls_cert: SelfSignedCert | None = None,
        require_starttls: bool = False,
        implicit_tls: bool = False,
        users: dict[str, str] | None = None,
        auth_required: bool = False,
        auth_require_tls: bool = False,
        exclude_mechanisms: Iterable[str] = (),
        refuse_mail: str | None = None,
        refuse_rcpt: str | None = None,
        refuse_data: str | None = None,
        refuse_recipients: dict[str, str] | None = None,
    ) -> None:
        if (require_starttls or implicit_tls) and tls_cert is None:
            raise ValueError("TLS options need tls_cert")
        self.host = host
        self.port = port or free_port(host)
        self.users = dict(users or {})
        self.refuse_mail = refuse_mail
        self.refuse_rcpt = refuse_rcpt
        self.refuse_data = refuse_data
        self.refuse_recipients = dict(refuse_recipients or {})
        self.envelopes: list[CapturedMail] = []
        self.logins: list[tuple[str, str]] = []  # (mechanism, username) of successful AUTH
        self.failed_logins: list[tuple[str, str]] = []
        self._options: dict[str, Any] = {"server_hostname": SERVER_NAME}
        if tls_cert is not None:
            context = tls_cert.server_context()
            if implicit_tls:
                self._options["ssl_context"] = context
            else:
                self._options.update(tls_context=context, require_starttls=require_starttls)
        if users is not None:
            self._options.update(
                authenticator=self._authenticate,
                auth_required=auth_required,
                auth_require_tls=auth_require_tls,
                auth_exclude_mechanism=list(exclude_mechanisms),
            )
        self._controller: Controller | None = None

    @property
    def running(self) -> bool:
        return self._controller is not None

    def start(self) -> CaptureServer:
        """Listen (again) on the same port."""
        if self._controller is None:
            controller = _Controller(self, hostname=self.host, port=self.port, **self._options)
            controller.start()
            self._controller = controller
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> CaptureServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    async def wait_for(self, count: int, timeout_s: float = 10) -> list[CapturedMail]:
        """Wait until at least `count` mails arrived (for tests of background workers)."""
        deadline = time.monotonic() + timeout_s
        while len(self.envelopes) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(self.envelopes)} of {count} mails arrived")
            await asyncio.sleep(0.02)
        return self.envelopes

    # aiosmtpd handler hooks (run in the server's thread)

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if isinstance(auth_data, LoginPassword):
            login = auth_data.login.decode("utf-8", "replace")
            password = auth_data.password.decode("utf-8", "replace")
            if login in self.users and self.users[login] == password:
                self.logins.append((mechanism, login))
                return AuthResult(success=True, auth_data=auth_data)
            self.failed_logins.append((mechanism, login))
        # handled=False so aiosmtpd sends the 535 (handled=True would leave the client hanging).
        return AuthResult(success=False, handled=False)

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if self.refuse_mail:
            return self.refuse_mail
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        refusal = self.refuse_recipients.get(address) or self.refuse_rcpt
        if refusal:
            return refusal
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.refuse_data:
            return self.refuse_data
        auth = session.auth_data
        self.envelopes.append(
            CapturedMail(
                mail_from=envelope.mail_from or "",
                rcpt_tos=list(envelope.rcpt_tos),
                data=bytes(envelope.original_content or envelope.content),
                tls=server.transport.get_extra_info("ssl_object") is not None,
                auth_user=auth.login.decode() if isinstance(auth, LoginPassword) else None,
            )
        )
        return f"250 2.0.0 Ok: queued as {len(self.envelopes)}"


@pytest.fixture
def tls_cert(tmp_path: Path) -> SelfSignedCert:
    return SelfSignedCert.create(tmp_path / "tls")


@pytest.fixture
def smtp_capture() -> Iterator[Callable[..., CaptureServer]]:
    """Factory: `smtp_capture(**CaptureServer options)` → a started server, stopped afterwards."""
    servers: list[CaptureServer] = []

    def start(**options: Any) -> CaptureServer:
        server = CaptureServer(**options).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
