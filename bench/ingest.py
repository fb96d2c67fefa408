"""Ingest throughput: POSTing transaction Bundles of 100 Observations over real HTTP
(validated, stored, evaluation queued), next to `fhir.resources` validation alone on the same
Observations, in the same run.

    .venv/bin/python bench/ingest.py [--observations 5000]

Data: real Synthea Observations from ../shared/data/synthea-r4.
"""

from __future__ import annotations

import argparse
import gzip
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
from fhir.resources.R4B.observation import Observation

from service.auth import mint

ROOT = Path(__file__).resolve().parents[1]
SYNTHEA = ROOT.parent / "shared" / "data" / "synthea-r4"


def synthea_observations(n: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for path in sorted(SYNTHEA.glob("*.json.gz")):
        bundle = orjson.loads(gzip.decompress(path.read_bytes()))
        patient = f"bench-{path.name[:8].lower()}"
        for e in bundle["entry"]:
            res = e["resource"]
            if res["resourceType"] == "Observation":
                res = {k: v for k, v in res.items() if k not in ("id", "encounter")}
                res["subject"] = {"reference": f"Patient/{patient}"}
                out.append(res)
                if len(out) >= n:
                    return out
    return out


def bundles_of(obs: list[dict[str, Any]], size: int = 100) -> list[bytes]:
    out = []
    for i in range(0, len(obs), size):
        entries = [
            {"resource": o, "request": {"method": "POST", "url": "Observation"}}
            for o in obs[i : i + size]
        ]
        out.append(
            orjson.dumps({"resourceType": "Bundle", "type": "transaction", "entry": entries})
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--observations", type=int, default=5000)
    args = ap.parse_args()
    obs = synthea_observations(args.observations)
    bodies = bundles_of(obs)

    t = time.perf_counter()
    for o in obs:
        Observation.model_validate(o)
    validate_rate = len(obs) / (time.perf_counter() - t)

    with tempfile.TemporaryDirectory() as tmp:
        port = 18765
        proc = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / "_server.py"), tmp, str(port)], cwd=ROOT
        )
        try:
            base = f"http://127.0.0.1:{port}"
            for _ in range(100):
                try:
                    httpx.get(f"{base}/healthz", timeout=1)
                    break
                except httpx.HTTPError:
                    time.sleep(0.2)
            headers = {
                "Authorization": f"Bearer {mint('bench-secret-' + '0' * 32)}",
                "Content-Type": "application/fhir+json",
            }
            with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
                client.post("/fhir", content=bodies[0])  # warm-up (not counted)
                t = time.perf_counter()
                for body in bodies[1:]:
                    r = client.post("/fhir", content=body)
                    r.raise_for_status()
                elapsed = time.perf_counter() - t
                pending = client.get("/ops/backlog").json()["pending"]
        finally:
            proc.terminate()
            proc.wait()
    ingested = sum(1 for _ in bodies[1:]) * 100
    ingest_rate = ingested / elapsed
    print(f"observations: {len(obs)} (Synthea), bundles of 100, {len(bodies) - 1} timed")
    print(f"fhir.resources validation alone : {validate_rate:9.0f} resources/s")
    print(f"POST transaction (HTTP, validate, store, queue): {ingest_rate:9.0f} resources/s")
    print(f"ratio ingest / validation-alone : {ingest_rate / validate_rate:9.2f}")
    print(f"evaluations queued (patients pending): {pending}")


if __name__ == "__main__":
    main()
