"""How SQLite holds a burst of concurrent check-ins: the real gunicorn (3 workers by default) on a
SQLite file on 127.0.0.1, N patients sending check-ins at once from N threads, each retried like
the patient app's outbox (the same id again after a 503 or a connection error, after a short
pause) until acknowledged. Prints every answer's status (201, 503 ...; a 500 fails the run), the
rate, and checks that every acknowledged check-in is stored exactly once.

    .venv/bin/python bench/sqlite_burst.py                     # 12, 48 and 96 clients
    .venv/bin/python bench/sqlite_burst.py --clients 96 --busy-timeout-ms 300

Not collected by pytest; figures in docs/RELIABILITY.md ("SQLite or PostgreSQL").
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def run(clients: int, per_client: int, workers: int, busy_ms: int, tmp: Path) -> bool:
    from companion.extensions import db
    from companion.models import Clinic
    from companion.timeutil import utcnow
    from companion.visits.record import (
        PatientDetails,
        VisitDetails,
        find_or_create_patient,
        record_visit,
    )
    from tests.conftest import build_app
    from tests.faults import Burst, Server, assert_stored_exactly_once, open_link

    app = build_app(tmp, RATELIMIT_ENABLED=False)
    with app.app_context():
        now = utcnow()
        clinic = Clinic(name="Bench clinic", timezone="Europe/Madrid")
        db.session.add(clinic)
        db.session.commit()
        links = []
        for n in range(clients):
            patient = find_or_create_patient(
                clinic, PatientDetails(f"b{n:04d}", "Bench", "Europe/Madrid", "en")
            )
            visit, issued = record_visit(
                clinic,
                patient,
                VisitDetails(performed_at=now - timedelta(hours=3), regions=["calf"]),
                therapist_id=None,
                link_days=7,
                now=now,
            )
            db.session.commit()
            links.append((issued.token, visit.id))
        server = Server(app, tmp, workers=workers)
        server.env["SQLITE_BUSY_TIMEOUT_MS"] = str(busy_ms)
        try:
            server.start()
            patients = [open_link(server.url, token, visit_id) for token, visit_id in links]
            burst = Burst(server.url, patients, per_patient=per_client, threads=clients)
            began = time.monotonic()
            burst.start(recorded_at=now - timedelta(minutes=30))
            burst.join(timeout=300)
            took = time.monotonic() - began
        finally:
            server.stop()
        assert_stored_exactly_once(burst)
        db.session.remove()
        db.engine.dispose()
    statuses = ", ".join(f"{s}: {n}" for s, n in sorted(burst.statuses.items()))
    first_try = burst.total - len(burst.retried)
    print(
        f"{clients} clients x {per_client}, {workers} workers, busy timeout {busy_ms} ms: "
        f"{burst.total} check-ins in {took:.1f} s ({burst.total / took:.0f}/s); answers {statuses}; "
        f"{first_try} acknowledged at the first try, {len(burst.retried)} after retries; "
        f"{burst.connection_errors} connection errors; {len(burst.failures)} given up; "
        "stored exactly once: yes"
    )
    return 500 not in burst.statuses and not burst.failures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, nargs="*", default=[12, 48, 96])
    parser.add_argument("--per-client", type=int, default=10)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--busy-timeout-ms", type=int, default=10_000)
    args = parser.parse_args()
    ok = True
    for clients in args.clients:
        with tempfile.TemporaryDirectory(prefix="sqlite-burst-") as tmp:
            ok &= run(clients, args.per_client, args.workers, args.busy_timeout_ms, Path(tmp))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
