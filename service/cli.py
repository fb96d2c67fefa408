"""`fhir-alerts`: the command line, and the composition root.

This is the one service module that wires the worker in: `serve` on the embedded default gives
the API an in-process dispatcher, `worker` starts Celery. The API, FHIR and store modules never
import task code.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from service.config import get_settings

app = typer.Typer(
    name="fhir-alerts",
    help="Bone-metastasis surveillance over FHIR R4 for breast-cancer survivors.",
    no_args_is_help=True,
    add_completion=False,
)


def _logging() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
) -> None:
    """Run the HTTP API (and, with no broker configured, the worker in-process)."""
    import uvicorn

    from workers.embedded import build_app

    _logging()
    settings = get_settings()
    application = build_app(settings)
    mode = "embedded (in-process worker)" if settings.embedded else "broker"
    typer.echo(f"fhir-alerts on http://{host}:{port}/fhir — {mode}; data in {settings.data_dir}")
    # access_log off: uvicorn would log query strings, which can carry patient identifiers;
    # the app logs method, path and status instead.
    uvicorn.run(application, host=host, port=port, log_level="info", access_log=False)


@app.command()
def worker(
    concurrency: Annotated[int, typer.Option(help="Worker processes")] = 2,
    queues: Annotated[str, typer.Option(help="Queues to consume")] = "evaluate,deliver",
) -> None:
    """Run a Celery worker for the configured broker (ALERTS_BROKER_URL)."""
    settings = get_settings()
    if not settings.broker_url:
        typer.echo("ALERTS_BROKER_URL is not set: `fhir-alerts serve` runs the worker in-process")
        raise typer.Exit(2)
    from service.store.migrate import upgrade
    from workers.celery_app import celery_app

    upgrade(settings.resolved_database_url)
    celery_app.worker_main(
        ["worker", "--loglevel=INFO", f"--concurrency={concurrency}", f"--queues={queues}"]
    )


@app.command()
def migrate() -> None:
    """Create or upgrade the database schema (the compose migration step)."""
    from service.store.migrate import upgrade

    settings = get_settings()
    settings.ensure_data_dir()
    upgrade(settings.resolved_database_url)
    typer.echo("database is at the latest schema")


@app.command()
def token(
    scope: Annotated[str, typer.Option(help="Space-separated SMART scopes")] = "system/*.*",
    ttl: Annotated[int, typer.Option(help="Lifetime in seconds")] = 3600,
    subject: Annotated[str, typer.Option(help="Who the token is for")] = "fhir-alerts-cli",
) -> None:
    """Print a bearer token that a server with the same configuration accepts."""
    from service.auth import mint

    typer.echo(mint(get_settings().signing_secret(), scope=scope, ttl=ttl, subject=subject))


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
            help="Judge the replayed patients as of this ISO datetime (default: the "
            "expectation files' asOf)",
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
    """Send FHIR files to a running server, wait for evaluation, print (and diff) the alerts."""
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


@app.command()
def evaluate(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders of FHIR JSON")],
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Judge the data as of this ISO datetime")
    ] = None,
) -> None:
    """Offline dry run: print the Flags and CommunicationRequests the data would produce."""
    from service.bundles import resolved_resources
    from service.errors import FHIRError
    from service.fhir.index import parse_instant
    from service.files import iter_resources
    from workers.dry_run import evaluate_bundle

    at = parse_instant(as_of) if as_of else None
    if as_of and at is None:
        typer.echo("--as-of must be an ISO datetime, e.g. 2026-06-01T12:00:00Z", err=True)
        raise typer.Exit(2)
    flat: list[dict[str, Any]] = []
    for _src, r in iter_resources(paths):
        flat.extend(resolved_resources(r))
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": r} for r in flat],
    }
    try:
        result = evaluate_bundle(bundle, at, get_settings().oncology_team)
    except FHIRError as exc:
        sys.stdout.write(orjson.dumps(exc.operation_outcome(), option=orjson.OPT_INDENT_2).decode())
        sys.stdout.write("\n")
        raise typer.Exit(1) from None
    sys.stdout.write(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode() + "\n")


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
