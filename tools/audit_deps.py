"""Known vulnerabilities in the locked dependencies: pip-audit over the lock files (`make lint`).

pip-audit asks a vulnerability service about every pinned package. Where the service cannot be
reached it does not always say so: where PyPI's package index answers but its per-release JSON API
(which carries the vulnerabilities) does not, as on this project's machines, pip-audit reads each 404
as "not found on PyPI", skips every package and still prints "No known vulnerabilities found" with
exit status 0. So this script first asks each service, through pip-audit's own client, about the
first package of the lock (it must know it), runs pip-audit only with a service that answered, and
with `--strict`, so any package it could not audit fails the run.

When no service answers, `--mode require` (the default; `make lint AUDIT=require`) fails and says
the lock files were not audited; `--mode if-reachable` prints a loud warning and passes. Found
vulnerabilities fail in both modes, except those accepted in requirements/audit-ignore.txt (each
with its reason).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

import requests
from packaging.version import InvalidVersion, Version
from pip_audit._service import (
    OsvService,
    PyPIService,
    ResolvedDependency,
    ServiceError,
    SkippedDependency,
)

ROOT = Path(__file__).resolve().parent.parent
IGNORE_FILE = ROOT / "requirements" / "audit-ignore.txt"
# pip-audit's services that need no account and know every PyPI package; tried in this order.
SERVICES = ("pypi", "osv")
TIMEOUT_SECONDS = 15  # pip-audit's own default for one request
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^]]*\])?==([^\s;\\]+)")


def first_pin(lock: Path) -> tuple[str, str]:
    """The first `name==version` of a lock file: a package the services must know."""
    for line in lock.read_text(encoding="utf-8").splitlines():
        match = PIN.match(line)
        if match:
            return match.group(1), match.group(2)
    raise SystemExit(f"{lock}: no pinned package (name==version) in it")


def read_ignores(path: Path) -> list[str]:
    """Accepted vulnerability IDs, one a line as `ID  # why`; an ID without a reason is an error."""
    if not path.exists():
        return []
    ids = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        vuln_id, _, reason = text.partition("#")
        if not reason.strip():
            raise SystemExit(
                f"{path}:{number}: {vuln_id.strip()} has no reason; write why it is accepted after a #"
            )
        ids.append(vuln_id.strip())
    return ids


def probe(service: str, name: str, version: str, osv_url: str) -> str | None:
    """None when pip-audit's client of the service audits name==version, else why not, in words."""
    client = (
        PyPIService(timeout=TIMEOUT_SECONDS)
        if service == "pypi"
        else OsvService(timeout=TIMEOUT_SECONDS, osv_url=osv_url)
    )
    try:
        answered, _ = client.query(ResolvedDependency(name=name, version=Version(version)))
    except InvalidVersion:
        return f"{name}=={version} is not a version pip-audit can ask about"
    except (ServiceError, requests.RequestException, ValueError) as error:
        # The client lets connection errors and bad answers through as they are.
        cause = error.__cause__ or error
        return f"no answer about {name}=={version} ({type(cause).__name__}: {cause})"
    if isinstance(answered, SkippedDependency):
        # A package the lock holds, so the package exists: it is the vulnerability data that is missing.
        return f"no vulnerability data for {name}=={version}, which the lock holds ({answered.skip_reason})"
    return None


def pip_audit(service: str, osv_url: str, ignores: list[str], lock: Path) -> int:
    # --disable-pip: the hashed lock is read as it is, nothing resolved or built (hashes are a must).
    command = [sys.executable, "-m", "pip_audit", "--strict", "--disable-pip"]
    command += ["--progress-spinner", "off", "--vulnerability-service", service]
    if service == "osv":
        command += ["--osv-url", osv_url]
    for vuln_id in ignores:
        command += ["--ignore-vuln", vuln_id]
    command += ["--requirement", str(lock)]
    print(f"pip-audit ({service}): {lock}", flush=True)
    return subprocess.call(command)  # noqa: S603 (our own interpreter and fixed arguments)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("locks", nargs="+", type=Path, help="hashed lock files (pip-compile)")
    parser.add_argument("--mode", choices=("require", "if-reachable"), default="require")
    parser.add_argument("--services", nargs="+", choices=SERVICES, default=list(SERVICES))
    parser.add_argument("--osv-url", default=OsvService.DEFAULT_OSV_URL)
    parser.add_argument("--ignore-file", type=Path, default=IGNORE_FILE)
    args = parser.parse_args(argv)

    ignores = read_ignores(args.ignore_file)
    name, version = first_pin(args.locks[0])
    unreachable = []
    for service in args.services:
        why = probe(service, name, version, args.osv_url)
        if why is None:
            # One run per lock file: pip-audit refuses a package pinned twice at two versions, as
            # the FHIR R4 virtualenv's lock may pin one of the app's.
            failed = [
                lock for lock in args.locks if pip_audit(service, args.osv_url, ignores, lock)
            ]
            return 1 if failed else 0
        unreachable.append(f"  {service}: {why}")

    sys.stdout.flush()
    lines = [
        "The dependency audit did NOT run: no vulnerability service of pip-audit answers here.",
        *unreachable,
        f"Not checked for known vulnerabilities: {', '.join(map(str, args.locks))}.",
    ]
    if args.mode == "if-reachable":
        rule = "#" * 100
        print(
            "\n".join([rule, "WARNING (AUDIT=if-reachable): " + lines[0], *lines[1:], rule]),
            file=sys.stderr,
        )
        return 0
    lines.append(
        "Run `make lint` where PyPI's JSON API or OSV answers, or `make lint AUDIT=if-reachable`"
        " to go on without the audit (it still runs wherever a service answers)."
    )
    print("\n".join(["ERROR: " + lines[0], *lines[1:]]), file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
