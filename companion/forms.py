"""Flask-WTF forms (CSRF included). Labels are translated lazily."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import (
    BooleanField,
    EmailField,
    FieldList,
    Form,
    FormField,
    HiddenField,
    IntegerField,
    PasswordField,
    RadioField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.csrf.core import CSRFTokenField
from wtforms.fields import DateTimeLocalField, TimeField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Email, InputRequired, Length, NumberRange, Optional
from wtforms.validators import ValidationError as FormError
from wtforms.widgets import CheckboxInput, ListWidget

from companion.care import pgic
from companion.care.helped import HELPED
from companion.care.regions import REGIONS
from companion.care.stretches import STRETCHES
from companion.care.triage import OTHER_SYMPTOMS, RED_FLAGS
from companion.reminders.planning import MAX_QUIET, MAX_QUIET_HOURS, quiet_length
from companion.timeutil import is_iana_zone
from companion.visits.contact import (
    normalize_email,
    normalize_emergency_number,
    normalize_phone,
)
from companion.visits.patient_data import MAX_REASON


class PageForm(FlaskForm):
    """Every form of the app's pages.

    Its CSRF field is drawn without an id: Flask-WTF would give each form's hidden token the same
    id="csrf_token", and a page with several forms (the visit page has four) would repeat it, which
    HTML forbids (ids are unique in a document). Nothing points at that field by id; a template may
    still give it one of its own (`form.csrf_token(id=...)`)."""

    class Meta:
        def render_field(self, field: Any, render_kw: dict[str, Any]) -> Any:
            if isinstance(field, CSRFTokenField):
                render_kw.setdefault("id", False)  # WTForms leaves out an attribute that is False
            return super().render_field(field, render_kw)  # type: ignore[misc]


class MultiCheckboxField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()

    def pre_validate(self, form: Any) -> None:
        # A browser sends each ticked box once; a value sent twice is a hand-made request, refused
        # rather than stored as given or silently collapsed (issue 14: 5,000 regions were kept).
        # With unknown values refused too, the list is bounded by the number of choices.
        if self.data and len(set(self.data)) != len(self.data):
            raise FormError(_l("Each choice can be given only once."))
        super().pre_validate(form)


class SignInForm(PageForm):
    email = EmailField(_l("E-mail"), validators=[DataRequired(), Email(check_deliverability=False)])
    password = PasswordField(_l("Password"), validators=[DataRequired()])


class ChangePasswordForm(PageForm):
    """A signed-in therapist's own password: the current one first (ASVS 6.2.3), so a session
    left open on a shared computer cannot take the account over."""

    current_password = PasswordField(_l("Current password"), validators=[DataRequired()])
    new_password = PasswordField(_l("New password"), validators=[DataRequired()])
    repeat_password = PasswordField(_l("Repeat the new password"), validators=[DataRequired()])

    def validate_repeat_password(self, field: PasswordField) -> None:
        if field.data != self.new_password.data:
            raise FormError(_l("The two new passwords are not the same."))


class ActionForm(PageForm):
    """A form with nothing but its CSRF token, for buttons such as sign out or revoke."""


def _role_choices() -> list[SelectChoice]:
    return [SelectChoice("therapist", _l("Therapist")), SelectChoice("admin", _l("Admin"))]


def _stripped(value: str | None) -> str | None:
    return value.strip() if value else value


class InviteForm(PageForm):
    """An admin invites a colleague into the clinic (clinic/therapists.py)."""

    email = EmailField(
        _l("Email"),
        filters=[_stripped],
        validators=[
            DataRequired(message=_l("Enter the colleague's e-mail address.")),
            Length(max=254),
            Email(
                check_deliverability=False,
                message=_l("Enter an e-mail address such as name@example.com."),
            ),
        ],
    )
    name = StringField(_l("Name (optional)"), validators=[Length(max=200)])
    role = SelectField(
        _l("Role"),
        choices=_role_choices(),
        default="therapist",
        description=_l("Admins also manage the clinic: colleagues, settings, on-call and audit."),
    )


class RoleForm(PageForm):
    """One colleague's role, on their row of the Therapists page."""

    role = SelectField(_l("Role"), choices=_role_choices())


class SetPasswordForm(PageForm):
    """The password an invite or reset link lets its holder choose (auth/accounts.py)."""

    password = PasswordField(_l("New password"), validators=[DataRequired()])
    confirm = PasswordField(_l("Confirm the new password"), validators=[DataRequired()])

    def validate_confirm(self, field: PasswordField) -> None:
        if field.data != self.password.data:
            raise FormError(_l("The two passwords are not the same."))


class ForgotPasswordForm(PageForm):
    email = EmailField(
        _l("Email"),
        filters=[_stripped],
        validators=[
            DataRequired(message=_l("Enter your e-mail address.")),
            Length(max=254),
            Email(
                check_deliverability=False,
                message=_l("Enter an e-mail address such as name@example.com."),
            ),
        ],
    )


def _iana_zone(form: FlaskForm, field: StringField) -> None:
    if not is_iana_zone(field.data or ""):
        raise FormError(_l("Choose a time zone from the list, such as Europe/Madrid."))


def _contact(normalize: Any, message: Any) -> Any:
    """A form validator that stores the normalized value (visits/contact.py); empty stays empty."""

    def check(form: FlaskForm, field: StringField) -> None:
        text = (field.data or "").strip()
        if not text:
            field.data = ""
            return
        try:
            field.data = normalize(text)
        except ValueError:
            raise FormError(message) from None

    return check


def _phone_field(label: Any, description: Any = None) -> StringField:
    """An optional phone number, stored in E.164 (visits/contact.py)."""
    return StringField(
        label,
        validators=[
            Length(max=40),
            _contact(
                normalize_phone,
                _l("Enter the number with + and the country code, such as +34 612 345 678."),
            ),
        ],
        description=description,
    )


def _email_field(label: Any, description: Any = None) -> StringField:
    """An optional e-mail address, stored normalized (visits/contact.py)."""
    return StringField(
        label,
        validators=[
            Length(max=320),
            _contact(normalize_email, _l("Enter an e-mail address such as name@example.com.")),
        ],
        description=description,
    )


class PatientForm(PageForm):
    """A patient's own details (clinic/patients.py), checked as on the visit form."""

    ref = StringField(
        _l("Patient reference"),
        validators=[DataRequired(), Length(max=100)],
        description=_l("Your clinic's own reference; the same reference reuses the patient."),
    )
    display_name = StringField(
        _l("Name shown to the patient"), validators=[DataRequired(), Length(max=200)]
    )
    timezone = StringField(_l("Patient's time zone"), validators=[DataRequired(), _iana_zone])
    language = SelectField(
        _l("Language"), choices=[SelectChoice("en", "English"), SelectChoice("es", "Español")]
    )
    phone = _phone_field(
        _l("Patient's phone (optional)"),
        _l("With the country code, so the clinic can call back after a red flag."),
    )
    email = _email_field(_l("Patient's e-mail (optional)"))


class VisitForm(PatientForm):
    """The patient's details (PatientForm's fields, first) and the visit's."""

    performed_at = DateTimeLocalField(
        _l("Needling done at (patient's local time)"),
        format="%Y-%m-%dT%H:%M",
        validators=[InputRequired()],
    )
    regions = MultiCheckboxField(
        _l("Regions needled"),
        choices=[SelectChoice(r.code, r.label) for r in REGIONS],
        validators=[DataRequired(message=_l("Choose at least one region."))],
    )
    stretches = MultiCheckboxField(
        _l("Stretches for the patient"),
        choices=[SelectChoice(s.code, s.title) for s in STRETCHES],
        description=_l(
            "Each region's usual stretches are ticked for you when you choose it. Leave all "
            "unticked to give the regions' usual stretches."
        ),
    )
    no_stretches = BooleanField(_l("No stretches for this visit"))
    insertions = IntegerField(
        _l("Number of insertions"), validators=[Optional(), NumberRange(min=0, max=500)]
    )
    electrical_stimulation = BooleanField(_l("Electrical stimulation used"))
    first_visit = BooleanField(_l("First dry-needling visit"))
    notes = TextAreaField(
        _l("Notes (for the clinic only)"),
        validators=[Optional(), Length(max=2000)],
        # The patient's own data download includes them (patient_data.export_data says why).
        description=_l(
            "Not shown in the patient's app, but included when the patient downloads their data."
        ),
    )


class ConfirmDeletionForm(PageForm):
    # Health records may have to be kept for years by law: the box makes the therapist think of
    # that before removing a patient's data for good.
    understood = BooleanField(
        _l(
            "I have checked that the clinic does not have to keep these records, and I understand "
            "that the deletion cannot be undone."
        ),
        validators=[DataRequired(message=_l("Tick the box to confirm the deletion."))],
    )


class DeclineDeletionForm(PageForm):
    reason = TextAreaField(
        _l("Reason (the patient sees it)"),
        validators=[
            DataRequired(message=_l("Tell the patient why, in plain words.")),
            Length(max=MAX_REASON),
        ],
    )


SCORES = [SelectChoice(str(n), str(n)) for n in range(11)]


class CheckInForm(PageForm):
    # Chosen when the form is drawn, so pressing "send" twice stores one check-in, not two.
    client_id = HiddenField(validators=[DataRequired()])
    red_flags = MultiCheckboxField(choices=[SelectChoice(s.code, s.label) for s in RED_FLAGS])
    soreness = RadioField(
        _l("How sore is it where the needles went? 0 = none, 10 = worst imaginable"),
        choices=SCORES,
        validators=[InputRequired(message=_l("Choose a number from 0 to 10."))],
    )
    usual_pain = RadioField(
        _l("Your usual pain (the problem you are treated for), if you want to say"),
        choices=SCORES,
        validators=[Optional()],
    )
    # Day 7's global impression of change; the page shows it from day 6 (care/pgic.py).
    pgic = RadioField(
        pgic.QUESTION,
        choices=[SelectChoice(str(a.code), a.label) for a in pgic.ANSWERS],
        validators=[Optional()],
        description=pgic.HINT,
    )
    symptoms = MultiCheckboxField(choices=[SelectChoice(s.code, s.label) for s in OTHER_SYMPTOMS])
    helped = MultiCheckboxField(
        _l("What helped?"), choices=[SelectChoice(code, label) for code, label in HELPED.items()]
    )
    note = TextAreaField(_l("Anything else? (optional)"), validators=[Optional(), Length(max=1000)])


class ClockField(TimeField):
    """A wall-clock time from `<input type="time">` ("22:00"; some browsers add seconds)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("format", ["%H:%M", "%H:%M:%S"])
        super().__init__(*args, **kwargs)

    def process_formdata(self, valuelist: list[Any]) -> None:
        try:
            super().process_formdata(valuelist)
        except ValueError:
            # WTForms' own message is generic English; say what we expect, in the patient's words.
            raise ValueError(_l("Enter a time such as 22:00.")) from None


def quiet_hours_valid(start: ClockField, end: ClockField) -> bool:
    """Quiet hours must end at another time than they start, and leave the day for reminders."""
    if start.data == end.data:
        end.errors.append(_l("Choose an end time different from the start time."))
        return False
    if quiet_length(start.data, end.data) > MAX_QUIET:
        end.errors.append(
            _l(
                "Quiet hours can last at most %(hours)s hours, so your reminders still "
                "reach you during the day.",
                hours=MAX_QUIET_HOURS,
            )
        )
        return False
    return True


class QuietHoursForm(PageForm):
    start = ClockField(
        _l("Quiet from"), validators=[InputRequired(message=_l("Enter a time such as 22:00."))]
    )
    end = ClockField(
        _l("Quiet until"), validators=[InputRequired(message=_l("Enter a time such as 07:30."))]
    )

    def validate(self, extra_validators: Any = None) -> bool:
        return super().validate(extra_validators) and quiet_hours_valid(self.start, self.end)


class ReviewForm(PageForm):
    """Acknowledge or resolve a queue item. `alerts` carries the ids of the alerts the therapist
    was shown, so one that arrived after the page was drawn is never handled unseen."""

    alerts = HiddenField(validators=[DataRequired()])
    note = TextAreaField(_l("Note (optional)"), validators=[Optional(), Length(max=500)])


class EnvelopeStepForm(Form):
    # Sub-form of ClinicSettingsForm: no CSRF field of its own (the outer form has one).
    usual_max = IntegerField(
        _l("Usual at most"),
        validators=[InputRequired(message=_l("Enter a whole number.")), NumberRange(0, 10)],
    )
    amber_at = IntegerField(
        _l("Amber from"),
        validators=[InputRequired(message=_l("Enter a whole number.")), NumberRange(0, 10)],
    )

    def validate(self, extra_validators: Any = None) -> bool:
        if not super().validate(extra_validators):
            return False
        if self.amber_at.data <= self.usual_max.data:
            self.amber_at.errors.append(_l("Amber must be above the usual maximum."))
            return False
        return True


class ClinicSettingsForm(PageForm):
    episode_days = IntegerField(
        _l("Days an episode stays in the review queue"),
        validators=[InputRequired(message=_l("Enter a whole number.")), NumberRange(1, 30)],
    )
    quiet_start = ClockField(
        _l("Quiet from"), validators=[InputRequired(message=_l("Enter a time such as 22:00."))]
    )
    quiet_end = ClockField(
        _l("Quiet until"), validators=[InputRequired(message=_l("Enter a time such as 07:30."))]
    )
    envelope = FieldList(FormField(EnvelopeStepForm), min_entries=6, max_entries=6)

    def validate(self, extra_validators: Any = None) -> bool:
        return super().validate(extra_validators) and quiet_hours_valid(
            self.quiet_start, self.quiet_end
        )


class SearchForm(PageForm):
    q = StringField(_l("Find a patient by reference or name"), validators=[Length(max=100)])


class OnCallForm(PageForm):
    """The clinic's on-call contact: who an unacknowledged red alert escalates to."""

    name = StringField(_l("Name"), validators=[Length(max=200)])
    phone = _phone_field(
        _l("Phone"),
        _l("Shown on the review queue beside red flags, so anyone can call the on-call person."),
    )
    email = _email_field(
        _l("E-mail"),
        _l("The escalation is sent here. Leave it empty to use the linked therapist's."),
    )
    therapist = SelectField(
        _l("Therapist account (optional)"),
        choices=[],
        default="",
        description=_l("Alerts also go to the devices where this therapist turned them on."),
    )

    def validate(self, extra_validators: Any = None) -> bool:
        if not super().validate(extra_validators):
            return False
        given = (self.name.data or "").strip() or self.email.data or self.phone.data
        if given and not self.email.data and not self.therapist.data:
            # A name and a phone alone cannot be told anything: the escalation goes by e-mail or
            # to a therapist's devices.
            self.email.errors.append(
                _l("Give an e-mail address or link a therapist: the escalation needs one.")
            )
            return False
        return True


class TestAlertForm(PageForm):
    """The "Send a test alert" button, with its CSRF token."""


def _clock_text(field: ClockField, *, closing: bool = False) -> str:
    """ "08:00" as care/hours.py stores it. <input type="time"> cannot say 24:00, so a closing
    time of 00:00 means midnight, the end of the day."""
    text = str(field.data.strftime("%H:%M"))
    return "24:00" if closing and text == "00:00" else text


class OpeningDayForm(Form):
    """One weekday of the clinic's opening hours (a sub-form: the outer form has the CSRF field):
    up to two intervals, such as a morning and an afternoon; a day with no times is closed."""

    opens = ClockField(_l("Opens"), validators=[Optional()])
    closes = ClockField(_l("Closes"), validators=[Optional()])
    opens_again = ClockField(_l("Opens again"), validators=[Optional()])
    closes_again = ClockField(_l("Closes again"), validators=[Optional()])

    def _pairs(self) -> tuple[tuple[ClockField, ClockField], ...]:
        return ((self.opens, self.closes), (self.opens_again, self.closes_again))

    def intervals(self) -> list[list[str]]:
        """The day in the stored form (care/hours.py) once validated: [["08:00", "14:00"], ...]."""
        return [
            [_clock_text(start), _clock_text(end, closing=True)]
            for start, end in self._pairs()
            if start.data is not None
        ]

    def validate(self, extra_validators: Any = None) -> bool:
        if not super().validate(extra_validators):
            return False
        for start, end in self._pairs():
            if (start.data is None) != (end.data is None):
                missing = start if start.data is None else end
                missing.errors.append(_l("Give both an opening and a closing time, or neither."))
                return False
            if start.data is not None and _clock_text(end, closing=True) <= _clock_text(start):
                end.errors.append(_l("Choose a closing time after the opening time."))
                return False
        if self.opens_again.data is not None:
            if self.opens.data is None:
                self.opens.errors.append(_l("Fill in the first hours before the second."))
                return False
            # "HH:MM" strings order as times do, "24:00" last.
            if _clock_text(self.opens_again) < _clock_text(self.closes, closing=True):
                self.opens_again.errors.append(
                    _l("Opening again must come after the first closing time.")
                )
                return False
        return True


class OpeningHoursForm(PageForm):
    """The clinic's opening hours on its settings page: one row per weekday, Monday first."""

    days = FieldList(FormField(OpeningDayForm), min_entries=7, max_entries=7)


class CodeForm(PageForm):
    """A code from the authenticator app (or, at sign-in, a recovery code): two-step sign-in."""

    code = StringField(_l("Code"), validators=[DataRequired(), Length(max=64)])


class TwoStepRequirementForm(PageForm):
    """The clinic's setting on its Settings page: every therapist must use two-step sign-in."""

    require_two_factor = BooleanField(_l("Require two-step sign-in for everyone"))


class ClinicProfileForm(PageForm):
    """The clinic's profile, as patients see it (the app's header, the handout)."""

    name = StringField(
        _l("Clinic name"),
        validators=[DataRequired(message=_l("Enter the clinic's name.")), Length(max=200)],
    )
    phone = _phone_field(
        _l("Clinic phone"),
        _l("Patients see it in the app and on the handout, as the number to call the clinic."),
    )
    address = StringField(_l("Address"), validators=[Length(max=300)])
    emergency_number = StringField(
        _l("Emergency number"),
        validators=[
            Length(max=20),
            _contact(
                normalize_emergency_number,
                _l("Enter the local emergency number: 2 to 6 digits, such as 112, 911 or 999."),
            ),
        ],
    )
    default_language = SelectField(
        _l("Default language for new patients"),
        choices=[SelectChoice("en", "English"), SelectChoice("es", "Español")],
        description=_l("Chosen for you when you record a visit for a new patient."),
    )


class LogoForm(PageForm):
    """The clinic's logo upload (multipart); the file is checked in clinic/logo.py."""

    logo = FileField(
        _l("Logo image"),
        description=_l("A PNG or JPEG file of at most 200 KB. It is shown at most 512 px wide."),
    )


class ApiKeyForm(PageForm):
    name = StringField(
        _l("Key name"),
        validators=[DataRequired(message=_l("Give the key a name.")), Length(max=100)],
        description=_l("What the key is for, such as the booking system's name."),
    )
