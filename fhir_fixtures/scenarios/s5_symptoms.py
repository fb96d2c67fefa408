"""§5 Findings from symptoms: new-back-pain (new = no other back pain 31-365 days before it,
and on/after the breast-cancer date), its red flags (high spine, weight loss, progressive pain)
and suspected-mscc (a neuro deficit within 14 days).
"""

from __future__ import annotations

from .builders import ICD9CM, ICD10CM, SCT, Fixture, Section


def fx16_high_spine_back_pain() -> Fixture:
    f = Fixture(
        16,
        "high-spine-back-pain",
        "Each BACK_PAIN_HIGH_SPINE code (279038004, 81680005, M54.6, M54.2, 724.1, 723.1) "
        "12 days before asOf -> urgent new-back-pain with the high-spine-back-pain red flag "
        "(red flags never change priority).",
    )
    for suffix, system, code, display in (
        ("", SCT, "279038004", "Upper back pain"),
        ("b", SCT, "81680005", "Neck pain"),
        ("c", ICD10CM, "M54.6", "Pain in thoracic spine"),
        ("d", ICD10CM, "M54.2", "Cervicalgia"),
        ("e", ICD9CM, "724.1", "Pain in thoracic spine"),
        ("f", ICD9CM, "723.1", "Cervicalgia"),
    ):
        p = f.patient(suffix)
        p.breast_cancer()
        p.new_back_pain_alert(
            p.back_pain(system, code, display), note=code, red_flags=["high-spine-back-pain"]
        )
    return f


def fx17_chronic_back_pain() -> Fixture:
    f = Fixture(
        17,
        "chronic-back-pain",
        "Back pain is not new when another BACK_PAIN record lies 31-365 days before it: "
        "prior records 191 and 35 days before -> no alert; a prior record 445 days before, "
        "or two records 15 days apart (both recent) -> urgent.",
    )
    p = f.patient()
    p.breast_cancer()
    p.back_pain(onset="2025-11-10T09:00:00Z")
    p.back_pain()
    p.no_alert("backache 2026-05-20 with another 2025-11-10 (191 days before): chronic")
    p = f.patient("b")
    p.breast_cancer()
    p.back_pain(onset="2026-04-15T09:00:00Z")
    p.back_pain()
    p.no_alert(
        "backache 2026-05-20 with another on 2026-04-15 (35 days before, itself not recent): "
        "chronic"
    )
    p = f.patient("c")
    p.breast_cancer()
    p.back_pain(onset="2025-03-01T09:00:00Z")
    bp = p.back_pain()
    p.new_back_pain_alert(bp, note="prior backache 2025-03-01 is 445 days before: outside 31-365")
    p = f.patient("d")
    p.breast_cancer()
    bp1 = p.back_pain(onset="2026-05-05T09:00:00Z")
    bp2 = p.back_pain()
    p.alert(
        "urgent",
        ["new-back-pain"],
        red_flags=[],
        evidence=[bp1, bp2],
        note="backaches 2026-05-05 and 2026-05-20: 15 days apart, neither has another record "
        "31-365 days before it, both recent -> both are evidence",
    )
    return f


def fx18_back_pain_before_breast_cancer() -> Fixture:
    f = Fixture(
        18,
        "back-pain-before-breast-cancer",
        "New back pain must be dated on/after the first breast-cancer date when it is known: "
        "back pain 5 or 6 days before the diagnosis -> no alert; 10 days after, or with an "
        "undated breast-cancer Condition -> urgent.",
    )
    p = f.patient()
    p.breast_cancer(onset="2026-05-25T10:00:00Z", clinical="active")
    p.back_pain()
    p.no_alert("breast cancer onset 2026-05-25, backache 2026-05-20 (before)")
    p = f.patient("b")
    p.breast_cancer(onset=None, recorded="2026-05-26T10:00:00Z", clinical="active")
    p.back_pain()
    p.no_alert("breast cancer without onset, recordedDate 2026-05-26; backache 2026-05-20 (before)")
    p = f.patient("c")
    p.breast_cancer(onset="2026-05-10T10:00:00Z", clinical="active")
    p.new_back_pain_alert(p.back_pain(), note="breast cancer 2026-05-10, backache 2026-05-20 after")
    p = f.patient("d")
    p.breast_cancer(onset=None, recorded=None)
    p.new_back_pain_alert(
        p.back_pain(),
        note="breast-cancer Condition has neither onset nor recordedDate: the "
        "first breast-cancer date is unknown, so the date rule does not apply",
    )
    return f


def fx20_weight_loss_red_flag() -> Fixture:
    f = Fixture(
        20,
        "weight-loss-red-flag",
        "Recent WEIGHT_LOSS (R63.4 Condition, 448765001 Observation) adds the weight-loss "
        "red flag to a new-back-pain alert (still urgent); weight loss alone does not alert, "
        "and weight loss 78 days old is not a red flag.",
    )
    p = f.patient()
    p.breast_cancer()
    bp = p.back_pain()
    p.condition("wl", ICD10CM, "R63.4", "Abnormal weight loss", onset="2026-05-22T09:00:00Z")
    p.alert(
        "urgent",
        ["new-back-pain"],
        red_flags=["weight-loss"],
        evidence=[bp],
        note="R63.4 10 days before asOf; the weight-loss record qualifies, it is not evidence",
    )
    p = f.patient("b")
    p.breast_cancer()
    bp = p.back_pain()
    p.symptom("wl", SCT, "448765001", "Unintentional weight loss", effective="2026-05-22T09:00:00Z")
    p.alert(
        "urgent",
        ["new-back-pain"],
        red_flags=["weight-loss"],
        evidence=[bp],
        note="448765001 as Observation valueCodeableConcept",
    )
    p = f.patient("c")
    p.breast_cancer()
    p.condition("wl", ICD10CM, "R63.4", "Abnormal weight loss", onset="2026-05-22T09:00:00Z")
    p.no_alert("weight loss alone: a red flag qualifies an alert, it never makes one")
    p = f.patient("d")
    p.breast_cancer()
    bp = p.back_pain()
    p.condition("wl", ICD10CM, "R63.4", "Abnormal weight loss", onset="2026-03-15T09:00:00Z")
    p.new_back_pain_alert(bp, note="R63.4 on 2026-03-15 (78 days) is not recent: no red flag")
    return f


def fx21_progressive_pain_red_flag() -> Fixture:
    f = Fixture(
        21,
        "progressive-pain-red-flag",
        "Back pain scores (LOINC 72514-3, bodySite back) rising by >= 2 within 30 days add "
        "the progressive-pain red flag to a new-back-pain alert: 3 -> 6 in 19 days flags; "
        "4 -> 5 does not; 3 -> 6 over 47 days does not; scores alone do not alert.",
    )
    p = f.patient()
    p.breast_cancer()
    bp = p.back_pain()
    p.pain_score(3, "2026-05-08T09:00:00Z")
    p.pain_score(6, "2026-05-27T09:00:00Z")
    p.alert(
        "urgent",
        ["new-back-pain"],
        red_flags=["progressive-pain"],
        evidence=[bp],
        note="score 3 on 2026-05-08, 6 on 2026-05-27: +3 in 19 days",
    )
    p = f.patient("b")
    p.breast_cancer()
    bp = p.back_pain()
    p.pain_score(4, "2026-05-08T09:00:00Z")
    p.pain_score(5, "2026-05-27T09:00:00Z")
    p.new_back_pain_alert(bp, note="score 4 -> 5: +1, not progressive")
    p = f.patient("c")
    p.breast_cancer()
    p.pain_score(3, "2026-05-08T09:00:00Z")
    p.pain_score(7, "2026-05-27T09:00:00Z")
    p.no_alert("progressive pain scores without a BACK_PAIN record: red flag only, no finding")
    p = f.patient("d")
    p.breast_cancer()
    bp = p.back_pain()
    p.pain_score(3, "2026-04-10T09:00:00Z")
    p.pain_score(6, "2026-05-27T09:00:00Z")
    p.new_back_pain_alert(bp, note="score 3 on 2026-04-10, 6 on 2026-05-27: 47 days apart")
    return f


def fx22_suspected_mscc() -> Fixture:
    f = Fixture(
        22,
        "suspected-mscc",
        "A NEURO_DEFICIT dated within 14 days of asOf -> stat suspected-mscc, with back pain "
        "(both findings) or without; a NEURO_DEFICIT 20 days old is not suspected MSCC "
        "(no alert alone; urgent new-back-pain with back pain).",
    )
    p = f.patient()
    p.breast_cancer()
    bp = p.back_pain(onset="2026-05-27T09:00:00Z")
    neuro = p.neuro()
    p.alert(
        "stat",
        ["suspected-mscc", "new-back-pain"],
        red_flags=[],
        evidence=[neuro, bp],
        note="G95.20 on 2026-05-28 + backache 2026-05-27",
    )
    p = f.patient("b")
    p.breast_cancer()
    neuro = p.neuro(ICD10CM, "G83.4", "Cauda equina syndrome")
    p.alert(
        "stat",
        ["suspected-mscc"],
        red_flags=[],
        evidence=[neuro],
        note="G83.4 on 2026-05-28, no back pain",
    )
    p = f.patient("c")
    p.breast_cancer()
    p.neuro(onset="2026-05-12T09:00:00Z")
    p.no_alert("G95.20 on 2026-05-12: 20 days before asOf, outside 14 days")
    p = f.patient("d")
    p.breast_cancer()
    bp = p.back_pain()
    p.neuro(onset="2026-05-12T09:00:00Z")
    p.new_back_pain_alert(bp, note="G95.20 20 days old is no finding; the backache still is")
    return f


SECTION = Section(
    "§5 Findings: new-back-pain, its red flags, suspected-mscc",
    (
        fx16_high_spine_back_pain,
        fx17_chronic_back_pain,
        fx18_back_pain_before_breast_cancer,
        fx20_weight_loss_red_flag,
        fx21_progressive_pain_red_flag,
        fx22_suspected_mscc,
    ),
)
