"""The reminder worker's loop: APScheduler ticks, each tick drains due reminders from the database.

The database is the queue and the lock (design.md). This module owns the ticker; planning, claiming
and channel delivery grow here with issue 4. Until reminders are planned, a tick finds nothing due.
"""

from __future__ import annotations

import logging
from datetime import datetime

from apscheduler.schedulers.blocking import BlockingScheduler
from flask import Flask
from sqlalchemy import func, select

from .extensions import db
from .models import Reminder
from .timeutil import utcnow

log = logging.getLogger(__name__)


def count_due(now: datetime) -> int:
    return (
        db.session.scalar(
            select(func.count())
            .select_from(Reminder)
            .where(Reminder.sent_at.is_(None), Reminder.status == "planned", Reminder.due_at <= now)
        )
        or 0
    )


def tick(app: Flask) -> int:
    with app.app_context():
        due = count_due(utcnow())
        db.session.remove()
    log.debug("reminder tick: %d due", due)
    return due


def run_worker(app: Flask) -> None:
    interval = app.config["REMINDER_TICK_SECONDS"]
    scheduler = BlockingScheduler(timezone="UTC")
    scheduler.add_job(
        tick,
        "interval",
        args=[app],
        seconds=interval,
        coalesce=True,  # after a pause, one catch-up run, not a burst
        max_instances=1,
        # The 1 s default silently drops a run that starts late (a busy host); allow a whole tick.
        misfire_grace_time=interval,
        next_run_time=utcnow(),
    )
    log.info("reminder worker started, tick every %ss", interval)
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        log.info("reminder worker stopped")
