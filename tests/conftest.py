"""Shared fixtures: real databases, real ports, a real bridge per test."""

from __future__ import annotations

import copy
import os
import secrets
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bridge.app import make_document_pool
from bridge.config import Config, parse_config
from bridge.documents.office import OfficeService, find_soffice, find_uno_python
from bridge.documents.pool import DocumentPool
from tests.bridge_runner import BridgeThread

PG_URL = os.environ.get("FAXBRIDGE_TEST_DB", "")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


@pytest.fixture(scope="session")
def document_pool() -> Iterator[DocumentPool]:
    pool = make_document_pool()
    yield pool
    pool.shutdown()


@pytest.fixture(scope="session")
def office() -> Iterator[OfficeService]:
    """One managed LibreOffice for the whole run (it takes a second or two to start)."""
    soffice, python = find_soffice(), find_uno_python()
    if soffice is None or python is None:
        pytest.fail("LibreOffice and python3-uno are needed (make system-deps installs them)")
    service = OfficeService(soffice, python, timeout_s=60).start(wait=False)
    yield service
    service.stop()


@pytest.fixture
def db_url(tmp_path: Path) -> Iterator[str]:
    """SQLite in tmp_path, or a fresh schema on PostgreSQL when FAXBRIDGE_TEST_DB is set."""
    if not PG_URL:
        yield f"sqlite:///{tmp_path}/faxbridge.db"
        return
    import psycopg

    schema = f"t_{secrets.token_hex(6)}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in PG_URL else "?"
    yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


def base_config(tmp_path: Path, db_url: str) -> dict[str, Any]:
    return {
        "smtp": {
            "listen": f"127.0.0.1:{free_port()}",
            "hostname": "fax.localhost",
            "postmaster_to": ["postmaster@office.localhost"],
        },
        "http": {
            "listen": f"127.0.0.1:{(port := free_port())}",
            "public_url": f"http://127.0.0.1:{port}",
        },
        "worker": {"backoff_s": 0.2, "max_backoff_s": 1, "poll_interval_s": 0.1},
        "storage": {"url": db_url, "data_dir": str(tmp_path / "var")},
        "mail": {
            "from": "Fax Bridge <fax-noreply@office.localhost>",
            "transport": "maildir",
            "maildir": str(tmp_path / "var" / "mail"),
            "backoff_s": 0.2,
        },
        "providers": {"sim": {"type": "simulator", "delay_s": 0.3, "status_poll_s": 30}},
        "faxboxes": [
            {
                "name": "main",
                "domains": ["fax.localhost"],
                "provider": "sim",
                "caller_id": "+12125550100",
                "default_region": "US",
                # One dial per cause, so a busy test ends at once; tests/test_redial.py sets
                # its own policy.
                "redial": {"busy": {"tries": 1}, "no_answer": {"tries": 1}},
                "inbound": {
                    "numbers": ["+12125550100"],
                    "email_to": ["frontdesk@office.localhost"],
                },
            }
        ],
    }


@pytest.fixture
def make_config(tmp_path: Path, db_url: str) -> Callable[..., Config]:
    def make(overrides: dict[str, Any] | None = None, **sections: Any) -> Config:
        data = deep_merge(base_config(tmp_path, db_url), overrides or {})
        data = deep_merge(data, sections)
        return parse_config(data, "test config")

    return make


@pytest.fixture
def start_bridge(
    document_pool: DocumentPool, office: OfficeService
) -> Iterator[Callable[[Config], BridgeThread]]:
    running: list[BridgeThread] = []

    def start(config: Config) -> BridgeThread:
        bridge = BridgeThread(config, pool=document_pool, office=office).start()
        running.append(bridge)
        return bridge

    yield start
    for bridge in running:
        bridge.stop()


@pytest.fixture
def bridge(
    make_config: Callable[..., Config], start_bridge: Callable[[Config], BridgeThread]
) -> BridgeThread:
    return start_bridge(make_config())
