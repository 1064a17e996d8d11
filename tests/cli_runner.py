"""Run `faxbridge` as a user does: a subprocess with a YAML config file, output as text."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bridge.config import Config, parse_config
from tests.conftest import base_config, deep_merge

MakeConfig = Callable[..., Config]


@dataclass(frozen=True)
class CliResult:
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        assert self.returncode == 0, self.stderr
        return json.loads(self.stdout)

    @property
    def lines(self) -> list[str]:
        return self.stdout.splitlines()

    def ok(self) -> CliResult:
        assert self.returncode == 0, f"exit {self.returncode}: {self.stderr}"
        return self


def run_cli(
    *args: str | Path,
    config: Path | None = None,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> CliResult:
    """`python -m bridge ARGS [-c CONFIG]`, without any FAXBRIDGE_* from our environment."""
    command = [sys.executable, "-m", "bridge", *map(str, args)]
    if config is not None:
        command += ["-c", str(config)]
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FAXBRIDGE_")}
    done = subprocess.run(
        command,
        cwd=cwd,
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    return CliResult(done.returncode, done.stdout, done.stderr)


def assert_error(result: CliResult, *fragments: str) -> str:
    """Exit 1 with one paragraph on stderr that says each fragment; returns the paragraph."""
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    (line,) = lines
    assert line.startswith("faxbridge: ")
    for fragment in fragments:
        assert fragment in line, f"{fragment!r} not in {line!r}"
    return line


def header(result: CliResult) -> list[str]:
    """The column titles of a table (titles may hold one space, columns two)."""
    return [title.strip() for title in result.lines[0].split("  ") if title.strip()]


def fields(result: CliResult) -> dict[str, str]:
    """The `key  value` lines of a `show` (not the indented items of its lists)."""
    pairs = (line.split(None, 1) for line in result.lines if line and not line[0].isspace())
    return {pair[0].rstrip(":"): pair[1] if len(pair) > 1 else "" for pair in pairs}


def write_config(
    path: Path,
    tmp_path: Path,
    db_url: str,
    overrides: dict[str, Any] | None = None,
    **sections: Any,
) -> dict[str, Any]:
    """conftest's `base_config` plus overrides (as `make_config` merges them), as YAML at `path`."""
    data = deep_merge(base_config(tmp_path, db_url), overrides or {})
    data = deep_merge(data, sections)
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return data


def config_writer(tmp_path: Path, db_url: str, path: Path) -> MakeConfig:
    """Like conftest's `make_config`, and the same data goes to `path` as YAML."""

    def make(overrides: dict[str, Any] | None = None, **sections: Any) -> Config:
        data = write_config(path, tmp_path, db_url, overrides, **sections)
        return parse_config(data, str(path))

    return make
