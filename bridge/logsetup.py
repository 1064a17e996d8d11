"""Logging: text or JSON lines, each carrying the SMTP attempt and fax job it belongs to.

The SMTP side binds the attempt id when a connection opens and again when a transaction ends
(the id the next attempt will get), the worker binds the job id (and its attempt's) for each
send. They live in ContextVars, which every task and thread started from there inherits, and
a filter on the handler copies them onto each record, aiosmtpd's own lines included. So
`grep <attempt id>` shows the whole story of one attempt: connect, EHLO, AUTH, every RCPT,
the reply; and the job lines of the faxes it created. Lines between two transactions of one
session (RSET, QUIT) carry the id the next attempt would get; `session_id` ties them together.

Secrets never reach the output: `token=`/`password=`-style query values are masked in every
line (httpx logs callback URLs, which carry the provider's callback token), and aiosmtpd,
which logs each DATA line and the AUTH LOGIN exchange at DEBUG, is held at INFO or above.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bridge.config import Config, LoggingConfig

_session_id: ContextVar[str | None] = ContextVar("faxbridge_session_id", default=None)
_attempt_id: ContextVar[str | None] = ContextVar("faxbridge_attempt_id", default=None)
_job_id: ContextVar[str | None] = ContextVar("faxbridge_job_id", default=None)
_CONTEXT = (("session_id", _session_id), ("attempt_id", _attempt_id), ("job_id", _job_id))

_SECRET = re.compile(
    r"(?i)\b((?:callback_)?token|api_key|apikey|access_token|auth_token|password|secret)"
    r"(=|%3D)[^&\s'\"<>]+"
)
_QUIET_BELOW_DEBUG = ("httpx", "httpcore")  # one INFO line per request, URL and all
_NEVER_DEBUG = ("mail.log",)  # aiosmtpd: DATA lines and AUTH LOGIN secrets at DEBUG
_ALWAYS_QUIET = ("sqlalchemy", "multipart", "python_multipart")  # SQL and form-parsing chatter


def bind_session(session_id: str, attempt_id: str) -> None:
    _session_id.set(session_id)
    _attempt_id.set(attempt_id)


def bind_attempt(attempt_id: str | None) -> None:
    _attempt_id.set(attempt_id)


def bind_job(job_id: str | None, attempt_id: str | None = None) -> None:
    _job_id.set(job_id)
    _attempt_id.set(attempt_id)


def mask_secrets(text: str) -> str:
    """`…/callbacks/sim?token=abc` → `…/callbacks/sim?token=***`."""
    return _SECRET.sub(r"\1\2***", text)


class ContextFilter(logging.Filter):
    """Puts the bound ids on every record that passes the handler (never drops one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, var in _CONTEXT:
            if getattr(record, name, None) is None:
                setattr(record, name, var.get())
        return True


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s%(ids)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        ids = [
            f"{label} {value}"
            for label, value in (
                ("attempt", getattr(record, "attempt_id", None)),
                ("job", getattr(record, "job_id", None)),
            )
            if value
        ]
        record.ids = f" [{', '.join(ids)}]" if ids else ""
        return mask_secrets(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, then the ids that are known."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": mask_secrets(record.getMessage()),
        }
        for name, _var in _CONTEXT:
            value = getattr(record, name, None)
            if value:
                entry[name] = value
        if record.exc_info:
            entry["exception"] = mask_secrets(self.formatException(record.exc_info))
        if record.stack_info:
            entry["stack"] = mask_secrets(self.formatStack(record.stack_info))
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure_logging(
    config: Config | LoggingConfig | None = None,
    *,
    level: str | None = None,
    stream: IO[str] | None = None,
) -> logging.Handler:
    """Install the one root handler (replacing one installed before); return it.

    `level` (the command line's `--log-level`) wins over `logging.level` in the config.
    """
    from bridge.config import Config, LoggingConfig

    settings = config.logging if isinstance(config, Config) else (config or LoggingConfig())
    threshold = logging.getLevelNamesMapping()[(level or settings.level).upper()]
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter() if settings.format == "json" else TextFormatter())
    handler.set_name("faxbridge")
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == "faxbridge"]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(threshold)
    for name in _QUIET_BELOW_DEBUG:
        logging.getLogger(name).setLevel(logging.WARNING if threshold > logging.DEBUG else 0)
    for name in _NEVER_DEBUG:
        logging.getLogger(name).setLevel(max(threshold, logging.INFO))
    for name in _ALWAYS_QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)
    return handler
