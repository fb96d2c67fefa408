"""Write the scenario fixtures: ``python -m fhir_fixtures.build`` (from the project root).

Builds every scenario of ``scenarios/`` and writes, next to this file, one FHIR R4 transaction
Bundle ``NN-name.json`` and one expectation ``NN-name.expect.json`` per scenario, plus
``README.md``. The output depends only on the scenarios, so regenerating unchanged scenarios
changes no byte; tests/unit/fixtures/test_fixture_files.py checks that the files on disk are
what `render` gives.
"""

from __future__ import annotations

import json
from pathlib import Path

from .readme import readme
from .scenarios import SECTIONS
from .scenarios.builders import Fixture, Section

HERE = Path(__file__).resolve().parent


def build(sections: tuple[Section, ...] = SECTIONS) -> list[tuple[Section, Fixture]]:
    """Every scenario with its section, in fixture-number order (numbers must be unique)."""
    built = [(s, make()) for s in sections for make in s.scenarios]
    built.sort(key=lambda pair: pair[1].number)
    numbers = [f.number for _, f in built]
    duplicates = sorted({n for n in numbers if numbers.count(n) > 1})
    if duplicates:
        raise ValueError(f"fixture numbers used twice: {duplicates}")
    return built


def render(sections: tuple[Section, ...] = SECTIONS) -> dict[str, str]:
    """File name -> text of every file the build writes (bundles, expectations, README)."""
    built = build(sections)
    files: dict[str, str] = {}
    first_patient = 0  # patient names are handed out in order over all fixtures
    for _, f in built:
        files[f"{f.name}.json"] = json.dumps(f.bundle(first_patient), indent=2) + "\n"
        files[f"{f.name}.expect.json"] = (
            json.dumps(f.expectation(), indent=2, ensure_ascii=False) + "\n"
        )
        first_patient += len(f.patients)
    files["README.md"] = readme(sections, built)
    return files


def main() -> None:
    files = render()
    for name, text in files.items():
        (HERE / name).write_text(text, encoding="utf-8")
    print(f"wrote {len(files)} files to {HERE.name}/")


if __name__ == "__main__":
    main()
