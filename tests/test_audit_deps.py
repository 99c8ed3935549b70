"""The dependency audit of `make lint` (tools/audit_deps.py, issue 14 finding 13): real pip-audit
against a local OSV service on 127.0.0.1, which knows the vulnerabilities each test gives it.

It fails on a known vulnerability, passes a clean lock only after every package was asked about,
accepts a vulnerability only where requirements/audit-ignore.txt says why, and never passes
silently when no service answers: an error by default, a loud warning with AUDIT=if-reachable."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.smtpserver import free_port

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "tools" / "audit_deps.py"
HASH = "--hash=sha256:" + "0" * 64  # pip-audit reads hashed locks as they are; it downloads nothing
VULN = {
    "id": "PYSEC-2099-1",
    "summary": "A test vulnerability",
    "affected": [
        {
            "package": {"name": "flask", "ecosystem": "PyPI"},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "9.9"}]}],
        }
    ],
}


class Osv:
    """An OSV query API (POST /v1/query): vulns by (package, version); a status code per package."""

    def __init__(self) -> None:
        self.vulns: dict[tuple[str, str], list[dict[str, object]]] = {}
        self.status: dict[str, int] = {}
        self.asked: list[tuple[str, str]] = []
        osv = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                query = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                key = (query["package"]["name"], query["version"])
                osv.asked.append(key)
                body = json.dumps({"vulns": osv.vulns[key]} if key in osv.vulns else {}).encode()
                self.send_response(osv.status.get(key[0], 200))
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1/query"


@pytest.fixture
def osv() -> Iterator[Osv]:
    service = Osv()
    thread = threading.Thread(target=service.server.serve_forever, daemon=True)
    thread.start()
    yield service
    service.server.shutdown()
    service.server.server_close()
    thread.join()


@pytest.fixture
def lock(tmp_path: Path) -> Path:
    path = tmp_path / "lock.txt"
    path.write_text(f"flask==3.1.3 \\\n    {HASH}\nidna==3.21 \\\n    {HASH}\n", encoding="utf-8")
    return path


def audit(
    lock: Path, osv_url: str, *, mode: str = "require", ignore_file: Path | None = None
) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, str(SCRIPT), "--services", "osv", "--osv-url", osv_url]
    command += ["--mode", mode, "--ignore-file", str(ignore_file or lock.with_name("none.txt"))]
    return subprocess.run(
        [*command, str(lock)], capture_output=True, text=True, timeout=120, check=False, cwd=ROOT
    )


def test_a_known_vulnerability_fails_even_with_if_reachable(osv: Osv, lock: Path):
    osv.vulns[("flask", "3.1.3")] = [VULN]
    for mode in ("require", "if-reachable"):
        done = audit(lock, osv.url, mode=mode)
        assert done.returncode == 1, done.stdout + done.stderr
        assert "PYSEC-2099-1" in done.stdout
        assert "9.9" in done.stdout  # the fixed version, to upgrade the pin to


def test_a_clean_lock_passes_only_after_every_package_was_asked_about(osv: Osv, lock: Path):
    done = audit(lock, osv.url)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "No known vulnerabilities found" in done.stdout + done.stderr
    assert {("flask", "3.1.3"), ("idna", "3.21")} <= set(osv.asked)


def test_a_package_the_service_cannot_answer_for_fails_the_audit(osv: Osv, lock: Path):
    # The service answers the first package (the probe), then fails on another: a partial audit.
    osv.status["idna"] = 500
    done = audit(lock, osv.url, mode="if-reachable")
    assert done.returncode != 0, done.stdout + done.stderr
    assert "ServiceError" in done.stderr
    assert ("idna", "3.21") in osv.asked
    assert "No known vulnerabilities found" not in done.stdout + done.stderr


def test_a_vulnerability_is_accepted_only_with_its_reason(osv: Osv, lock: Path, tmp_path: Path):
    osv.vulns[("flask", "3.1.3")] = [VULN]
    ignore = tmp_path / "audit-ignore.txt"
    ignore.write_text("# accepted\nPYSEC-2099-1  # no fixed release yet; we never call it\n")
    assert audit(lock, osv.url, ignore_file=ignore).returncode == 0

    ignore.write_text("PYSEC-2099-1\n")
    done = audit(lock, osv.url, ignore_file=ignore)
    assert done.returncode == 1
    assert "PYSEC-2099-1 has no reason" in done.stderr


def test_no_service_fails_by_default_and_warns_loudly_with_if_reachable(lock: Path):
    nobody = f"http://127.0.0.1:{free_port()}/v1/query"  # nothing listens there
    done = audit(lock, nobody)
    assert done.returncode == 1
    assert "ERROR: The dependency audit did NOT run" in done.stderr
    assert f"Not checked for known vulnerabilities: {lock}" in done.stderr
    assert "AUDIT=if-reachable" in done.stderr  # what to do about it

    done = audit(lock, nobody, mode="if-reachable")
    assert done.returncode == 0
    assert "WARNING (AUDIT=if-reachable): The dependency audit did NOT run" in done.stderr
    assert "No known vulnerabilities found" not in done.stdout + done.stderr


def test_a_service_that_answers_without_data_is_not_a_clean_audit(osv: Osv, lock: Path):
    # As PyPI's JSON API does here: the host answers, the vulnerability data does not.
    osv.status["flask"] = 404
    done = audit(lock, osv.url, mode="if-reachable")
    assert done.returncode == 0
    assert "The dependency audit did NOT run" in done.stderr
    assert "404" in done.stderr
    assert "No known vulnerabilities found" not in done.stdout + done.stderr
