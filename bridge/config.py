"""Configuration: pydantic models over a YAML file, with ${ENV} interpolation.

Every error names the key path (``faxboxes.0.domains``) so an admin can fix it without reading code.
"""

from __future__ import annotations

import ipaddress
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from bridge.errors import ConfigError
from bridge.models import CoverPolicy, Redial, RedialPolicy

DEFAULT_CONFIG_NAME = "config.yaml"
EXAMPLE_CONFIG_NAME = "config.example.yaml"
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNIT_S = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def _seconds(value: Any) -> Any:
    """`90`, `"90s"`, `"30m"`, `"24h"`, `"2d"` → seconds (a float)."""
    if isinstance(value, str):
        match = _DURATION.match(value.lower())
        if not match:
            raise ValueError(f"{value!r} is not a duration (like 90s, 30m, 24h or 2d)")
        return float(match.group(1)) * _UNIT_S[match.group(2)]
    return value


# A length of time: seconds as a number, or a number with s, m, h or d.
Duration = Annotated[float, BeforeValidator(_seconds), Field(ge=0)]


def _host_port(value: str) -> str:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ValueError(f"{value!r} is not HOST:PORT")
    return value


def split_host_port(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    return host.strip("[]"), int(port)


def _networks(values: list[str]) -> list[str]:
    for value in values:
        ipaddress.ip_network(value, strict=False)
    return values


class TLSConfig(_Strict):
    cert: Path | None = None
    key: Path | None = None
    starttls: bool = True
    require: bool = False
    implicit_listen: str | None = None
    min_version: Literal["1.0", "1.1", "1.2", "1.3"] = "1.2"


class SMTPUser(_Strict):
    username: str
    password_hash: str
    faxboxes: list[str] = ["*"]


class AuthConfig(_Strict):
    required: bool = False
    plaintext_from: list[str] = []
    users: list[SMTPUser] = []
    # Failed logins throttle the (user, address) pair that failed (so one mistyped password
    # on a scanner does not lock out the office behind the same NAT); `address_max_failures`
    # of any users from one address throttle the address (password spraying).
    max_failures: int = Field(5, ge=1)
    address_max_failures: int = Field(50, ge=1)
    failure_window: Duration = 600.0

    _check_networks = field_validator("plaintext_from")(_networks)


class SMTPConfig(_Strict):
    listen: str = "127.0.0.1:2525"
    hostname: str = "fax.localhost"
    # The limit admins think in: the attached documents of one message together, decoded
    # (a 30 MB scan). The e-mail carrying them is a third larger (base64); the message size
    # limit (advertised as SIZE) follows from this unless max_message_bytes is set.
    max_attachment_mb: float = Field(30, gt=0)
    max_message_bytes: int | None = Field(None, gt=0)
    # Longest line (with its CRLF) taken in a message. RFC 5321 says 1000; scanners and
    # scripts send longer ones, which Postfix accepts too, so the default is generous.
    max_line_octets: int = Field(65_536, ge=1000)
    max_recipients: int = Field(50, gt=0)
    # Open SMTP connections, in all and from one address (Postfix: smtpd_client_connection_
    # count_limit 50); past either a client gets 421 4.7.0 and is logged.
    max_connections: int = Field(200, gt=0)
    max_connections_per_client: int = Field(50, gt=0)
    # Message bytes held in memory at once by messages being taken in (the rest wait in their
    # spool files); a message bigger than this still goes through, alone.
    max_buffered_mb: int = Field(256, gt=0)
    # A client that had no reply in time sends the message again, same Message-ID and body:
    # within this window such a repeat is answered 250 and not faxed twice ("0" turns it off).
    duplicate_window: Duration = 86_400.0
    timeout_s: float = Field(300, gt=0)
    shutdown_grace_s: float = Field(30, gt=0)  # SIGTERM: how long open transactions may take
    trusted_networks: list[str] = []
    tls: TLSConfig = TLSConfig()
    auth: AuthConfig = AuthConfig()
    # Mail to <prefix><number>@<fax domain> is not faxed: the sender gets the fax it would be.
    preview_prefix: str | None = Field("preview+", min_length=1)
    # Where mail to postmaster@ and abuse@ of every fax domain goes (RFC 5321 §4.5.1, RFC 2142):
    # accepted, never faxed, forwarded through the mail outbox. Empty: the faxbox's `admin`;
    # with neither, such mail is refused (550 5.1.1) and check-config warns.
    postmaster_to: list[str] = []

    _check_listen = field_validator("listen")(_host_port)
    _check_networks = field_validator("trusted_networks")(_networks)

    @property
    def max_attachment_bytes(self) -> int:
        return int(self.max_attachment_mb * 1024 * 1024)

    @property
    def size_limit(self) -> int:
        """Bytes of one e-mail as sent: base64 (4/3, plus CRLF every 76 characters) of the
        largest documents allowed, and 2 MiB for headers, text and an HTML body."""
        if self.max_message_bytes is not None:
            return self.max_message_bytes
        return -(-self.max_attachment_bytes * 4 * 78 // (3 * 76)) + 2 * 1024 * 1024


class WorkerConfig(_Strict):
    concurrency: int = Field(8, gt=0)
    max_attempts: int = Field(5, gt=0)
    backoff_s: float = Field(30, ge=0)
    max_backoff_s: float = Field(1800, ge=0)
    # A claimed send is reserved this long, renewed every third of it while in flight; a dead
    # peer's sends are taken over within one lease, a dead local process's at once.
    lease_s: float = Field(30, gt=0)
    poll_interval_s: float = Field(1.0, gt=0)
    # A job with no final word from its provider this long after it was accepted ends as
    # `unknown` (or `failed`, reason expired, if it never reached the provider).
    give_up_after: Duration = 86_400.0
    sweep_interval_s: float = Field(30, gt=0)  # how often expiry and the purge look for work


class HTTPConfig(_Strict):
    listen: str = "127.0.0.1:8025"
    public_url: str = "http://127.0.0.1:8025"
    api_tokens: list[str] = []
    # /metrics and the API docs (/docs, /redoc, /openapi.json) want an X-Auth-Token from
    # api_tokens, as the /v2 API does, unless opened here (a port only Prometheus reaches).
    open_metrics: bool = False
    open_docs: bool = False

    _check_listen = field_validator("listen")(_host_port)

    @field_validator("public_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")


class LoggingConfig(_Strict):
    """`logging:` — text for people at a terminal, json for a log collector."""

    format: Literal["text", "json"] = "text"
    level: Literal["debug", "info", "warning", "error"] = "info"


class DocumentsConfig(_Strict):
    """`documents:` — the converters outside Python, and whether archives are opened.

    `libreoffice` and `ghostscript` are program paths, `auto` to look for them, or null to
    go without (such attachments are then refused, saying which converter is missing).
    `uno_python` is a Python that can `import uno` (Debian: python3-uno) to drive LibreOffice.
    """

    libreoffice: str | None = "auto"
    uno_python: str = "auto"
    office_processes: int = Field(1, ge=1, le=8)  # one soffice each, ~100-200 MB apiece
    convert_timeout_s: float = Field(60, gt=0)  # per document; a hung LibreOffice is restarted
    # The document pool's workers (bridge.documents.pool): CPU seconds one task may use,
    # address space of a worker, and wall-clock time after which a task is taken for hung
    # (its worker is killed and the message answered 451). 0 turns a limit off.
    worker_cpu_s: float = Field(60, ge=0)
    worker_memory_mb: int = Field(2048, ge=0)
    worker_timeout_s: float = Field(300, gt=0)
    ghostscript: str | None = "auto"
    unpack_archives: bool = False  # ZIP attachments: faxed file by file, one level deep


class StorageConfig(_Strict):
    url: str = "sqlite:///./var/faxbridge.db"
    data_dir: Path = Path("./var")
    # Like Postfix's queue_minfree: below this much free space under data_dir (plus the SIZE a
    # client declares) new mail gets 452 4.3.1 and /readyz fails, before the disk is full.
    min_free_mb: int = Field(100, ge=0)
    retention_days: int = Field(30, gt=0)
    # Every database call gives up long before an SMTP client would (then: 451, try later).
    connect_timeout_s: float = Field(5, gt=0)
    statement_timeout_s: float = Field(10, ge=0)  # 0: none

    @property
    def min_free_bytes(self) -> int:
        return self.min_free_mb * 1024 * 1024


class RelayConfig(_Strict):
    host: str = "127.0.0.1"
    port: int = 25
    starttls: bool = False
    tls: bool = False
    username: str | None = None
    password: str | None = None
    timeout_s: float = 30


class MailConfig(_Strict):
    from_: str = Field("Fax Bridge <fax-noreply@example.com>", alias="from")
    transport: Literal["maildir", "smtp"] = "maildir"
    maildir: Path = Path("./var/mail")
    smtp: RelayConfig = RelayConfig()
    max_attempts: int = Field(10, gt=0)
    backoff_s: float = Field(30, ge=0)
    # A mail being sent is reserved this long (more than the relay's timeout_s); after a crash
    # it is sent again, byte for byte with the same Message-ID, once the lease is over.
    lease_s: float = Field(60, gt=0)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class _ProviderBase(_Strict):
    base_url: str | None = None
    status_poll_s: float = Field(60, gt=0)
    timeout_s: float = Field(30, gt=0)
    callback_token: str | None = None
    # How long a fax this provider no longer knows stays unaccounted for before its job ends
    # as `unknown`; None: the adapter's own default (it knows how long the provider retries).
    forgotten_grace_s: Duration | None = None


class SimulatorConfig(_ProviderBase):
    type: Literal["simulator"]
    delay_s: float = Field(2, ge=0)
    # false: behave like a provider that cannot reach the bridge (only polling sees progress)
    callbacks: bool = True


class HelloFaxConfig(_ProviderBase):
    type: Literal["hellofax"]
    username: str
    password: str
    account_guid: str


class FaxPlusConfig(_ProviderBase):
    type: Literal["faxplus"]
    access_token: str
    user_id: str = "self"
    client_id: str | None = None


class KazooConfig(_ProviderBase):
    type: Literal["kazoo"]
    account_id: str
    auth_token: str | None = None
    api_key: str | None = None


class DropboxSignConfig(_ProviderBase):
    type: Literal["dropboxsign"]
    api_key: str
    test_mode: bool = False


class MFaxConfig(_ProviderBase):
    type: Literal["mfax"]
    api_key: str
    # Documo's fax history (the look-up before any re-send) needs the account's id; without
    # it the bridge learns it from the first fax it sends, or cannot tell.
    account_id: str | None = None


class TelnyxConfig(_ProviderBase):
    type: Literal["telnyx"]
    api_key: str  # an API v2 key (Mission Control Portal → API Keys), sent as a Bearer token
    connection_id: str  # the Programmable Fax Application's id
    # Mission Control Portal → Keys & Credentials → Public Key (base64 Ed25519): webhooks are
    # refused unless `telnyx-signature-ed25519` verifies with it.
    public_key: str


ProviderConfig = Annotated[
    SimulatorConfig
    | HelloFaxConfig
    | FaxPlusConfig
    | KazooConfig
    | DropboxSignConfig
    | MFaxConfig
    | TelnyxConfig,
    Field(discriminator="type"),
]


class RedialRule(_Strict):
    tries: int = Field(ge=1, le=10)  # dial attempts in all, the first included
    interval: Duration = 300.0


class RedialConfig(_Strict):
    """Redials for the causes that are the line's doing, never the provider's."""

    busy: RedialRule = RedialRule(tries=3, interval=300)
    no_answer: RedialRule = RedialRule(tries=2, interval=600)


class RateLimit(_Strict):
    per_sender_per_hour: int = Field(0, ge=0)
    per_faxbox_per_hour: int = Field(0, ge=0)


class ReportsConfig(_Strict):
    to_sender: bool = True
    cc: list[str] = []
    attach_fax: bool = True


class InboundConfig(_Strict):
    numbers: list[str] = []
    email_to: list[str] = []
    format: Literal["pdf", "tiff"] = "pdf"
    # Fields: {from} {number} {to} {to_number} {faxbox} {pages} {received:%Y%m%d-%H%M%S} {ext}
    filename_template: str = "fax-{from}-{received:%Y%m%d-%H%M%S}.{ext}"
    subject_template: str = "Fax from {number} ({pages} pages)"

    @field_validator("numbers")
    @classmethod
    def _e164(cls, value: list[str]) -> list[str]:
        import phonenumbers

        out = []
        for number in value:
            try:
                parsed = phonenumbers.parse(number, None)
            except phonenumbers.NumberParseException as exc:
                raise ValueError(f"{number!r} is not an E.164 number (+CC…)") from exc
            out.append(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164))
        return out


def _regexes(value: list[str] | None) -> list[str] | None:
    for pattern in value or []:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"bad regular expression {pattern!r}: {exc}") from exc
    return value


class SenderOverride(_Strict):
    """Cover-page settings for some senders of a faxbox (a scanner's address, say)."""

    senders: list[str] = Field(min_length=1)  # globs on the envelope sender
    cover_page: CoverPolicy | None = None
    ignore_body_patterns: list[str] | None = None

    _check_patterns = field_validator("ignore_body_patterns")(_regexes)


class FaxboxConfig(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    domains: list[str] = Field(min_length=1)
    provider: str
    caller_id: str | None = None
    default_region: str = "US"
    allowed_senders: list[str] = ["*"]
    # ISO 3166 regions (`US`, `CA`) the faxbox may dial; None: its default region only. A bare
    # calling code (`1`) is still read, but admits every country sharing it (check-config warns).
    allowed_countries: list[str | int] | None = None
    allow_premium: bool = False
    cover_page: CoverPolicy = CoverPolicy.AUTO
    ignore_body_patterns: list[str] = []
    sender_overrides: list[SenderOverride] = []  # first match wins
    max_pages: int = Field(200, gt=0)
    rate_limit: RateLimit = RateLimit()
    redial: RedialConfig = RedialConfig()
    # Name on the page header / station line where the provider lets us set it (Kazoo).
    fax_header: str | None = Field(None, max_length=50)
    # Remove each fax and its files from the provider once its report (or inbound mail) is
    # sent: for offices that must not leave health records with a third party.
    delete_after_delivery: bool = False
    admin: str | None = None
    reports: ReportsConfig = ReportsConfig()
    inbound: InboundConfig = InboundConfig()

    @field_validator("domains")
    @classmethod
    def _lower_domains(cls, value: list[str]) -> list[str]:
        return [d.strip().lower().rstrip(".") for d in value]

    @field_validator("default_region")
    @classmethod
    def _region(cls, value: str) -> str:
        import phonenumbers

        region = value.upper()
        if region not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"{value!r} is not a region phonenumbers knows (ISO 3166 code)")
        return region

    @field_validator("allowed_countries", mode="before")
    @classmethod
    def _countries(cls, value: Any) -> Any:
        import phonenumbers

        if not isinstance(value, list):
            return value
        out: list[str | int] = []
        for item in value:
            if isinstance(item, bool):  # YAML 1.1 reads an unquoted NO (Norway) as false
                raise ValueError("write the region in quotes: YAML reads an unquoted NO as false")
            if isinstance(item, int) or (
                isinstance(item, str) and item.strip().lstrip("+").isdigit()
            ):
                code = int(str(item).strip().lstrip("+"))
                if not phonenumbers.region_codes_for_country_code(code):
                    raise ValueError(f"{item!r} is not a country calling code")
                out.append(code)
                continue
            region = str(item).strip().upper()
            if region not in phonenumbers.SUPPORTED_REGIONS:
                raise ValueError(f"{item!r} is not a region phonenumbers knows (ISO 3166 code)")
            out.append(region)
        return out

    _check_patterns = field_validator("ignore_body_patterns")(_regexes)

    def redial_policy(self) -> RedialPolicy:
        """The `redial:` settings as the value each job carries from its acceptance on."""
        busy, no_answer = self.redial.busy, self.redial.no_answer
        return RedialPolicy(
            busy=Redial(busy.tries, busy.interval),
            no_answer=Redial(no_answer.tries, no_answer.interval),
        )


class Config(_Strict):
    smtp: SMTPConfig = SMTPConfig()
    worker: WorkerConfig = WorkerConfig()
    http: HTTPConfig = HTTPConfig()
    storage: StorageConfig = StorageConfig()
    mail: MailConfig = MailConfig()
    logging: LoggingConfig = LoggingConfig()
    documents: DocumentsConfig = DocumentsConfig()
    providers: dict[str, ProviderConfig] = {}
    faxboxes: list[FaxboxConfig] = []

    @model_validator(mode="after")
    def _cross_check(self) -> Config:
        seen_domains: dict[str, str] = {}
        names: set[str] = set()
        for index, box in enumerate(self.faxboxes):
            if box.name in names:
                raise ValueError(f"faxboxes.{index}.name: {box.name!r} is used twice")
            names.add(box.name)
            if box.provider not in self.providers:
                known = ", ".join(sorted(self.providers)) or "none"
                raise ValueError(
                    f"faxboxes.{index}.provider: {box.provider!r} is not under providers: "
                    f"(configured: {known})"
                )
            for domain in box.domains:
                if domain in seen_domains:
                    raise ValueError(
                        f"faxboxes.{index}.domains: {domain!r} already belongs to faxbox "
                        f"{seen_domains[domain]!r}"
                    )
                seen_domains[domain] = box.name
        return self

    def faxbox(self, name: str) -> FaxboxConfig:
        for box in self.faxboxes:
            if box.name == name:
                return box
        raise KeyError(name)

    def faxbox_for_domain(self, domain: str) -> FaxboxConfig | None:
        domain = domain.lower().rstrip(".")
        for box in self.faxboxes:
            if domain in box.domains:
                return box
        return None


def _interpolate(node: Any, path: str) -> Any:
    if isinstance(node, dict):
        return {k: _interpolate(v, f"{path}.{k}" if path else str(k)) for k, v in node.items()}
    if isinstance(node, list):
        return [_interpolate(v, f"{path}.{i}") for i, v in enumerate(node)]
    if isinstance(node, str):

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in os.environ:
                raise ConfigError(
                    f"{path}: environment variable {name} is not set (the config refers to "
                    f"${{{name}}})."
                )
            return os.environ[name]

        return _ENV_REF.sub(replace, node)
    return node


def _describe(exc: ValidationError, source: str) -> str:
    problems = []
    for error in exc.errors():
        location = ".".join(str(p) for p in error["loc"] if not str(p).startswith("function-"))
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown key"
        problems.append(f"{location}: {message}" if location else message)
    return f"{source} is not a valid faxbridge configuration: " + "; ".join(problems) + "."


def parse_config(data: Any, source: str = "the configuration") -> Config:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source} must be a YAML mapping of sections (smtp:, faxboxes: …).")
    try:
        return Config.model_validate(_interpolate(data, ""))
    except ValidationError as exc:
        raise ConfigError(_describe(exc, source)) from exc


def resolve_config_path(path: str | os.PathLike[str] | None) -> Path:
    if path:
        return Path(path)
    if env := os.environ.get("FAXBRIDGE_CONFIG"):
        return Path(env)
    default = Path(DEFAULT_CONFIG_NAME)
    # In a fresh checkout, as `make run` does: the example, until a config.yaml exists.
    if not default.exists() and Path(EXAMPLE_CONFIG_NAME).exists():
        return Path(EXAMPLE_CONFIG_NAME)
    return default


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Load and validate the config from -c, else $FAXBRIDGE_CONFIG, else ./config.yaml (else
    ./config.example.yaml, in a checkout that has no config.yaml yet)."""
    resolved = resolve_config_path(path)
    try:
        text = resolved.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(
            f"No configuration file at {resolved}. Pass -c FILE, set FAXBRIDGE_CONFIG, or copy "
            "config.example.yaml to config.yaml."
        ) from exc
    except OSError as exc:
        raise ConfigError(f"Cannot read the config file {resolved}: {exc.strerror}.") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{resolved} is not valid YAML: {exc}".rstrip(".") + ".") from exc
    return parse_config(data, str(resolved))
