"""Unit conversion: every value is judged in one unit per analyte, or not at all.

Real feeds spell units many ways ("IU/L", "U/L", "u/L", "µkat/L", "mg/dl"), so a unit is first
reduced to a canonical token through the aliases of the rule set; the factors between tokens
come from the rule set too (calcium mmol/L × 4.008 = mg/dL, ...). A unit that cannot be
converted yields None: the caller skips the value and says why. Never a guess, never a zero.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache


@dataclass(frozen=True, slots=True)
class Conversion:
    """`value in source × factor = value in target`, for one kind of quantity."""

    quantity: str  # "calcium", "albumin", "enzyme": units only convert within a quantity
    source: str
    target: str
    factor: float


@lru_cache(maxsize=1024)
def normalise_unit(text: str) -> str:
    """Spelling-insensitive key: no spaces, lower case, micro sign and Greek mu as "u"."""
    return text.replace(" ", "").replace("\u00b5", "u").replace("\u03bc", "u").lower()


@dataclass(frozen=True, slots=True)
class UnitTable:
    """Aliases to canonical tokens, and the factors between tokens (inverses derived)."""

    aliases: tuple[tuple[str, str], ...]  # (normalised spelling, canonical token)
    conversions: tuple[Conversion, ...]
    _alias: dict[str, str] = field(init=False, repr=False, compare=False, hash=False)
    _factor: dict[tuple[str, str, str], float] = field(
        init=False, repr=False, compare=False, hash=False
    )

    def __post_init__(self) -> None:
        alias = {normalise_unit(spelling): token for spelling, token in self.aliases}
        for token in set(alias.values()):
            alias.setdefault(normalise_unit(token), token)
        factor: dict[tuple[str, str, str], float] = {}
        for conv in self.conversions:
            if conv.factor <= 0:
                raise ValueError(f"conversion factor must be positive: {conv}")
            factor[(conv.quantity, conv.source, conv.target)] = conv.factor
            factor[(conv.quantity, conv.target, conv.source)] = 1.0 / conv.factor
            factor[(conv.quantity, conv.source, conv.source)] = 1.0
            factor[(conv.quantity, conv.target, conv.target)] = 1.0
        object.__setattr__(self, "_alias", alias)
        object.__setattr__(self, "_factor", factor)

    def canonical(self, unit: object) -> str | None:
        """The canonical token of a unit spelling, or None when unknown."""
        if not isinstance(unit, str) or not unit.strip():
            return None
        return self._alias.get(normalise_unit(unit))

    def factor(self, quantity: str, code: object, text: object, target: str) -> float | None:
        """Factor from a valueQuantity's unit to `target`: UCUM `code` first, then `unit` text.

        The text is tried when the code is missing or unknown; a code that is known but not
        convertible (mg/dL for albumin) is not overruled by the text.
        """
        token = self.canonical(code)
        if token is None:
            token = self.canonical(text)
        if token is None:
            return None
        if token == target:
            return 1.0
        return self._factor.get((quantity, token, target))

    def describe(self, code: object, text: object) -> str:
        """The unit as written, for notes and evidence ("" when none was given)."""
        for unit in (text, code):
            if isinstance(unit, str) and unit.strip():
                return unit.strip()
        return ""


def safe_unit_text(unit: str) -> str:
    """A unit for the evaluation log: printable, short. Units are not patient data, but the
    field is free text, so the log never carries more than a unit's worth of it."""
    cleaned = "".join(ch if ch.isprintable() else "?" for ch in unit[:20])
    return cleaned + ("…" if len(unit) > 20 else "")
