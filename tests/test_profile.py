"""The clinic profile page (issue 13): name, phone, address, emergency number, default language and
logo; the public logo URL; what patients see of the profile (header, emergency number)."""

from __future__ import annotations

import io
import re
import struct
import zlib
from html import unescape

import pytest
from PIL import Image
from sqlalchemy import func, select

from companion.extensions import db
from companion.models import AuditEvent, Clinic, Role

from .conftest import csrf_from, sign_in
from .test_patient import form_data

PROFILE = "/settings/profile"
LOGO = "/settings/profile/logo"
REMOVE = "/settings/profile/logo/remove"


@pytest.fixture
def admin_client(client, make_clinic, make_therapist, now):
    clinic = make_clinic(name="Harbour Physio")
    admin = make_therapist(clinic, "ada@harbour.example", role=Role.ADMIN)
    sign_in(client, admin.email)
    client.clinic = clinic
    return client


def profile_data(client, **changes: str) -> dict[str, str]:
    page = client.get(PROFILE).get_data(as_text=True)
    data = {
        "csrf_token": csrf_from(page),
        "name": "Harbour Physio",
        "phone": "+34 612 345 678",
        "address": "Calle Mayor 1, Madrid",
        "emergency_number": "112",
        "default_language": "es",
    }
    data.update(changes)
    return data


def snapshot(clinic: Clinic) -> tuple[object, ...]:
    db.session.refresh(clinic)
    return (
        clinic.name,
        clinic.phone,
        clinic.address,
        clinic.emergency_number,
        clinic.default_language,
        clinic.logo_png,
        clinic.logo_updated_at,
    )


def audit_count() -> int:
    return db.session.scalar(select(func.count()).select_from(AuditEvent))


def errors_of(html: str) -> str:
    return unescape(" ".join(re.findall(r'<ul class="errors"[^>]*>(.*?)</ul>', html, re.S)))


# --- the profile form ------------------------------------------------------------------------------


def test_the_profile_saves_normalized_and_is_audited(admin_client, now):
    clinic = admin_client.clinic
    response = admin_client.post(PROFILE, data=profile_data(admin_client, emergency_number=" 999 "))
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/settings/profile?saved=profile")
    db.session.refresh(clinic)
    assert (clinic.phone, clinic.address, clinic.emergency_number, clinic.default_language) == (
        "+34612345678",
        "Calle Mayor 1, Madrid",
        "999",
        "es",
    )
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "clinic.profile"))
    assert event is not None and event.clinic_id == clinic.id
    assert event.detail == {"changed": ["address", "default_language", "emergency_number", "phone"]}
    page = admin_client.get(response.headers["Location"]).get_data(as_text=True)
    assert 'value="+34612345678"' in page and "Saved." in page


def test_saving_unchanged_details_writes_no_audit_row(admin_client, now):
    admin_client.post(PROFILE, data=profile_data(admin_client))
    before = audit_count()
    assert admin_client.post(PROFILE, data=profile_data(admin_client)).status_code == 303
    assert audit_count() == before


def test_an_empty_emergency_number_falls_back_to_the_apps(admin_client, now):
    admin_client.post(PROFILE, data=profile_data(admin_client, emergency_number="999"))
    admin_client.post(PROFILE, data=profile_data(admin_client, emergency_number=""))
    db.session.refresh(admin_client.clinic)
    assert admin_client.clinic.emergency_number is None
    # The field's hint names the number used instead.
    assert "Leave it empty to use 112." in admin_client.get(PROFILE).get_data(as_text=True)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("phone", "612 345 678", "Enter the number with + and the country code"),
        ("phone", "+34 000", "Enter the number with + and the country code"),
        ("emergency_number", "1", "2 to 6 digits"),
        ("emergency_number", "1234567", "2 to 6 digits"),
        ("emergency_number", "+112", "2 to 6 digits"),
        ("emergency_number", "11a", "2 to 6 digits"),
        ("emergency_number", "١١٢", "2 to 6 digits"),  # Arabic-Indic digits: not dialable as typed
        ("name", "  ", "Enter the clinic's name."),
        ("default_language", "fr", "Not a valid choice"),
    ],
)
def test_invalid_details_are_refused_with_a_message_and_change_nothing(
    admin_client, now, field, value, message
):
    clinic = admin_client.clinic
    before, events = snapshot(clinic), audit_count()
    response = admin_client.post(PROFILE, data=profile_data(admin_client, **{field: value}))
    assert response.status_code == 422
    assert message in errors_of(response.get_data(as_text=True))
    assert snapshot(clinic) == before
    assert audit_count() == events


def test_another_clinics_name_is_refused(admin_client, make_clinic, now):
    make_clinic(name="Seaside Physio")
    clinic = admin_client.clinic
    before = snapshot(clinic)
    response = admin_client.post(PROFILE, data=profile_data(admin_client, name="Seaside Physio"))
    assert response.status_code == 422
    assert "Another clinic already has this name." in errors_of(response.get_data(as_text=True))
    assert snapshot(clinic) == before


def test_the_page_speaks_the_therapists_language(admin_client, now):
    response = admin_client.post(
        PROFILE,
        data=profile_data(admin_client, emergency_number="1"),
        headers={"Accept-Language": "es"},
    )
    assert response.status_code == 422
    assert "de 2 a 6 cifras" in errors_of(response.get_data(as_text=True))


def test_the_visit_form_starts_with_the_clinics_default_language(admin_client, now):
    admin_client.post(PROFILE, data=profile_data(admin_client, default_language="es"))
    page = admin_client.get("/visits/new").get_data(as_text=True)
    assert re.search(r'<option selected value="es">|<option value="es" selected>', page)


# --- roles ---------------------------------------------------------------------------------------

ROUTES = [
    ("GET", PROFILE),
    ("POST", PROFILE),
    ("POST", LOGO),
    ("POST", REMOVE),
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_a_therapist_gets_403_and_nothing_changes(
    client, make_clinic, make_therapist, now, method, path
):
    clinic = make_clinic(name="Harbour Physio")
    therapist = make_therapist(clinic, "theo@harbour.example", role=Role.THERAPIST)
    sign_in(client, therapist.email)
    token = csrf_from(client.get("/").get_data(as_text=True))
    before, events = snapshot(clinic), audit_count()
    data = {
        "csrf_token": token,
        "name": "Taken Over",
        "emergency_number": "999",
        "default_language": "es",
        "logo": (io.BytesIO(png_bytes()), "logo.png", "image/png"),
    }
    response = client.open(path, method=method, data=data if method == "POST" else None)
    assert response.status_code == 403
    assert snapshot(clinic) == before
    assert audit_count() == events


# --- the logo ------------------------------------------------------------------------------------


def png_bytes(size: tuple[int, int] = (64, 48), *, exif: bool = False) -> bytes:
    image = Image.new("RGBA", size, (200, 30, 30, 255))
    out = io.BytesIO()
    params = {}
    if exif:
        data = Image.Exif()
        data[0x010F] = "SecretCam"  # Make
        params["exif"] = data.tobytes()
    image.save(out, "PNG", **params)
    return out.getvalue()


def jpeg_bytes(size: tuple[int, int] = (1200, 900)) -> bytes:
    image = Image.new("RGB", size, (20, 90, 160))
    exif = Image.Exif()
    exif[0x010F] = "SecretCam"  # Make
    exif[0x0131] = "PhotoTool 9"  # Software
    out = io.BytesIO()
    image.save(out, "JPEG", quality=80, exif=exif.tobytes())
    return out.getvalue()


def upload(client, data: bytes, filename: str = "logo.png", mimetype: str = "image/png"):
    token = csrf_from(client.get(PROFILE).get_data(as_text=True))
    return client.post(
        LOGO,
        data={"csrf_token": token, "logo": (io.BytesIO(data), filename, mimetype)},
        content_type="multipart/form-data",
    )


def served_logo(client, clinic: Clinic):
    page = client.get(PROFILE).get_data(as_text=True)
    match = re.search(r'<img src="(/logo/[^"]+)" alt="([^"]+)"', page)
    assert match, "the profile page shows no logo"
    assert unescape(match.group(2)) == f"{clinic.name} logo"
    return client.get(unescape(match.group(1)))


@pytest.mark.parametrize(
    ("data", "filename", "mimetype", "source_size", "stored_size"),
    [
        (png_bytes(exif=True), "logo.png", "image/png", (64, 48), (64, 48)),
        (jpeg_bytes(), "logo.jpg", "image/jpeg", (1200, 900), (512, 384)),
    ],
    ids=["png", "jpeg"],
)
def test_a_png_or_jpeg_is_re_encoded_as_a_clean_png_and_audited(
    admin_client, now, data, filename, mimetype, source_size, stored_size
):
    clinic = admin_client.clinic
    response = upload(admin_client, data, filename, mimetype)
    assert response.status_code == 303
    db.session.refresh(clinic)
    assert clinic.logo_updated_at == now or abs(clinic.logo_updated_at - now).total_seconds() < 60
    served = served_logo(admin_client, clinic)
    assert served.status_code == 200
    assert served.headers["Content-Type"] == "image/png"
    assert served.headers["X-Content-Type-Options"] == "nosniff"
    assert "max-age=31536000" in served.headers["Cache-Control"]
    body = served.get_data()
    assert body != data
    assert b"SecretCam" not in body and b"PhotoTool" not in body
    with Image.open(io.BytesIO(body)) as image:
        assert image.format == "PNG"
        assert image.size == stored_size
        assert "exif" not in image.info and len(image.getexif()) == 0
    with Image.open(io.BytesIO(data)) as original:
        assert original.size == source_size
    assert db.session.scalar(select(AuditEvent).where(AuditEvent.action == "clinic.logo"))


def svg() -> bytes:
    return (
        b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
        b"<script>alert(1)</script><rect width='10' height='10'/></svg>"
    )


def gif() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (10, 10), (0, 0, 0)).save(out, "GIF")
    return out.getvalue()


def truncated_png() -> bytes:
    image = Image.frombytes("RGB", (120, 120), bytes(range(256)) * 168 + bytes(192))
    out = io.BytesIO()
    image.save(out, "PNG")
    whole = out.getvalue()
    return whole[: len(whole) // 2]


def huge_dimensions_png() -> bytes:
    """A tiny, valid PNG whose header claims 100 000 x 100 000 pixels (a decompression bomb)."""
    whole = png_bytes((8, 8))
    start = whole.index(b"IHDR")
    fields = struct.pack(">II", 100_000, 100_000) + whole[start + 12 : start + 17]
    crc = struct.pack(">I", zlib.crc32(b"IHDR" + fields) & 0xFFFFFFFF)
    return whole[:start] + b"IHDR" + fields + crc + whole[start + 21 :]


@pytest.mark.parametrize(
    ("data", "filename", "mimetype", "status", "message"),
    [
        (svg(), "logo.svg", "image/svg+xml", 422, "Only PNG and JPEG images can be used."),
        (svg(), "logo.png", "image/png", 422, "Only PNG and JPEG images can be used."),
        (png_bytes(), "logo.svg", "image/svg+xml", 303, None),  # a PNG is a PNG by its bytes
        (gif(), "logo.gif", "image/gif", 422, "Only PNG and JPEG images can be used."),
        (b"\x89PNG" + bytes(201 * 1024), "big.png", "image/png", 413, "200 KB or smaller"),
        (truncated_png(), "cut.png", "image/png", 422, "could not be read"),
        (huge_dimensions_png(), "bomb.png", "image/png", 422, "too many pixels"),
        (b"", "empty.png", "image/png", 422, "Choose an image file"),
    ],
    ids=["svg", "svg-named-png", "png-named-svg", "gif", "201kb", "truncated", "bomb", "empty"],
)
def test_only_a_readable_png_or_jpeg_within_limits_is_accepted(
    admin_client, now, data, filename, mimetype, status, message
):
    clinic = admin_client.clinic
    before, events = snapshot(clinic), audit_count()
    response = upload(admin_client, data, filename, mimetype)
    assert response.status_code == status
    if message is None:
        return
    assert message in errors_of(response.get_data(as_text=True))
    assert snapshot(clinic) == before
    assert audit_count() == events


def test_a_huge_upload_is_a_413_page_not_a_500(admin_client, now):
    clinic = admin_client.clinic
    before = snapshot(clinic)
    response = upload(admin_client, bytes(2 * 1024 * 1024))
    assert response.status_code == 413
    assert "The logo must be 200 KB or smaller." in response.get_data(as_text=True)
    assert snapshot(clinic) == before
    # Other forms keep the app's small limit.
    token = csrf_from(admin_client.get(PROFILE).get_data(as_text=True))
    assert (
        admin_client.post(PROFILE, data={"csrf_token": token, "address": "x" * 200_000}).status_code
        == 413
    )


def test_the_logo_is_refused_in_spanish_for_a_spanish_reader(admin_client, now):
    token = csrf_from(admin_client.get(PROFILE).get_data(as_text=True))
    response = admin_client.post(
        LOGO,
        data={"csrf_token": token, "logo": (io.BytesIO(svg()), "logo.svg", "image/svg+xml")},
        headers={"Accept-Language": "es"},
    )
    assert response.status_code == 422
    assert "Solo se aceptan imágenes PNG y JPEG" in errors_of(response.get_data(as_text=True))


def test_remove_logo_removes_it_and_its_url_answers_404(admin_client, now):
    clinic = admin_client.clinic
    assert upload(admin_client, png_bytes()).status_code == 303
    url = f"/logo/{clinic.id}.png"
    assert admin_client.get(url).status_code == 200
    token = csrf_from(admin_client.get(PROFILE).get_data(as_text=True))
    assert admin_client.post(REMOVE, data={"csrf_token": token}).status_code == 303
    db.session.refresh(clinic)
    assert clinic.logo_png is None
    assert admin_client.get(url).status_code == 404
    assert db.session.scalar(select(AuditEvent).where(AuditEvent.action == "clinic.logo_remove"))
    assert "<img" not in admin_client.get(PROFILE).get_data(as_text=True)


def test_the_logo_url_is_public_and_404_without_a_logo_or_clinic(client, make_clinic, now):
    import uuid

    clinic = make_clinic()
    assert client.get(f"/logo/{clinic.id}.png").status_code == 404
    assert client.get(f"/logo/{uuid.uuid4()}.png").status_code == 404
    clinic.logo_png, clinic.logo_updated_at = png_bytes(), now
    db.session.commit()
    # Nobody is signed in: patients are not.
    response = client.get(f"/logo/{clinic.id}.png")
    assert response.status_code == 200 and response.headers["Content-Type"] == "image/png"
    # Without the current version the answer must be checked again before reuse.
    assert "no-cache" in response.headers["Cache-Control"]


# --- what patients see ---------------------------------------------------------------------------


def test_the_patient_header_shows_the_clinics_logo_and_phone(patient_client, now):
    clinic = patient_client.visit.clinic
    clinic.phone = "+34612345678"
    clinic.logo_png, clinic.logo_updated_at = png_bytes(), now
    db.session.commit()
    page = patient_client.get("/me/").get_data(as_text=True)
    header = page.split("</header>")[0]
    match = re.search(r'<img src="(/logo/[^"]+)" alt="([^"]+)" class="clinic-logo">', header)
    assert match and unescape(match.group(2)) == f"{clinic.name} logo"
    assert patient_client.get(unescape(match.group(1))).status_code == 200
    assert 'href="tel:+34612345678"' in header


def test_a_clinic_without_logo_or_phone_shows_neither(patient_client, now):
    header = patient_client.get("/me/").get_data(as_text=True).split("</header>")[0]
    assert "<img" not in header and "tel:" not in header


def test_the_clinics_emergency_number_shows_on_the_guide_and_the_red_screen(patient_client, now):
    clinic = patient_client.visit.clinic
    clinic.emergency_number = "999"
    db.session.commit()
    guide = patient_client.get("/me/").get_data(as_text=True)
    assert 'href="tel:999"' in guide and "tel:112" not in guide
    response = patient_client.post(
        "/me/check-in", data=form_data(patient_client, soreness="1", red_flags=["chest_pain"])
    )
    assert response.status_code == 303
    red = patient_client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Call 999 now, or go to the emergency department" in unescape(red)
    assert 'href="tel:999"' in red and "tel:112" not in red and "call 112" not in red.lower()


@pytest.mark.postgres
def test_on_postgresql_the_profile_and_logo_round_trip(admin_client, make_clinic, now):
    make_clinic(name="Seaside Physio")
    response = admin_client.post(PROFILE, data=profile_data(admin_client, name="Seaside Physio"))
    assert response.status_code == 422
    assert admin_client.post(PROFILE, data=profile_data(admin_client)).status_code == 303
    assert upload(admin_client, jpeg_bytes()).status_code == 303
    served = served_logo(admin_client, admin_client.clinic)
    with Image.open(io.BytesIO(served.get_data())) as image:
        assert (image.format, image.size) == ("PNG", (512, 384))
