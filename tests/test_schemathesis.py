"""Schemathesis against the app's own OpenAPI document, over real HTTP (issue 14).

Every check schemathesis has (server errors, status codes, content types, response headers and
schemas, negative data rejected, positive data accepted, ignored authentication, Allow on 405s,
...), in every phase, authenticated as the document says: a clinic API key (bearer) and a
patient's cookie. It must end with 0 failures: no 500, and no answer the document does not
describe.

The number of examples per operation comes from SCHEMATHESIS_EXAMPLES: small by default (the
`make test` run), larger in CI (.ci/run). Deterministic generation, so a failure is the same run
after run; CI's larger run reaches further.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from werkzeug.serving import make_server

from companion.extensions import db
from companion.models import ApiKey, Clinic
from companion.tokens import hash_token, new_token

from .conftest import build_app

EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "10"))
PATIENT_COOKIE = "companion_patient"


# Rules the server enforces that no JSON Schema can state, each written in the operation's own
# description and its 422 answer (tests/test_checkin_bounds.py, test_api.py and test_exports.py
# test them one by one). For these operations only, a schema-valid request may also get that
# documented 422; every other check, and every other operation, stays strict.
STATEFUL_RULES = """
# recorded_at within 5 minutes of the visit and of the arrival; pgic from day 6 after the visit.
[[operations]]
include-name = "POST /api/v1/checkins"
checks.positive_data_acceptance.expected-statuses = ["2xx", 401, 404, 409, 422, 429]

# 'to' on or after 'from', and at most 366 days later.
[[operations]]
include-name = "GET /api/v1/checkins.csv"
checks.positive_data_acceptance.expected-statuses = ["2xx", 401, 422, 429]

# The phone number valid in its country's numbering plan (libphonenumber), the e-mail address's
# syntax and domain form (email-validator).
[[operations]]
include-name = ["POST /api/v1/visits", "PUT /api/v1/visits/{visit_id}"]
checks.positive_data_acceptance.expected-statuses = ["2xx", 401, 404, 409, 422, 429]

# p256dh a point on the P-256 curve; the endpoint a push service on the allow list.
[[operations]]
include-name = "POST /api/v1/push-subscriptions"
checks.positive_data_acceptance.expected-statuses = ["2xx", 401, 404, 409, 422, 429]
"""


def _schemathesis() -> str:
    found = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    if found is None:
        pytest.skip("schemathesis is not installed (pip install -e '.[dev]')")
    return found


@pytest.fixture
def live(tmp_path: Path) -> Iterator[tuple[Flask, str]]:
    app = build_app(tmp_path, SERVER_NAME=None)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server: Any = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield app, f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _credentials(app: Flask) -> tuple[str, str]:
    """A clinic's API key, and the cookie its patient's link sets (opened as the patient would)."""
    from companion.timeutil import utcnow
    from companion.visits.record import (
        PatientDetails,
        VisitDetails,
        find_or_create_patient,
        record_visit,
    )

    with app.app_context():
        clinic = Clinic(name="Schemathesis Physio", timezone="Europe/Madrid")
        db.session.add(clinic)
        db.session.flush()
        key = "ak_" + new_token()
        db.session.add(ApiKey(clinic_id=clinic.id, prefix=key[:10], key_hash=hash_token(key)))
        patient = find_or_create_patient(
            clinic, PatientDetails("S-1", "Sam", "Europe/Madrid", "en")
        )
        now = utcnow()
        _visit, issued = record_visit(
            clinic,
            patient,
            VisitDetails(performed_at=now, regions=["calf"]),
            therapist_id=None,
            link_days=7,
            now=now,
        )
        db.session.commit()
    client = app.test_client()
    opened = client.get(f"/p/{issued.token}")
    assert opened.status_code == 303
    cookie = client.get_cookie(PATIENT_COOKIE)
    assert cookie is not None
    return key, cookie.value


@pytest.mark.fuzz
def test_schemathesis_finds_no_server_error_and_no_schema_violation(live, tmp_path):
    command = _schemathesis()
    app, base = live
    key, cookie = _credentials(app)
    # Credentials per security scheme, as the document names them, so schemathesis knows which
    # operation takes which (and can check that leaving them out is refused).
    config = tmp_path / "schemathesis.toml"
    config.write_text(
        f'[auth.openapi.clinicKey]\nbearer = "{key}"\n\n'
        f'[auth.openapi.patientCookie]\napi_key = "{cookie}"\n' + STATEFUL_RULES,
        encoding="utf-8",
    )
    result = subprocess.run(
        [
            command,
            "--config-file",
            str(config),
            "--no-color",
            "run",
            f"{base}/api/v1/openapi.json",
            "--checks",
            "all",
            "--max-examples",
            str(EXAMPLES),
            "--generation-deterministic",
            "--workers",
            "1",
            "--request-timeout",
            "30",
            "--report-dir",
            str(tmp_path / "report"),
        ],
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
        cwd=tmp_path,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-20000:]
    assert "No issues found" in output or "0 failures" in output or " passed" in output, output
