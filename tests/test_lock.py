"""The lock files hold what pyproject.toml asks for (issue 14 finding 13).

`make run` and `make test` install only from requirements/runtime.txt and requirements/dev.txt (and
the FHIR R4 virtualenv from tests/fhir_r4/requirements.txt), so a dependency added to pyproject.toml
without `make lock` would be missing or at another version. The install's `pip check` stops that at
install time; these tests make a plain pytest catch it too, and check that every pin carries hashes
(pip then refuses a download that is not the one locked)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
RUNTIME = ROOT / "requirements" / "runtime.txt"
DEV = ROOT / "requirements" / "dev.txt"
FHIR_IN = ROOT / "tests" / "fhir_r4" / "requirements.in"
FHIR_LOCK = ROOT / "tests" / "fhir_r4" / "requirements.txt"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^]]*\])?==(\S+)")
HASH = re.compile(r"--hash=sha256:[0-9a-f]{64}")


def pins(lock: Path) -> dict[str, tuple[str, int]]:
    """name -> (version, number of hashes) for every package the lock file pins."""
    found: dict[str, tuple[str, int]] = {}
    name = ""
    for line in lock.read_text(encoding="utf-8").splitlines():
        match = PIN.match(line)
        if match:
            name = canonicalize_name(match.group(1))
            found[name] = (match.group(2), 0)
        if name and HASH.search(line):
            version, hashes = found[name]
            found[name] = (version, hashes + len(HASH.findall(line)))
    return found


def asked(requirements: list[str]) -> list[Requirement]:
    return [Requirement(line) for line in requirements]


def unmet(wanted: list[Requirement], lock: Path) -> list[str]:
    locked = pins(lock)
    missing = []
    for requirement in wanted:
        name = canonicalize_name(requirement.name)
        if name not in locked or not requirement.specifier.contains(locked[name][0]):
            missing.append(f"{requirement} (locked: {locked.get(name, ('nothing',))[0]})")
    return missing


def project() -> dict[str, list[str]]:
    with (ROOT / "pyproject.toml").open("rb") as file:
        data = tomllib.load(file)["project"]
    return {"runtime": data["dependencies"], "dev": data["optional-dependencies"]["dev"]}


def test_the_locks_hold_every_dependency_of_pyproject_at_its_version():
    wanted = project()
    assert unmet(asked(wanted["runtime"]), RUNTIME) == [], "run `make lock`"
    assert unmet(asked(wanted["runtime"] + wanted["dev"]), DEV) == [], "run `make lock`"


def test_the_app_runs_with_the_versions_it_is_tested_with():
    runtime, dev = pins(RUNTIME), pins(DEV)
    assert set(runtime) <= set(dev)
    assert {name: runtime[name][0] for name in runtime} == {name: dev[name][0] for name in runtime}
    assert "setuptools" in runtime  # builds the app itself (pip install --no-build-isolation)


def test_the_fhir_r4_lock_holds_what_requirements_in_asks_for():
    lines = FHIR_IN.read_text(encoding="utf-8").splitlines()
    wanted = [line.split("#")[0].strip() for line in lines if line.split("#")[0].strip()]
    assert unmet(asked(wanted), FHIR_LOCK) == [], "run `make lock`"


def test_every_locked_package_is_pinned_with_hashes():
    for lock in (RUNTIME, DEV, FHIR_LOCK):
        locked = pins(lock)
        assert len(locked) > 5, lock
        assert [name for name, (_, hashes) in locked.items() if hashes == 0] == [], lock
