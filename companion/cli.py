"""Flask commands: clinic, therapist, apikey, demo, reminders, push."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable

import click
from flask import Flask, current_app
from flask_babel import force_locale
from sqlalchemy import func, select

from companion import audit
from companion.accounts.api_keys import NAME_MAX_LENGTH, create_key
from companion.alerts.escalation import OnCallContact, set_on_call
from companion.auth import hash_password, password_problem
from companion.care.hours import parse_specs, render
from companion.extensions import db
from companion.models import Clinic, Role, Therapist
from companion.reminders.planning import (
    MAX_QUIET_HOURS,
    QuietHours,
    parse_quiet_hours,
    replan_clinic_default,
)
from companion.timeutil import is_iana_zone, utcnow
from companion.visits.contact import normalize_email, normalize_phone


def _clinic_by_name(name: str) -> Clinic:
    clinic = db.session.scalar(select(Clinic).where(Clinic.name == name))
    if clinic is None:
        raise click.ClickException(f"No clinic named {name!r}.")
    return clinic


def _read_password(*context: str) -> str:
    """From the terminal (asked twice) or standard input; refused unless it meets the password
    policy (auth.password_problem). `context`: the account's own words."""
    if sys.stdin.isatty():
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    with force_locale("en"):  # the words are translated for pages; a terminal gets English
        problem = password_problem(password, *context)
    if problem is not None:
        raise click.ClickException(problem)
    return password


clinic_cli = click.Group("clinic", help="Manage clinics.")


@clinic_cli.command("create")
@click.argument("name")
@click.option("--timezone", default="UTC", help="IANA time zone of the clinic.")
@click.option("--phone", default=None, help="Phone number patients can call.")
@click.option(
    "--quiet-hours",
    default="21:30-08:00",
    show_default=True,
    help="Local hours without reminders, e.g. 22:00-07:30, or 'off'. Patients can set their own.",
)
def clinic_create(name: str, timezone: str, phone: str | None, quiet_hours: str) -> None:
    if not is_iana_zone(timezone):
        raise click.ClickException(f"{timezone!r} is not an IANA time zone name.")
    if db.session.scalar(select(Clinic).where(Clinic.name == name)) is not None:
        raise click.ClickException(f"A clinic named {name!r} already exists.")
    quiet = _quiet_hours(quiet_hours)
    db.session.add(
        Clinic(
            name=name, timezone=timezone, phone=phone, quiet_start=quiet.start, quiet_end=quiet.end
        )
    )
    db.session.commit()
    click.echo(f"Created clinic {name!r}.")


def _quiet_hours(text: str) -> QuietHours:
    try:
        return parse_quiet_hours(text)
    except ValueError:
        raise click.ClickException(
            f"{text!r}: give local hours such as 21:30-08:00, at most {MAX_QUIET_HOURS} hours long, or 'off'."
        ) from None


@clinic_cli.command("quiet-hours")
@click.argument("name")
@click.argument("hours")
def clinic_quiet_hours(name: str, hours: str) -> None:
    """Set the clinic's default quiet hours (e.g. 22:00-07:30) and re-plan unsent reminders."""
    clinic = _clinic_by_name(name)
    quiet = _quiet_hours(hours)
    clinic.quiet_start, clinic.quiet_end = quiet.start, quiet.end
    db.session.flush()
    moved = replan_clinic_default(clinic, utcnow())
    db.session.commit()
    click.echo(f"Quiet hours of {clinic.name!r}: {hours}; re-planned {moved} open visit(s).")


@clinic_cli.command("hours")
@click.argument("name")
@click.argument("specs", nargs=-1)
@click.option("--clear", is_flag=True, help="Forget the hours: patients are told no opening time.")
def clinic_hours(name: str, specs: tuple[str, ...], clear: bool) -> None:
    """Set the clinic's opening hours in its own zone, e.g. "mon-fri 08:00-20:00" "sat 09:00-13:00"
    (days not named are closed); with no hours, print them. A patient's red screen says when the
    clinic will see a red flag from these hours."""
    clinic = _clinic_by_name(name)
    if clear and specs:
        raise click.ClickException("Give hours or --clear, not both.")
    if not clear and not specs:
        click.echo(
            f"Opening hours of {clinic.name!r} ({clinic.timezone}): {render(clinic.opening_hours)}"
        )
        return
    try:
        clinic.opening_hours = None if clear else parse_specs(specs)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    # The same audit row as a change on the settings page, by the system (no therapist signed in).
    audit.record(
        "clinic.settings",
        audit.Actor.system(clinic.id),
        now=utcnow(),
        detail={"changed": "opening_hours"},
    )
    db.session.commit()
    click.echo(
        f"Opening hours of {clinic.name!r} ({clinic.timezone}): {render(clinic.opening_hours)}"
    )


@clinic_cli.command("on-call")
@click.argument("name")
@click.argument("contact_name", metavar="CONTACT", required=False)
@click.option("--phone", default=None, help="The on-call phone, with + and the country code.")
@click.option("--email", default=None, help="Where the escalation e-mail goes.")
@click.option(
    "--therapist",
    "therapist_email",
    default=None,
    help="E-mail of a therapist account of the clinic: its devices get the escalation by push.",
)
@click.option("--clear", is_flag=True, help="Remove the on-call contact.")
def clinic_on_call(
    name: str,
    contact_name: str | None,
    phone: str | None,
    email: str | None,
    therapist_email: str | None,
    clear: bool,
) -> None:
    """Set (or show) who a red alert escalates to when nobody acknowledged it in time."""
    clinic = _clinic_by_name(name)
    given = any(v is not None for v in (contact_name, phone, email, therapist_email))
    if not given and not clear:
        click.echo(_describe_on_call(clinic))
        return
    try:
        contact = OnCallContact(
            name=None if clear else contact_name,
            phone=None if clear else _normalized("--phone", normalize_phone, phone),
            email=None if clear else _normalized("--email", normalize_email, email),
            therapist_id=None if clear else _therapist_id(clinic, therapist_email),
        )
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    if not clear and contact.email is None and contact.therapist_id is None:
        raise click.ClickException("Give --email or --therapist: the escalation needs one of them.")
    set_on_call(clinic, contact, audit.Actor.system(clinic.id), utcnow())
    db.session.commit()
    click.echo(_describe_on_call(clinic))


def _normalized(option: str, normalize: Callable[[str], str], value: str | None) -> str | None:
    if not value:
        return None
    try:
        return normalize(value)
    except ValueError as exc:
        raise ValueError(f"{option} {exc}.") from None


def _therapist_id(clinic: Clinic, email: str | None) -> uuid.UUID | None:
    if email is None:
        return None
    therapist = db.session.scalar(
        select(Therapist).where(
            Therapist.clinic_id == clinic.id,
            func.lower(Therapist.email) == email.strip().lower(),
            Therapist.active.is_(True),
        )
    )
    if therapist is None:
        raise ValueError(f"No active therapist {email!r} in {clinic.name!r}.")
    return therapist.id


def _describe_on_call(clinic: Clinic) -> str:
    if not (clinic.oncall_name or clinic.oncall_email or clinic.oncall_therapist_id):
        return f"{clinic.name!r} has no on-call contact: an unacknowledged red alert reaches nobody more."
    therapist = (
        db.session.get(Therapist, clinic.oncall_therapist_id)
        if clinic.oncall_therapist_id
        else None
    )
    parts = [
        f"name {clinic.oncall_name}" if clinic.oncall_name else None,
        f"phone {clinic.oncall_phone}" if clinic.oncall_phone else None,
        f"e-mail {clinic.oncall_email}" if clinic.oncall_email else None,
        f"therapist {therapist.email}" if therapist else None,
    ]
    return f"On-call of {clinic.name!r}: " + "; ".join(p for p in parts if p) + "."


therapist_cli = click.Group("therapist", help="Manage therapists.")


@therapist_cli.command("create")
@click.argument("email")
@click.option("--clinic", "clinic_name", required=True, help="Name of the clinic.")
@click.option("--name", "display_name", default=None, help="Name shown in the app.")
@click.option(
    "--role",
    type=click.Choice(Role.ALL),
    default=None,
    help="admin manages the clinic; therapist reviews and records visits. Default: admin for the "
    "clinic's first therapist, therapist after that.",
)
def therapist_create(
    email: str, clinic_name: str, display_name: str | None, role: str | None
) -> None:
    """Create a therapist; the password is read from standard input (or prompted)."""
    clinic = _clinic_by_name(clinic_name)
    if role is None:
        first = not db.session.scalar(
            select(func.count(Therapist.id)).where(Therapist.clinic_id == clinic.id)
        )
        role = Role.ADMIN if first else Role.THERAPIST
    email = email.strip().lower()
    if "@" not in email:
        raise click.ClickException(f"{email!r} is not an e-mail address.")
    taken = db.session.scalar(select(Therapist).where(func.lower(Therapist.email) == email))
    if taken is not None:
        raise click.ClickException(f"A therapist with e-mail {email!r} already exists.")
    password = _read_password(email, display_name or "", clinic.name)
    db.session.add(
        Therapist(
            clinic_id=clinic.id,
            email=email,
            display_name=display_name,
            password_hash=hash_password(password),
            role=role,
        )
    )
    db.session.commit()
    click.echo(f"Created {role} {email} in {clinic.name!r}.")


apikey_cli = click.Group("apikey", help="Manage clinic API keys.")


@apikey_cli.command("create")
@click.option("--clinic", "clinic_name", required=True, help="Name of the clinic.")
@click.option("--name", default=None, help="What the key is for (shown on the API keys page).")
def apikey_create(clinic_name: str, name: str | None) -> None:
    """Print a new API key once; only its hash is stored."""
    clinic = _clinic_by_name(clinic_name)
    if name is not None and len(name.strip()) > NAME_MAX_LENGTH:
        raise click.BadParameter(f"at most {NAME_MAX_LENGTH} characters", param_hint="--name")
    now = utcnow()
    row, key = create_key(clinic.id, name, now)
    audit.record("api_key.create", audit.Actor.system(clinic.id), ("api_key", row.id), now=now)
    db.session.commit()
    click.echo(key)


@click.command("demo")
@click.option("--base-url", default=None, help="Base URL for the printed links.")
def demo(base_url: str | None) -> None:
    """On an empty database: a demo clinic, therapist and visit, and how to sign in."""
    from companion.demo import seed_demo

    base = (base_url or current_app.config.get("PUBLIC_URL") or "http://127.0.0.1:5000").rstrip("/")
    created = seed_demo(now=utcnow(), link_days=current_app.config["PATIENT_LINK_DAYS"])
    if created is None:
        click.echo("Demo data: the database is not empty; nothing added.")
        click.echo(f"Sign in at {base}/sign-in")
        return
    click.echo("")
    click.echo("  Demo data created.")
    click.echo(f"  Therapist sign-in: {base}/sign-in")
    click.echo(f"    e-mail:   {created.email}")
    click.echo(f"    password: {created.password}")
    click.echo(
        f"  Demo patient link (open on a phone or a narrow window): {base}/p/{created.token}"
    )
    click.echo("")


reminders_cli = click.Group("reminders", help="The reminder worker.")


@reminders_cli.command("run")
def reminders_run() -> None:
    """Run the reminder worker until stopped (any number may run at once)."""
    import logging

    from companion.worker import run_worker

    # Operators read what the worker did in its output (counts only; never health data).
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("apscheduler").setLevel(logging.WARNING)  # a line per tick is noise

    run_worker(current_app._get_current_object())  # type: ignore[attr-defined]


@reminders_cli.command("dispatch")
def reminders_dispatch() -> None:
    """Send every reminder due now, then exit (for cron hosts and tests)."""
    from companion.reminders.dispatch import drain

    totals = drain(current_app._get_current_object())  # type: ignore[attr-defined]
    if not totals:
        click.echo("No reminders due.")
        return
    click.echo(", ".join(f"{status}: {n}" for status, n in sorted(totals.items())))


alerts_cli = click.Group("alerts", help="Alerts to therapists.")


@alerts_cli.command("dispatch")
def alerts_dispatch() -> None:
    """Send red alerts and due amber digests to therapists now, then exit (the worker does this
    every ALERT_TICK_SECONDS)."""
    from companion.alerts.dispatch import dispatch_once

    report = dispatch_once(current_app._get_current_object())  # type: ignore[attr-defined]
    click.echo(f"red alerts: {report.red_alerts}, digests: {report.digests}")


push_cli = click.Group("push", help="Web push settings.")


@push_cli.command("keygen")
@click.option("--force", is_flag=True, help="Replace an existing key (every subscription ends).")
def push_keygen(force: bool) -> None:
    """Create the VAPID key pair under instance/ and print the public key.

    Browsers subscribe to one public key; a new key silently ends every existing subscription, so
    an existing key is kept unless --force is given. With VAPID_PRIVATE_KEY set, that key is used.
    """
    import os

    from config import INSTANCE, new_vapid_private_pem, vapid_public_key

    if os.environ.get("VAPID_PRIVATE_KEY"):
        click.echo("VAPID_PRIVATE_KEY is set in the environment; it is the key in use.")
        click.echo(vapid_public_key(os.environ["VAPID_PRIVATE_KEY"]))
        return
    path = INSTANCE / "vapid_private.pem"
    if path.exists() and not force:
        click.echo(f"Keeping the existing key in {path}.")
    else:
        INSTANCE.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(new_vapid_private_pem())
        os.replace(tmp, path)
        click.echo(f"Wrote a new key to {path}; restart the app and workers to use it.")
    click.echo(vapid_public_key(path.read_text()))


def init_app(app: Flask) -> None:
    for group in (
        clinic_cli,
        therapist_cli,
        apikey_cli,
        reminders_cli,
        alerts_cli,
        push_cli,
        demo,
    ):
        app.cli.add_command(group)
