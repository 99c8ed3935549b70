"""The patient's "done today" tick on each chosen stretch of the guide (issue 15)."""

from __future__ import annotations

from flask import Response, abort, redirect, request, url_for

from companion.extensions import db
from companion.patient import bp, require_link
from companion.timeutil import utcnow
from companion.visits import stretch_done


@bp.post("/stretches/<code>")
def stretch_tick(code: str) -> Response:
    """`done=1` ticks the stretch for today, `done=0` takes today's tick back."""
    link = require_link()
    choice = request.form.get("done")
    if choice not in ("0", "1"):
        abort(400)
    try:
        if choice == "1":
            stretch_done.mark_done(link.visit, code, utcnow())
        else:
            stretch_done.undo(link.visit, code, utcnow())
    except stretch_done.NotChosen:
        abort(404)
    db.session.commit()
    # Back to the same stretch on the guide (a fragment stays in the browser, never a token).
    return redirect(url_for("patient.home", _anchor=f"stretch-{code}"), code=303)
