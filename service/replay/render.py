"""Rich renderings for `replay`: the upload progress bar, the alerts table and the diff.

The tables hold nothing that changes between runs (no times, no server-assigned ids beyond the
patients'), and rows are sorted, so replaying the same files twice prints the same output.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from service.replay.expectations import AlertSummary, Mismatch, PatientExpectation


def console(*, stderr: bool = False) -> Console:
    """A console for the command line: the terminal's width on a terminal, and 132 columns when
    the output goes to a file or a CI log (unless COLUMNS says otherwise), so tables stay whole."""
    stream = sys.stderr if stderr else sys.stdout
    width = None if stream.isatty() or "COLUMNS" in os.environ else 132
    return Console(stderr=stderr, width=width)


class ResourceRateColumn(ProgressColumn):
    """Resources sent so far and resources per second (the task's `resources` field)."""

    def render(self, task: Task) -> Text:
        sent = int(task.fields.get("resources", 0))
        elapsed = task.elapsed or 0.0
        rate = sent / elapsed if elapsed > 0 else 0.0
        return Text(f"{sent:,} resources · {rate:,.0f} resources/s", style="progress.data.speed")


def upload_progress(console: Console) -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("files"),
        ResourceRateColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


def _cell(values: frozenset[str]) -> str:
    return "\n".join(sorted(values)) if values else "-"


def alerts_table(
    patients: Sequence[str],
    actual: Mapping[str, AlertSummary],
    title: str = "Alerts per patient",
) -> Table:
    """One row per finding, each beside its own evidence (the Flag's evidence-for marks), so a
    reference is never read as the evidence of the finding printed next to it by accident;
    the patient, alert, priority and red flags are on the patient's first row."""
    table = Table(title=title, show_lines=False)
    table.add_column("Patient", no_wrap=True)
    table.add_column("Alert")
    table.add_column("Priority")
    table.add_column("Finding", overflow="fold")
    table.add_column("Evidence", overflow="fold")
    table.add_column("Red flags", overflow="fold")
    for patient in sorted(patients):
        got = actual.get(patient) or AlertSummary(patient)
        if not got.alert:
            table.add_row(patient, "no", "-", "-", "-", "-")
            continue
        alert = "yes" if got.flags == 1 else f"yes ({got.flags} Flags)"
        head = [patient, alert, Text(got.priority or "-", style=_priority_style(got.priority))]
        rows = [(f, _cell(got.evidence_of(f))) for f in sorted(got.findings)]
        unpaired = got.unpaired_evidence
        if unpaired or not rows:
            rows.append(("(finding not named)" if rows else "-", _cell(unpaired)))
        for i, (finding, evidence) in enumerate(rows):
            first = i == 0
            table.add_row(
                *(head if first else ["", "", ""]),
                finding,
                evidence,
                _cell(got.red_flags) if first else "",
                end_section=i == len(rows) - 1,
            )
    return table


def _priority_style(priority: str | None) -> str:
    return {"stat": "bold red", "asap": "red", "urgent": "yellow"}.get(priority or "", "")


def diff_table(mismatches: Sequence[Mismatch]) -> Table:
    table = Table(title="Differences from the expected alerts", title_style="bold red")
    table.add_column("Fixture", overflow="fold")
    table.add_column("Patient", no_wrap=True)
    table.add_column("Field")
    table.add_column("Expected", style="green", overflow="fold")
    table.add_column("Actual", style="red", overflow="fold")
    for m in mismatches:
        table.add_row(m.source, m.patient, m.field, m.expected, m.actual)
    return table


def summary_line(
    patients: Sequence[str],
    actual: Mapping[str, AlertSummary],
    expected: Mapping[str, PatientExpectation] | None,
    mismatches: Sequence[Mismatch] | None,
) -> str:
    alerted = sum(1 for p in patients if (a := actual.get(p)) is not None and a.alert)
    line = f"{len(patients)} patient(s), {alerted} with an active alert"
    if expected is not None and mismatches is not None:
        wrong = len({m.patient for m in mismatches})
        verdict = f"{len(mismatches)} difference(s) in {wrong} patient(s)" if mismatches else ""
        verdict = verdict or "all match"
        line += f"; {len(expected)} checked against expectations, {verdict}"
    return line
