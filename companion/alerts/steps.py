"""The escalation steps of alerts: who was told, when, by which channel, with what outcome.

Every attempt to tell someone is an `alert_notice` row (alerts/dispatch.py for the first step,
alerts/escalation.py for the on-call contact). A step is one round on one channel for one audience:
its rows share the round's `attempted_at`. Shown on the alert ("told 3 therapists by push, 23:04;
escalated to on-call by e-mail, 23:19; acknowledged by Ben, 23:22") and listed by the API.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from companion.alerts.notify import NO_CHANNEL
from companion.channels import email, webpush
from companion.extensions import db
from companion.models import AlertNotice

# Step.outcome
DELIVERED = "delivered"  # every recipient tried was reached
PARTLY = "partly_delivered"  # some were
FAILED = "failed"  # none were (a later round may still reach them)
NOBODY = "nobody"  # there was nobody to try: no device, no e-mail, no on-call contact


@dataclass(frozen=True)
class Step:
    at: datetime
    channel: str  # "push" | "email" | "none"
    audience: str  # "therapists" | "on_call"
    outcome: str  # DELIVERED | PARTLY | FAILED | NOBODY
    tried: int  # devices (push) or addresses (e-mail)
    delivered: int  # of those, how many took it
    reached: int  # people reached: therapists for push (a therapist may have several devices)

    def as_json(self) -> dict[str, object]:
        return {
            "at": self.at,
            "channel": self.channel,
            "audience": self.audience,
            "outcome": self.outcome,
            "tried": self.tried,
            "delivered": self.delivered,
            "reached": self.reached,
        }


def steps_of(alert_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[Step]]:
    """The steps of each alert, oldest first; one query however many alerts."""
    found: dict[uuid.UUID, list[Step]] = {alert_id: [] for alert_id in alert_ids}
    # Queried even for no alerts: a page costs the same number of statements whatever it shows.
    rows = db.session.execute(
        select(
            AlertNotice.alert_id,
            AlertNotice.attempted_at,
            AlertNotice.audience,
            AlertNotice.channel,
            AlertNotice.outcome,
            AlertNotice.therapist_id,
        )
        .where(AlertNotice.alert_id.in_(list(alert_ids)))
        .order_by(AlertNotice.attempted_at, AlertNotice.audience.desc(), AlertNotice.channel.desc())
    ).all()
    rounds: dict[tuple[uuid.UUID, datetime, str, str], list[tuple[str, uuid.UUID | None]]] = {}
    for alert_id, at, audience, channel, outcome, therapist_id in rows:
        rounds.setdefault((alert_id, at, audience, channel), []).append((outcome, therapist_id))
    for (alert_id, at, audience, channel), answers in rounds.items():
        found[alert_id].append(_step(at, audience, channel, answers))
    return found


def _step(
    at: datetime, audience: str, channel: str, answers: list[tuple[str, uuid.UUID | None]]
) -> Step:
    if channel == "none" or all(outcome == NO_CHANNEL for outcome, _who in answers):
        return Step(at, channel, audience, NOBODY, 0, 0, 0)
    ok = [who for outcome, who in answers if outcome in (webpush.ACCEPTED, email.SENT)]
    # People, not devices: "told 2 therapists" when Ana's two phones and Ben's one took it. An
    # on-call contact who is no therapist of the app (who is None) counts as one person.
    reached = len({who for who in ok if who is not None}) + (1 if None in ok else 0)
    outcome = DELIVERED if len(ok) == len(answers) else PARTLY if ok else FAILED
    return Step(at, channel, audience, outcome, len(answers), len(ok), reached)
