"""requirements.lock: the versions the Docker image installs are the versions these tests ran on.

The Dockerfile installs `-r requirements.lock`, the Makefile installs the test venv with
`-c requirements.lock`; so a lock that misses a dependency, keeps a stale one, or disagrees
with the venv would ship an image nothing here has tested.
"""

from __future__ import annotations

import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent


def locked() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in (ROOT / "requirements.lock").read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, version = line.partition("==")
        assert sep and version, f"not an exact pin: {line!r}"
        pins[canonicalize_name(name)] = version
    return pins


def runtime_requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return [Requirement(text) for text in project["dependencies"]]


def closure(roots: list[Requirement]) -> set[str]:
    """Every distribution the runtime dependencies pull in here, from installed metadata."""
    seen: set[str] = set()
    todo = list(roots)  # the parent evaluated each one's marker before adding it
    while todo:
        req = todo.pop()
        name = canonicalize_name(req.name)
        first = name not in seen
        seen.add(name)
        for text in metadata.requires(req.name) or []:
            child = Requirement(text)
            applies = child.marker is None or any(
                child.marker.evaluate({"extra": extra}) for extra in (req.extras or {""})
            )
            if applies and (first or req.extras):
                todo.append(child)
    return seen


def test_every_runtime_dependency_is_pinned_within_its_range() -> None:
    pins = locked()
    for req in runtime_requirements():
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} (pyproject.toml) is missing from requirements.lock"
        assert req.specifier.contains(pins[name], prereleases=True), (
            f"requirements.lock pins {req.name}=={pins[name]}, outside pyproject's {req}"
        )
        for extra in req.extras:  # psycopg[binary] → psycopg-binary
            for text in metadata.requires(req.name) or []:
                child = Requirement(text)
                if child.marker and child.marker.evaluate({"extra": extra}):
                    assert canonicalize_name(child.name) in pins, f"{child.name} ({req})"


def test_the_lock_holds_exactly_what_the_runtime_dependencies_pull_in() -> None:
    pins = set(locked())
    needed = closure(runtime_requirements())
    assert sorted(needed - pins) == [], "needed but not in requirements.lock"
    assert sorted(pins - needed) == [], "in requirements.lock but needed by nothing"


def installed(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def test_the_venv_running_these_tests_has_the_locked_versions() -> None:
    wrong = {
        name: (version, installed(name))
        for name, version in locked().items()
        if installed(name) != version
    }
    assert wrong == {}, "locked vs installed; run `make` to reinstall the venv"
