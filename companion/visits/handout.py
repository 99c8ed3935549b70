"""Handing the patient link over beyond the visit page: the link by e-mail (the printable handout is a
page, clinic/handout.py, built from the guide's own content).

The e-mail crosses servers we do not run and may sit in a shared inbox, so it says no more than a
reminder does (reminders/notices.py): the clinic's name and the link. No name, no visit, no region,
no symptom.
"""

from __future__ import annotations

from flask_babel import force_locale
from flask_babel import gettext as _

from companion.channels.email import EmailResult, send_email
from companion.models import Clinic, Patient


def link_email(clinic: Clinic, url: str) -> tuple[str, str]:
    """(subject, plain-text body) in the current locale."""
    subject = _("Your aftercare link from %(clinic)s", clinic=clinic.name)
    body = "\n\n".join(
        (
            _("Hello,"),
            _(
                "%(clinic)s sent you the link to your aftercare page. Open it on your phone:",
                clinic=clinic.name,
            ),
            url,
            _(
                "Keep this link to yourself: anyone who has it can open your page. If you did "
                "not expect this e-mail, you can ignore it."
            ),
        )
    )
    return subject, body + "\n"


def send_link_email(patient: Patient, clinic: Clinic, url: str) -> EmailResult:
    """E-mail the patient their link, in their language (channels.email: DISABLED when e-mail is
    off, ERROR when the server did not take it). The caller checks the patient has an address."""
    if not patient.email:
        raise ValueError("the patient has no e-mail address")
    with force_locale(patient.language):
        subject, body = link_email(clinic, url)
    return send_email([patient.email], subject, body)
