"""`fhir-alerts`: the command line, and the composition root.

This is the one service module that wires the worker in: `serve` builds the API through
`workers.embedded.build_app` (the evaluation dispatcher, in-process on the embedded default, and
the dry run's evaluator), `worker` starts Celery, `evaluate` hands `service.dry_run` the worker's
evaluator. No other service module imports worker code.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from service.config import get_settings
from service.memory import limit_malloc_arenas

app = typer.Typer(
    name="fhir-alerts",
    help="Bone-metastasis surveillance over FHIR R4 for breast-cancer survivors.",
    no_args_is_help=True,
    add_completion=False,
)


def _logging() -> None:
    # Every long-running command starts here, before its threads: bound malloc arenas
    # (service/memory.py) so a burst of concurrent requests does not stay resident.
    limit_malloc_arenas()
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="API processes (uvicorn workers) on this port; each runs its own relay, "
            "and relays claim outbox rows, so none is handed out twice",
        ),
    ] = 1,
) -> None:
    """Run the HTTP API (and, with no broker configured, the worker in-process)."""
    import uvicorn

    _logging()
    settings = get_settings()
    mode = "embedded (in-process worker)" if settings.embedded else "broker"
    typer.echo(
        f"fhir-alerts on http://{host}:{port}/fhir — {mode}, {workers} process(es); "
        f"data in {settings.data_dir}"
    )
    # access_log off: uvicorn would log query strings, which can carry patient identifiers;
    # the app logs method, path and status instead.
    if workers == 1:
        from workers.embedded import build_app

        uvicorn.run(build_app(settings), host=host, port=port, log_level="info", access_log=False)
        return
    import os
    import tempfile

    from service.store.migrate import upgrade

    if settings.resolved_database_url.startswith("sqlite"):
        settings.ensure_data_dir()
    upgrade(settings.resolved_database_url)  # once, before the processes start
    settings.signing_secret()  # generated once here, not raced for by the processes
    from service.web.passwords import load as load_worklist_users

    load_worklist_users(settings)  # plain passwords hashed once; the processes inherit hashes
    with tempfile.TemporaryDirectory(prefix="fhir-alerts-metrics-") as own_dir:
        # Every process's counters in one directory, so /metrics from any of them sums all
        # (prometheus-client multiprocess mode). An operator-set directory is kept.
        os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", own_dir)
        uvicorn.run(
            "service.cli:asgi_app",
            factory=True,
            workers=workers,
            host=host,
            port=port,
            log_level="info",
            access_log=False,
        )


def asgi_app() -> Any:
    """The app of one `serve --workers N` process (uvicorn imports this in each process)."""
    from workers.embedded import build_app

    _logging()
    return build_app(get_settings())


@app.command()
def worker(
    concurrency: Annotated[
        int, typer.Option(min=1, help="Threads (threads pool) or processes (prefork pool)")
    ] = 4,
    pool: Annotated[
        str,
        typer.Option(
            help="threads: one process, one core, I/O-bound deliveries overlap (default; scale "
            "with one worker per core or host); prefork: one process per task slot"
        ),
    ] = "threads",
    queues: Annotated[str, typer.Option(help="Queues to consume")] = "evaluate,deliver",
    beat: Annotated[
        bool,
        typer.Option(
            "--beat",
            help="Also run Celery beat in this worker (the periodic deadline sweep: "
            "escalation, snooze expiry). Run it in exactly one worker, or run "
            "`celery -A workers.celery_app beat` once beside the workers",
        ),
    ] = False,
) -> None:
    """Run a Celery worker for the configured broker (ALERTS_BROKER_URL)."""
    limit_malloc_arenas()  # inherited by the pool's processes (service/memory.py)
    settings = get_settings()
    if not settings.broker_url:
        typer.echo("ALERTS_BROKER_URL is not set: `fhir-alerts serve` runs the worker in-process")
        raise typer.Exit(2)
    from service.store.migrate import upgrade
    from workers.celery_app import celery_app

    upgrade(settings.resolved_database_url)
    # Started through the app's Worker class, not Celery's click CLI: that CLI reads APP,
    # BROKER_URL, LOADER, CONFIG_MODULE... from the environment as its own options, so an
    # unrelated variable of the same name would stop or misconfigure the worker.
    if pool not in ("threads", "prefork", "solo"):
        typer.echo(f"--pool must be threads, prefork or solo, not {pool!r}")
        raise typer.Exit(2)
    if pool != "prefork":  # no pool processes to tune at fork: tune this one
        from workers.runtime import tune_gc

        tune_gc()
    celery_worker = celery_app.Worker(
        loglevel="INFO",
        pool_cls=pool,
        concurrency=concurrency,
        queues=[q for q in queues.split(",") if q],
        beat=beat,
        # beat's schedule file (last run times) lives in the data dir, not the working dir.
        schedule_filename=str(settings.ensure_data_dir() / "celerybeat-schedule"),
    )
    celery_worker.start()
    raise typer.Exit(celery_worker.exitcode or 0)


@app.command()
def migrate() -> None:
    """Create or upgrade the database schema (the compose migration step)."""
    from service.store.migrate import upgrade

    settings = get_settings()
    settings.ensure_data_dir()
    upgrade(settings.resolved_database_url)
    typer.echo("database is at the latest schema")


@app.command()
def report(
    fmt: Annotated[
        str, typer.Option("--format", help="json (as GET /ops/report) or table")
    ] = "json",
) -> None:
    """Alert burden: alerts per priority and finding, time to acknowledge, escalations,
    dismiss reasons, alerts per 1,000 patients evaluated (reads the configured database)."""
    import json

    from service.report import load_report
    from service.store.db import session_factory, transaction
    from service.store.migrate import upgrade

    if fmt not in ("json", "table"):
        typer.echo("--format must be json or table", err=True)
        raise typer.Exit(2)
    settings = get_settings()
    if settings.resolved_database_url.startswith("sqlite"):
        settings.ensure_data_dir()
    upgrade(settings.resolved_database_url)
    with transaction(session_factory(settings.resolved_database_url)) as session:
        figures = load_report(session)
    if fmt == "json":
        typer.echo(json.dumps(figures, indent=2))
        return
    alerts = figures["alerts"]
    typer.echo(f"alerts: {alerts['total']} ({alerts['open']} open)")
    typer.echo(
        f"patients evaluated: {figures['patients_evaluated']}; alerts per 1,000: "
        f"{figures['alerts_per_1000_patients_evaluated']}"
    )
    typer.echo("priority  alerts  acknowledged  unacknowledged  median_s  p90_s  escalations")
    for priority, count in alerts["by_priority"].items():
        ack = figures["time_to_acknowledge_seconds"][priority]
        escalated = figures["escalations"]["by_priority"][priority]
        typer.echo(
            f"{priority:<9} {count:>6}  {ack['acknowledged']:>12}  {ack['unacknowledged']:>14}  "
            f"{ack['median'] if ack['median'] is not None else '-':>8}  "
            f"{ack['p90'] if ack['p90'] is not None else '-':>5}  {escalated:>11}"
        )
    for finding, count in alerts["by_finding"].items():
        typer.echo(f"finding {finding}: {count}")
    for reason, count in figures["dismiss_reasons"].items():
        typer.echo(f"dismissed ({reason}): {count}")


@app.command("hash-password")
def hash_password() -> None:
    """Print an Argon2id hash of a worklist password, for ALERTS_WORKLIST_USERS
    (`nurse:<hash>`). The password is read from the terminal (or stdin), never from argv."""
    from service.web.passwords import hash_password as make_hash

    password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    if not password.strip():
        typer.echo("the password is empty", err=True)
        raise typer.Exit(2)
    typer.echo(make_hash(password))


@app.command()
def token(
    scope: Annotated[str, typer.Option(help="Space-separated SMART scopes")] = "system/*.*",
    ttl: Annotated[int, typer.Option(help="Lifetime in seconds")] = 3600,
    subject: Annotated[str, typer.Option(help="Who the token is for")] = "fhir-alerts-cli",
    audience: Annotated[
        str | None,
        typer.Option(help="FHIR base the token is for (default: from ALERTS_PUBLIC_BASE_URL)"),
    ] = None,
) -> None:
    """Print a bearer token that a server with the same configuration accepts.

    The token is signed with ALERTS_JWT_SECRET, else with the secret generated in the data
    directory (ALERTS_DATA_DIR, default ./.fhir-alerts of the current directory): run it where
    `fhir-alerts serve` runs. Which secret was used is said on stderr, with a warning when a
    new one had to be generated (a running server does not know it and refuses the token).
    """
    from service.auth import mint

    settings = get_settings()
    if not 0 < ttl <= settings.token_max_lifetime_seconds:  # the server would refuse it
        typer.echo(
            f"--ttl must be 1..{settings.token_max_lifetime_seconds} seconds "
            "(ALERTS_TOKEN_MAX_LIFETIME_SECONDS): the server refuses longer-lived tokens",
            err=True,
        )
        raise typer.Exit(2)
    aud = audience or settings.local_token_audience  # the server checks the audience
    secret_file = (settings.data_dir / "jwt-secret").resolve()
    new_secret = not settings.jwt_secret and not secret_file.exists()
    typer.echo(mint(settings.signing_secret(), scope=scope, ttl=ttl, subject=subject, audience=aud))
    if settings.jwt_secret:
        typer.echo("token signed with ALERTS_JWT_SECRET", err=True)
    elif new_secret:
        typer.echo(
            f"warning: no secret in the data directory {secret_file.parent}: generated a new"
            " one, so a server started elsewhere refuses this token. Run `fhir-alerts token`"
            " where `fhir-alerts serve` runs, or set the same ALERTS_DATA_DIR or"
            " ALERTS_JWT_SECRET for both.",
            err=True,
        )
    else:
        typer.echo(
            f"token signed with the secret of the data directory {secret_file.parent}", err=True
        )


@app.command()
def replay(
    paths: Annotated[
        list[Path], typer.Argument(help="Files or folders of .json, .ndjson, .json.gz")
    ],
    url: Annotated[str, typer.Option(help="The server's base URL")] = "http://127.0.0.1:8000",
    token: Annotated[
        str | None,
        typer.Option(
            help="Bearer token (default: $ALERTS_TOKEN, else minted from the local configuration)"
        ),
    ] = None,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="Judge the replayed patients as of this time: an ISO datetime, or a date "
            "(= 12:00 UTC). Default: the --expect files' asOf; without either, the server's "
            "clock (now), with a warning when the data files carry an asOf",
        ),
    ] = None,
    expect: Annotated[
        Path | None,
        typer.Option(help="An .expect.json file, or a folder of them, to diff the alerts against"),
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Loose resources per batch Bundle")] = 100,
    wait_timeout: Annotated[
        float, typer.Option(help="Seconds to wait for the evaluations to finish")
    ] = 600.0,
) -> None:
    """Send FHIR files to a running server, wait for evaluation, print (and diff) the alerts.

    The evaluation clock: --as-of, else the asOf of the --expect files, else the server's own
    clock (now). Files that carry an asOf (NAME.expect.json beside NAME.json) but are judged at
    another time get a warning on stderr. The table prints each finding beside its evidence.
    """
    from service.replay import ReplayOptions, run
    from service.replay.render import console

    options = ReplayOptions(
        paths=paths,
        url=url,
        token=token,
        as_of=as_of,
        expect=expect,
        batch_size=batch_size,
        wait_timeout=wait_timeout,
    )
    result = run(options, out=console(), err=console(stderr=True))
    raise typer.Exit(result.exit_code)


class OutputFormat(StrEnum):
    json = "json"
    table = "table"


@app.command()
def evaluate(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders of FHIR JSON")],
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="Judge the data as of this time: an ISO datetime, or a date (= 12:00 UTC). "
            "Default: the asOf the files carry (NAME.expect.json beside NAME.json), else now",
        ),
    ] = None,
    output_format: Annotated[
        OutputFormat,
        typer.Option("--format", help="json: a FHIR Bundle; table: one line per finding"),
    ] = OutputFormat.json,
) -> None:
    """Offline dry run: print the Flags and CommunicationRequests the data would produce.

    The evaluation clock: --as-of when given; else the asOf the files carry (a fixture's
    NAME.expect.json beside NAME.json) when they agree; else now. stderr says which time was
    used and where it came from, and how many records fall in the recent window, before the
    look-back window (too old for any rule) or after the time used (ignored).
    """
    from service.dry_run import evaluate_bundle, resolved_resources
    from service.errors import FHIRError
    from service.files import data_files, iter_resources
    from service.replay.clock import AS_OF_HELP, as_of_text, file_clocks, parse_as_of
    from workers.dry_run import evaluator
    from workers.rules import load_config
    from workers.rules.window import window_count

    settings = get_settings()
    try:
        files = data_files(paths)
    except FileNotFoundError as exc:
        typer.echo(f"error: no such file or folder: {exc}", err=True)
        raise typer.Exit(2) from None
    if as_of:
        at = parse_as_of(as_of)
        if at is None:
            typer.echo(f"--as-of must be {AS_OF_HELP}; got {as_of!r}", err=True)
            raise typer.Exit(2)
        source = "--as-of"
    else:
        clocks = file_clocks(files)
        if len(clocks.values) > 1:
            typer.echo(
                "error: the files carry different asOf values"
                f" ({', '.join(sorted(clocks.values))}); pass --as-of, or evaluate them one at a"
                " time",
                err=True,
            )
            raise typer.Exit(2)
        if clocks.single is not None:
            at = parse_as_of(clocks.single)
            assert at is not None
            source = f"the asOf of {len(clocks.by_file)} of {clocks.total} file(s)"
        else:
            at = datetime.now(UTC).replace(microsecond=0)
            source = "now: no --as-of, and the files carry no asOf"
    flat: list[dict[str, Any]] = []
    for _src, r in iter_resources(files):
        flat.extend(resolved_resources(r))
    count = window_count(flat, at, load_config(settings.ruleset))
    typer.echo(f"evaluated as of {as_of_text(at)} ({source})", err=True)
    typer.echo(_window_words(count, from_now=source.startswith("now")), err=True)
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": r} for r in flat],
    }
    try:
        result = evaluate_bundle(bundle, at, evaluator(settings))
    except FHIRError as exc:
        sys.stdout.write(orjson.dumps(exc.operation_outcome(), option=orjson.OPT_INDENT_2).decode())
        sys.stdout.write("\n")
        raise typer.Exit(1) from None
    if output_format is OutputFormat.table:
        _print_table(flat, result, as_of_text(at))
        return
    sys.stdout.write(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode() + "\n")


def _window_words(count: Any, *, from_now: bool) -> str:
    """How the records sit around the time used, in one or two sentences for stderr."""
    words = (
        f"{count.dated} dated record(s): {count.recent} in the last {count.recent_days} days,"
        f" {count.older} older than the {count.lookback_days}-day look-back window"
        f" (before {count.lookback_start.isoformat()}: history only, they trigger nothing),"
        f" {count.after} after the time used (ignored)."
    )
    if from_now and count.dated and count.recent == 0:
        words += (
            " Nothing is recent enough to alert at now: pass --as-of to judge the data at"
            " the time it was written for."
        )
    return words


def _print_table(resources: list[dict[str, Any]], result: dict[str, Any], at: str) -> None:
    """The dry run as replay prints alerts: one line per finding beside its own evidence."""
    from service.fhir.index import extract
    from service.replay.expectations import actual_alerts
    from service.replay.render import alerts_table, console

    patients = set()
    for r in resources:
        rtype, rid = r.get("resourceType"), r.get("id")
        if rtype == "Patient" and isinstance(rid, str):
            patients.add(f"Patient/{rid}")
        elif rtype in ("Condition", "Observation"):
            pid = extract(str(rtype), str(rid or ""), r).patient_id
            if pid:
                patients.add(f"Patient/{pid}")
    made = [e["resource"] for e in result.get("entry", [])]
    summary = actual_alerts(
        [r for r in made if r.get("resourceType") == "Flag"],
        [r for r in made if r.get("resourceType") == "CommunicationRequest"],
    )
    out = console()
    if not patients:
        out.print("No patient data in the files.")
        return
    out.print(alerts_table(sorted(patients), summary, f"Dry run: alerts as of {at}"))


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
