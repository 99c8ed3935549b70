"""The patient's "done today" tick on each chosen stretch (issue 15): stored once per patient day,
taken back, shown to the therapist, in the patient's own data, the CSV and the FHIR export, and
gone with the patient."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from companion.extensions import db
from companion.models import StretchDone
from companion.visits import stretch_done
from tests.conftest import csrf_from, sign_in
from tests.test_fhir import get_bundle, r4_errors, resources
from tests.test_patient import open_link

VISIT_AT = datetime(2026, 11, 24, 16, 0, tzinfo=UTC)  # 17:00 in Madrid, the patient's zone


@pytest.fixture
def made(make_clinic, make_visit, now):
    visit = make_visit(make_clinic(), regions=["neck", "calf"], performed_at=VISIT_AT, now=VISIT_AT)
    assert len(visit.visit.stretches) >= 2, "the regions' usual stretches were chosen"
    return visit


def ticks() -> list[tuple[str, date]]:
    return list(db.session.execute(select(StretchDone.stretch, StretchDone.day)).tuples())


def test_a_tick_counts_once_per_patient_day_in_the_patients_zone(made):
    visit = made.visit
    first, second = visit.stretches[:2]
    # 23:30 in Madrid is still the 24th there, though it is the 24th 22:30 in UTC...
    late = datetime(2026, 11, 24, 22, 30, tzinfo=UTC)
    stretch_done.mark_done(visit, first, late)
    stretch_done.mark_done(visit, first, late + timedelta(minutes=5))  # a second tap
    # ...and 00:30 in Madrid (23:30 UTC) is the 25th.
    stretch_done.mark_done(visit, first, late + timedelta(hours=1))
    stretch_done.mark_done(visit, second, late + timedelta(hours=1))
    db.session.commit()
    assert sorted(ticks()) == sorted(
        [(first, date(2026, 11, 24)), (first, date(2026, 11, 25)), (second, date(2026, 11, 25))]
    )
    assert stretch_done.done_today(visit, late + timedelta(hours=2)) == {first, second}

    stretch_done.undo(visit, second, late + timedelta(hours=2))
    db.session.commit()
    assert (second, date(2026, 11, 25)) not in ticks()
    assert (first, date(2026, 11, 24)) in ticks()  # earlier days stay

    # 00:30 on the 26th in Madrid: the visit day, the 25th and the 26th make 3 days.
    summary = {a.code: a for a in stretch_done.adherence(visit, late + timedelta(days=1, hours=2))}
    assert summary[first].days_done == 2 and summary[first].days == 3
    assert summary[first].last_done == date(2026, 11, 25)
    assert summary[second].days_done == 0 and summary[second].last_done is None


def test_only_a_chosen_stretch_can_be_ticked(made):
    with pytest.raises(stretch_done.NotChosen):
        stretch_done.mark_done(made.visit, "not_a_stretch", VISIT_AT)
    unchosen = next(
        code
        for code in ("calf_wall_stretch", "upper_trap_side_bend", "chin_tuck", "figure_four")
        if code not in made.visit.stretches
    )
    with pytest.raises(stretch_done.NotChosen):
        stretch_done.mark_done(made.visit, unchosen, VISIT_AT)


def test_the_patient_ticks_and_untakes_on_the_guide(client, made, now):
    code = made.visit.stretches[0]
    open_link(client, made)
    page = client.get("/me/").get_data(as_text=True)
    assert f'id="stretch-{code}"' in page and "I did this today" in page
    token = csrf_from(page)

    response = client.post(f"/me/stretches/{code}", data={"done": "1", "csrf_token": token})
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/me/#stretch-{code}")
    page = client.get("/me/").get_data(as_text=True)
    assert "Done today" in page and "Undo" in page
    assert ticks() == [(code, stretch_done.patient_day(made.visit, now))]

    client.post(f"/me/stretches/{code}", data={"done": "0", "csrf_token": token})
    assert ticks() == []


@pytest.mark.parametrize(
    ("path", "data", "status"),
    [
        ("/me/stretches/{code}", {"done": "yes"}, 400),
        ("/me/stretches/{code}", {}, 400),
        ("/me/stretches/not_a_stretch", {"done": "1"}, 404),
    ],
)
def test_bad_ticks_are_refused_and_change_nothing(client, made, now, path, data, status):
    open_link(client, made)
    token = csrf_from(client.get("/me/").get_data(as_text=True))
    url = path.format(code=made.visit.stretches[0])
    assert client.post(url, data={**data, "csrf_token": token}).status_code == status
    assert client.post(url.replace("{code}", ""), data={"done": "1"}).status_code in (400, 404)
    assert ticks() == []


def test_a_tick_needs_the_patients_link(client, made, now):
    response = client.post(f"/me/stretches/{made.visit.stretches[0]}", data={"done": "1"})
    assert response.status_code in (400, 401)
    assert ticks() == []


def test_the_therapist_sees_it_and_the_fhir_export_carries_it(
    client, made, make_api_key, make_therapist, now
):
    visit = made.visit
    first = visit.stretches[0]
    stretch_done.mark_done(visit, first, now - timedelta(days=1))
    stretch_done.mark_done(visit, first, now)
    db.session.commit()

    sign_in(client, make_therapist(visit.clinic).email)
    page = client.get(f"/visits/{visit.id}").get_data(as_text=True)
    assert 'id="adherence"' in page and "done on 2 of 2 days" in page

    bundle = get_bundle(client, make_api_key(visit.clinic), visit.id).get_json()
    assert r4_errors(bundle) is None
    done = {
        o["code"]["coding"][0]["code"]: o
        for o in resources(bundle, "Observation")
        if o["code"]["coding"][0]["system"] == "urn:aftercare-companion:stretch"
    }
    assert set(done) == set(visit.stretches)
    assert done[first]["valueInteger"] == 2
    assert done[first]["effectivePeriod"] == {"start": "2026-11-24", "end": "2026-11-25"}
    assert all(o["valueInteger"] == 0 for code, o in done.items() if code != first)


def test_the_patients_data_holds_the_ticks_and_deletion_removes_them(client, made, now):
    code = made.visit.stretches[0]
    stretch_done.mark_done(made.visit, code, now)
    db.session.commit()
    open_link(client, made)
    data = client.get("/me/data.json").get_json()
    assert data["stretches_done"] == [
        {
            "visit_id": str(made.visit.id),
            "stretch": code,
            "day": "2026-11-25",
            "recorded_at": "2026-11-25T10:00:00Z",
        }
    ]
    from companion.visits.patient_data import _delete_patient_rows

    removed = _delete_patient_rows(made.visit.patient_id, now)
    db.session.commit()
    assert removed.stretches_done == 1
    assert db.session.scalar(select(func.count()).select_from(StretchDone)) == 0


def test_the_exports_page_downloads_the_ticks_as_csv_and_audits_it(
    client, made, make_therapist, now
):
    import csv
    import io

    from companion.models import AuditEvent

    visit = made.visit
    first = visit.stretches[0]
    stretch_done.mark_done(visit, first, now - timedelta(days=1))
    stretch_done.mark_done(visit, first, now)
    db.session.commit()
    sign_in(client, make_therapist(visit.clinic).email)

    response = client.get(
        "/exports/checkins.csv?table=stretches&from=2026-11-25&to=2026-11-25&raw=0"
    )
    assert response.status_code == 200
    assert (
        'filename="stretches-2026-11-25-to-2026-11-25.csv"'
        in response.headers["Content-Disposition"]
    )
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [(r["visit_id"], r["stretch"], r["day"]) for r in rows] == [
        (str(visit.id), first, "2026-11-25")
    ]
    assert rows[0]["patient_name"] == "Sam" and rows[0]["recorded_at_utc"] == "2026-11-25T10:00:00Z"
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "export.csv"))
    assert event.detail["table"] == "stretches" and event.detail["rows"] == 1

    # An unknown table is refused with the page's message, and nothing is exported.
    refused = client.get("/exports/checkins.csv?table=everything&from=2026-11-25&to=2026-11-25")
    assert refused.status_code == 422
    assert "Choose what to export." in refused.get_data(as_text=True)
    count = select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "export.csv")
    assert db.session.scalar(count) == 1
