"""CDS Hooks `patient-view` latency at a fixed request rate (target: p99 ≤ 500 ms at 20/s).

    .venv/bin/python bench/cds.py [--rate 20] [--seconds 30] [--patients 40]

Starts the embedded service (SQLite, in-process worker) on 127.0.0.1 with one registered CDS
client, stores `--patients` breast-cancer survivors (half with an open alert), then calls the
service open-loop at `--rate` requests per second for `--seconds`, each call with a freshly
signed ES384 JWT, alternating with and without prefetch. Latency is measured from each call's
scheduled start (so a slow answer delays nothing and hides nothing) and printed as p50/p99/max.
Traffic goes to 127.0.0.1 only; the run is bounded by `--seconds` plus a drain timeout.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import orjson
from cryptography.hazmat.primitives.asymmetric import ec

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
SECRET = "bench-secret-" + "0" * 32
SERVICE = "/cds-services/bone-metastasis-alerts"
CLIENT_ID = "bench-ehr"


def _serve(data_dir: Path, port: int, clients: Path) -> None:
    import uvicorn

    from service.config import Settings
    from workers.embedded import build_app

    settings = Settings(
        data_dir=data_dir, jwt_secret=SECRET, clients=clients, relay_interval_seconds=0.05
    )
    uvicorn.run(build_app(settings), host=HOST, port=port, log_level="warning")


def _when(days: float) -> str:
    return (datetime.now(UTC) - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _condition(cid: str, pid: str, code: str, onset: str) -> dict[str, Any]:
    return {
        "resourceType": "Condition",
        "id": cid,
        "clinicalStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                    "code": "active",
                }
            ]
        },
        "verificationStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                    "code": "confirmed",
                }
            ]
        },
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": code}]},
        "subject": {"reference": f"Patient/{pid}"},
        "onsetDateTime": onset,
    }


def _story(pid: str, with_alert: bool) -> bytes:
    resources = [
        {"resourceType": "Patient", "id": pid, "gender": "female"},
        _condition(f"{pid}-bc", pid, "254837009", _when(3 * 365)),
    ]
    if with_alert:
        resources.append(_condition(f"{pid}-bp", pid, "161891005", _when(2)))
    entries = [
        {"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}}
        for r in resources
    ]
    return orjson.dumps({"resourceType": "Bundle", "type": "transaction", "entry": entries})


def _jwt(key: Any, aud: str) -> str:
    now = int(time.time())
    claims = {
        "iss": CLIENT_ID,
        "sub": CLIENT_ID,
        "aud": aud,
        "iat": now,
        "exp": now + 240,
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, key, algorithm="ES384", headers={"kid": "bench"})


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=float, default=20.0)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--patients", type=int, default=40)
    ap.add_argument("--port", type=int, default=18766)
    args = ap.parse_args()
    key = ec.generate_private_key(ec.SECP384R1())
    jwk = jwt.algorithms.ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
    registry = {
        "clients": [
            {
                "client_id": CLIENT_ID,
                "scope": "system/*.rs",
                "jwks": {"keys": [{**jwk, "kid": "bench", "alg": "ES384", "use": "sig"}]},
            }
        ]
    }
    base = f"http://{HOST}:{args.port}"
    aud = base + SERVICE
    with tempfile.TemporaryDirectory() as tmp:
        clients = Path(tmp) / "clients.json"
        clients.write_bytes(orjson.dumps(registry))
        proc = subprocess.Popen(
            [sys.executable, __file__, "--serve", tmp, str(args.port), str(clients)], cwd=ROOT
        )
        try:
            _run(args, key, base, aud)
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def _run(args: argparse.Namespace, key: Any, base: str, aud: str) -> None:
    from service.auth import mint

    for _ in range(150):
        try:
            httpx.get(f"{base}/cds-services", timeout=1).raise_for_status()
            break
        except httpx.HTTPError:
            time.sleep(0.2)
    fhir = {"Authorization": f"Bearer {mint(SECRET)}", "Content-Type": "application/fhir+json"}
    pids = [f"cds-bench-{i}" for i in range(args.patients)]
    with httpx.Client(base_url=base, headers=fhir, timeout=60) as client:
        for i, pid in enumerate(pids):
            client.post("/fhir", content=_story(pid, with_alert=i % 2 == 0)).raise_for_status()
        deadline = time.monotonic() + 120
        while client.get("/ops/backlog").json()["pending"] and time.monotonic() < deadline:
            time.sleep(0.2)
        prefetch = {
            pid: {
                "patient": client.get(f"/fhir/Patient/{pid}").json(),
                "conditions": client.get("/fhir/Condition", params={"patient": pid}).json(),
            }
            for pid in pids
        }

    total = int(args.rate * args.seconds)
    bodies = []
    for n in range(total):
        pid = pids[n % len(pids)]
        body: dict[str, Any] = {
            "hook": "patient-view",
            "hookInstance": str(uuid.uuid4()),
            "context": {"userId": "Practitioner/bench", "patientId": pid},
        }
        if n % 2:
            body["prefetch"] = prefetch[pid]
        bodies.append(orjson.dumps(body))
    tokens = [_jwt(key, aud) for _ in range(total + 10)]
    latencies: list[float] = []
    failures: list[int] = []
    cards = 0
    lock = threading.Lock()
    local = threading.local()

    def http() -> httpx.Client:
        if not hasattr(local, "client"):
            local.client = httpx.Client(base_url=base, timeout=10)
        return local.client  # type: ignore[no-any-return]

    def one(n: int, scheduled: float) -> None:
        nonlocal cards
        delay = scheduled - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        headers = {"Authorization": f"Bearer {tokens[n]}", "Content-Type": "application/json"}
        try:
            r = http().post(SERVICE, content=bodies[n], headers=headers)
            status = r.status_code
            got = len(r.json().get("cards", [])) if status == 200 else 0
        except httpx.HTTPError:
            status, got = 0, 0
        took = time.perf_counter() - scheduled
        with lock:
            latencies.append(took * 1000)
            cards += got
            if status != 200:
                failures.append(status)

    for warm in range(5):  # connections and caches, not counted
        http().post(
            SERVICE,
            content=bodies[warm],
            headers={"Authorization": f"Bearer {tokens[total + warm]}"},
        )
    start = time.perf_counter() + 0.5
    with ThreadPoolExecutor(max_workers=32) as pool:
        for n in range(total):
            pool.submit(one, n, start + n / args.rate)
    print(f"CDS Hooks patient-view: {total} calls at {args.rate:g}/s over {args.seconds:g} s")
    print(f"patients {len(pids)} (half with an open alert), half the calls with prefetch")
    print(f"non-200 answers: {len(failures)}   cards returned: {cards}")
    print(
        f"latency ms  p50 {statistics.median(latencies):7.1f}   "
        f"p99 {_percentile(latencies, 0.99):7.1f}   max {max(latencies):7.1f}"
    )


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--serve":
        _serve(Path(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4]))
    else:
        main()
