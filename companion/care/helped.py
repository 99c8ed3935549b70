"""What the patient says helped, as codes (clinical.md, "What to tell patients")."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

HELPED: dict[str, object] = {
    "movement": _l("Gentle movement"),
    "heat": _l("Heat"),
    "stretches": _l("Stretches"),
    "self_massage": _l("Gentle self-massage"),
    "rest": _l("Rest"),
    "pain_reliever": _l("A pain reliever"),
    "nothing": _l("Nothing helped"),
}
