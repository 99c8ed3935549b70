"""The worker process (`flask reminders run`): two loops, one scheduler.

Every REMINDER_TICK_SECONDS it drains due reminders to patients (companion.reminders.dispatch);
every ALERT_TICK_SECONDS it tells therapists of red alerts and due amber digests
(companion.alerts.dispatch). The work lives in those packages; this module only ticks them. The
web process never runs it, and any number of workers may run at once: the database is the queue
and the lock (design.md).
"""

from __future__ import annotations

import logging

from apscheduler.schedulers.blocking import BlockingScheduler
from flask import Flask

from companion.alerts import dispatch as alert_dispatch
from companion.channels.webpush import make_sender
from companion.reminders import dispatch as reminder_dispatch
from companion.timeutil import utcnow

log = logging.getLogger(__name__)


def run_worker(app: Flask) -> None:
    sender = make_sender(app)  # one for both loops: it keeps the signed VAPID tokens
    scheduler = BlockingScheduler(timezone="UTC")
    loops = (
        (reminder_dispatch.drain, app.config["REMINDER_TICK_SECONDS"]),
        (alert_dispatch.dispatch_once, app.config["ALERT_TICK_SECONDS"]),
    )
    for job, seconds in loops:
        scheduler.add_job(
            job,
            "interval",
            args=[app],
            kwargs={"sender": sender},
            seconds=seconds,
            coalesce=True,  # after a pause, one catch-up run, not a burst
            max_instances=1,
            # The 1 s default silently drops a run that starts late (a busy host): allow a tick.
            misfire_grace_time=seconds,
            next_run_time=utcnow(),
        )
    log.info(
        "reminder worker started, tick every %ss (alerts every %ss)",
        loops[0][1],
        loops[1][1],
    )
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        log.info("reminder worker stopped")
