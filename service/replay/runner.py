"""`fhir-alerts replay`: send files to a running server, wait for evaluation, show the alerts,
and (with expectations) say where they differ.

With --expect, the expected patients this replay stored are judged (so one fixture can be
replayed against a whole folder of expectations); the others are only counted.

Exit codes: 0 all data accepted (and, with --expect, every judged expectation met); 1 the replay
ran but some data was rejected, the alerts differ from the expectations, or no expected patient
was in the data; 2 it could not run to the end (bad arguments, unreadable expectations, server
unreachable or refusing the token, evaluations not finished in time).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from rich.console import Console

from service.files import data_files
from service.replay import render
from service.replay.client import BacklogTimeout, ReplayClient, ReplayHTTPError, resolve_token
from service.replay.clock import (
    AS_OF_HELP,
    FileClocks,
    as_of_text,
    file_clocks,
    parse_as_of,
    same_instant,
)
from service.replay.expectations import (
    AlertSummary,
    ExpectationError,
    Expectations,
    Mismatch,
    PatientExpectation,
    actual_alerts,
    diff,
    load_expectations,
)
from service.replay.uploads import (
    FileDone,
    ReadProblem,
    Upload,
    dumps,
    entry_problems,
    outcome_text,
    plan,
    touched_patients,
)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CANNOT_RUN = 2
DEFAULT_URL = "http://127.0.0.1:8000"
_PATIENTS_PER_SEARCH = 40


@dataclass(frozen=True, slots=True)
class ReplayOptions:
    paths: Sequence[Path]
    url: str = DEFAULT_URL
    token: str | None = None
    as_of: str | None = None
    expect: Path | None = None
    batch_size: int = 100
    wait_timeout: float = 600.0
    request_timeout: float = 120.0


@dataclass(slots=True)
class ReplayResult:
    exit_code: int = EXIT_OK
    patients: list[str] = field(default_factory=list)
    alerts: dict[str, AlertSummary] = field(default_factory=dict)
    mismatches: list[Mismatch] | None = None
    not_replayed: list[str] = field(default_factory=list)  # expected, but not in the data
    problems: list[ReadProblem] = field(default_factory=list)
    resources: int = 0
    upload_seconds: float = 0.0
    as_of: str | None = None


class _Stop(Exception):
    """Ends the run early with EXIT_CANNOT_RUN after the message was printed."""


ClientFactory = Callable[[str, str, float], ReplayClient]


def _default_client(url: str, token: str, timeout: float) -> ReplayClient:
    return ReplayClient(url, token, timeout=timeout)


def choose_as_of(explicit: str | None, expected: Expectations | None) -> str | None:
    """--as-of, else the expectation files' asOf when they all agree."""
    if explicit:
        value = explicit
    elif expected is not None and expected.as_of:
        if len(expected.as_of) > 1:
            raise ValueError(
                "the expectation files disagree on asOf "
                f"({', '.join(sorted(expected.as_of))}); pass --as-of"
            )
        value = next(iter(expected.as_of))
    else:
        return None
    moment = parse_as_of(value)
    if moment is None:
        raise ValueError(f"asOf must be {AS_OF_HELP} (got {value!r})")
    return value if "T" in value else as_of_text(moment)  # a date alone: 12:00 UTC that day


def clock_warning(as_of: str | None, clocks: FileClocks) -> str | None:
    """A warning when files carry an asOf that this replay does not use (judged at the server's
    clock, or at another --as-of), else None."""
    unused = sorted(v for v in clocks.values if as_of is None or not same_instant(v, as_of))
    if not unused:
        return None
    carried = f"{len(clocks.by_file)} of {clocks.total} file(s) carry asOf {', '.join(unused)}"
    carried += " (in their .expect.json)"
    if as_of is None:
        hint = unused[0] if len(unused) == 1 else "<time>"
        return (
            f"{carried}, but are judged at the server's clock (now): dated test data may raise"
            f" nothing. Pass --as-of {hint}, or --expect with their expectations."
        )
    return f"{carried}, but are judged as of {as_of} (--as-of)."


def run(
    options: ReplayOptions,
    *,
    out: Console,
    err: Console,
    client_factory: ClientFactory = _default_client,
) -> ReplayResult:
    result = ReplayResult()
    expected: Expectations | None = None
    try:
        if options.expect is not None:
            expected = load_expectations(options.expect)
        result.as_of = choose_as_of(options.as_of, expected)
        files = data_files(options.paths)
        warning = clock_warning(result.as_of, file_clocks(files))
    except (ExpectationError, ValueError) as exc:
        err.print(f"[red]error:[/] {exc}")
        result.exit_code = EXIT_CANNOT_RUN
        return result
    except FileNotFoundError as exc:
        err.print(f"[red]error:[/] no such file or folder: {exc}")
        result.exit_code = EXIT_CANNOT_RUN
        return result
    if not files:
        err.print("[red]error:[/] no .json, .ndjson or .json.gz files to replay")
        result.exit_code = EXIT_CANNOT_RUN
        return result
    if warning is not None:
        err.print(f"[yellow]warning:[/] {warning}", highlight=False)

    token = resolve_token(options.token)
    with client_factory(options.url, token, options.request_timeout) as client:
        try:
            touched = _upload(client, files, options, result, err)
            _wait(client, options.wait_timeout, err)
            result.patients = sorted(touched)
            result.alerts = _read_alerts(client, result.patients)
        except _Stop:
            result.exit_code = EXIT_CANNOT_RUN
            return result
        except ReplayHTTPError as exc:
            err.print(f"[red]error:[/] {exc.what} answered {exc.status}: {outcome_text(exc.body)}")
            result.exit_code = EXIT_CANNOT_RUN
            return result
        except httpx.TransportError as exc:
            err.print(f"[red]error:[/] cannot reach {client.root}: {type(exc).__name__} {exc}")
            result.exit_code = EXIT_CANNOT_RUN
            return result

    title = "Alerts per patient" + (f" (as of {result.as_of})" if result.as_of else "")
    if result.patients:
        out.print(render.alerts_table(result.patients, result.alerts, title))
    else:
        out.print("No patient data was stored by this replay.")
    judged: dict[str, PatientExpectation] | None = None
    if expected is not None:
        # Only patients this replay stored are judged: one fixture can be replayed against the
        # whole expectation folder. A rejected Bundle still fails the run (its problem above).
        judged = {p: e for p, e in expected.patients.items() if p in touched}
        result.not_replayed = sorted(set(expected.patients) - set(judged))
        result.mismatches = diff(judged, result.alerts)
        if result.mismatches:
            out.print(render.diff_table(result.mismatches))
    out.print(render.summary_line(result.patients, result.alerts, judged, result.mismatches))
    if judged is not None and result.not_replayed:
        err.print(
            f"{len(result.not_replayed)} expected patient(s) were not in the replayed data "
            "and were not checked"
        )
    if judged is not None and not judged:
        err.print("[red]error:[/] none of the expected patients was in the replayed data")
    if result.problems:
        err.print(f"[red]{len(result.problems)} rejected file(s) or entries[/] (listed above)")
    if result.problems or result.mismatches or (judged is not None and not judged):
        result.exit_code = EXIT_FAILED
    return result


def _upload(
    client: ReplayClient,
    files: list[Path],
    options: ReplayOptions,
    result: ReplayResult,
    err: Console,
) -> set[str]:
    touched: set[str] = set()
    started = time.monotonic()
    progress = render.upload_progress(err)
    with progress:
        task = progress.add_task("replaying", total=len(files), resources=0)

        def problem(p: ReadProblem) -> None:
            result.problems.append(p)
            progress.console.print(f"[red]rejected[/] {p.where}: {p.message}")

        for event in plan(files, options.batch_size):
            if isinstance(event, FileDone):
                progress.advance(task)
                continue
            if isinstance(event, ReadProblem):
                problem(event)
                continue
            progress.update(task, description=_short(event))
            status, body = client.post_bundle(dumps(event.bundle), result.as_of)
            result.resources += event.size
            progress.update(task, resources=result.resources)
            if status in (401, 403):
                progress.console.print(
                    f"[red]error:[/] the server refused the request ({status}): "
                    f"{outcome_text(body) or body}"
                )
                if status == 401:
                    progress.console.print(
                        "pass --token (or set ALERTS_TOKEN) with a token this server accepts"
                    )
                raise _Stop
            if status != 200 or not isinstance(body, dict):
                problem(ReadProblem(event.label, f"{status}: {outcome_text(body) or body}"))
                continue
            for p in entry_problems(event, body):
                problem(p)
            touched |= touched_patients(event.bundle, body)
        progress.update(task, description="sent")
    result.upload_seconds = time.monotonic() - started
    rate = result.resources / result.upload_seconds if result.upload_seconds > 0 else 0.0
    err.print(
        f"sent {result.resources:,} resources from {len(files)} file(s) in "
        f"{result.upload_seconds:.1f} s ({rate:,.0f} resources/s)"
    )
    return touched


def _short(upload: Upload) -> str:
    label = upload.label
    return label if len(label) <= 40 else label[:37] + "…"


def _wait(client: ReplayClient, timeout: float, err: Console) -> None:
    started = time.monotonic()
    with err.status("waiting for the evaluations…") as status:

        def show(pending: int) -> None:
            status.update(f"waiting for the evaluations… {pending} patient(s) pending")

        try:
            client.wait_idle(timeout, on_poll=show)
        except BacklogTimeout as exc:
            err.print(f"[red]error:[/] {exc}; is a worker running?")
            raise _Stop from None
    err.print(f"evaluations finished in {time.monotonic() - started:.1f} s")


def _read_alerts(client: ReplayClient, patients: Sequence[str]) -> dict[str, AlertSummary]:
    """The active alert resources of the patients, read back through FHIR search (a few
    patients per request: `patient` takes a comma-separated list)."""
    flags = []
    requests = []
    ids = [p.removeprefix("Patient/") for p in patients]
    for i in range(0, len(ids), _PATIENTS_PER_SEARCH):
        query = [
            ("patient", ",".join(ids[i : i + _PATIENTS_PER_SEARCH])),
            ("status", "active"),
            ("_count", "200"),
        ]
        flags.extend(client.search_all("Flag", query))
        requests.extend(client.search_all("CommunicationRequest", query))
    return actual_alerts(flags, requests)
