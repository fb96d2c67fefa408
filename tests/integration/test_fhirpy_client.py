"""A real FHIR client library, fhirpy (async, aiohttp), against a real server on a loopback port:
create, conditional create, paged search, count, reading the alerts and acknowledging one."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import aiohttp
from fhirpy import AsyncFHIRClient

from tests.builders import back_pain, breast_cancer, days_ago, lab
from tests.integration.conftest import LiveServer

MRN = "urn:test:mrn"


async def test_fhirpy_round_trip_and_acknowledge(live_server: LiveServer) -> None:
    client = AsyncFHIRClient(
        live_server.fhir,
        authorization=f"Bearer {live_server.token}",
        aiohttp_config={"timeout": aiohttp.ClientTimeout(total=30)},
    )

    # create (POST Patient): the server assigns the id.
    patient = client.resource(
        "Patient", identifier=[{"system": MRN, "value": "fp-1"}], gender="female"
    )
    await patient.create()
    pid = patient.id
    assert pid and patient["meta"]["versionId"] == "1"

    # conditional create (POST Patient?identifier=...): the existing match comes back, not a copy.
    again, created = (
        await client.resources("Patient")
        .search(identifier=f"{MRN}|fp-1")
        .get_or_create(
            client.resource(
                "Patient", identifier=[{"system": MRN, "value": "fp-1"}], gender="female"
            )
        )
    )
    assert (again.id, created) == (pid, False)
    other, created = (
        await client.resources("Patient")
        .search(identifier=f"{MRN}|fp-2")
        .get_or_create(
            client.resource("Patient", identifier=[{"system": MRN, "value": "fp-2"}], gender="male")
        )
    )
    assert created and other.id != pid
    assert await client.resources("Patient").search(identifier=f"{MRN}|fp-1").count() == 1

    # 23 calcium results, then a paged search (limit 5 per page, fetch_all follows `next`).
    now = datetime.now(UTC)
    for i in range(23):
        body = lab(f"unused-{i}", pid, "17861-6", 9.0 + i / 100, "mg/dL", days_ago(40 + i, now))
        body.pop("id")
        await client.resource("Observation", **body).create()
    search = client.resources("Observation").search(patient=pid, code="http://loinc.org|17861-6")
    first_page = await search.limit(5).fetch()
    assert len(first_page) == 5
    everything = await search.limit(5).fetch_all()
    assert len(everything) == 23
    assert len({o.id for o in everything}) == 23
    assert await search.count() == 23  # _count=0&_totalMethod=count

    # A breast-cancer survivor with new back pain: the worker raises an urgent alert.
    for body in (
        breast_cancer("x", pid, days_ago(3 * 365, now)),
        back_pain("x", pid, days_ago(2, now)),
    ):
        body.pop("id")
        await client.resource("Condition", **body).create()
    await asyncio.to_thread(live_server.wait_idle)

    flags = await client.resources("Flag").search(patient=pid, status="active").fetch_all()
    assert len(flags) == 1
    assert flags[0]["code"]["coding"][0]["code"] == "bone-metastasis-risk"
    requests = (
        await client.resources("CommunicationRequest")
        .search(patient=pid, status="active")
        .fetch_all()
    )
    assert [r["priority"] for r in requests] == ["urgent"]
    request = requests[0]
    assert request["about"][0]["reference"] == f"Flag/{flags[0].id}"
    assert [c["coding"][0]["code"] for c in request["reasonCode"]] == ["new-back-pain"]

    # Acknowledge: a nurse sets the request to completed and saves it (PUT with its id).
    request.status = "completed"
    await request.save()
    assert request["meta"]["versionId"] == "2"
    await asyncio.to_thread(live_server.wait_idle)
    reread = await client.reference("CommunicationRequest", request.id).to_resource()
    assert reread["status"] == "completed"
    assert (
        await client.resources("CommunicationRequest").search(patient=pid, status="active").count()
        == 0
    )
    # Acknowledging the request does not close the episode: the Flag stays active.
    assert await client.resources("Flag").search(patient=pid, status="active").count() == 1
