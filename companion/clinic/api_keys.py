"""The API keys page (admins): create a key (shown once, in full, on the page that answers the
creation, and never again), see each key's name, prefix, creation and last use, revoke one.
The keys themselves are managed in accounts/api_keys.py, which the CLI uses too."""

from __future__ import annotations

import uuid

from flask import Response, abort, redirect, render_template, request, url_for
from flask_login import current_user

from companion import audit
from companion.accounts.api_keys import create_key, key_in_clinic, keys_of, revoke_key
from companion.clinic import admin_only, review_bp
from companion.extensions import db
from companion.forms import ActionForm, ApiKeyForm
from companion.models import ApiKey
from companion.timeutil import utcnow


def _page(form: ApiKeyForm | None = None, new_key: tuple[ApiKey, str] | None = None) -> str:
    return render_template(
        "clinic/api_keys.html",
        form=form or ApiKeyForm(formdata=None),
        keys=keys_of(current_user.clinic_id),
        new_key=new_key,
        revoked=request.args.get("revoked") == "1",
    )


def _key_or_404(key_id: uuid.UUID) -> ApiKey:
    key = key_in_clinic(current_user.clinic_id, key_id)
    if key is None:
        abort(404)
    return key


@review_bp.route("/settings/api-keys", methods=["GET", "POST"])
@admin_only
def api_keys() -> str | tuple[str, int]:
    form = ApiKeyForm()
    if not form.is_submitted():
        return _page()
    if not form.validate():
        return _page(form), 422
    now = utcnow()
    row, key = create_key(current_user.clinic_id, form.name.data, now)
    audit.record("api_key.create", audit.current_actor(), ("api_key", row.id), now=now)
    db.session.commit()
    # The answer to the POST shows the key: no redirect, so it never travels in a URL or the
    # session, and reloading cannot show it again (the browser asks before posting twice, and a
    # second post makes a second key).
    return _page(new_key=(row, key))


@review_bp.route("/settings/api-keys/<uuid:key_id>/revoke", methods=["GET", "POST"])
@admin_only
def revoke_api_key(key_id: uuid.UUID) -> Response | str | tuple[str, int]:
    """GET asks to confirm (what stops working); POST revokes."""
    key = _key_or_404(key_id)
    form = ActionForm()
    if not form.is_submitted():
        return render_template("clinic/api_key_revoke.html", key=key, form=form)
    if not form.validate():
        return render_template("clinic/api_key_revoke.html", key=key, form=form), 400
    now = utcnow()
    if revoke_key(key, now):
        audit.record("api_key.revoke", audit.current_actor(), ("api_key", key.id), now=now)
        db.session.commit()
    return redirect(url_for("review.api_keys", revoked=1), code=303)
