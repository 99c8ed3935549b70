"""The guide (home) page, the offline page and the language switch."""

from __future__ import annotations

from flask import (
    Response,
    abort,
    current_app,
    redirect,
    render_template,
    request,
    url_for,
)

from companion.auth import current_link
from companion.care import guidance
from companion.care.drawings import stretch_drawing
from companion.care.regions import BY_CODE as REGIONS
from companion.care.regions import any_over_lung
from companion.care.stretches import BY_CODE as STRETCHES
from companion.care.stretches import DOSE, PURPOSE, STOP_IF
from companion.patient import LANGUAGE_COOKIE, bp, page_context, page_data, require_link
from companion.timeutil import hours_since, utcnow
from companion.visits import stretch_done
from companion.visits.contact import emergency_number


@bp.get("/")
def home() -> str:
    link = require_link()
    now = utcnow()
    visit = link.visit
    hours = hours_since(visit.performed_at, now)
    stage = guidance.current_stage(hours)
    return render_template(
        "patient/home.html",
        **page_context(link),
        hours=hours,
        stage=stage,
        now_advice=stage.advice_for(visit.regions),
        ahead=[
            (later, later.advice_for(visit.regions))
            for later in guidance.STAGES
            if later.from_hours > stage.from_hours
        ],
        normal=guidance.NORMAL,
        call_clinic=guidance.CALL_CLINIC,
        lung_field=any_over_lung(visit.regions),
        regions=[REGIONS[c].label for c in visit.regions if c in REGIONS],
        stretches=[STRETCHES[c] for c in visit.stretches if c in STRETCHES],
        done_today=stretch_done.done_today(visit, now),
        stretch_dose=DOSE,
        stretch_stop=STOP_IF,
        stretch_purpose=PURPOSE,
        stretch_drawing=stretch_drawing,
    )


@bp.get("/offline")
def offline() -> str:
    """Shown by the service worker for a page it has not kept. Needs no link: it holds no data.
    With one, its emergency number is the patient's clinic's (only that: the page is kept)."""
    link = current_link()
    return render_template(
        "patient/offline.html",
        page_data=page_data(None),
        emergency_number=emergency_number(link.visit.clinic if link is not None else None),
        emergency=guidance.EMERGENCY,
    )


@bp.post("/language")
def language() -> Response:
    require_link()
    choice = request.form.get("language", "")
    if choice not in ("en", "es"):
        abort(400)
    back = request.form.get("next_page", "")
    # A control character (CR/LF above all) cannot go into a Location header: werkzeug would raise,
    # a 500. No page of ours has one in its path, so the request is malformed: a 400.
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in back):
        abort(400)
    # Only our own patient pages: never an open redirect ("//elsewhere.example" starts with "/").
    if not back.startswith("/me/"):
        back = url_for("patient.home")
    response = redirect(back, code=303)
    response.set_cookie(
        LANGUAGE_COOKIE,
        choice,
        max_age=60 * 60 * 24 * 30,
        httponly=True,
        samesite="Lax",
        secure=current_app.config["PATIENT_COOKIE_SECURE"],
    )
    return response
