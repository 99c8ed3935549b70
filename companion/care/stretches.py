"""A library of gentle stretches per region, as data (clinical.md, "What to tell patients").

The therapist picks the stretches for each patient on the visit form; the app only offers this
library per needled region and does not prescribe by itself. `default_for` marks what the visit form
preselects for a region, as a starting point the therapist confirms or changes.

Stretching is for comfort and easier movement, not to prevent soreness (Cochrane 2011, CD004577).
The dose (gentle, to mild tension, 15-30 s, 2-3 times, 1-3 times a day) and the stop rule are
shared by every stretch and come from the same source. The `how` texts describe common, well-known
gentle stretches in plain words (reading age about 12) and promise nothing beyond that.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask_babel import lazy_gettext as _l

COCHRANE = "Cochrane 2011 CD004577"


@dataclass(frozen=True)
class Stretch:
    code: str  # snake_case, stable: stored on visits
    regions: tuple[str, ...]  # region codes (companion/care/regions.py) this stretch serves
    title: object  # a lazy translated string
    how: object  # a lazy translated string: 1-3 short sentences
    default_for: tuple[str, ...] = ()  # regions for which the visit form preselects it
    source: str = COCHRANE


# Cochrane 2011 CD004577: gentle, to mild tension, 15-30 s, 2-3 times, 1-3 times a day.
DOSE: object = _l(
    "Stretch gently, only until you feel a mild pull, and hold it for 15 to 30 seconds while "
    "breathing normally, without bouncing; do it 2 or 3 times, 1 to 3 times a day."
)

# Cochrane 2011 CD004577 via clinical.md: stop if pain sharpens or numbness appears.
STOP_IF: object = _l("Stop if the pain gets sharp, or if you feel numbness or tingling.")

# Cochrane 2011 CD004577: stretching does not prevent soreness; it is for comfort and movement.
PURPOSE: object = _l(
    "Stretches can help you feel more comfortable and move more easily, but they do not stop "
    "soreness from happening."
)

STRETCHES: tuple[Stretch, ...] = (
    # Neck and head
    Stretch(
        "upper_trap_side_bend",
        ("neck",),
        _l("Neck side bend"),
        _l(
            "Sit tall and let your shoulders relax. Slowly tip one ear toward your shoulder until "
            "you feel a mild stretch along the other side of your neck. Do not pull on your head."
        ),
        default_for=("neck",),
    ),
    Stretch(
        "levator_scapulae_stretch",
        ("levator_scapulae", "neck"),
        _l("Turn and nod neck stretch"),
        _l(
            "Sit tall and turn your head about halfway toward one armpit. Slowly nod your chin "
            "down until you feel a mild stretch at the back and side of your neck. Do not pull on "
            "your head."
        ),
        default_for=("levator_scapulae",),
    ),
    Stretch(
        "chin_tuck",
        ("neck", "head"),
        _l("Chin tuck"),
        _l(
            "Sit or stand tall and look straight ahead. Gently slide your chin straight back, as "
            "if making a double chin, until you feel a mild stretch at the back of your neck. Keep "
            "your head level."
        ),
        default_for=("head",),
    ),
    Stretch(
        "neck_turn",
        ("neck", "levator_scapulae", "head"),
        _l("Slow neck turn"),
        _l(
            "Sit tall and let your shoulders relax. Slowly turn your head to look over one "
            "shoulder until you feel a mild stretch, then do the same to the other side."
        ),
    ),
    Stretch(
        "jaw_opening",
        ("jaw", "head"),
        _l("Gentle jaw opening"),
        _l(
            "Sit tall and rest the tip of your tongue on the roof of your mouth, just behind your "
            "top teeth. Keeping it there, slowly open your mouth until you feel a mild stretch. "
            "Do not force it open."
        ),
        default_for=("jaw",),
    ),
    # Shoulder, upper back and chest
    Stretch(
        "cross_body_shoulder",
        ("shoulder", "upper_back"),
        _l("Arm across the chest"),
        _l(
            "Bring one arm across the front of your body at chest height. With your other hand, "
            "hold it just above the elbow and ease it closer to your chest until you feel a mild "
            "stretch at the back of the shoulder. Keep your shoulders down."
        ),
        default_for=("shoulder",),
    ),
    Stretch(
        "doorway_chest",
        ("chest_wall", "shoulder"),
        _l("Doorway chest stretch"),
        _l(
            "Stand in a doorway and rest your forearms on the frame, with your elbows a little "
            "below shoulder height. Step one foot forward slowly until you feel a mild stretch "
            "across the front of your chest. Keep your back straight."
        ),
        default_for=("chest_wall",),
    ),
    Stretch(
        "self_hug_upper_back",
        ("upper_back", "thoracic_paraspinals"),
        _l("Self-hug upper back stretch"),
        _l(
            "Sit tall and wrap your arms around yourself, hands reaching toward your shoulder "
            "blades. Gently round your upper back and let your chin drop a little until you feel "
            "a mild stretch between your shoulder blades."
        ),
        default_for=("upper_back",),
    ),
    Stretch(
        "seated_rotation",
        ("thoracic_paraspinals", "upper_back", "chest_wall", "low_back"),
        _l("Seated twist"),
        _l(
            "Sit on a chair with your feet flat and your arms crossed over your chest. Keeping "
            "your hips facing forward, slowly turn your upper body to one side until you feel a "
            "mild stretch, then do the same to the other side."
        ),
        default_for=("thoracic_paraspinals",),
    ),
    Stretch(
        "standing_side_reach",
        ("low_back", "chest_wall"),
        _l("Standing side reach"),
        _l(
            "Stand with your feet hip-width apart, holding a chair with one hand if you need "
            "balance. Reach the other arm up over your head and lean gently away from that side "
            "until you feel a mild stretch along your side."
        ),
    ),
    # Low back and buttock
    Stretch(
        "knee_to_chest",
        ("low_back", "gluteals"),
        _l("Knee to chest"),
        _l(
            "Lie on your back with your knees bent and feet flat. Hold one knee with both hands "
            "and gently bring it toward your chest until you feel a mild stretch in your low back "
            "or buttock. Keep the other foot on the floor."
        ),
        default_for=("low_back",),
    ),
    Stretch(
        "knees_side_to_side",
        ("low_back", "gluteals"),
        _l("Knees to the side"),
        _l(
            "Lie on your back with your knees bent and feet flat. Keeping both shoulders on the "
            "floor, slowly let your knees lower to one side until you feel a mild stretch, then do "
            "the same to the other side."
        ),
    ),
    Stretch(
        "figure_four",
        ("gluteals",),
        _l("Figure-4 buttock stretch"),
        _l(
            "Lie on your back with your knees bent and rest one ankle on the other knee. Hold "
            "behind the thigh of the lower leg and gently bring it toward your chest until you "
            "feel a mild stretch in the buttock of the crossed leg."
        ),
        default_for=("gluteals",),
    ),
    # Legs and feet
    Stretch(
        "seated_hamstring",
        ("thigh",),
        _l("Back of thigh stretch"),
        _l(
            "Sit near the front of a chair with one leg straight out, heel on the floor. Keeping "
            "your back straight, lean forward from your hips until you feel a mild stretch at the "
            "back of your thigh."
        ),
        default_for=("thigh",),
    ),
    Stretch(
        "standing_quad",
        ("thigh",),
        _l("Front of thigh stretch"),
        _l(
            "Stand and hold a chair or wall for balance. Bend one knee and hold that ankle behind "
            "you, bringing your heel gently toward your buttock until you feel a mild stretch at "
            "the front of your thigh. Keep your knees side by side."
        ),
        default_for=("thigh",),
    ),
    Stretch(
        "calf_wall",
        ("calf", "foot"),
        _l("Calf stretch at a wall"),
        _l(
            "Stand facing a wall with your hands on it and one foot a step behind the other. Keep "
            "the back leg straight with its heel on the floor, and lean toward the wall until you "
            "feel a mild stretch in that calf."
        ),
        default_for=("calf",),
    ),
    Stretch(
        "plantar_fascia",
        ("foot",),
        _l("Toe and sole stretch"),
        _l(
            "Sit and rest one foot across your other knee. Hold your toes and gently pull them "
            "back toward your shin until you feel a mild stretch along the sole of your foot."
        ),
        default_for=("foot",),
    ),
    # Forearm
    Stretch(
        "wrist_extensor",
        ("forearm",),
        _l("Back of forearm stretch"),
        _l(
            "Hold one arm out in front with the elbow straight and the palm facing down. With "
            "your other hand, gently bend that wrist down until you feel a mild stretch along the "
            "top of your forearm."
        ),
        default_for=("forearm",),
    ),
    Stretch(
        "wrist_flexor",
        ("forearm",),
        _l("Front of forearm stretch"),
        _l(
            "Hold one arm out in front with the elbow straight and the palm facing up. With your "
            "other hand, gently pull your fingers back toward you until you feel a mild stretch "
            "along the inside of your forearm."
        ),
        default_for=("forearm",),
    ),
)

BY_CODE: dict[str, Stretch] = {s.code: s for s in STRETCHES}


def is_stretch(code: str) -> bool:
    return code in BY_CODE


def for_regions(regions: list[str]) -> list[Stretch]:
    """Stretches serving any of these regions, in library order, each once."""
    wanted = set(regions)
    return [s for s in STRETCHES if wanted.intersection(s.regions)]


def defaults_for(regions: list[str]) -> list[str]:
    """Codes the visit form preselects for these regions, in library order, each once."""
    wanted = set(regions)
    return [s.code for s in STRETCHES if wanted.intersection(s.default_for)]
