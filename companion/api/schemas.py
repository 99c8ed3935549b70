"""Request and response bodies of the JSON API (pydantic). They validate input and feed the
OpenAPI document. Numbers and booleans are strict: `true` is not a score and "7" is not 7."""

from __future__ import annotations

import base64
import re
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
)
from pydantic_core import PydanticCustomError

from companion.care import pgic as pgic_scale
from companion.care.helped import HELPED
from companion.care.regions import BY_CODE as REGIONS
from companion.care.stretches import BY_CODE as STRETCHES
from companion.care.triage import SYMPTOMS
from companion.checkins.store import CLOCK_SKEW_MINUTES
from companion.timeutil import (
    EARLIEST_YEAR,
    IANA_ZONES,
    LATEST_YEAR,
    is_iana_zone,
    plausible_year,
)
from companion.visits.contact import optional_email, optional_phone

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
    # The year as written (what the document's pattern can state); 2000-2100 in any offset is far
    # from datetime's limits, so the UTC value is always representable.
    if not plausible_year(value.year):
        raise PydanticCustomError(
            "timestamp_out_of_range", f"must be between {EARLIEST_YEAR} and {LATEST_YEAR}"
        )
    return value


# What the server takes, stated in the document (issue 14, finding 11). JSON Schema cannot bound a
# date by value, and a format plus a pattern leaves generators filtering blindly, so the document
# gives one pattern that admits exactly the real days of 2000-2100 (29 February in leap years; 2100
# is not one) and the RFC 3339 times and offsets the parser accepts.
_DAY = (
    "(?:(?:20[0-9]{2}|2100)-(?:(?:0[1-9]|1[0-2])-(?:0[1-9]|1[0-9]|2[0-8])"
    "|(?:0[13-9]|1[0-2])-(?:29|30)|(?:0[13578]|1[02])-31)"
    "|20(?:[02468][048]|[13579][26])-02-29)"
)
DATE_PATTERN = f"^{_DAY}$"
TIMESTAMP_PATTERN = (
    f"^{_DAY}[Tt ](?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\\.[0-9]{{1,9}})?"
    "(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])$"
)
Timestamp = Annotated[
    AwareDatetime,
    BeforeValidator(_rfc3339),
    AfterValidator(_plausible),
    # Replaces pydantic's "format": "date-time": the pattern says all of it, and more exactly.
    WithJsonSchema({"type": "string", "pattern": TIMESTAMP_PATTERN}),
]
Score = Annotated[int, Field(strict=True, ge=0, le=10)]
StrictBool = Annotated[bool, Field(strict=True)]
Pgic = Annotated[
    int,
    Field(
        strict=True,
        ge=pgic_scale.LOWEST,
        le=pgic_scale.HIGHEST,
        description="Day 7: the patient's global impression of change of their usual pain "
        "(PGIC, care/pgic.py): 1 very much improved, 2 much improved, 3 minimally improved, "
        "4 no change, 5 minimally worse, 6 much worse, 7 very much worse. Optional; refused "
        "(422, code too_early) when recorded_at is less than 6 days after the visit.",
    ),
]
RegionCode = Literal[tuple(REGIONS)]  # type: ignore[valid-type]
SymptomCode = Literal[tuple(SYMPTOMS)]  # type: ignore[valid-type]
StretchCode = Literal[tuple(STRETCHES)]  # type: ignore[valid-type]
HelpedCode = Literal[tuple(HELPED)]  # type: ignore[valid-type]
Language = Literal["en", "es"]


def _each_once(value: list[str]) -> list[str]:
    # Refused, not silently de-duplicated (design.md: never a silent coercion). Each code once
    # also bounds the list by the number of known codes (issue 14: 5,000 regions were stored).
    if len(set(value)) != len(value):
        raise PydanticCustomError("duplicate_item", "lists a code more than once")
    return value


def _codes(known: int) -> Any:
    """A list of codes, each at most once: at most `known` items, stated in the OpenAPI document
    as maxItems and uniqueItems."""
    return Field(max_length=known, json_schema_extra={"uniqueItems": True})


UniqueCodes = AfterValidator(_each_once)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


def _phone(value: str | None) -> str | None:
    try:
        return optional_phone(value)
    except ValueError:
        raise PydanticCustomError("invalid_phone", "must be an E.164 phone number") from None


def _email(value: str | None) -> str | None:
    try:
        return optional_email(value)
    except ValueError:
        raise PydanticCustomError("invalid_email", "must be an e-mail address") from None


# The patient's details replace the stored ones on every POST and PUT, as the name and zone do: a
# contact detail left out (or null, or "") is cleared.
_REPLACES = " Replaces the stored one: omitted, null or an empty string clears it."
Phone = Annotated[
    Annotated[str, Field(strict=True, max_length=40)] | None,
    AfterValidator(_phone),
    Field(
        description="The patient's phone in international format; stored as E.164, e.g. "
        "+34612345678. Shown to the clinic's therapists, never sent in a push or a log."
        + _REPLACES,
        examples=["+34612345678"],
    ),
]
Email = Annotated[
    Annotated[str, Field(strict=True, max_length=320)] | None,
    AfterValidator(_email),
    Field(
        description="The patient's e-mail address (syntax checked, stored normalized)." + _REPLACES,
        examples=["patient@example.com"],
    ),
]


class PatientIn(_Body):
    ref: Annotated[str, Field(strict=True, min_length=1, max_length=100)]
    display_name: Annotated[str, Field(strict=True, min_length=1, max_length=200)]
    timezone: Annotated[
        str,
        Field(
            strict=True,
            description="IANA time zone, e.g. Europe/Madrid (the tz database's names)",
            json_schema_extra={"enum": list(IANA_ZONES)},
        ),
    ]
    language: Language
    phone: Phone = None
    email: Email = None

    @field_validator("timezone")
    @classmethod
    def _iana(cls, value: str) -> str:
        if not is_iana_zone(value):
            raise PydanticCustomError("invalid_timezone", "must be an IANA time zone name")
        return value


class VisitIn(_Body):
    patient: PatientIn
    performed_at: Timestamp
    regions: Annotated[list[RegionCode], Field(min_length=1), _codes(len(REGIONS)), UniqueCodes]
    stretches: (
        Annotated[
            list[StretchCode],
            Field(description="Stretches chosen for the patient; omit for the regions' defaults"),
            _codes(len(STRETCHES)),
            UniqueCodes,
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
    recorded_at: Annotated[
        Timestamp,
        Field(
            description="When the patient made the entry (it may be sent later from the "
            f"phone's outbox). At most {CLOCK_SKEW_MINUTES} minutes after the request reaches "
            "the server (else 422, code recorded_in_future) and at most "
            f"{CLOCK_SKEW_MINUTES} minutes before the visit's performed_at (else 422, code "
            "recorded_before_visit): a phone's clock may drift that much, no more."
        ),
    ]
    soreness: Score
    usual_pain: Score | None = None
    pgic: Pgic | None = None
    symptoms: Annotated[list[SymptomCode], _codes(len(SYMPTOMS)), UniqueCodes] = Field(
        default_factory=list
    )
    helped: Annotated[list[HelpedCode], _codes(len(HELPED)), UniqueCodes] = Field(
        default_factory=list
    )
    note: Annotated[str, Field(strict=True, max_length=1000)] | None = None


class CheckInOut(BaseModel):
    id: uuid.UUID
    visit_id: uuid.UUID
    recorded_at: datetime
    received_at: datetime
    soreness: int
    usual_pain: int | None
    pgic: Annotated[
        int | None, Field(description="Global impression of change, 1-7 (see CheckInIn)")
    ]
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
    # The patterns state the lengths (65 bytes starting 0x04: 87 base64url characters from "B";
    # 16 bytes: 22); that the point lies on the curve, no schema can say.
    p256dh: Annotated[
        str,
        BeforeValidator(_b64url_bytes(65, "p256dh")),
        AfterValidator(_p256_point),
        Field(json_schema_extra={"pattern": "^B[A-Za-z0-9_-]{86}=?$"}),
    ]
    auth: Annotated[
        str,
        BeforeValidator(_b64url_bytes(16, "auth")),
        Field(json_schema_extra={"pattern": "^[A-Za-z0-9_-]{22}(==)?$"}),
    ]


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


class ClinicNow(BaseModel):
    """The clinic as the check-in found it, for the patient's red screen (care/hours.py)."""

    status: Literal["open", "closed", "unknown"] = Field(
        description="open: within the clinic's opening hours now; closed: outside them, opens_at "
        "says when it opens next; unknown: the clinic has set no opening hours."
    )
    opens_at: datetime | None = Field(
        description="When closed: the next opening, in UTC (RFC 3339). Otherwise null."
    )


class CheckInReceived(CheckInOut):
    """The answer to a submitted check-in: the check-in as stored, and the clinic right now."""

    clinic: ClinicNow
