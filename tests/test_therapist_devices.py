"""Therapists' devices for alerts: the Notifications page and its JSON routes (CSRF, allowlist, key
checks, scoping to the therapist), the service worker's renewal with the device token, who a clinic's
alert goes to, and sending to devices through the local push service (tests/pushserver.py: real RFC
8291 encryption and VAPID), with what each answer does to the device."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from companion.alerts.devices import (
    AMBER,
    RED,
    alert_message,
    device_label,
    devices_for_clinic,
    push_to_devices,
    save_device,
)
from companion.channels import webpush
from companion.extensions import db
from companion.models import AuditEvent, TherapistDevice
from companion.tokens import hash_token

from .conftest import sign_in
from .pushserver import PushService
from .test_push import b64url, browser_keys, subscription

NOW = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
PAGE = "/settings/notifications"
DEVICES = "/settings/notifications/devices"
RENEW = "/settings/notifications/devices/renew"
ANDROID_CHROME = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Mobile Safari/537.36"
)


def page_data(html: str) -> dict:
    found = re.search(r'<script type="application/json" id="page-data">(.*?)</script>', html, re.S)
    assert found, "the page has no page data"
    return json.loads(found.group(1))


class Therapist:
    """A signed-in therapist's browser: the test client plus the page's CSRF token."""

    def __init__(self, app, therapist) -> None:  # type: ignore[no-untyped-def]
        self.client = app.test_client()
        self.row = therapist
        assert sign_in(self.client, therapist.email).status_code == 302
        self.csrf = page_data(self.client.get(PAGE).get_data(as_text=True))["csrf_token"]

    def add(self, body: dict, **headers: str):  # type: ignore[no-untyped-def]
        return self.client.post(
            DEVICES,
            json=body,
            headers={"X-CSRFToken": self.csrf, "User-Agent": ANDROID_CHROME, **headers},
        )

    def delete(self, endpoint: str):  # type: ignore[no-untyped-def]
        return self.client.delete(
            DEVICES, json={"endpoint": endpoint}, headers={"X-CSRFToken": self.csrf}
        )

    def remove(self, device_id: object, csrf: str | None = None):  # type: ignore[no-untyped-def]
        return self.client.post(
            f"{DEVICES}/{device_id}/remove", data={"csrf_token": csrf or self.csrf}
        )


@pytest.fixture
def clinic(make_clinic):
    return make_clinic()


@pytest.fixture
def ana(app, clinic, make_therapist):
    return Therapist(app, make_therapist(clinic, "ana@clinic.example"))


@pytest.fixture
def ben(app, clinic, make_therapist):
    return Therapist(app, make_therapist(clinic, "ben@clinic.example"))


def devices() -> list[TherapistDevice]:
    db.session.expire_all()
    return list(db.session.scalars(select(TherapistDevice).order_by(TherapistDevice.created_at)))


def audit_rows(action: str) -> list[AuditEvent]:
    return list(db.session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


# --- the page and its routes -------------------------------------------------------------------


def test_turning_on_stores_this_device_with_its_renewal_token_and_an_audit_row(ana):
    body = subscription()
    response = ana.add(body)

    assert response.status_code == 201
    data = response.get_json()
    assert data["created"] is True and len(data["renewal_token"]) >= 40
    [device] = devices()
    assert str(device.id) == data["id"]
    assert device.therapist_id == ana.row.id
    assert (device.endpoint, device.p256dh, device.auth) == (
        body["endpoint"],
        body["keys"]["p256dh"],
        body["keys"]["auth"],
    )
    assert (device.browser, device.platform, device.language) == ("Chrome", "Android", "en")
    assert device.renewal_hash == hash_token(data["renewal_token"])  # only the hash is kept
    [added] = audit_rows("device.add")
    assert (added.actor_type, added.actor_id) == ("therapist", str(ana.row.id))
    assert (added.target_type, added.target_id) == ("therapist_device", str(device.id))
    assert added.clinic_id == ana.row.clinic_id
    assert added.detail == {"browser": "Chrome", "platform": "Android"}


def test_the_same_endpoint_again_updates_the_device_and_gives_a_new_token(ana):
    body = subscription()
    first = ana.add(body).get_json()
    again = ana.add(dict(body, keys=browser_keys()))

    assert again.status_code == 200
    second = again.get_json()
    assert second["created"] is False and second["id"] == first["id"]
    [device] = devices()
    assert device.renewal_hash == hash_token(second["renewal_token"])
    assert len(audit_rows("device.add")) == 1  # refreshing one's own device is no news


def test_the_device_language_is_the_pages(ana):
    ana.add(subscription(), **{"Accept-Language": "es-ES,es;q=0.9"})
    [device] = devices()
    assert device.language == "es"


@pytest.mark.parametrize(
    "endpoint",
    ["https://internal.example/push", "http://fcm.googleapis.com/x", "http://127.0.0.1:8080/x"],
)
def test_an_endpoint_outside_the_allowlist_is_a_422_and_nothing_is_stored(ana, endpoint):
    response = ana.add(subscription(endpoint))

    assert response.status_code == 422
    assert response.get_json()["error"] == {
        "code": "endpoint_not_allowed",
        "message": "Only https endpoints of known push services are accepted.",
        "field": "endpoint",
    }
    assert devices() == []


@pytest.mark.parametrize(
    "keys",
    [
        {"p256dh": "short", "auth": b64url(bytes(16))},
        {"p256dh": b64url(bytes(65)), "auth": b64url(bytes(15))},
        {"p256dh": "BA" + "A" * 85, "auth": b64url(bytes(16))},  # 65 bytes, not on the curve
        {"p256dh": 7, "auth": b64url(bytes(16))},
        {"auth": b64url(bytes(16))},
    ],
)
def test_malformed_keys_are_a_422_and_nothing_is_stored(ana, keys):
    response = ana.add(dict(subscription(), keys=keys))

    assert response.status_code == 422
    assert response.get_json()["error"]["field"].startswith("keys")
    assert devices() == []


def test_a_body_that_is_not_json_is_refused(ana):
    response = ana.client.post(
        DEVICES, data="endpoint=x", headers={"X-CSRFToken": ana.csrf}, content_type="text/plain"
    )
    assert response.status_code == 415
    assert devices() == []


@pytest.mark.parametrize("token", [None, "not-the-token"])
def test_turning_on_needs_the_csrf_token_in_a_header(ana, token):
    headers = {} if token is None else {"X-CSRFToken": token}
    response = ana.client.post(DEVICES, json=subscription(), headers=headers)

    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "csrf"  # JSON, for the script
    assert devices() == []


def test_without_sign_in_the_script_gets_a_401_and_the_page_sends_to_sign_in(client):
    # No session, so no CSRF token either: still "sign in", which the page can say in words.
    for headers in ({}, {"X-CSRFToken": "stale"}):
        response = client.post(DEVICES, json=subscription(), headers=headers)
        assert response.status_code == 401
        assert response.get_json()["error"]["code"] == "unauthorized"
    page = client.get(PAGE)
    assert page.status_code == 302 and "/sign-in" in page.headers["Location"]


def test_after_the_idle_timeout_the_script_gets_a_401_not_the_sign_in_page(ana):
    with ana.client.session_transaction() as session:
        session["last_seen"] -= 31 * 60
    response = ana.add(subscription())

    assert response.status_code == 401
    assert devices() == []


def test_the_page_lists_only_the_signed_in_therapists_devices(app, ana, ben):
    ana.add(subscription("https://fcm.googleapis.com/fcm/send/ana-phone"))
    ben.add(subscription("https://fcm.googleapis.com/fcm/send/ben-phone"))
    ana_device = next(d for d in devices() if d.therapist_id == ana.row.id)

    response = ana.client.get(PAGE)

    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert page_data(html)["devices"] == [str(ana_device.id)]
    assert "Chrome on Android" in html
    assert f"{DEVICES}/{ana_device.id}/remove" in html
    ben_device = next(d for d in devices() if d.therapist_id == ben.row.id)
    assert str(ben_device.id) not in html
    # No endpoint (a push capability) and no renewal token ever appear on the page.
    assert "fcm.googleapis.com" not in html
    assert 'aria-current="page">Notifications</a>' in html


def test_the_page_says_so_when_there_is_no_device(ana):
    html = ana.client.get(PAGE).get_data(as_text=True)
    assert "No device has alerts turned on yet." in html
    assert page_data(html)["devices"] == []


def test_turning_off_forgets_only_ones_own_device(ana, ben):
    ana.add(subscription("https://fcm.googleapis.com/fcm/send/ana-phone"))
    ben.add(subscription("https://fcm.googleapis.com/fcm/send/ben-phone"))

    assert ben.delete("https://fcm.googleapis.com/fcm/send/ana-phone").status_code == 404
    assert len(devices()) == 2
    assert ana.delete("https://fcm.googleapis.com/fcm/send/ana-phone").status_code == 204
    assert [d.therapist_id for d in devices()] == [ben.row.id]
    [removed] = audit_rows("device.remove")
    assert removed.actor_id == str(ana.row.id)


def test_a_listed_device_is_removed_with_a_plain_form(ana):
    ana.add(subscription())
    [device] = devices()
    device_id = device.id

    response = ana.remove(device_id)

    assert response.status_code == 303 and response.headers["Location"].endswith(PAGE)
    assert devices() == []
    page = ana.client.get(PAGE).get_data(as_text=True)
    assert "Alerts are turned off for that device." in page
    [removed] = audit_rows("device.remove")
    assert (removed.target_id, removed.actor_id) == (str(device_id), str(ana.row.id))


def test_removing_needs_the_csrf_token(ana):
    ana.add(subscription())
    [device] = devices()
    response = ana.remove(device.id, csrf="forged")
    assert response.status_code == 400 and response.mimetype == "text/html"
    assert len(devices()) == 1


def test_a_therapist_cannot_remove_anothers_device(app, ana, make_clinic, make_therapist):
    ana.add(subscription())
    [device] = devices()
    elsewhere = Therapist(app, make_therapist(make_clinic(), "cai@other.example"))

    assert elsewhere.remove(device.id).status_code == 404
    assert elsewhere.remove(uuid.uuid4()).status_code == 404
    assert len(devices()) == 1
    assert audit_rows("device.remove") == []


def test_a_browser_another_therapist_turned_on_becomes_the_new_therapists(
    app, ana, make_clinic, make_therapist
):
    body = subscription()
    ana.add(body)
    other_clinic = make_clinic()
    cai = Therapist(app, make_therapist(other_clinic, "cai@other.example"))

    response = cai.add(dict(body, keys=browser_keys()))

    assert response.status_code == 201 and response.get_json()["created"] is True
    [device] = devices()
    assert device.therapist_id == cai.row.id
    # Each clinic's audit trail tells its side: the device left Ana, and came to Cai.
    [left] = audit_rows("device.remove")
    assert left.clinic_id == ana.row.clinic_id and left.detail["reason"] == "taken_over"
    added = [e for e in audit_rows("device.add") if e.clinic_id == other_clinic.id]
    assert len(added) == 1
    assert ana.client.get(PAGE).get_data(as_text=True).count("/remove") == 0


# --- renewal by the service worker ----------------------------------------------------------------


def test_the_service_worker_renews_a_replaced_subscription_with_the_device_token(app, ana):
    token = ana.add(subscription()).get_json()["renewal_token"]
    [before] = devices()
    fresh = subscription("https://fcm.googleapis.com/fcm/send/renewed")

    # No session, no CSRF token: a service worker at 3 a.m., long after the therapist signed out.
    worker = app.test_client()
    response = worker.post(RENEW, json={"token": token, "subscription": fresh})

    assert response.status_code == 200 and response.get_json() == {"id": str(before.id)}
    [after] = devices()
    assert after.id == before.id and after.therapist_id == ana.row.id
    assert (after.endpoint, after.p256dh) == (fresh["endpoint"], fresh["keys"]["p256dh"])
    [renewed] = audit_rows("device.renew")
    assert (renewed.actor_type, renewed.clinic_id) == ("device", ana.row.clinic_id)


def test_a_renewal_with_an_unknown_token_or_endpoint_changes_nothing(app, ana):
    token = ana.add(subscription()).get_json()["renewal_token"]
    worker = app.test_client()

    unknown = worker.post(RENEW, json={"token": "x" * 43, "subscription": subscription()})
    assert unknown.status_code == 404
    outside = worker.post(
        RENEW, json={"token": token, "subscription": subscription("https://evil.example/p")}
    )
    assert outside.status_code == 422
    bad_key = dict(subscription(), keys={"p256dh": "BA" + "A" * 85, "auth": b64url(bytes(16))})
    assert worker.post(RENEW, json={"token": token, "subscription": bad_key}).status_code == 422
    [device] = devices()
    assert device.endpoint == "https://fcm.googleapis.com/fcm/send/abc123"


def test_a_removed_device_cannot_be_renewed(app, ana):
    body = subscription()
    token = ana.add(body).get_json()["renewal_token"]
    ana.delete(body["endpoint"])
    response = app.test_client().post(RENEW, json={"token": token, "subscription": body})
    assert response.status_code == 404
    assert devices() == []


# --- who an alert goes to ---------------------------------------------------------------------


def test_a_clinics_devices_are_those_of_its_active_therapists(
    app, clinic, make_clinic, make_therapist
):
    ana, ben, left = (make_therapist(clinic) for _ in range(3))
    left.active = False
    elsewhere = make_therapist(make_clinic())
    owners = {}
    for therapist in (ana, ana, ben, left, elsewhere):
        keys = browser_keys()
        endpoint = f"https://fcm.googleapis.com/fcm/send/{uuid.uuid4().hex}"
        saved = save_device(
            therapist,
            endpoint,
            keys["p256dh"],
            keys["auth"],
            user_agent=None,
            language="en",
            now=NOW,
        )
        owners[saved.device.id] = therapist.id
    db.session.commit()

    found = devices_for_clinic(clinic.id)

    assert sorted(owners[d.id] for d in found) == sorted([ana.id, ana.id, ben.id])
    assert all(d.therapist.clinic_id == clinic.id for d in found)


# --- the message and sending it ------------------------------------------------------------------


@pytest.fixture
def push_service(app):
    app.config["PUSH_ENDPOINT_ALLOWLIST"] = ("127.0.0.1",)
    with PushService(app_public_key=app.config["VAPID_PUBLIC_KEY"]) as service:
        yield service


def register(therapist, push_service, language: str = "en"):  # type: ignore[no-untyped-def]
    browser = push_service.new_subscription()
    keys = browser.as_json()["keys"]
    saved = save_device(
        therapist,
        browser.endpoint,
        keys["p256dh"],
        keys["auth"],
        user_agent=ANDROID_CHROME,
        language=language,
        now=NOW,
    )
    db.session.commit()
    return browser, saved.device


def test_a_red_alert_reaches_every_device_encrypted_signed_and_without_health_data(
    app, clinic, make_therapist, make_visit, push_service
):
    visit = make_visit(clinic, name="Rosalind Example", ref="REF-4471", regions=["low_back"]).visit
    ana, ben = make_therapist(clinic), make_therapist(clinic)
    ana_phone, ana_device = register(ana, push_service)
    ben_phone, ben_device = register(ben, push_service)
    alert_id = uuid.uuid4().hex
    url = f"/visits/{visit.id}"

    outcomes = push_to_devices(
        devices_for_clinic(clinic.id),
        alert_message(RED, "en", tag=alert_id, url=url),
        webpush.make_sender(app),
        NOW,
        kind="red",
    )
    db.session.commit()

    assert sorted(o.target for o in outcomes) == sorted(
        [(ana_device.id, ana.id), (ben_device.id, ben.id)]
    )
    assert all((o.code, o.status_code) == (webpush.ACCEPTED, 201) for o in outcomes)
    assert sorted(m.subscription_id for m in push_service.received) == sorted(
        [ana_phone.id, ben_phone.id]
    )
    for message in push_service.received:
        # Decrypted by the local push service with the browser's key; the VAPID JWT checked.
        assert message.error is None and message.claims["aud"] == push_service.origin
        assert message.payload == {
            "title": "A check-in needs attention now",
            "body": "A patient reported a warning sign. Tap to see who, after signing in.",
            "url": url,
            "tag": alert_id,
            "audience": "therapist",
            "lang": "en",
        }
        text = json.dumps(message.payload)
        for secret in ("Rosalind", "REF-4471", "low_back", "Low back", "soreness", "triage"):
            assert secret not in text
        assert message.headers["urgency"] == "high"
        assert message.headers["topic"] == alert_id
        assert int(message.headers["ttl"]) == 24 * 3600
    assert all(d.last_success_at == NOW for d in devices())


def test_each_device_reads_the_alert_in_its_own_language(app, clinic, make_therapist, push_service):
    register(make_therapist(clinic), push_service, language="es")
    register(make_therapist(clinic), push_service, language="en")

    push_to_devices(
        devices_for_clinic(clinic.id),
        lambda language: alert_message(AMBER, language, tag="digest", url="/review", count=3),
        webpush.make_sender(app),
        NOW,
        kind="red",
    )

    bodies = sorted(m.payload["body"] for m in push_service.received)
    assert bodies == [
        "3 pacientes necesitan que les eches un vistazo cuando puedas.",
        "3 patients need a look when you have a moment.",
    ]
    assert {m.payload["lang"] for m in push_service.received} == {"en", "es"}
    assert {m.headers["urgency"] for m in push_service.received} == {"normal"}


def test_a_device_whose_push_service_says_gone_is_deleted_and_audited(
    app, clinic, make_therapist, push_service
):
    ana = make_therapist(clinic)
    phone, phone_device = register(ana, push_service)
    _laptop, laptop_device = register(ana, push_service)
    phone_id, laptop_id = phone_device.id, laptop_device.id
    push_service.answer(phone, 410)

    outcomes = push_to_devices(
        devices_for_clinic(clinic.id),
        alert_message(RED, "en", tag="a1", url="/review"),
        webpush.make_sender(app),
        NOW,
        kind="red",
    )
    db.session.commit()

    by_device = {o.target[0]: o for o in outcomes}
    assert (by_device[phone_id].code, by_device[phone_id].status_code) == (webpush.GONE, 410)
    assert by_device[laptop_id].code == webpush.ACCEPTED
    assert [d.id for d in devices()] == [laptop_id]
    [gone] = audit_rows("device.remove")
    assert (gone.actor_type, gone.target_id) == ("system", str(phone_id))
    assert gone.clinic_id == clinic.id and gone.detail["reason"] == "push_service_gone"


def test_errors_and_throttling_keep_the_device_and_say_when_to_retry(
    app, clinic, make_therapist, push_service
):
    ana = make_therapist(clinic)
    busy, _ = register(ana, push_service)
    broken, _ = register(ana, push_service)
    push_service.answer(busy, 429)
    push_service.answer(broken, 500)

    outcomes = push_to_devices(
        devices_for_clinic(clinic.id),
        alert_message(RED, "en", tag="a2", url="/"),
        webpush.make_sender(app),
        NOW,
        kind="red",
    )
    db.session.commit()

    assert sorted((o.code, o.status_code) for o in outcomes) == [
        (webpush.ERROR, 500),
        (webpush.THROTTLED, 429),
    ]
    assert next(o for o in outcomes if o.status_code == 429).retry_after == 120
    assert len(devices()) == 2 and all(d.last_success_at is None for d in devices())


def test_a_device_off_the_allowlist_is_never_contacted(app, clinic, make_therapist, push_service):
    register(make_therapist(clinic), push_service)
    app.config["PUSH_ENDPOINT_ALLOWLIST"] = ("fcm.googleapis.com",)

    [outcome] = push_to_devices(
        devices_for_clinic(clinic.id),
        alert_message(RED, "en", tag="a3", url="/"),
        webpush.make_sender(app),
        NOW,
        kind="red",
    )

    assert outcome.code == webpush.REFUSED
    assert push_service.received == [] and len(devices()) == 1


def test_no_devices_means_nothing_is_sent(app, push_service):
    message = alert_message(RED, "en", tag="a4", url="/")
    assert push_to_devices([], message, webpush.make_sender(app), NOW, kind="red") == []
    assert push_service.received == []


@pytest.mark.parametrize(
    "url",
    ["/me/check-in", "https://evil.example/review", "/visits/not-a-uuid", "/patients", "review"],
)
def test_an_alert_opens_only_a_therapist_page(app, url):
    with pytest.raises(ValueError, match="therapist page"):
        alert_message(RED, "en", tag="a5", url=url)


@pytest.mark.parametrize("tag", ["", "x" * 33, "has space", "ünicode"])
def test_an_alert_tag_must_fit_a_push_topic(app, tag):
    with pytest.raises(ValueError, match="tag"):
        alert_message(RED, "en", tag=tag, url="/review")


def test_a_digest_counts_in_the_right_grammatical_number(app):
    one = alert_message(AMBER, "es", tag="d1", url="/review", count=1)
    many = alert_message(AMBER, "en", tag="d2", url="/review", count=2)
    assert one.body == "1 paciente necesita que le eches un vistazo cuando puedas."
    assert one.title == "Registros por revisar" and one.ttl == 3600
    assert many.body == "2 patients need a look when you have a moment."


@pytest.mark.parametrize(
    ("user_agent", "label"),
    [
        (ANDROID_CHROME, ("Chrome", "Android")),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
            ("Safari", "iPhone"),
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
            ("Edge", "Windows"),
        ),
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.5; rv:132.0) Gecko/20100101 Firefox/132.0",
            ("Firefox", "macOS"),
        ),
        (
            "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
            "SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36",
            ("Samsung Internet", "Android"),
        ),
        ("curl/8.5.0", (None, None)),
        (None, (None, None)),
    ],
)
def test_a_device_is_named_by_its_browser_and_system(user_agent, label):
    assert device_label(user_agent) == label


def test_the_audit_page_names_device_changes(app, ana):
    ana.add(subscription())
    [device] = devices()
    ana.remove(device.id)
    html = ana.client.get("/audit").get_data(as_text=True)
    assert "Turned on alerts on a device" in html
    assert "Turned off alerts on a device" in html


def test_a_device_count_stays_one_per_endpoint_under_repeats(ana):
    body = subscription()
    for _ in range(3):
        ana.add(dict(body, keys=browser_keys()))
    assert db.session.scalar(select(func.count()).select_from(TherapistDevice)) == 1


@pytest.mark.postgres
def test_sending_to_devices_records_the_answers_on_postgres(
    app, clinic, make_therapist, push_service
):
    ana = make_therapist(clinic)
    phone, phone_device = register(ana, push_service)
    _laptop, laptop_device = register(ana, push_service)
    phone_id, laptop_id = phone_device.id, laptop_device.id
    push_service.answer(phone, 410)

    push_to_devices(
        devices_for_clinic(clinic.id),
        alert_message(RED, "en", tag="pg", url="/review"),
        webpush.make_sender(app),
        NOW,
        kind="red",
    )
    db.session.commit()

    [left] = devices()
    assert (left.id, left.last_success_at) == (laptop_id, NOW)
    assert [e.target_id for e in audit_rows("device.remove")] == [str(phone_id)]
