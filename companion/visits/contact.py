"""Phone numbers and e-mail addresses: one place validates and normalizes them, for the patient's
contact details (visit form, API) and the clinic's on-call contact alike.

Both raise ValueError with a fixed message that never repeats the value (contact details are
personal data: they stay out of logs and error messages).
"""

from __future__ import annotations

import re

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from flask import current_app

from companion.models import Clinic

# E.164 allows at most 15 digits after the "+"; the column holds 20 characters.
PHONE_MAX_LENGTH = 20
# RFC 5321's limit on a forward path, which is also patient.email's width.
EMAIL_MAX_LENGTH = 254

PHONE_ERROR = "must be a phone number in international format, starting with + and the country code"
EMAIL_ERROR = "must be an e-mail address"
EMERGENCY_NUMBER_ERROR = "must be a short emergency number of 2 to 6 digits, such as 112 or 911"

# Emergency numbers are short digit strings dialled as they are: 112, 911, 999, 000, 061, 10111.
_EMERGENCY_NUMBER = re.compile(r"[0-9]{2,6}")


def normalize_phone(text: str) -> str:
    """The number in E.164 (`+34612345678`), or ValueError.

    Parsed with no default region, so the country code is required: a clinic near a border, or a
    patient on a foreign phone, would otherwise get a plausible but wrong number. Spaces, dashes,
    dots and brackets are accepted as typed; the number must be a valid one for its country.
    """
    if not isinstance(text, str) or len(text) > 40:
        raise ValueError(PHONE_ERROR)
    try:
        number = phonenumbers.parse(text.strip(), None)
    except phonenumbers.NumberParseException:
        raise ValueError(PHONE_ERROR) from None
    if not phonenumbers.is_valid_number(number):
        raise ValueError(PHONE_ERROR)
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if len(e164) > PHONE_MAX_LENGTH:
        raise ValueError(PHONE_ERROR)
    return e164


def normalize_email(text: str) -> str:
    """The address in its normalized form (domain lower-cased and IDNA-normalized), or ValueError.

    Syntax only: no DNS lookup (check_deliverability=False), so validation is fast, works offline
    and never leaks the address's domain to a resolver.
    """
    if not isinstance(text, str) or len(text) > EMAIL_MAX_LENGTH * 2:
        raise ValueError(EMAIL_ERROR)
    try:
        address = validate_email(text.strip(), check_deliverability=False).normalized
    except EmailNotValidError:
        raise ValueError(EMAIL_ERROR) from None
    if len(address) > EMAIL_MAX_LENGTH:
        raise ValueError(EMAIL_ERROR)
    return address


def optional_phone(text: str | None) -> str | None:
    """Empty or missing: no phone (None); otherwise normalize_phone."""
    if text is None or not text.strip():
        return None
    return normalize_phone(text)


def optional_email(text: str | None) -> str | None:
    """Empty or missing: no e-mail (None); otherwise normalize_email."""
    if text is None or not text.strip():
        return None
    return normalize_email(text)


def is_mobile(e164: str) -> bool:
    """Whether the numbering plan says this is a mobile number (FHIR ContactPoint use "mobile").

    False when unknown: some plans (the US, for one) do not tell mobile and fixed lines apart.
    """
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return False
    return phonenumbers.number_type(number) == phonenumbers.PhoneNumberType.MOBILE


def normalize_emergency_number(text: str) -> str:
    """The emergency number as dialled: 2 to 6 ASCII digits, spaces around it removed, or
    ValueError. No "+" and no country code: these numbers are local by nature."""
    if not isinstance(text, str) or not _EMERGENCY_NUMBER.fullmatch(text.strip()):
        raise ValueError(EMERGENCY_NUMBER_ERROR)
    return text.strip()


def emergency_number(clinic: Clinic | None) -> str:
    """The number a patient of `clinic` calls in an emergency: the clinic's own (its profile), else
    the app's EMERGENCY_NUMBER (None: a page with no clinic known, such as the offline page).
    The one place patient pages, the red screen and the handout read it from."""
    if clinic is not None and clinic.emergency_number:
        return clinic.emergency_number
    return str(current_app.config["EMERGENCY_NUMBER"])
