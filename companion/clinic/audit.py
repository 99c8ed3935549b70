"""The clinic's audit page: who viewed, changed or exported what, when and from where, each row
naming what it is about; filtered by action, actor and days."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from babel.dates import format_date
from flask import render_template, request, url_for
from flask_babel import LazyString, get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext as _n
from flask_login import current_user

from companion import audit
from companion.clinic import admin_only, bp
from companion.models import AuditEvent, therapist_names
from companion.timeutil import plausible_year, to_local, wall_clock_to_utc

AUDIT_ACTIONS: dict[str, LazyString] = {
    "queue.view": _l("Viewed the review queue"),
    "patient.list": _l("Viewed the patient list"),
    "patient.view": _l("Viewed a patient's visits"),
    "visit.view": _l("Viewed a visit"),
    "visit.create": _l("Recorded a visit"),
    "visit.update": _l("Corrected a visit"),
    "link.reissue": _l("Issued a new patient link"),
    "link.revoke": _l("Revoked a patient link"),
    "link.email": _l("E-mailed the patient link"),
    "handout.view": _l("Opened a visit's handout"),
    "patient.update": _l("Changed a patient's details"),
    "export.csv": _l("Exported check-ins as CSV"),
    "export.fhir": _l("Exported a visit as FHIR"),
    "alert.acknowledge": _l("Acknowledged an alert"),
    "alert.resolve": _l("Resolved an alert"),
    "clinic.settings": _l("Changed the clinic settings"),
    "patient.data_download": _l("The patient downloaded their data"),
    "deletion.list": _l("Viewed the deletion requests"),
    "deletion.request": _l("Deletion of a patient's data requested"),
    "deletion.confirm": _l("Deleted a patient's data"),
    "deletion.decline": _l("Declined a deletion request"),
    "device.add": _l("Turned on alerts on a device"),
    "device.remove": _l("Turned off alerts on a device"),
    "device.renew": _l("A device renewed its alert subscription"),
    "clinic.on_call": _l("Changed the on-call contact"),
    "alerts.test": _l("Sent a test alert"),
    "alerts.list": _l("Listed the alerts"),
    "clinic.profile": _l("Changed the clinic profile"),
    "clinic.logo": _l("Changed the clinic logo"),
    "clinic.logo_remove": _l("Removed the clinic logo"),
    "api_key.create": _l("Created an API key"),
    "api_key.revoke": _l("Revoked an API key"),
    "therapist.invite": _l("Invited a colleague"),
    "therapist.invite_resent": _l("Sent an invite again"),
    "therapist.invite_accepted": _l("Accepted an invite and set a password"),
    "therapist.role": _l("Changed a colleague's role"),
    "therapist.deactivate": _l("Deactivated a colleague"),
    "therapist.reactivate": _l("Reactivated a colleague"),
    "therapist.sign_out_everywhere": _l("Signed a colleague out everywhere"),
    "therapist.password_changed": _l("Changed their password"),
    "therapist.password_reset_sent": _l("Sent a password reset link"),
    "therapist.password_reset": _l("Reset their password with a link"),
    "therapist.two_step_reset": _l("Reset a colleague's two-step sign-in"),
    "account.two_step_on": _l("Turned on two-step sign-in"),
    "account.two_step_off": _l("Turned off two-step sign-in"),
    "account.recovery_codes_new": _l("Made new recovery codes"),
    "account.recovery_code_used": _l("Signed in with a recovery code"),
}


# Actor types a clinic reads as one choice each in the filter (therapists and keys are listed one
# by one): their words.
ACTOR_TYPES: dict[str, LazyString] = {
    audit.PATIENT: _l("A patient"),
    audit.DEVICE: _l("A therapist's device"),
    audit.SYSTEM: _l("The app itself"),
}

AUDIT_PAGE = 100


class FilterError(ValueError):
    """A filter value the page cannot use; the message says which and why, in the reader's words."""


@dataclass(frozen=True)
class Filters:
    """The filters as asked (strings, to refill the form and the page links) and as understood."""

    action: str
    actor: str
    first: str
    last: str
    where: audit.TrailFilter

    def args(self) -> dict[str, str]:
        """The query arguments that keep these filters on the next and previous pages."""
        asked = {"action": self.action, "actor": self.actor, "from": self.first, "to": self.last}
        return {name: value for name, value in asked.items() if value}


def _day(raw: str, name: str) -> date:
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        raise FilterError(_("“%(field)s” must be a date such as 2026-11-01.", field=name)) from None
    if not plausible_year(day.year):
        raise FilterError(_("“%(field)s” must be a date such as 2026-11-01.", field=name))
    return day


def parse_filters(
    args: Any,
    zone: str,
    actions: set[str],
    therapists: dict[uuid.UUID, str],
    keys: dict[uuid.UUID, audit.KeyName],
) -> Filters:
    """The page's filters from its query string; a value that matches nothing the clinic has (an
    action never logged, somebody else's therapist, a day that is no date) is a FilterError, never
    an empty page that looks like "nothing happened"."""
    action = args.get("action", "").strip()
    actor = args.get("actor", "").strip()
    first = args.get("from", "").strip()
    last = args.get("to", "").strip()
    where: dict[str, Any] = {}
    if action:
        if action not in actions:
            raise FilterError(_("There is no such action in this clinic's audit trail."))
        where["action"] = action
    if actor:
        kind, _sep, raw_id = actor.partition(":")
        if kind in (audit.THERAPIST, audit.API_KEY):
            try:
                actor_id = uuid.UUID(raw_id)
            except ValueError:
                actor_id = None
            known = therapists if kind == audit.THERAPIST else keys
            if actor_id is None or actor_id not in known:
                raise FilterError(_("There is no such therapist or API key in this clinic."))
            where["actor_type"], where["actor_id"] = kind, str(actor_id)
        elif kind in ACTOR_TYPES and not raw_id:
            where["actor_type"] = kind
        else:
            raise FilterError(_("There is no such therapist or API key in this clinic."))
    start_day = _day(first, _("From (included)")) if first else None
    end_day = _day(last, _("To (included)")) if last else None
    if start_day and end_day and start_day > end_day:
        raise FilterError(_("The first day must not be after the last day."))
    # Whole days in the clinic's zone, both ends included: [midnight of the first, midnight after
    # the last), whatever the length of those days (DST).
    if start_day:
        where["start"] = wall_clock_to_utc(start_day, time(0, 0), zone)
    if end_day:
        where["end"] = wall_clock_to_utc(end_day + timedelta(days=1), time(0, 0), zone)
    return Filters(action, actor, first, last, audit.TrailFilter(**where))


def _cursor(raw_at: str | None, raw_id: str | None) -> audit.Cursor | datetime | None:
    """A page position from the page's own links: a moment with its offset and, after it, the id
    of the row at that moment (older links, made before rows had ids in them, carry none)."""
    if not raw_at:
        return None
    try:
        moment = datetime.fromisoformat(raw_at)
    except ValueError:
        raise FilterError(_("This page position is not valid.")) from None
    if moment.tzinfo is None:
        raise FilterError(
            _("This page position is not valid.")
        )  # the page's links carry the offset
    try:
        moment = moment.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+14:00 is before the first moment UTC can hold
        raise FilterError(_("This page position is not valid.")) from None
    if not raw_id:
        return moment
    try:
        return moment, uuid.UUID(raw_id)
    except ValueError:
        raise FilterError(_("This page position is not valid.")) from None


@dataclass(frozen=True)
class Row:
    """One audit row in words."""

    event: AuditEvent
    who: str
    what: str
    detail: str | None
    about: str
    href: str | None


class Namer:
    """Puts an audit row's actor and object into words, from what one page loaded at once."""

    def __init__(
        self,
        zone: str,
        therapists: dict[uuid.UUID, str],
        keys: dict[uuid.UUID, audit.KeyName],
        found: audit.Subjects,
    ) -> None:
        self.zone = zone
        self.therapists = {str(tid): name for tid, name in therapists.items()}
        self.keys = {str(kid): key for kid, key in keys.items()}
        self.found = found

    def day(self, moment: datetime) -> str:
        return format_date(to_local(moment, self.zone).date(), "medium", locale=get_locale())

    def key(self, key: audit.KeyName) -> str:
        if key.name:
            return _("API key “%(name)s” (%(prefix)s…)", name=key.name, prefix=key.prefix)
        return _("API key %(prefix)s…", prefix=key.prefix)

    def visit(self, visit: audit.VisitName) -> str:
        return _(
            "visit of patient %(ref)s on %(day)s",
            ref=visit.patient_ref,
            day=self.day(visit.performed_at),
        )

    def device(self, device: audit.DeviceName) -> str:
        kind = ", ".join(part for part in (device.browser, device.platform) if part)
        owner = self.therapists.get(str(device.therapist_id), "")
        if kind:
            return _("a device of %(name)s (%(kind)s)", name=owner, kind=kind)
        return _("a device of %(name)s", name=owner)

    def actor(self, event: AuditEvent) -> str:
        """The therapist's name or e-mail, the API key's name and prefix, the patient's reference,
        or the kind of actor when it is no longer known."""
        found, actor_id = self.found, event.actor_id or ""
        if event.actor_type == audit.THERAPIST:
            return self.therapists.get(actor_id) or _("a therapist no longer known")
        if event.actor_type == audit.API_KEY:
            key = self.keys.get(actor_id)
            return self.key(key) if key else _("an API key no longer known")
        if event.actor_type == audit.PATIENT:
            ref = found.patients.get(actor_id)
            return _("patient %(ref)s", ref=ref) if ref else _("the patient (data deleted)")
        if event.actor_type == audit.DEVICE:
            device = found.devices.get(actor_id)
            return self.device(device) if device else _("a device since removed")
        if event.actor_type == audit.SYSTEM:
            return _("the app")
        return event.actor_type

    def about(self, event: AuditEvent) -> tuple[str, str | None]:
        """What the row is about, and a link to it while it exists."""
        kind, target, found = event.target_type, event.target_id or "", self.found
        if kind is None:
            return "—", None
        if kind == "patient":
            if target in found.patients:
                words = _("patient %(ref)s", ref=found.patients[target])
                return words, url_for("clinic.patient", patient_id=target)
            return _("patient (data deleted)"), None
        if kind == "visit":
            if target in found.visits:
                return self.visit(found.visits[target]), url_for("clinic.visit", visit_id=target)
            return _("visit (deleted)"), None
        if kind == "alert":
            if target in found.alerts:
                alert = found.alerts[target]
                words = (
                    _("red alert, %(visit)s", visit=self.visit(alert.visit))
                    if alert.level == "red"
                    else _("amber alert, %(visit)s", visit=self.visit(alert.visit))
                )
                href = url_for("clinic.visit", visit_id=alert.visit.id, _anchor="alerts-h")
                return words, href
            return _("alert (deleted)"), None
        if kind == "therapist":
            name = self.therapists.get(target)
            return (
                _("therapist %(name)s", name=name) if name else _("a therapist no longer known")
            ), None
        if kind == "api_key":
            key = self.keys.get(target)
            return (self.key(key) if key else _("an API key no longer known")), None
        if kind == "therapist_device":
            device = found.devices.get(target)
            return (self.device(device) if device else _("a device since removed")), None
        if kind == "clinic":
            return _("the clinic"), None
        return kind, None


def _detail(event: AuditEvent) -> str | None:
    """The counts an export or a download keeps (never the data), in words."""
    detail = event.detail or {}
    if detail.get("rows") is not None:
        rows = _n("%(num)d row", "%(num)d rows", detail["rows"])
        # Which form of the CSV went out (older rows, from before there was a choice, say none).
        form = {"safe": _("safe for spreadsheets"), "exact": _("exact text")}.get(
            detail.get("form", "")
        )
        return f"{detail.get('from')} – {detail.get('to')}, {rows}" + (f", {form}" if form else "")
    if detail.get("checkins") is not None:
        visits = _n("%(num)d visit", "%(num)d visits", detail.get("visits", 0))
        checkins = _n("%(num)d check-in", "%(num)d check-ins", detail["checkins"])
        return f"{visits}, {checkins}"
    return None


@bp.get("/audit")
@admin_only
def audit_page() -> str | tuple[str, int]:
    """Who saw or changed what, when and from where: the clinic's audit trail, newest first."""
    clinic = current_user.clinic
    zone = clinic.timezone
    actions, actor_types = audit.kinds_in(clinic.id)
    therapists = therapist_names(clinic.id)
    keys = audit.api_keys(clinic.id)
    choices = {
        "actions": sorted(
            ((a, str(AUDIT_ACTIONS.get(a, a))) for a in actions), key=lambda c: c[1].casefold()
        ),
        "therapists": sorted(therapists.items(), key=lambda t: t[1].casefold()),
        "keys": sorted(keys.items(), key=lambda k: (k[1].name or k[1].prefix).casefold()),
        "types": [(kind, label) for kind, label in ACTOR_TYPES.items() if kind in actor_types],
    }
    try:
        filters = parse_filters(request.args, zone, actions, therapists, keys)
        before = _cursor(request.args.get("before"), request.args.get("before_id"))
        after = _cursor(request.args.get("after"), request.args.get("after_id"))
        if isinstance(after, datetime) or (before is not None and after is not None):
            raise FilterError(_("This page position is not valid."))
    except FilterError as exc:
        asked = {k: request.args.get(k, "") for k in ("action", "actor", "from", "to")}
        page = render_template(
            "clinic/audit.html",
            rows=[],
            error=str(exc),
            asked=asked,
            choices=choices,
            key_name=Namer(zone, therapists, keys, audit.Subjects({}, {}, {}, {})).key,
            older=None,
            newer=None,
            zone=zone,
        )
        return page, 400
    events, more = audit.trail(clinic.id, before, AUDIT_PAGE, filters.where, after=after)
    namer = Namer(zone, therapists, keys, audit.subjects(clinic.id, events))
    rows = []
    for event in events:
        about, href = namer.about(event)
        what = str(AUDIT_ACTIONS.get(event.action, event.action))
        rows.append(Row(event, namer.actor(event), what, _detail(event), about, href))
    kept = filters.args()
    older = newer = None
    if events and (more if after is None else True):
        last = events[-1]
        older = url_for(
            "clinic.audit_page", before=last.at.isoformat(), before_id=str(last.id), **kept
        )
    if events and (before is not None or (after is not None and more)):
        first = events[0]
        newer = url_for(
            "clinic.audit_page", after=first.at.isoformat(), after_id=str(first.id), **kept
        )
    return render_template(
        "clinic/audit.html",
        rows=rows,
        error=None,
        asked={
            "action": filters.action,
            "actor": filters.actor,
            "from": filters.first,
            "to": filters.last,
        },
        filtered=bool(kept),
        choices=choices,
        key_name=namer.key,
        older=older,
        newer=newer,
        zone=zone,
    )
