"""Schemathesis against a running bridge: no server error, no answer outside the OpenAPI spec.

The run is deterministic (`--generation-deterministic`) and bounded (`--max-examples`), and it
is fed real ids (an accepted attempt, a delivered and a failed fax, an inbound fax) so that the
fuzzer reaches the record and attachment answers, not only 404s.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from bridge.config import Config
from tests.bridge_runner import BridgeThread
from tests.helpers import wait_for
from tests.messages import fax_mail
from tests.test_api import TOKEN, deliver

pytestmark = pytest.mark.slow

CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
    "positive_data_acceptance",
    "missing_required_header",
    "unsupported_method",
    "ignored_auth",
]


def _settings(ids: list[str]) -> str:
    values = ", ".join(f'"{value}"' for value in ids)
    bindings = "\n".join(
        f'"path.{name}" = {{ dictionary = "ids", probability = 0.6 }}'
        for name in ("attempt_id", "job_id", "fax_id")
    )
    return f"""
[dictionaries.accounts]
values = ["main"]

[dictionaries.ids]
values = [{values}]

[parameters]
"path.faxbox" = {{ dictionary = "accounts", probability = 0.8 }}
{bindings}

# A resubmit or forward names a number: one the schema admits (any string) may still be no
# number the faxbox may dial, and then the answer is Kazoo's 400 "invalid data".
[[operations]]
include-method = "PUT"

[operations.checks.positive_data_acceptance]
expected-statuses = ["2xx", "3xx", "400", "401", "403", "404", "409", "429"]
"""


def test_api_has_no_server_error_and_keeps_to_its_schema(
    tmp_path: Path,
    make_config: Callable[..., Config],
    start_bridge: Callable[[Config], BridgeThread],
) -> None:
    bridge = start_bridge(make_config({"http": {"api_tokens": [TOKEN]}}))
    attempt, delivered = deliver(bridge, fax_mail(to="12125550100@fax.localhost"))
    _, failed = deliver(bridge, fax_mail(to="12125550001@fax.localhost"))
    wait_for(lambda: len(bridge.store.views.jobs_page("main", final=True, limit=9).records) == 2)
    inbound = wait_for(lambda: bridge.store.inbound.recent(limit=1), what="the inbound fax")
    settings = tmp_path / "schemathesis.toml"
    settings.write_text(_settings([attempt, delivered, failed, inbound[0]["id"]]))
    assert httpx.get(f"{bridge.http_url}/openapi.json").status_code == 401  # http.open_docs
    schema = httpx.get(f"{bridge.http_url}/openapi.json", headers={"X-Auth-Token": TOKEN})
    assert schema.status_code == 200
    schema_file = tmp_path / "openapi.json"
    schema_file.write_bytes(schema.content)

    started = time.monotonic()
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "--config-file",
            str(settings),
            "run",
            str(schema_file),
            "--url",
            bridge.http_url,
            "--include-path-regex",
            "^/v2/",
            "--header",
            f"X-Auth-Token: {TOKEN}",
            "--checks",
            ",".join(CHECKS),
            "--generation-deterministic",
            "--max-examples",
            "25",
            "--workers",
            "1",
            "--no-color",
            "--report-dir",
            str(tmp_path / "report"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    elapsed = time.monotonic() - started

    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert "12 operations" in run.stdout or "12 selected" in run.stdout, run.stdout[-3000:]
    # 12 operations, two of which make fax jobs the bridge then sends: 37 s alone on a shared
    # 2-core machine (load 8), 65 s inside the whole suite there; the bound catches a run away.
    assert elapsed < 90, f"schemathesis took {elapsed:.0f} s"
