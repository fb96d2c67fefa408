"""The app loads the validation models of every served type when it is built, not when the
first resource of a type arrives (issue 12: the first Condition cost 70 ms mid-request, and
under load that stall became everyone's backlog). Run in a fresh interpreter: this test
process has long since loaded them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

CHECK = """
import sys
from service.config import Settings
element = "fhir.resources.R4B.annotation"  # Condition.note, Observation.note: never imported early
condition = "fhir.resources.R4B.condition"
before = (condition in sys.modules, element in sys.modules)
from workers.embedded import build_app
build_app(Settings(data_dir=sys.argv[1]), start_relay=False)
print(before, (condition in sys.modules, element in sys.modules))
"""


def test_building_the_app_loads_the_models_of_served_types_and_their_elements(
    tmp_path: Path,
) -> None:
    out = subprocess.run(
        [sys.executable, "-c", CHECK, str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout.strip()
    assert out.splitlines()[-1] == "(False, False) (True, True)"
