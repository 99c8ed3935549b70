"""Roles (issue 13): admins manage the clinic, therapists review and record visits. Every page and
action that manages the clinic refuses a therapist with a 403 and changes nothing; the CLI makes a
clinic's first therapist its admin; an upgrade gives every existing clinic one."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask_migrate import downgrade, upgrade
from sqlalchemy import func, select

from companion.extensions import db
from companion.models import AuditEvent, Clinic, Role, Therapist

from .conftest import PASSWORD, csrf_from, sign_in

# (method, path): every page and action that manages the clinic.
ADMIN_ONLY = [
    ("GET", "/settings/clinic"),
    ("POST", "/settings/clinic"),
    ("POST", "/settings/clinic/hours"),
    ("GET", "/settings/on-call"),
    ("POST", "/settings/on-call"),
    ("POST", "/settings/on-call/test"),
    ("GET", "/audit"),
]


@pytest.fixture
def clinic_of_two(client, make_clinic, make_therapist, now):
    clinic = make_clinic(name="Harbour Physio")
    admin = make_therapist(clinic, "ada@harbour.example", role=Role.ADMIN)
    therapist = make_therapist(clinic, "theo@harbour.example", role=Role.THERAPIST)
    return clinic, admin, therapist


@pytest.mark.parametrize(("method", "path"), ADMIN_ONLY)
def test_a_therapist_gets_403_on_every_admin_page_and_action_and_nothing_changes(
    client, clinic_of_two, method, path
):
    clinic, _admin, therapist = clinic_of_two
    assert sign_in(client, therapist.email, PASSWORD).status_code == 302
    token = csrf_from(client.get("/").get_data(as_text=True))
    events = db.session.scalar(select(func.count()).select_from(AuditEvent))

    answer = client.open(
        path,
        method=method,
        data={"csrf_token": token, "episode_days": "3", "name": "Eve", "email": "e@x.example"},
    )

    assert answer.status_code == 403
    assert "You are not allowed to see this page." in answer.get_data(as_text=True)
    db.session.expire_all()
    stored = db.session.get(Clinic, clinic.id)
    assert (stored.episode_days, stored.oncall_name) == (7, None)
    # Only the queue's own audit row (the GET above): nothing for the refused request.
    assert db.session.scalar(select(func.count()).select_from(AuditEvent)) == events


@pytest.mark.parametrize(("method", "path"), [p for p in ADMIN_ONLY if p[0] == "GET"])
def test_an_admin_reaches_every_admin_page(client, clinic_of_two, method, path):
    _clinic, admin, _therapist = clinic_of_two
    assert sign_in(client, admin.email, PASSWORD).status_code == 302
    assert client.open(path, method=method).status_code == 200


def test_the_menu_shows_the_admin_pages_to_admins_only(client, clinic_of_two):
    _clinic, admin, therapist = clinic_of_two
    links = ('href="/settings/clinic"', 'href="/settings/on-call"', 'href="/audit"')
    assert sign_in(client, therapist.email, PASSWORD).status_code == 302
    queue = client.get("/").get_data(as_text=True)
    assert not any(link in queue for link in links)
    client.post("/sign-out", data={"csrf_token": csrf_from(queue)})
    assert sign_in(client, admin.email, PASSWORD).status_code == 302
    queue = client.get("/").get_data(as_text=True)
    assert all(link in queue for link in links)


def test_the_readiness_warning_sends_a_therapist_to_an_admin(app, client, clinic_of_two):
    app.config["MAIL_SERVER"] = None  # nothing would reach anybody: the warning shows
    _clinic, _admin, therapist = clinic_of_two
    assert sign_in(client, therapist.email, PASSWORD).status_code == 302
    queue = client.get("/").get_data(as_text=True)
    assert "Ask an admin of your clinic to set an on-call contact." in queue
    assert 'href="/settings/on-call"' not in queue


def create(runner, email: str, *extra: str):  # type: ignore[no-untyped-def]
    return runner.invoke(
        args=["therapist", "create", email, "--clinic", "Harbour Physio", *extra],
        input="a long enough password\n",
    )


def test_the_clinics_first_therapist_from_the_cli_is_its_admin(now, runner, make_clinic):
    make_clinic(name="Harbour Physio")
    first = create(runner, "ada@harbour.example")
    second = create(runner, "theo@harbour.example")
    third = create(runner, "ines@harbour.example", "--role", "admin")
    refused = create(runner, "zed@harbour.example", "--role", "owner")

    assert "Created admin ada@harbour.example" in first.output
    assert "Created therapist theo@harbour.example" in second.output
    assert "Created admin ines@harbour.example" in third.output
    assert refused.exit_code != 0 and "owner" in refused.output
    roles = dict(db.session.execute(select(Therapist.email, Therapist.role)).all())
    assert roles == {
        "ada@harbour.example": "admin",
        "theo@harbour.example": "therapist",
        "ines@harbour.example": "admin",
    }


def test_an_upgrade_makes_each_clinics_earliest_therapist_its_admin(
    app, make_clinic, make_therapist, now
):
    harbour, hill = make_clinic(name="Harbour"), make_clinic(name="Hill")
    for clinic, emails in ((harbour, ("a@h.example", "b@h.example")), (hill, ("c@h.example",))):
        for offset, email in enumerate(emails):
            therapist = make_therapist(clinic, email, role=Role.THERAPIST)
            therapist.created_at = now + timedelta(minutes=offset)
    db.session.commit()
    db.session.remove()

    downgrade(revision="5e3a1c2b7d40")
    upgrade()

    roles = dict(db.session.execute(select(Therapist.email, Therapist.role)).all())
    assert roles == {"a@h.example": "admin", "b@h.example": "therapist", "c@h.example": "admin"}
