"""Flask-WTF forms (CSRF included). Labels are translated lazily."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
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
from wtforms.fields import DateTimeLocalField, TimeField
from wtforms.validators import DataRequired, Email, InputRequired, Length, NumberRange, Optional
from wtforms.validators import ValidationError as FormError
from wtforms.widgets import CheckboxInput, ListWidget

from companion.care.helped import HELPED
from companion.care.regions import REGIONS
from companion.care.stretches import STRETCHES
from companion.care.triage import OTHER_SYMPTOMS, RED_FLAGS
from companion.reminders.planning import MAX_QUIET, MAX_QUIET_HOURS, quiet_length
from companion.timeutil import is_iana_zone
from companion.visits.patient_data import MAX_REASON


class MultiCheckboxField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class SignInForm(FlaskForm):
    email = EmailField(_l("E-mail"), validators=[DataRequired(), Email(check_deliverability=False)])
    password = PasswordField(_l("Password"), validators=[DataRequired()])


class ActionForm(FlaskForm):
    """A form with nothing but its CSRF token, for buttons such as sign out or revoke."""


def _iana_zone(form: FlaskForm, field: StringField) -> None:
    if not is_iana_zone(field.data or ""):
        raise FormError(_l("Choose a time zone from the list, such as Europe/Madrid."))


class VisitForm(FlaskForm):
    ref = StringField(
        _l("Patient reference"),
        validators=[DataRequired(), Length(max=100)],
        description=_l("Your clinic's own reference; the same reference reuses the patient."),
    )
    display_name = StringField(
        _l("Name shown to the patient"), validators=[DataRequired(), Length(max=200)]
    )
    timezone = StringField(_l("Patient's time zone"), validators=[DataRequired(), _iana_zone])
    language = SelectField(_l("Language"), choices=[("en", "English"), ("es", "Español")])
    performed_at = DateTimeLocalField(
        _l("Needling done at (patient's local time)"),
        format="%Y-%m-%dT%H:%M",
        validators=[InputRequired()],
    )
    regions = MultiCheckboxField(
        _l("Regions needled"),
        choices=[(r.code, r.label) for r in REGIONS],
        validators=[DataRequired(message=_l("Choose at least one region."))],
    )
    stretches = MultiCheckboxField(
        _l("Stretches for the patient"),
        choices=[(s.code, s.title) for s in STRETCHES],
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


class ConfirmDeletionForm(FlaskForm):
    # Health records may have to be kept for years by law: the box makes the therapist think of
    # that before removing a patient's data for good.
    understood = BooleanField(
        _l(
            "I have checked that the clinic does not have to keep these records, and I understand "
            "that the deletion cannot be undone."
        ),
        validators=[DataRequired(message=_l("Tick the box to confirm the deletion."))],
    )


class DeclineDeletionForm(FlaskForm):
    reason = TextAreaField(
        _l("Reason (the patient sees it)"),
        validators=[
            DataRequired(message=_l("Tell the patient why, in plain words.")),
            Length(max=MAX_REASON),
        ],
    )


SCORES = [(str(n), str(n)) for n in range(11)]


class CheckInForm(FlaskForm):
    # Chosen when the form is drawn, so pressing "send" twice stores one check-in, not two.
    client_id = HiddenField(validators=[DataRequired()])
    red_flags = MultiCheckboxField(choices=[(s.code, s.label) for s in RED_FLAGS])
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
    symptoms = MultiCheckboxField(choices=[(s.code, s.label) for s in OTHER_SYMPTOMS])
    helped = MultiCheckboxField(_l("What helped?"), choices=list(HELPED.items()))
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


class QuietHoursForm(FlaskForm):
    start = ClockField(
        _l("Quiet from"), validators=[InputRequired(message=_l("Enter a time such as 22:00."))]
    )
    end = ClockField(
        _l("Quiet until"), validators=[InputRequired(message=_l("Enter a time such as 07:30."))]
    )

    def validate(self, extra_validators: Any = None) -> bool:
        return super().validate(extra_validators) and quiet_hours_valid(self.start, self.end)


class ReviewForm(FlaskForm):
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


class ClinicSettingsForm(FlaskForm):
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


class SearchForm(FlaskForm):
    q = StringField(_l("Find a patient by reference or name"), validators=[Length(max=100)])
