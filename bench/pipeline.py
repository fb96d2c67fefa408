"""The whole pipeline, measured in one run (issue 12): ingest, evaluation, rest-hook delivery,
memory, and a 10,000-entry Bundle, printed as figures and as ratios against the targets.

    .venv/bin/python bench/pipeline.py [--shapes embedded,production] [--quick]
                                       [--peer-python PATH] [--json out.json] [--redis-db 11]

Every figure comes from this one run on this machine, because the targets are ratios (to
`fhir.resources` validation alone per core, and to a peer server's rate measured in the same
run): absolute figures move with the machine's load, ratios much less.

Per shape (`embedded`: `fhir-alerts serve` on SQLite, worker in-process; `production`:
`fhir-alerts migrate`, `serve` and `worker` on a scratch PostgreSQL database and a flushed Redis
database), each on a fresh data directory, started with the real CLI and stopped after:
  single   N calcium labs as single POST /fhir/Observation from 8 keep-alive clients:
           resources/s, p50/p99 latency; then seconds until `/ops/backlog` is 0 (drain).
  bundles  the same labs as transaction Bundles of 100 from 2 clients; drain.
  alerts   open loop at 5, 20 and 100 new patients/s (15, 60, 300 writes/s): each a transaction
           Bundle of Patient + breast-cancer Condition + new back-pain Condition, which must
           raise one alert. A rest-hook Subscription on active CommunicationRequests delivers to
           a receiver in this script on 127.0.0.1. Latency = first notification about the patient
           − the Bundle's scheduled send time; every patient must be notified exactly once.
  rss      resident memory of the service's process groups (API, and worker) after all that.
  10k      one transaction Bundle of 10,000 small Observations (under the body-size limit):
           the answer's status (a maximum Bundle size should refuse it with 413/422), and the
           service's peak and final memory.
Before the shapes: validation alone (R4B `Observation.model_validate_json` on the same bodies
as the single POSTs, one core). After them, with `--peer-python` (a venv with fhirstarter, see
../shared/bench/README.md): the peer server of ../shared/bench/peers, single POSTs and Bundles,
for the single-POST ratio (n/a without it).

`--quick` (about 2 minutes a shape) posts 600 labs instead of 3,000 and runs the two slower
alert rates for 6 and 5 s instead of 20 s (the 300 writes/s burst lasts 5 s either way).
Traffic goes to 127.0.0.1 only; only the processes and the database this script creates are
stopped and dropped. Process logs: $TMPDIR/bench-pipeline-*.log.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
from _load import (
    alerting_patient,
    calcium_observation,
    closed_loop,
    compact_observation,
    open_loop,
    percentile,
)
from _procs import (
    PeakRss,
    flushed_redis,
    free_port,
    scratch_database,
    started,
    total_rss_mb,
    wait_answering,
)
from _receiver import Receiver
from fhir.resources.R4B.observation import Observation
from ingest import bundles_of

ROOT = Path(__file__).resolve().parents[1]
CLI = Path(sys.executable).parent / "fhir-alerts"  # the venv this script runs in
PEERS = ROOT.parent / "shared" / "bench" / "peers"
SECRET_EXT = "https://fhir-alerts.example.org/fhir/StructureDefinition/subscription-secret"
FHIR_JSON = "application/fhir+json"
SHAPES = ("embedded", "production")

# Targets of issue 12.
PEER_RATIO_MIN = 1.5
SINGLE_P99_MAX_MS = 100.0
BUNDLE_RATIO_MIN = {"embedded": 0.5, "production": 0.35}
STEADY_P50_MAX_MS, STEADY_P99_MAX_MS = 50.0, 150.0  # at 15 and 60 writes/s
BURST_P99_MAX_MS = 1000.0  # at 300 writes/s
BURST_RATE = 100  # patients/s from which the burst target applies
RSS_MAX_MB = {"embedded": 250.0, "production": 400.0}
BIG_RSS_MAX_MB = 2048.0


@dataclass(frozen=True)
class Plan:
    """How much load one run offers."""

    observations: int
    alert_rates: tuple[tuple[int, float], ...]  # (new patients per second, seconds)
    notify_timeout_s: float  # after the last send, for the last notification to arrive
    drain_limit_s: float
    big_bundle_entries: int = 10_000


FULL = Plan(3000, ((5, 20), (20, 20), (100, 5)), notify_timeout_s=180, drain_limit_s=600)
QUICK = Plan(600, ((5, 6), (20, 5), (100, 5)), notify_timeout_s=90, drain_limit_s=180)


@dataclass
class Target:
    """A running server under test: where it answers, how to authenticate, its processes."""

    base: str
    headers: dict[str, str]
    procs: list[subprocess.Popen[bytes]]
    backlog: bool = True  # has /ops/backlog

    def client(self, timeout: float = 60) -> httpx.Client:
        return httpx.Client(base_url=self.base, headers=self.headers, timeout=timeout)

    def rss_mb(self) -> float:
        return total_rss_mb(self.procs)


# ---- the service under test ------------------------------------------------------------------


def service_env(data_dir: Path) -> dict[str, str]:
    """The caller's environment without any fhir-alerts configuration, plus a fresh data dir,
    a per-run signing key and loopback receivers allowed."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("ALERTS_") and k != "PROMETHEUS_MULTIPROC_DIR"
    }
    env.update(
        ALERTS_DATA_DIR=str(data_dir),
        ALERTS_JWT_SECRET=secrets.token_urlsafe(32),
        ALERTS_SUBSCRIPTION_ALLOWED_HOSTS="127.0.0.1",
    )
    return env


def cli(env: dict[str, str], *args: str) -> str:
    """Run a `fhir-alerts` command to completion; its stdout."""
    done = subprocess.run(
        [str(CLI), *args], env=env, cwd=ROOT, capture_output=True, text=True, check=False
    )
    if done.returncode:
        raise SystemExit(f"fhir-alerts {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    return done.stdout.strip()


@contextmanager
def fhir_alerts(shape: str, redis_db: int) -> Iterator[Target]:
    """fhir-alerts in `shape`, started with its CLI on a free port; stopped (and its scratch
    database dropped) when the block ends."""
    with ExitStack() as stack:
        data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-")))
        env = service_env(data_dir)
        if shape == "production":
            env["ALERTS_DATABASE_URL"] = stack.enter_context(scratch_database())
            env["ALERTS_BROKER_URL"] = stack.enter_context(flushed_redis(redis_db))
            cli(env, "migrate")
        port = free_port()
        serve = [str(CLI), "serve", "--port", str(port)]
        api = stack.enter_context(started(serve, env, f"{shape}-api", cwd=ROOT))
        procs = [api]
        if shape == "production":
            worker = [str(CLI), "worker"]
            procs.append(stack.enter_context(started(worker, env, f"{shape}-worker", cwd=ROOT)))
        base = f"http://127.0.0.1:{port}"
        wait_answering(f"{base}/healthz", api, f"{shape}-api")
        token = cli(env, "token", "--ttl", "14400")
        headers = {"Authorization": f"Bearer {token}", "Content-Type": FHIR_JSON}
        yield Target(base, headers, procs)


@contextmanager
def peer(python: str) -> Iterator[Target]:
    """The fhirstarter peer, run as ../shared/bench/sidebyside.py runs it."""
    port = free_port()
    quiet = ["--log-level", "warning", "--no-access-log"]
    cmd = [python, "-m", "uvicorn", "peer_app:app", "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--workers", "1", *quiet]
    env = dict(os.environ, FHIR_SEQUENCE="R4B")
    with started(cmd, env, "peer", cwd=PEERS) as proc:
        base = f"http://127.0.0.1:{port}"
        wait_answering(f"{base}/metadata", proc, "peer")
        yield Target(base, {"Content-Type": FHIR_JSON}, [proc], backlog=False)


# ---- measurements ------------------------------------------------------------------------------


def validation_per_core(bodies: Sequence[bytes], rounds: int = 3) -> float:
    """Resources/s that `fhir.resources` alone validates on one core: the physical limit."""
    rates = []
    for _ in range(rounds):
        t = time.perf_counter()
        for body in bodies:
            Observation.model_validate_json(body)
        rates.append(len(bodies) / (time.perf_counter() - t))
    return statistics.median(rates)


def ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def throughput(
    target: Target, path: str, bodies: Sequence[bytes], per_body: int, clients: int
) -> dict[str, Any]:
    """POST `bodies` (each carrying `per_body` resources) from `clients` keep-alive clients."""
    run = asyncio.run(closed_loop(target.base, target.headers, path, bodies, clients))
    return {
        "resources_s": round(len(bodies) * per_body / run.wall_s, 1),
        "requests": len(bodies),
        "p50_ms": ms(percentile(run.latencies_s, 50)),
        "p99_ms": ms(percentile(run.latencies_s, 99)),
        "errors": len(run.failures),
        "first_error": run.failures[0] if run.failures else None,
    }


def pending(target: Target) -> int:
    with target.client(30) as http:
        return int(http.get("/ops/backlog").json()["pending"])


def drain(target: Target, limit_s: float) -> float | None:
    """Seconds until every stored write has been evaluated (None: not within `limit_s`)."""
    t = time.perf_counter()
    while pending(target) > 0:
        if time.perf_counter() - t > limit_s:
            return None
        time.sleep(0.1)
    return round(time.perf_counter() - t, 2)


def with_drain(target: Target, figures: dict[str, Any], limit_s: float) -> dict[str, Any]:
    if target.backlog:
        figures["pending_at_end"] = pending(target)
        figures["drain_s"] = drain(target, limit_s)
    return figures


def subscribe(target: Target, endpoint: str) -> str:
    """A rest-hook Subscription on every active alert (CommunicationRequest); its id."""
    subscription = {
        "resourceType": "Subscription",
        "status": "requested",
        "reason": "pipeline benchmark",
        "criteria": "CommunicationRequest?status=active",
        "channel": {
            "type": "rest-hook",
            "endpoint": endpoint,
            "payload": FHIR_JSON,
            "extension": [{"url": SECRET_EXT, "valueString": secrets.token_urlsafe(24)}],
        },
    }
    with target.client() as http:
        answer = http.post("/fhir/Subscription", content=orjson.dumps(subscription))
    if answer.status_code != 201:
        raise SystemExit(f"Subscription refused: {answer.status_code} {answer.text[:300]}")
    return str(answer.json()["id"])


def wait_until(done: Callable[[], bool], limit_s: float) -> bool:
    deadline = time.monotonic() + limit_s
    while not done():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def alert_latency(target: Target, rate: int, seconds: float, plan: Plan) -> dict[str, Any]:
    """Open-loop alerting patients at `rate`/s for `seconds`; write→notification latency and
    the exactly-once tally."""
    count = round(rate * seconds)
    pids = [f"bench{rate}x{uuid.uuid4().hex[:10]}" for _ in range(count)]
    refs = [f"Patient/{p}" for p in pids]
    today = datetime.now(UTC).date()
    bodies = [alerting_patient(p, today) for p in pids]
    with Receiver() as receiver:
        subscription = subscribe(target, receiver.url)
        sent = asyncio.run(open_loop(target.base, target.headers, "/fhir", bodies, rate))
        all_in = wait_until(lambda: receiver.count_notified(refs) == count, plan.notify_timeout_s)
        drain(target, plan.drain_limit_s)
        time.sleep(1.0)  # a late second notification would arrive now
        with target.client() as http:
            http.delete(f"/fhir/Subscription/{subscription}")
        first = receiver.first_arrival()
        tally = receiver.tally(refs)
    latencies = [first[r] - at for r, at in zip(refs, sent.scheduled, strict=True) if r in first]
    return {
        "patients_s": rate,
        "writes_s": rate * 3,
        "seconds": seconds,
        "non_2xx": sum(1 for s in sent.statuses if not 200 <= s < 300),
        "sender_lag_p99_ms": ms(percentile(sent.lag_s, 99)),
        "all_notified_in_time": all_in,
        "p50_ms": ms(percentile(latencies, 50)),
        "p99_ms": ms(percentile(latencies, 99)),
        "max_ms": ms(max(latencies)) if latencies else None,
        **tally,
    }


def big_bundle(target: Target, entries: int) -> dict[str, Any]:
    """POST one transaction Bundle of `entries` small Observations; status and memory."""
    body = bundles_of([compact_observation(i) for i in range(entries)], size=entries)[0]
    before = target.rss_mb()
    t = time.perf_counter()
    with PeakRss(target.procs) as peak, target.client(timeout=600) as http:
        try:
            status = http.post("/fhir", content=body).status_code
        except httpx.HTTPError as exc:
            status = 0
            print(f"  10k Bundle: no answer ({type(exc).__name__})", flush=True)
    return {
        "entries": entries,
        "body_mb": round(len(body) / 2**20, 1),
        "status": status,
        "seconds": round(time.perf_counter() - t, 1),
        "rss_before_mb": round(before),
        "rss_peak_mb": round(peak.peak_mb),
        "rss_after_mb": round(target.rss_mb()),
    }


def lab_bodies(count: int, prefix: str) -> tuple[list[bytes], list[bytes]]:
    """The same `count` calcium labs as single-POST bodies and as Bundles of 100."""
    labs = [calcium_observation(i, prefix) for i in range(count)]
    return [orjson.dumps(o) for o in labs], bundles_of(labs, size=100)


def warm_up(target: Target, path: str) -> None:
    singles, _ = lab_bodies(200, "warm")
    asyncio.run(closed_loop(target.base, target.headers, path, singles, 8))


def measure_fhir_alerts(shape: str, plan: Plan, redis_db: int) -> dict[str, Any]:
    singles, _ = lab_bodies(plan.observations, "s")  # the bodies validation alone timed
    _, bundles = lab_bodies(plan.observations, "b")
    with fhir_alerts(shape, redis_db) as target:
        warm_up(target, "/fhir/Observation")
        drain(target, plan.drain_limit_s)
        out: dict[str, Any] = {}
        step(shape, "single POSTs")
        out["single"] = throughput(target, "/fhir/Observation", singles, 1, clients=8)
        with_drain(target, out["single"], plan.drain_limit_s)
        step(shape, "Bundles of 100")
        out["bundles"] = throughput(target, "/fhir", bundles, 100, clients=2)
        with_drain(target, out["bundles"], plan.drain_limit_s)
        out["alerts"] = []
        for rate, seconds in plan.alert_rates:
            step(shape, f"alert latency at {rate * 3} writes/s for {seconds:g} s")
            out["alerts"].append(alert_latency(target, rate, seconds, plan))
        out["rss_mb"] = round(target.rss_mb())
        step(shape, f"{plan.big_bundle_entries}-entry Bundle")
        out["big_bundle"] = big_bundle(target, plan.big_bundle_entries)
    return out


def measure_peer(python: str, plan: Plan) -> dict[str, Any]:
    singles, _ = lab_bodies(plan.observations, "s")
    _, bundles = lab_bodies(plan.observations, "b")
    with peer(python) as target:
        warm_up(target, "/Observation")
        step("peer", "single POSTs")
        out: dict[str, Any] = {"single": throughput(target, "/Observation", singles, 1, 8)}
        step("peer", "Bundles of 100 (hand-written route)")
        out["bundles"] = throughput(target, "/", bundles, 100, clients=2)
        out["rss_mb"] = round(target.rss_mb())
    return out


def step(who: str, what: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {who}: {what}", flush=True)


# ---- report --------------------------------------------------------------------------------------


def num(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def pair(a: float | None, b: float | None) -> str:
    return f"{num(a)} / {num(b)}"


def figure_rows(results: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """The figures table: one row per figure, one column per server measured."""
    names = [k for k in (*SHAPES, "peer") if k in results]
    cols = [results[k] for k in names]

    def row(label: str, cell: Callable[[dict[str, Any]], str]) -> list[str]:
        return [label, *(cell(c) for c in cols)]

    rows = [
        row("single POST res/s", lambda c: num(c["single"]["resources_s"])),
        row("  p50 / p99 ms", lambda c: pair(c["single"]["p50_ms"], c["single"]["p99_ms"])),
        row("  errors", lambda c: str(c["single"]["errors"])),
        row("  drain s (pending at end)", lambda c: drain_cell(c["single"])),
        row("Bundles of 100 res/s", lambda c: num(c["bundles"]["resources_s"])),
        row("  p50 / p99 ms", lambda c: pair(c["bundles"]["p50_ms"], c["bundles"]["p99_ms"])),
        row("  errors", lambda c: str(c["bundles"]["errors"])),
        row("  drain s (pending at end)", lambda c: drain_cell(c["bundles"])),
    ]
    rates = [a["writes_s"] for a in cols[0].get("alerts", [])]
    for i, writes in enumerate(rates):
        rows.append([f"alert {writes} writes/s p50 / p99 ms", *(alert_cell(c, i) for c in cols)])
        rows.append(["  notified / patients, dups", *(tally_cell(c, i) for c in cols)])
    rows.append(row("RSS after run MB", lambda c: num(c["rss_mb"])))
    rows.append(row("10k Bundle: status, s", lambda c: big_cell(c, "status", "seconds")))
    rows.append(row("10k Bundle: RSS peak / after MB", lambda c: big_cell_rss(c)))
    return ["figure", *names], rows


def drain_cell(figures: dict[str, Any]) -> str:
    if "drain_s" not in figures:
        return "n/a"
    drained = "timeout" if figures["drain_s"] is None else f"{figures['drain_s']:.1f}"
    return f"{drained} ({figures['pending_at_end']})"


def alert_cell(c: dict[str, Any], i: int) -> str:
    alerts = c.get("alerts") or []
    return pair(alerts[i]["p50_ms"], alerts[i]["p99_ms"]) if i < len(alerts) else "n/a"


def tally_cell(c: dict[str, Any], i: int) -> str:
    alerts = c.get("alerts") or []
    if i >= len(alerts):
        return "n/a"
    a = alerts[i]
    return f"{a['notified']}/{a['patients']}, {a['duplicate_notifications']}"


def big_cell(c: dict[str, Any], *keys: str) -> str:
    big = c.get("big_bundle")
    return ", ".join(str(big[k]) for k in keys) if big else "n/a"


def big_cell_rss(c: dict[str, Any]) -> str:
    big = c.get("big_bundle")
    return pair(big["rss_peak_mb"], big["rss_after_mb"]) if big else "n/a"


def met(ok: bool | None) -> str:
    return "n/a" if ok is None else ("yes" if ok else "NO")


def at_most(value: float | None, limit: float) -> bool:
    return value is not None and value <= limit


def target_rows(results: dict[str, Any], validation: float) -> list[list[str]]:
    """The targets of issue 12 against this run: target / measured / met?"""
    rows: list[list[str]] = []
    peer_rate = results.get("peer", {}).get("single", {}).get("resources_s")
    for shape in (s for s in SHAPES if s in results):
        r = results[shape]
        single = r["single"]["resources_s"]
        if peer_rate:
            ratio = single / peer_rate
            rows.append(
                [
                    f"{shape}: single POSTs ≥ {PEER_RATIO_MIN}× peer",
                    f"{ratio:.2f}×",
                    met(ratio >= PEER_RATIO_MIN),
                ]
            )
        else:
            rows.append([f"{shape}: single POSTs ≥ {PEER_RATIO_MIN}× peer", "n/a (no peer)", "n/a"])
        p99 = r["single"]["p99_ms"]
        rows.append(
            [
                f"{shape}: single POST p99 ≤ {SINGLE_P99_MAX_MS:.0f} ms",
                f"{num(p99)} ms",
                met(at_most(p99, SINGLE_P99_MAX_MS)),
            ]
        )
        ratio = r["bundles"]["resources_s"] / validation
        want = BUNDLE_RATIO_MIN[shape]
        rows.append(
            [
                f"{shape}: Bundles of 100 ≥ {want}× validation/core",
                f"{ratio:.2f}×",
                met(ratio >= want),
            ]
        )
        rows.extend(alert_target_rows(shape, r["alerts"]))
        limit = RSS_MAX_MB[shape]
        who = "API" if shape == "embedded" else "API + workers"
        rows.append(
            [
                f"{shape}: RSS ({who}) ≤ {limit:.0f} MB",
                f"{r['rss_mb']} MB",
                met(r["rss_mb"] <= limit),
            ]
        )
        big = r["big_bundle"]
        rows.append(
            [
                f"{shape}: 10k-entry Bundle refused 413/422",
                str(big["status"]),
                met(big["status"] in (413, 422)),
            ]
        )
        rows.append(
            [
                f"{shape}: 10k-entry Bundle RSS < 2 GB (peak)",
                f"{big['rss_peak_mb']} MB",
                met(big["rss_peak_mb"] < BIG_RSS_MAX_MB),
            ]
        )
    return rows


def alert_target_rows(shape: str, alerts: list[dict[str, Any]]) -> list[list[str]]:
    rows = []
    for a in alerts:
        measured = f"{num(a['p50_ms'])} / {num(a['p99_ms'])} ms"
        if a["patients_s"] < BURST_RATE:
            ok = at_most(a["p50_ms"], STEADY_P50_MAX_MS) and at_most(a["p99_ms"], STEADY_P99_MAX_MS)
            label = f"p50 ≤ {STEADY_P50_MAX_MS:.0f}, p99 ≤ {STEADY_P99_MAX_MS:.0f} ms"
        else:
            ok = at_most(a["p99_ms"], BURST_P99_MAX_MS)
            label = f"p99 ≤ {BURST_P99_MAX_MS:.0f} ms"
        rows.append([f"{shape}: alert {label} at {a['writes_s']} w/s", measured, met(ok)])
    patients = sum(a["patients"] for a in alerts)
    notified = sum(a["notified"] for a in alerts)
    dups = sum(a["duplicate_notifications"] for a in alerts)
    once = notified == patients and dups == 0
    rows.append(
        [
            f"{shape}: every patient notified exactly once",
            f"{notified}/{patients}, {dups} dup",
            met(once),
        ]
    )
    return rows


def print_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = "  ".join("-" * w for w in widths)
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    print(line)
    for r in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)))


# ---- command line --------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--shapes", default=",".join(SHAPES), help="embedded,production (default)")
    ap.add_argument("--quick", action="store_true", help="about 2 minutes a shape")
    ap.add_argument("--peer-python", help="python of a venv with fhirstarter (the peer)")
    ap.add_argument("--json", type=Path, help="also write every figure to this file")
    ap.add_argument("--redis-db", type=int, default=11, help="Redis database (production)")
    args = ap.parse_args(argv)
    args.shapes = [s.strip() for s in args.shapes.split(",") if s.strip()]
    unknown = set(args.shapes) - set(SHAPES)
    if unknown or not args.shapes:
        ap.error(f"--shapes: choose from {', '.join(SHAPES)}")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    plan = QUICK if args.quick else FULL
    started_at = time.perf_counter()
    singles, _ = lab_bodies(plan.observations, "s")
    step("validation", f"{len(singles)} Observations, model_validate_json, 1 core")
    validation = validation_per_core(singles)
    results: dict[str, Any] = {}
    for shape in args.shapes:
        results[shape] = measure_fhir_alerts(shape, plan, args.redis_db)
    if args.peer_python:
        results["peer"] = measure_peer(args.peer_python, plan)

    print(
        f"\nvalidation alone (fhir.resources R4B, 1 core): {validation:,.0f} resources/s; "
        f"{plan.observations} labs; {os.cpu_count()} cores; "
        f"{time.perf_counter() - started_at:.0f} s in all\n"
    )
    header, rows = figure_rows(results)
    print_table(header, rows)
    print()
    print_table(["target", "measured", "met?"], target_rows(results, validation))
    if args.json:
        document = {
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "cores": os.cpu_count(),
            "plan": asdict(plan),
            "validation_per_core": round(validation, 1),
            **results,
        }
        args.json.write_text(json.dumps(document, indent=1))
        print(f"\nwritten {args.json}")


if __name__ == "__main__":
    main()
