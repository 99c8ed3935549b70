"""Push subscriptions through the API: the allowlist (no SSRF), idempotency by endpoint, deletion,
and the VAPID public key."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import func, select

from companion.channels.webpush import endpoint_allowed
from companion.extensions import db
from companion.models import PushSubscription


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def browser_keys() -> dict[str, str]:
    point = ec.generate_private_key(ec.SECP256R1()).public_key()
    raw = point.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    return {"p256dh": b64url(raw), "auth": b64url(bytes(range(16)))}


def subscription(endpoint: str = "https://fcm.googleapis.com/fcm/send/abc123") -> dict:
    return {"endpoint": endpoint, "expirationTime": None, "keys": browser_keys()}


def stored() -> int:
    return db.session.scalar(select(func.count()).select_from(PushSubscription))


ALLOW = ("fcm.googleapis.com", "*.notify.windows.com", "127.0.0.1")


@pytest.mark.parametrize(
    ("endpoint", "allowed"),
    [
        ("https://fcm.googleapis.com/fcm/send/x", True),
        ("https://wns2-par02p.notify.windows.com/w/?token=x", True),
        ("https://notify.windows.com/x", False),  # "*." means a subdomain
        ("https://fcm.googleapis.com.evil.example/x", False),
        ("https://evilfcm.googleapis.com/x", False),
        ("http://fcm.googleapis.com/x", False),  # push services are https
        ("https://user:pw@fcm.googleapis.com/x", False),
        ("http://127.0.0.1:9000/push", True),  # a loopback receiver the allowlist names
        ("http://localhost:9000/push", False),  # loopback, but not named
        ("http://10.0.0.5/push", False),
        ("https://169.254.169.254/latest/meta-data", False),
        ("file:///etc/passwd", False),
        ("https://fcm.googleapis.com:notaport/x", False),
    ],
)
def test_only_https_endpoints_of_allowlisted_push_services_pass(endpoint, allowed):
    assert endpoint_allowed(endpoint, ALLOW) is allowed


def test_a_subscription_is_stored_once_per_endpoint(patient_client):
    body = subscription()
    first = patient_client.post("/api/v1/push-subscriptions", json=body)
    assert first.status_code == 201 and first.get_json()["created"] is True
    again = patient_client.post("/api/v1/push-subscriptions", json=dict(body, keys=browser_keys()))
    assert again.status_code == 200 and again.get_json()["created"] is False
    assert stored() == 1
    row = db.session.scalar(select(PushSubscription))
    assert row.patient_id == patient_client.visit.patient_id


@pytest.mark.parametrize(
    "endpoint",
    ["https://internal.example/push", "http://fcm.googleapis.com/x", "http://127.0.0.1:8080/x"],
)
def test_an_endpoint_outside_the_allowlist_is_a_422_and_nothing_is_stored(patient_client, endpoint):
    response = patient_client.post("/api/v1/push-subscriptions", json=subscription(endpoint))
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["code"] == "endpoint_not_allowed" and error["field"] == "endpoint"
    assert stored() == 0


@pytest.mark.parametrize(
    "keys",
    [
        {"p256dh": "short", "auth": b64url(bytes(16))},
        {"p256dh": b64url(bytes(65)), "auth": b64url(bytes(15))},
        {"p256dh": 7, "auth": b64url(bytes(16))},
        {"p256dh": b64url(bytes(65))},
    ],
)
def test_malformed_keys_are_a_422_and_nothing_is_stored(patient_client, keys):
    body = dict(subscription(), keys=keys)
    response = patient_client.post("/api/v1/push-subscriptions", json=body)
    assert response.status_code == 422
    assert response.get_json()["error"]["field"].startswith("keys")
    assert stored() == 0


def test_a_subscription_needs_the_patient_cookie(client):
    response = client.post("/api/v1/push-subscriptions", json=subscription())
    assert response.status_code == 401
    assert stored() == 0


def test_deleting_a_subscription_forgets_it(patient_client):
    body = subscription()
    patient_client.post("/api/v1/push-subscriptions", json=body)
    gone = patient_client.delete("/api/v1/push-subscriptions", json={"endpoint": body["endpoint"]})
    assert gone.status_code == 204 and stored() == 0
    again = patient_client.delete("/api/v1/push-subscriptions", json={"endpoint": body["endpoint"]})
    assert again.status_code == 404


def test_the_public_key_is_the_servers_vapid_key(client, app):
    data = client.get("/api/v1/push/public-key").get_json()
    assert data == {"public_key": app.config["VAPID_PUBLIC_KEY"]}
    raw = base64.urlsafe_b64decode(data["public_key"] + "=" * (-len(data["public_key"]) % 4))
    assert len(raw) == 65 and raw[0] == 4  # an uncompressed P-256 point


def test_a_key_that_is_not_a_p256_point_is_refused(patient_client):
    body = subscription()
    body["keys"]["p256dh"] = "BA" + "A" * 85  # 65 bytes, but not a point on the curve

    response = patient_client.post("/api/v1/push-subscriptions", json=body)

    assert response.status_code == 422
    assert response.get_json()["error"]["field"] == "keys.p256dh"
    assert stored() == 0
