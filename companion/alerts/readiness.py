"""Would a red flag reach a person? The clinic's readiness, and the test alert that proves it.

A fresh clinic has no device with alerts on, possibly no e-mail set up on the server, and no
on-call contact: a red check-in would then reach nobody, silently. `reach` says who a red alert
would reach right now (the queue, the settings and the on-call page warn when nobody), and
`send_test_alert` sends a neutral test through every configured channel and reports what each one
answered, so a clinic can see it work before a patient needs it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial

from flask import current_app
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import and_, exists, func, select

from companion import audit, channels
from companion.alerts import devices as therapist_devices
from companion.alerts.escalation import (
    ON_CALL,
    OnCall,
    contact_details,
    on_call_of,
    on_call_therapist,
)
from companion.alerts.notify import AlertReport, Recipients, send_emails
from companion.care.hours import OPEN, UNKNOWN, ClinicStatus, clinic_status
from companion.channels import email, webpush
from companion.extensions import db
from companion.models import Clinic, Therapist, TherapistDevice


@dataclass(frozen=True)
class Reach:
    """Who a red alert of the clinic would reach now."""

    devices: int  # enabled devices of active therapists (push)
    therapists_with_device: int
    emails: int  # active therapists an e-mail would go to (0 while e-mail is off)
    email_on: bool
    on_call_name: str | None
    on_call_reachable: bool  # by e-mail (when on) or a device of the on-call therapist

    @property
    def nobody(self) -> bool:
        return self.devices == 0 and self.emails == 0 and not self.on_call_reachable

    @property
    def on_call_set(self) -> bool:
        return self.on_call_name is not None


def reach(clinic: Clinic) -> Reach:
    """At most four small queries (devices, active therapists, the on-call therapist and their
    devices); no network. The check-in path asks only `reaches_anybody`."""
    email_on = email.email_enabled(current_app)
    devices, therapists_with_device = db.session.execute(
        select(func.count(TherapistDevice.id), func.count(func.distinct(Therapist.id)))
        .join(Therapist, Therapist.id == TherapistDevice.therapist_id)
        .where(Therapist.clinic_id == clinic.id, Therapist.active.is_(True))
    ).one()
    active = db.session.scalar(
        select(func.count(Therapist.id)).where(
            Therapist.clinic_id == clinic.id, Therapist.active.is_(True)
        )
    )
    therapist = on_call_therapist(clinic)
    on_call_devices = 0
    if therapist is not None:
        on_call_devices = db.session.scalar(
            select(func.count(TherapistDevice.id)).where(
                TherapistDevice.therapist_id == therapist.id
            )
        )
    name, address = contact_details(clinic, therapist)
    return Reach(
        devices=devices or 0,
        therapists_with_device=therapists_with_device or 0,
        emails=(active or 0) if email_on else 0,
        email_on=email_on,
        on_call_name=name or address,
        on_call_reachable=bool(on_call_devices) or (email_on and bool(address)),
    )


# --- the test alert ---------------------------------------------------------------------------


@dataclass
class TargetResult:
    label: str  # a device ("Chrome on Android, Ana") or an address
    ok: bool
    detail: str  # what the channel answered, in words


@dataclass
class ChannelResult:
    channel: str  # "push" | "email"
    audience: str  # "therapists" | "on_call"
    targets: list[TargetResult] = field(default_factory=list)
    # Why nothing was tried on this channel (no device, e-mail off, no on-call e-mail), or None.
    skipped: str | None = None

    @property
    def reached(self) -> int:
        return sum(1 for t in self.targets if t.ok)


def _words(outcome: channels.Outcome) -> str:
    if outcome.kind == channels.ACCEPTED:
        return _("delivered to the push service") if outcome.code != email.SENT else _("sent")
    if outcome.kind == channels.GONE:
        return _("this device unsubscribed; it was removed")
    if outcome.kind == channels.RETRY:
        return _("failed for now (%(why)s)", why=outcome.detail or outcome.code)
    return _("refused (%(why)s)", why=outcome.detail or outcome.code)


def _device_label(device: TherapistDevice) -> str:
    where = " ".join(filter(None, [device.browser, device.platform])) or _("a browser")
    who = device.therapist.display_name or device.therapist.email
    return f"{where} · {who}"


def _test_email(clinic_name: str, language: str) -> tuple[str, str]:
    with force_locale(language):
        subject = _("Aftercare: test alert")
        body = _(
            "This is a test alert from %(clinic)s. Alerts reach this address. Nothing needs doing.",
            clinic=clinic_name,
        )
    return subject, body + "\n"


def _push_result(
    devices: list[TherapistDevice],
    sender: webpush.PushSender,
    now: datetime,
    audience: str,
) -> ChannelResult:
    result = ChannelResult("push", audience)
    if not devices:
        result.skipped = _("no device has alerts turned on")
        return result
    message = partial(
        therapist_devices.alert_message,
        therapist_devices.TEST,
        tag=uuid.uuid4().hex,
        url="/",
    )
    outcomes = therapist_devices.push_to_devices(
        devices, message, sender, now, kind="test", audience=audience
    )
    labels = {d.id: _device_label(d) for d in devices}
    result.targets = [
        TargetResult(labels[o.target[0]], o.kind == channels.ACCEPTED, _words(o)) for o in outcomes
    ]
    return result


def _email_result(
    recipients: Recipients, clinic_id: uuid.UUID, now: datetime, audience: str
) -> ChannelResult:
    result = ChannelResult("email", audience)
    if not email.email_enabled(current_app):
        result.skipped = _("e-mail is not set up on this server (MAIL_SERVER)")
        return result
    if not recipients.therapists:
        result.skipped = _("no e-mail address")
        return result
    outcomes = send_emails(
        AlertReport(),
        recipients,
        partial(_test_email, recipients.clinic_name),
        clinic_id,
        None,
        "test",
        now,
        audience=audience,
    )
    addresses = [address for _id, address in recipients.therapists]
    result.targets = [
        TargetResult(address, o.kind == channels.ACCEPTED, _words(o))
        for address, o in zip(addresses, outcomes, strict=True)
    ]
    return result


def send_test_alert(
    clinic: Clinic, sender: webpush.PushSender, actor: audit.Actor, now: datetime
) -> list[ChannelResult]:
    """Send a test through every channel a red alert uses, at once, and say what each answered:
    the therapists' devices and e-mails (the first step), then the on-call contact's (the
    escalation). The messages say only that this is a test. Commits (sending waits on the network
    with no transaction open)."""
    clinic_id, clinic_name = clinic.id, clinic.name
    devices = therapist_devices.devices_for_clinic(clinic_id)
    therapists = [
        (row.id, row.email)
        for row in db.session.execute(
            select(Therapist.id, Therapist.email).where(
                Therapist.clinic_id == clinic_id, Therapist.active.is_(True)
            )
        )
    ]
    contact: OnCall = on_call_of(clinic_id)  # commits; detaches what sending reads
    for loaded in {*devices, *(d.therapist for d in devices)}:
        if loaded in db.session:
            db.session.expunge(loaded)
    results = [
        _push_result(devices, sender, now, "therapists"),
        _email_result(Recipients(clinic_name, devices, therapists), clinic_id, now, "therapists"),
    ]
    if contact.name is None and contact.email is None and contact.therapist_id is None:
        results.append(ChannelResult("email", ON_CALL, skipped=_("no on-call contact is set")))
    else:
        results.append(_push_result(contact.devices, sender, now, ON_CALL))
        on_call_address = [(contact.therapist_id, contact.email)] if contact.email else []
        results.append(
            _email_result(
                Recipients(clinic_name, contact.devices, on_call_address),
                clinic_id,
                now,
                ON_CALL,
            )
        )
    # Back into the session what was detached for sending (one of them may be the signed-in
    # therapist, whom the page still reads).
    for loaded in {
        *devices,
        *contact.devices,
        *(d.therapist for d in (*devices, *contact.devices)),
    }:
        if loaded not in db.session:
            db.session.add(loaded)
    audit.record(
        "alerts.test",
        actor,
        now=now,
        detail={
            f"{r.audience}_{r.channel}": f"{r.reached}/{len(r.targets)}"
            for r in results
            if r.skipped is None
        },
    )
    db.session.commit()
    return results


# --- what the patient may be told --------------------------------------------------------------


def patient_status(clinic: Clinic, now: datetime) -> ClinicStatus:
    """The clinic's state for the patient's red screen: its opening hours (care/hours.py), except
    that "open" becomes "unknown" while a red flag would reach nobody. "Your clinic has been
    told" would then be false comfort: nobody would hear of it until someone opens the queue.
    (The readiness queries run only when the hours say open.)"""
    status = clinic_status(clinic.opening_hours, clinic.timezone, now)
    if status.state == OPEN and not reaches_anybody(clinic):
        return ClinicStatus(UNKNOWN)
    return status


def reaches_anybody(clinic: Clinic) -> bool:
    """`not reach(clinic).nobody` in one or two EXISTS queries, for the check-in's answer: with
    e-mail on, any active therapist or an on-call address is reached (an on-call therapist is an
    active one); otherwise only a device of an active therapist (the on-call one's included)."""
    active = and_(Therapist.clinic_id == clinic.id, Therapist.active.is_(True))
    if email.email_enabled(current_app) and (
        clinic.oncall_email or db.session.scalar(select(exists().where(active)))
    ):
        return True
    return bool(
        db.session.scalar(
            select(exists().where(TherapistDevice.therapist_id == Therapist.id, active))
        )
    )
