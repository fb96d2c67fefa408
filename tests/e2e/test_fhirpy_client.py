"""A real FHIR client library, fhirpy (async, aiohttp), against a real server on a loopback port:
create, conditional create, paged search, count, reading the alerts and acknowledging one."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import aiohttp
from fhirpy import AsyncFHIRClient

from tests.builders import back_pain, breast_cancer, days_ago, lab
from tests.e2e.live import LiveServer

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


async def test_fhirpy_sort_include_elements_merge_patch_and_get_or_create(
    live_server: LiveServer,
) -> None:
    """What real clients tripped over (issue 8): `_sort` on date and _lastUpdated both ways,
    `_include`/`_revinclude`, `_elements`, Patient name/birthdate/gender search, a merge
    patch (fhirpy's `patch()`), and get_or_create, all through fhirpy over real HTTP."""
    client = AsyncFHIRClient(
        live_server.fhir,
        authorization=f"Bearer {live_server.token}",
        aiohttp_config={"timeout": aiohttp.ClientTimeout(total=30)},
    )
    ident = [{"system": MRN, "value": "fp-search"}]
    patient, created = (
        await client.resources("Patient")
        .search(identifier=f"{MRN}|fp-search")
        .get_or_create(
            client.resource(
                "Patient",
                identifier=ident,
                name=[{"family": "Ødegård", "given": ["Ingrid"]}],
                gender="female",
                birthDate="1962-05-17",
            )
        )
    )
    assert created
    again, created = (
        await client.resources("Patient")
        .search(identifier=f"{MRN}|fp-search")
        .get_or_create(client.resource("Patient", identifier=ident, gender="female"))
    )
    assert (again.id, created) == (patient.id, False)
    pid = patient.id

    patients = client.resources("Patient")
    assert [p.id for p in await patients.search(family="odegard").fetch()] == [pid]
    assert [p.id for p in await patients.search(given="ING", gender="female").fetch()] == [pid]
    assert await patients.search(name__exact="ødegård").fetch() == []
    assert [p.id for p in await patients.search(birthdate__ge="1962-05").fetch()] == [pid]
    assert await patients.search(birthdate__lt="1962").fetch() == []

    now = datetime.now(UTC)
    for i, days in enumerate((30, 10, 20)):
        body = lab(f"unused-{i}", pid, "17861-6", 9.0 + i / 10, "mg/dL", days_ago(days, now))
        body.pop("id")
        await client.resource("Observation", **body).create()
    search = client.resources("Observation").search(patient=pid)
    oldest_first = await search.sort("date").fetch()
    newest_first = await search.sort("-date").fetch()
    assert [o["effectiveDateTime"] for o in oldest_first] == sorted(
        o["effectiveDateTime"] for o in oldest_first
    )
    assert [o.id for o in newest_first] == [o.id for o in reversed(oldest_first)]
    by_update = [o.id for o in await search.sort("_lastUpdated").fetch()]
    assert [o.id for o in await search.sort("-_lastUpdated").fetch()] == by_update[::-1]

    raw = await search.include("Observation", "patient").sort("-date").limit(2).fetch_raw()
    assert raw["total"] == 3
    modes = [(e["search"]["mode"], e["resource"]["resourceType"]) for e in raw["entry"]]
    assert modes == [("match", "Observation")] * 2 + [("include", "Patient")]
    assert any(link["relation"] == "next" for link in raw["link"])
    everything = await search.include("Observation", "patient").limit(2).fetch_all()
    assert len(everything) == 3  # `next` keeps the include; fhirpy returns the matches

    slim = await search.elements("status", "code").fetch()
    assert len(slim) == 3
    for obs in slim:
        assert "valueQuantity" not in obs and obs["status"] == "final"
        assert "SUBSETTED" in [t["code"] for t in obs["meta"]["tag"]]

    # A breast-cancer survivor with new back pain: one Flag, one request about it.
    for body in (
        breast_cancer("x", pid, days_ago(3 * 365, now)),
        back_pain("x", pid, days_ago(2, now)),
    ):
        body.pop("id")
        await client.resource("Condition", **body).create()
    await asyncio.to_thread(live_server.wait_idle)
    bundle = await (
        client.resources("CommunicationRequest")
        .search(patient=pid, status="active")
        .include("CommunicationRequest", "subject")
        .include("CommunicationRequest", "about")
        .fetch_raw()
    )
    included = sorted(e["resource"]["resourceType"] for e in bundle["entry"][1:])
    assert bundle["total"] == 1 and included == ["Flag", "Patient"]
    flagged = await patients.search(_id=pid).revinclude("Flag", "subject").fetch_raw()
    assert [e["resource"]["resourceType"] for e in flagged["entry"]] == ["Patient", "Flag"]

    # Acknowledge with a merge patch (fhirpy sends only the changed element).
    request = (
        await client.resources("CommunicationRequest").search(patient=pid, status="active").get()
    )
    patched = await request.patch(status="completed")
    assert patched["status"] == "completed" and patched["meta"]["versionId"] == "2"
    await asyncio.to_thread(live_server.wait_idle)
    reread = await client.reference("CommunicationRequest", request.id).to_resource()
    assert reread["status"] == "completed" and reread["payload"] == request["payload"]
