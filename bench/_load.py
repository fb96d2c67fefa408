"""Request bodies and load generators for the pipeline benchmark.

Bodies are built before any clock starts. Two load shapes:
- closed loop (`closed_loop`): N keep-alive clients, each sending its next body when the last
  answer arrived; gives throughput and per-request latency.
- open loop (`open_loop`): one request every 1/rate s whatever the answers do, so a slow
  service cannot slow the offered load down and hide its own delay.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import httpx
import orjson

UCUM = "http://unitsofmeasure.org"
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"


def calcium_observation(i: int, patient_prefix: str, patients: int = 500) -> dict[str, Any]:
    """A serum calcium lab of one of `patients` patients: the kind of write the rules judge."""
    day, hour = 1 + i % 28, 6 + i % 12
    value = round(8.2 + (i % 45) / 10, 1)
    mg_dl = {"unit": "mg/dL", "system": UCUM, "code": "mg/dL"}
    return {
        "resourceType": "Observation",
        "identifier": [{"system": "urn:example:lab", "value": f"LAB-{patient_prefix}-{i}"}],
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "laboratory",
                    }
                ]
            }
        ],
        "code": {
            "coding": [{"system": LOINC, "code": "17861-6", "display": "Calcium [Mass/volume]"}],
            "text": "Calcium, serum",
        },
        "subject": {"reference": f"Patient/{patient_prefix}{i % patients}"},
        "effectiveDateTime": f"2026-10-{day:02d}T{hour:02d}:15:00Z",
        "issued": f"2026-10-{day:02d}T{hour + 2:02d}:40:00Z",
        "valueQuantity": {"value": value, **mg_dl},
        "referenceRange": [{"low": {"value": 8.6, **mg_dl}, "high": {"value": 10.3, **mg_dl}}],
    }


def compact_observation(i: int, patients: int = 100) -> dict[str, Any]:
    """A small valid Observation (about 250 bytes), so that a 10,000-entry Bundle stays under
    the request-body limit and tests the entry count rather than the byte count."""
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": "17861-6"}]},
        "subject": {"reference": f"Patient/big{i % patients}"},
        "effectiveDateTime": f"2026-10-{1 + i % 28:02d}T08:00:00Z",
        "valueQuantity": {"value": 9.1, "unit": "mg/dL", "system": UCUM, "code": "mg/dL"},
    }


def _condition(cid: str, pid: str, code: str, status: str, onset: date) -> dict[str, Any]:
    return {
        "resourceType": "Condition",
        "id": cid,
        "clinicalStatus": {"coding": [{"system": CLINICAL, "code": status}]},
        "verificationStatus": {"coding": [{"system": VERIFICATION, "code": "confirmed"}]},
        "code": {"coding": [{"system": SNOMED, "code": code}]},
        "subject": {"reference": f"Patient/{pid}"},
        "onsetDateTime": onset.isoformat(),
    }


def alerting_patient(pid: str, today: date) -> bytes:
    """One transaction Bundle of 3 writes that must raise one alert: a new female patient, her
    breast cancer (in remission, diagnosed 900 days ago) and new back pain (since yesterday)."""
    resources = [
        {"resourceType": "Patient", "id": pid, "gender": "female"},
        _condition(f"{pid}-bc", pid, "254837009", "remission", today - timedelta(days=900)),
        _condition(f"{pid}-bp", pid, "161891005", "active", today - timedelta(days=1)),
    ]
    entries = [
        {"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}}
        for r in resources
    ]
    return orjson.dumps({"resourceType": "Bundle", "type": "transaction", "entry": entries})


def percentile(values: Sequence[float], p: float) -> float | None:
    """The p-th percentile, linearly interpolated; None for no values."""
    if not values:
        return None
    xs = sorted(values)
    k = (len(xs) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


@dataclass
class LoadResult:
    """What one load run saw: wall time, per-request latencies (s), answers outside `expect`."""

    wall_s: float = 0.0
    latencies_s: list[float] = field(default_factory=list)
    failures: list[tuple[int, str]] = field(default_factory=list)


@dataclass
class OpenLoopResult:
    """Each body's scheduled send time (perf_counter), how late it actually went out (a
    sender that cannot keep up shows here, not as service latency), and the answers."""

    scheduled: list[float] = field(default_factory=list)
    lag_s: list[float] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)


async def closed_loop(
    base: str,
    headers: dict[str, str],
    path: str,
    bodies: Sequence[bytes],
    clients: int,
    expect: tuple[int, ...] = (200, 201),
) -> LoadResult:
    """POST every body once, from `clients` concurrent keep-alive connections."""
    result = LoadResult()
    pending = list(reversed(bodies))

    async def client() -> None:
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=120) as http:
            while pending:
                body = pending.pop()
                t = time.perf_counter()
                answer = await http.post(path, content=body)
                result.latencies_s.append(time.perf_counter() - t)
                if answer.status_code not in expect:
                    result.failures.append((answer.status_code, answer.text[:200]))

    t0 = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    result.wall_s = time.perf_counter() - t0
    return result


async def open_loop(
    base: str, headers: dict[str, str], path: str, bodies: Sequence[bytes], rate: float
) -> OpenLoopResult:
    """POST body i at t0 + i/rate (perf_counter) whatever earlier answers do."""
    result = OpenLoopResult()
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(
        base_url=base, headers=headers, timeout=120, limits=limits
    ) as http:

        async def send(at: float, body: bytes) -> None:
            result.lag_s.append(time.perf_counter() - at)
            try:
                result.statuses.append((await http.post(path, content=body)).status_code)
            except httpx.HTTPError:
                result.statuses.append(0)

        t0 = time.perf_counter() + 0.05
        result.scheduled = [t0 + i / rate for i in range(len(bodies))]
        tasks = []
        for at, body in zip(result.scheduled, bodies, strict=True):
            delay = at - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(send(at, body)))
        await asyncio.gather(*tasks)
    return result
