"""The web push channel's `deliver`: one outcome per target, in order, in the channels' shared
vocabulary (accepted, gone, retry, refused), against a local push service that decrypts every
message (RFC 8291) and checks its VAPID signature (RFC 8292)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from companion import channels
from companion.channels import webpush

from .pushserver import PushService


@pytest.fixture
def push_service(app) -> Iterator[PushService]:  # type: ignore[no-untyped-def]
    app.config["PUSH_ENDPOINT_ALLOWLIST"] = ("127.0.0.1",)
    with PushService(app_public_key=app.config["VAPID_PUBLIC_KEY"]) as service:
        yield service


def subscriber(sub) -> webpush.Subscriber:  # type: ignore[no-untyped-def]
    keys = sub.as_json()["keys"]
    return webpush.Subscriber(sub.endpoint, keys["p256dh"], keys["auth"])


def message(text: str) -> webpush.Message:
    return webpush.Message(title="Aftercare", body=text, url="/me/", tag="t1", topic="t1", ttl=60)


def test_each_answer_becomes_one_outcome_in_the_shared_vocabulary(app, push_service):
    took, dropped, busy, broken, wrong = (push_service.new_subscription() for _ in range(5))
    push_service.answer(dropped, 410)
    push_service.answer(busy, 429)
    push_service.answer(broken, 503)
    push_service.answer(wrong, 403)
    channel = webpush.WebPushChannel.from_app(app)

    outcomes = channel.deliver(
        [
            (name, subscriber(sub))
            for name, sub in zip("abcde", (took, dropped, busy, broken, wrong), strict=True)
        ],
        lambda key: message(f"for {key}"),
    )

    assert [(o.target, o.kind, o.code, o.status_code) for o in outcomes] == [
        ("a", channels.ACCEPTED, webpush.ACCEPTED, 201),
        ("b", channels.GONE, webpush.GONE, 410),
        ("c", channels.RETRY, webpush.THROTTLED, 429),
        ("d", channels.RETRY, webpush.ERROR, 503),
        ("e", channels.REFUSED, webpush.REJECTED, 403),
    ]
    assert outcomes[2].retry_after == 120  # the local service's Retry-After on a 429
    # Each target got the message composed for its key.
    bodies = {m.subscription_id: m.payload["body"] for m in push_service.received}
    assert bodies[took.id] == "for a" and bodies[wrong.id] == "for e"


def test_an_endpoint_off_the_allowlist_is_refused_without_being_contacted(app, push_service):
    sub = push_service.new_subscription()
    app.config["PUSH_ENDPOINT_ALLOWLIST"] = ("fcm.googleapis.com",)

    [outcome] = webpush.WebPushChannel.from_app(app).deliver(
        [("x", subscriber(sub))], message("hi")
    )

    assert (outcome.kind, outcome.code, outcome.status_code) == (
        channels.REFUSED,
        webpush.REFUSED,
        None,
    )
    assert push_service.received == []
