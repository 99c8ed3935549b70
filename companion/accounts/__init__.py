"""Therapist accounts, managed by the clinic itself: invites, password resets, colleagues and
roles, two-step sign-in (TOTP and recovery codes), and the e-mails they send. Domain functions
take an explicit `now`; the pages are in companion/auth/ (signed out) and companion/clinic/
(signed in)."""
