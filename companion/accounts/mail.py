"""The account e-mails: an invite and a password reset. Plain text, in the reader's language,
with the link and nothing else about the clinic's patients (an e-mail crosses servers we do not
run). Sent through the e-mail channel; while e-mail is off (MAIL_SERVER unset) nothing is tried
and the caller shows the invite link to the admin instead."""

from __future__ import annotations

from flask_babel import force_locale
from flask_babel import gettext as _

from companion.channels import email
from companion.channels.email import EmailMessage, EmailResult


def invite_message(
    clinic_name: str, inviter: str, link: str, language: str, hours: int
) -> EmailMessage:
    with force_locale(language):
        subject = _("You are invited to %(clinic)s on Aftercare", clinic=clinic_name)
        body = "\n\n".join(
            [
                _(
                    "%(inviter)s invited you to join %(clinic)s on Aftercare, where the clinic "
                    "follows its patients' recovery after dry needling.",
                    inviter=inviter,
                    clinic=clinic_name,
                ),
                _("Open this link to choose your password:"),
                link,
                _(
                    "The link works once, for %(hours)s hours. If it has expired, ask %(inviter)s "
                    "for a new one.",
                    hours=hours,
                    inviter=inviter,
                ),
                _("If you did not expect this e-mail, you can ignore it."),
            ]
        )
    return EmailMessage(subject, body + "\n")


def reset_message(link: str, language: str) -> EmailMessage:
    with force_locale(language):
        subject = _("Choose a new Aftercare password")
        body = "\n\n".join(
            [
                _("Someone asked to reset the password of your Aftercare account."),
                _("Open this link to choose a new password:"),
                link,
                _("The link works once, for 1 hour."),
                _("If you did not ask for this, ignore this e-mail: your password stays as it is."),
            ]
        )
    return EmailMessage(subject, body + "\n")


def send(address: str, message: EmailMessage) -> EmailResult:
    return email.send_email([address], message.subject, message.body)
