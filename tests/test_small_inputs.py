"""Small inputs from issue 14 (findings 7, 8 and 12): a CR/LF in a redirect target is a 4xx, only
real IANA zones are taken (never a name whose meaning depends on the host, such as "localtime"),
and every 405 says which methods are allowed."""

from __future__ import annotations

import importlib.resources

import pytest
from sqlalchemy import func, select

from companion.extensions import db
from companion.models import Clinic, Patient, Visit
from companion.timeutil import IANA_ZONES, is_iana_zone

from .conftest import csrf_from, sign_in
from .test_api import VISIT

# --- 7: CR/LF in next_page --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "next_page",
    [
        pytest.param("/me/\r\nSet-Cookie: x=1", id="crlf"),
        pytest.param("/me/\nX: y", id="lf"),
        pytest.param("/me/\r", id="cr"),
        pytest.param("/me/\t", id="tab"),
        pytest.param("/me/\x7f", id="del"),
    ],
)
def test_a_control_character_in_next_page_is_a_400_and_sets_nothing(patient_client, next_page):
    page = patient_client.get("/me/").get_data(as_text=True)
    response = patient_client.post(
        "/me/language",
        data={"csrf_token": csrf_from(page), "language": "es", "next_page": next_page},
    )
    assert response.status_code == 400
    assert "Location" not in response.headers
    assert "companion_lang" not in response.headers.get("Set-Cookie", "")
    assert '<html lang="en">' in patient_client.get("/me/").get_data(as_text=True)


def test_a_plain_next_page_still_redirects_there(patient_client):
    page = patient_client.get("/me/").get_data(as_text=True)
    response = patient_client.post(
        "/me/language",
        data={"csrf_token": csrf_from(page), "language": "es", "next_page": "/me/check-ins"},
    )
    assert response.status_code == 303 and response.headers["Location"] == "/me/check-ins"


# --- 8: host-dependent zone names -------------------------------------------------------------------

HOST_DEPENDENT = ["localtime", "Factory", "posixrules", "posix/Europe/Madrid", "right/UTC"]


@pytest.mark.parametrize("name", HOST_DEPENDENT)
def test_is_iana_zone_refuses_names_that_are_no_place(name):
    assert not is_iana_zone(name)


def test_the_zone_list_is_the_pinned_tz_database_not_the_hosts():
    # tzdata's own list (pinned in pyproject), minus "Factory" (a placeholder, not a place): the
    # same names on every host, whatever /usr/share/zoneinfo holds.
    listed = importlib.resources.files("tzdata").joinpath("zones").read_text().split()
    assert set(IANA_ZONES) == set(listed) - {"Factory"}
    assert list(IANA_ZONES) == sorted(IANA_ZONES)
    assert {"Europe/Madrid", "UTC", "America/Argentina/Buenos_Aires"} <= set(IANA_ZONES)


@pytest.mark.parametrize("name", ["localtime", "Factory"])
def test_the_api_refuses_a_host_dependent_zone(client, make_clinic, make_api_key, name):
    key = make_api_key(make_clinic())
    body = {**VISIT, "patient": {**VISIT["patient"], "timezone": name}}
    response = client.post("/api/v1/visits", json=body, headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 422
    assert response.get_json()["error"]["code"] == "invalid_timezone"
    assert db.session.scalar(select(func.count()).select_from(Patient)) == 0


@pytest.mark.parametrize("name", ["localtime", "Factory"])
def test_the_visit_form_refuses_a_host_dependent_zone(client, make_clinic, make_therapist, name):
    sign_in(client, make_therapist(make_clinic()).email)
    page = client.get("/visits/new")
    response = client.post(
        "/visits/new",
        data={
            "csrf_token": csrf_from(page.get_data(as_text=True)),
            "ref": "R-1",
            "display_name": "Maria",
            "timezone": name,
            "language": "es",
            "performed_at": "2026-11-20T17:30",
            "regions": ["neck"],
            "insertions": "6",
        },
    )
    assert response.status_code == 422
    assert "Choose a time zone" in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(Visit)) == 0


def test_the_cli_refuses_a_host_dependent_zone(runner):
    result = runner.invoke(args=["clinic", "create", "Local Physio", "--timezone", "localtime"])
    assert result.exit_code != 0
    assert "not an IANA time zone" in result.output
    assert db.session.scalar(select(func.count()).select_from(Clinic)) == 0


# --- 12: Allow on every 405 --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("TRACE", "/api/v1/visits", {"POST", "OPTIONS"}),
        ("DELETE", "/api/v1/visits", {"POST", "OPTIONS"}),
        ("TRACE", "/api/v1/openapi.json", {"GET", "HEAD", "OPTIONS"}),
        ("TRACE", "/sign-in", {"GET", "HEAD", "POST", "OPTIONS"}),
        ("PUT", "/sign-in", {"GET", "HEAD", "POST", "OPTIONS"}),
        ("TRACE", "/me/language", {"POST", "OPTIONS"}),
    ],
)
def test_a_405_names_the_allowed_methods(client, method, path, allowed):
    response = client.open(path, method=method)
    assert response.status_code == 405
    assert {m.strip() for m in response.headers["Allow"].split(",")} == allowed


def test_every_route_answers_trace_with_a_405_and_allow(app, client):
    # From the URL map, so a new route cannot be forgotten. Rules with parameters get a value
    # of the right shape; the 405 comes from routing, before any lookup.
    samples = {"uuid": "00000000-0000-4000-8000-000000000000", "int": "1"}
    checked = 0
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        path = _fill(rule, samples)
        response = client.open(path, method="TRACE")
        assert response.status_code == 405, (rule.rule, response.status_code)
        # Another rule on the same path may allow more methods: at least this one's.
        assert set(rule.methods) <= set(response.headers["Allow"].replace(" ", "").split(",")), (
            rule.rule
        )
        checked += 1
    assert checked > 50


def _fill(rule, samples: dict[str, str]) -> str:
    values = {}
    for name, converter in rule._converters.items():
        kind = type(converter).__name__.removesuffix("Converter").lower()
        values[name] = samples.get(kind, "x")
    return rule.build(values, append_unknown=False)[1]
