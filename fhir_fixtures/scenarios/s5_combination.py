"""§5 Combination: two or more of {back pain, calcium, ALP} findings raise the priority one
step, never to stat.
"""

from __future__ import annotations

from .builders import BASELINE_DATES, Fixture, Section


def fx41_combination() -> Fixture:
    f = Fixture(
        41,
        "combination",
        "Two or more of {back pain, calcium, ALP} raise the highest priority one step, never "
        "to stat: new-back-pain (urgent) + rising-alp -> asap; rising-calcium + rising-alp "
        "(routine) -> urgent; hypercalcemia grade 2 (asap) + rising-alp -> asap; "
        "new-back-pain + grade-1 hypercalcemia -> asap.",
    )
    p = f.patient()
    p.breast_cancer()
    bp = p.back_pain()
    alp = p.alp(210)
    p.alert(
        "asap",
        ["new-back-pain", "rising-alp"],
        red_flags=[],
        evidence=[bp, alp],
        note="max(urgent, routine) = urgent, +1 = asap",
    )
    p = f.patient("b")
    p.breast_cancer()
    for d, v in zip(BASELINE_DATES, (9.0, 9.2, 9.4), strict=True):
        p.calcium(v, effective=d)
    ca = p.calcium(10.3)
    alp = p.alp(210)
    p.alert(
        "urgent",
        ["rising-calcium", "rising-alp"],
        red_flags=[],
        evidence=[ca, alp],
        note="calcium 10.3 vs median 9.2 (+12%) and ALP 210 (no baseline): routine +1 = urgent",
    )
    p = f.patient("c")
    p.breast_cancer()
    ca = p.calcium(12.0)
    alp = p.alp(210)
    p.alert(
        "asap",
        ["hypercalcemia", "rising-alp"],
        red_flags=[],
        evidence=[ca, alp],
        note="asap +1 would be stat: combination never reaches stat, stays asap",
    )
    p = f.patient("d")
    p.breast_cancer()
    bp = p.back_pain()
    ca = p.calcium(11.0)
    p.alert(
        "asap",
        ["new-back-pain", "hypercalcemia"],
        red_flags=[],
        evidence=[bp, ca],
        note="urgent + urgent (grade 1) -> asap",
    )
    return f


SECTION = Section(
    "§5 Findings: the combination rule",
    (fx41_combination,),
)
