"""`contract` and `ruleset` are importable by every layer: standard library only, and the
shared strings have one spelling there."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

import contract

ROOT = Path(__file__).resolve().parents[2]
SHARED = sorted([*(ROOT / "contract").rglob("*.py"), *(ROOT / "ruleset").rglob("*.py")])


def _imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("path", SHARED, ids=lambda p: str(p.relative_to(ROOT)))
def test_shared_packages_import_only_the_standard_library(path: Path) -> None:
    allowed = set(sys.stdlib_module_names) | {"contract", "ruleset"}
    assert _imported_roots(path) <= allowed
    if path.is_relative_to(ROOT / "contract"):  # contract may use itself, nothing else
        assert _imported_roots(path) <= set(sys.stdlib_module_names) | {"contract"}


def test_extension_urls_share_the_base_and_the_replay_suffix() -> None:
    urls = {
        contract.RULESET_VERSION_URL: contract.RULESET_VERSION_NAME,
        contract.ALERT_PRIORITY_URL: contract.ALERT_PRIORITY_NAME,
        contract.FINDING_EXTENSION_URL: contract.FINDING_EXTENSION_NAME,
        contract.RED_FLAG_EXTENSION_URL: contract.RED_FLAG_EXTENSION_NAME,
        contract.PRIORITY_HISTORY_URL: contract.PRIORITY_HISTORY_NAME,
        contract.CLOSURE_REASON_URL: contract.CLOSURE_REASON_NAME,
        contract.EVIDENCE_FOR_URL: contract.EVIDENCE_FOR_NAME,
    }
    for url, name in urls.items():
        assert url == f"https://fhir-alerts.example.org/fhir/StructureDefinition/{name}"
        assert url.endswith(contract.extension_url_suffix(name))


def test_codes_priorities_and_words() -> None:
    assert contract.PRIORITY_ORDER == ("routine", "urgent", "asap", "stat")
    assert [contract.priority_rank(p) for p in contract.PRIORITY_ORDER] == [0, 1, 2, 3]
    assert set(contract.FINDING_DISPLAY) == set(contract.FINDING_CODES)
    assert set(contract.RED_FLAG_DISPLAY) == set(contract.RED_FLAG_CODES)
    assert set(contract.FLAG_PRIORITY_CODES) == set(contract.PRIORITY_ORDER)
