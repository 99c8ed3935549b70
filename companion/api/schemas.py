"""Request and response bodies of the JSON API (pydantic). They validate input and feed the
OpenAPI document. Numbers and booleans are strict: `true` is not a score and "7" is not 7."""

from __future__ import annotations

import base64
import re
import uuid
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
)
from pydantic_core import PydanticCustomError

from companion.care.helped import HELPED
from companion.care.regions import BY_CODE as REGIONS
from companion.care.stretches import BY_CODE as STRETCHES
from companion.care.triage import SYMPTOMS
from companion.timeutil import EARLIEST_YEAR, LATEST_YEAR, is_iana_zone, plausible_year

_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?(?P<offset>[Zz]|[+-]\d{2}:\d{2})?$"
)


def _rfc3339(value: object) -> object:
    # pydantic alone would also take unix timestamps and other ISO 8601 forms; the contract is RFC 3339.
    if not isinstance(value, str) or not (match := _RFC3339.match(value)):
        raise PydanticCustomError("invalid_timestamp", "must be an RFC 3339 timestamp")
    if match.group("offset") is None:
        raise PydanticCustomError("naive_timestamp", "must include a UTC offset")
    return value


def _plausible(value: datetime) -> datetime:
    try:
        year = value.astimezone(UTC).year
    except OverflowError:
        year = 0
    if not plausible_year(year):
        raise PydanticCustomError(
            "timestamp_out_of_range", f"must be between {EARLIEST_YEAR} and {LATEST_YEAR}"
        )
    return value


Timestamp = Annotated[AwareDatetime, BeforeValidator(_rfc3339), AfterValidator(_plausible)]
Score = Annotated[int, Field(strict=True, ge=0, le=10)]
StrictBool = Annotated[bool, Field(strict=True)]
RegionCode = Literal[tuple(REGIONS)]  # type: ignore[valid-type]
SymptomCode = Literal[tuple(SYMPTOMS)]  # type: ignore[valid-type]
StretchCode = Literal[tuple(STRETCHES)]  # type: ignore[valid-type]
HelpedCode = Literal[tuple(HELPED)]  # type: ignore[valid-type]
Language = Literal["en", "es"]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class PatientIn(_Body):
    ref: Annotated[str, Field(strict=True, min_length=1, max_length=100)]
    display_name: Annotated[str, Field(strict=True, min_length=1, max_length=200)]
    timezone: Annotated[str, Field(strict=True, description="IANA time zone, e.g. Europe/Madrid")]
    language: Language

    @field_validator("timezone")
    @classmethod
    def _iana(cls, value: str) -> str:
        if not is_iana_zone(value):
            raise PydanticCustomError("invalid_timezone", "must be an IANA time zone name")
        return value


class VisitIn(_Body):
    patient: PatientIn
    performed_at: Timestamp
    regions: Annotated[list[RegionCode], Field(min_length=1)]
    stretches: (
        Annotated[
            list[StretchCode],
            Field(description="Stretches chosen for the patient; omit for the regions' defaults"),
        ]
        | None
    ) = None
    insertions: Annotated[int, Field(strict=True, ge=0, le=500)] | None = None
    electrical_stimulation: StrictBool | None = None
    first_visit: StrictBool | None = None


class VisitCreated(BaseModel):
    visit_id: uuid.UUID
    patient_url: str
    calendar_url: Annotated[
        str,
        Field(
            description="iCalendar feed of the visit's reminders (a capability URL of its own, "
            "valid as long as the patient link)"
        ),
    ]
    expires_at: datetime


class ReminderOut(BaseModel):
    kind: str
    due_at: datetime
    expires_at: datetime
    status: str


class VisitUpdated(BaseModel):
    visit_id: uuid.UUID
    reminders: Annotated[
        list[ReminderOut],
        Field(description="The visit's reminders after re-planning; sent ones are never moved"),
    ]


class CheckInIn(_Body):
    id: Annotated[
        uuid.UUID, Field(description="Chosen by the client; makes the request idempotent")
    ]
    visit_id: Annotated[
        uuid.UUID | None,
        Field(description="The visit the entry was made for; refused if the link is another's"),
    ] = None
    recorded_at: Timestamp
    soreness: Score
    usual_pain: Score | None = None
    symptoms: list[SymptomCode] = Field(default_factory=list)
    helped: list[HelpedCode] = Field(default_factory=list)
    note: Annotated[str, Field(strict=True, max_length=1000)] | None = None


class CheckInOut(BaseModel):
    id: uuid.UUID
    visit_id: uuid.UUID
    recorded_at: datetime
    received_at: datetime
    soreness: int
    usual_pain: int | None
    symptoms: list[str]
    helped: list[str]
    note: str | None
    triage: Literal["green", "amber", "red"]
    triage_reasons: list[str]


class CheckInList(BaseModel):
    checkins: list[CheckInOut]


class ErrorDetail(BaseModel):
    code: str
    message: str
    field: str | None = None


class ErrorBody(BaseModel):
    error: ErrorDetail


class Health(BaseModel):
    status: Literal["ok", "unavailable"]


def _b64url_bytes(length: int, name: str) -> object:
    def check(value: object) -> object:
        if not isinstance(value, str):
            raise PydanticCustomError("invalid_key", f"{name} must be a base64url string")
        try:
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        except ValueError:
            raise PydanticCustomError("invalid_key", f"{name} must be base64url") from None
        if len(raw) != length:
            raise PydanticCustomError("invalid_key", f"{name} must decode to {length} bytes")
        return value

    return check


def _p256_point(value: str) -> str:
    """65 bytes is not enough: the bytes must be a point on P-256, or encryption fails at send
    time (for every reminder of the batch, in the worker, long after the patient left)."""
    from cryptography.hazmat.primitives.asymmetric import ec

    raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)
    except ValueError:
        raise PydanticCustomError("invalid_key", "p256dh must be a P-256 public key") from None
    return value


class PushKeys(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # The browser's P-256 public key (uncompressed point) and its 16-byte auth secret (RFC 8291).
    p256dh: Annotated[
        str, BeforeValidator(_b64url_bytes(65, "p256dh")), AfterValidator(_p256_point)
    ]
    auth: Annotated[str, BeforeValidator(_b64url_bytes(16, "auth"))]


class PushSubscriptionIn(BaseModel):
    """Exactly what the browser's PushSubscription.toJSON() gives."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    endpoint: Annotated[str, Field(strict=True, min_length=8, max_length=2048)]
    expiration_time: float | None = Field(default=None, alias="expirationTime")
    keys: PushKeys


class PushSubscriptionRef(_Body):
    endpoint: Annotated[str, Field(strict=True, min_length=8, max_length=2048)]


class DeviceRenewal(_Body):
    """A service worker re-registers a therapist device whose subscription the browser replaced."""

    token: Annotated[str, Field(strict=True, min_length=20, max_length=100)]
    subscription: PushSubscriptionIn


class PushSubscriptionOut(BaseModel):
    endpoint: str
    created: bool


class PublicKey(BaseModel):
    public_key: str = Field(description="VAPID application server key, base64url (RFC 8292)")
