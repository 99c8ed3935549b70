"""Regions a therapist can record as needled (clinical.md, "Regions").

`lung_field` marks regions over the lung, where pneumothorax is the most reported serious event
(Mintken 2025, PMID 40470852): the breathing red flags are shown first for 72 h after those visits.
`snomed` is set only for the codes clinical.md lists as verified; the rest are exported as text.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask_babel import lazy_gettext as _l


@dataclass(frozen=True)
class Region:
    code: str
    label: object  # a lazy translated string
    lung_field: bool
    snomed: str | None = None


REGIONS: tuple[Region, ...] = (
    Region("neck", _l("Neck / upper trapezius"), True, "45048000"),
    Region("levator_scapulae", _l("Levator scapulae (side of the neck)"), True),
    Region("shoulder", _l("Shoulder / infraspinatus"), True, "16982005"),
    Region("upper_back", _l("Upper back / between the shoulder blades"), True),
    Region("chest_wall", _l("Chest wall"), True),
    Region("thoracic_paraspinals", _l("Thoracic paraspinals (along the mid spine)"), True),
    Region("low_back", _l("Low back / quadratus lumborum"), False, "37822005"),
    Region("gluteals", _l("Buttock / gluteals"), False),
    Region("thigh", _l("Thigh"), False),
    Region("calf", _l("Calf"), False),
    Region("foot", _l("Foot / heel"), False),
    Region("forearm", _l("Forearm / elbow"), False),
    Region("jaw", _l("Jaw"), False),
    Region("head", _l("Head"), False),
)

BY_CODE: dict[str, Region] = {r.code: r for r in REGIONS}


def is_region(code: str) -> bool:
    return code in BY_CODE


def any_over_lung(codes: list[str]) -> bool:
    return any(BY_CODE[c].lung_field for c in codes if c in BY_CODE)
