"""GET entries of a batch answer exactly as the search route does: `_include`, `_summary`,
the search caps and scopes are applied, never accepted and silently ignored."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from service.auth import mint
from tests.builders import lab


def _put(client: TestClient, headers: dict[str, str], res: dict[str, Any]) -> None:
    r = client.put(f"/fhir/{res['resourceType']}/{res['id']}", json=res, headers=headers)
    assert r.status_code in (200, 201), r.text


def _batch(client: TestClient, headers: dict[str, str], *urls: str) -> list[dict[str, Any]]:
    body = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [{"request": {"method": "GET", "url": u}} for u in urls],
    }
    r = client.post("/fhir", json=body, headers=headers)
    assert r.status_code == 200, r.text
    return list(r.json()["entry"])


def test_batch_get_entries_search_like_the_route(
    client: TestClient, headers: dict[str, str], settings: Any
) -> None:
    _put(client, headers, {"resourceType": "Patient", "id": "bs1", "gender": "female"})
    _put(client, headers, lab("bs-o1", "bs1", "17861-6", 9.5, "mg/dL", "2026-01-01"))
    _put(client, headers, lab("bs-o2", "bs1", "17861-6", 9.6, "mg/dL", "2026-01-02"))
    included, counted, capped = _batch(
        client,
        headers,
        "Observation?patient=bs1&_include=Observation:patient",
        "Observation?patient=bs1&_summary=count",
        "Observation?code=" + ",".join(f"x{i}" for i in range(1000)),
    )
    modes = sorted(e["search"]["mode"] for e in included["resource"]["entry"])
    assert modes == ["include", "match", "match"]
    assert counted["resource"]["total"] == 2 and "entry" not in counted["resource"]
    assert capped["response"]["status"].startswith("400")

    # Scopes apply to what an entry includes, as on the route.
    obs_only = mint(settings.signing_secret(), scope="system/Observation.rs")
    h = {**headers, "Authorization": f"Bearer {obs_only}"}
    (entry,) = _batch(client, h, "Observation?patient=bs1&_include=Observation:patient")
    assert [e["search"]["mode"] for e in entry["resource"]["entry"]] == ["match", "match"]
