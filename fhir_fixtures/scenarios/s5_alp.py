"""§5 Findings from alkaline phosphatase: rising-alp with and without a baseline, urgent above
2.5 x the upper limit, and the ggt-raised red flag that may accompany it.
"""

from __future__ import annotations

from .builders import BASELINE_DATES, Fixture, Section


def fx35_rising_alp_no_baseline() -> Fixture:
    f = Fixture(
        35,
        "rising-alp-no-baseline",
        "ALP above the ULN 147 U/L with no baseline -> routine rising-alp: 6768-6 "
        "210 U/L (1.43 x ULN).",
    )
    p = f.patient()
    p.breast_cancer()
    alp = p.alp(210)
    p.alert("routine", ["rising-alp"], red_flags=[], evidence=[alp], note="210 > 147, no baseline")
    return f


def fx36_rising_alp_above_uln_baseline() -> Fixture:
    f = Fixture(
        36,
        "rising-alp-above-uln-baseline",
        "ALP above ULN with a baseline needs >= 1.25 x baseline: 170 vs median 130 "
        "(1.31) -> routine; 180 vs median 155 (1.16) -> no alert.",
    )
    p = f.patient()
    p.breast_cancer()
    for d, v in zip(BASELINE_DATES, (120, 130, 140), strict=True):
        p.alp(v, effective=d)
    alp = p.alp(170)
    p.alert(
        "routine",
        ["rising-alp"],
        red_flags=[],
        evidence=[alp],
        note="170 > 147 and 170 / 130 = 1.308 >= 1.25",
    )
    p = f.patient("b")
    p.breast_cancer()
    for d, v in zip(BASELINE_DATES, (150, 155, 160), strict=True):
        p.alp(v, effective=d)
    p.alp(180)
    p.no_alert("180 > 147 but 180 / 155 = 1.161 < 1.25")
    return f


def fx37_rising_alp_below_uln() -> Fixture:
    f = Fixture(
        37,
        "rising-alp-below-uln",
        "ALP at or below ULN rising >= 1.5 x baseline -> routine: 135 vs median 85 (1.59); "
        "120 vs 85 (1.41) -> no alert.",
    )
    p = f.patient()
    p.breast_cancer()
    for d, v in zip(BASELINE_DATES, (80, 85, 90), strict=True):
        p.alp(v, effective=d)
    alp = p.alp(135)
    p.alert(
        "routine",
        ["rising-alp"],
        red_flags=[],
        evidence=[alp],
        note="135 <= 147 and 135 / 85 = 1.588 >= 1.5",
    )
    p = f.patient("b")
    p.breast_cancer()
    for d, v in zip(BASELINE_DATES, (80, 85, 90), strict=True):
        p.alp(v, effective=d)
    p.alp(120)
    p.no_alert("120 / 85 = 1.412 < 1.5")
    return f


def fx38_alp_over_2_5x_uln() -> Fixture:
    f = Fixture(
        38,
        "alp-over-2-5x-uln",
        "ALP > 2.5 x ULN (2.5 x 147 = 367.5 U/L) -> urgent rising-alp: 400 U/L -> urgent; "
        "360 U/L (2.45 x ULN) -> routine.",
    )
    p = f.patient()
    p.breast_cancer()
    alp = p.alp(400)
    p.alert("urgent", ["rising-alp"], red_flags=[], evidence=[alp], note="400 > 367.5")
    p = f.patient("b")
    p.breast_cancer()
    alp = p.alp(360)
    p.alert("routine", ["rising-alp"], red_flags=[], evidence=[alp], note="147 < 360 <= 367.5")
    return f


def fx40_ggt_red_flag() -> Fixture:
    f = Fixture(
        40,
        "ggt-red-flag",
        "GGT above its upper limit together with an ALP finding adds the ggt-raised red "
        "flag (ALP 210 + GGT 120 > 40 -> routine with ggt-raised); GGT raised without an "
        "ALP finding -> no alert; ALP finding with normal GGT -> routine, no red flag.",
    )
    p = f.patient()
    p.breast_cancer()
    alp = p.alp(210)
    p.ggt(120)
    p.alert(
        "routine",
        ["rising-alp"],
        red_flags=["ggt-raised"],
        evidence=[alp],
        note="GGT 2324-2 120 U/L > its referenceRange.high 40 (no default GGT limit in v1)",
    )
    p = f.patient("b")
    p.breast_cancer()
    p.alp(90)
    p.ggt(120)
    p.no_alert("ALP 90 is normal and there is no baseline: no ALP finding, so no alert")
    p = f.patient("c")
    p.breast_cancer()
    alp = p.alp(210)
    p.ggt(30)
    p.alert("routine", ["rising-alp"], red_flags=[], evidence=[alp], note="GGT 30 <= 40")
    return f


SECTION = Section(
    "§5 Findings: rising-alp and the ggt-raised red flag",
    (
        fx35_rising_alp_no_baseline,
        fx36_rising_alp_above_uln_baseline,
        fx37_rising_alp_below_uln,
        fx38_alp_over_2_5x_uln,
        fx40_ggt_red_flag,
    ),
)
