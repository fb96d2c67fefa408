"""The scenarios, one module per section of clinical-rules.md (§5 Findings, the largest, one
module per kind of finding). Each module ends with a ``SECTION`` naming its scenario functions;
add a new module's ``SECTION`` to ``SECTIONS`` below."""

from __future__ import annotations

from . import (
    s1_eligibility,
    s2_records,
    s3_value_sets,
    s4_units,
    s5_alp,
    s5_calcium,
    s5_combination,
    s5_symptoms,
    s8_clarifications,
)
from .builders import Section

SECTIONS: tuple[Section, ...] = (
    s1_eligibility.SECTION,
    s2_records.SECTION,
    s3_value_sets.SECTION,
    s4_units.SECTION,
    s5_symptoms.SECTION,
    s5_calcium.SECTION,
    s5_alp.SECTION,
    s5_combination.SECTION,
    s8_clarifications.SECTION,
)
