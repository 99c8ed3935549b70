"""WSGI entry point: `gunicorn wsgi:app`, `flask --app wsgi ...`."""

import gc

from companion import create_app

app = create_app()

# Everything loaded at start-up (libraries, models, routes) lives as long as the process: move it
# out of the cyclic collector's sight, so a full collection walks only what requests allocate.
# Measured on the review queue: p95 from about 275 ms to under 215 ms (docs/BENCHMARKS.md).
gc.collect()
gc.freeze()
