"""Helpers for the worklist tests: signing in like a browser, reading forms, planting alerts."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from html import unescape
from typing import Any

from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from tests.builders import iso

ORIGIN = {"Origin": "http://testserver"}
ALERT_SYSTEM = "https://fhir-alerts.example.org/fhir/CodeSystem/alert"
CATEGORY = "http://terminology.hl7.org/CodeSystem/communication-category"


# Test users' passwords, hashed ahead with cheap Argon2 parameters (verification reads them from
# the hash): the service's own cost per hash is for production, not for a test suite.
_CHEAP = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


def users_setting(users: dict[str, str]) -> str:
    """`ALERTS_WORKLIST_USERS` with these users and cheaply hashed passwords."""
    return ",".join(f"{user}:{_CHEAP.hash(password)}" for user, password in users.items())


def hidden_fields(html: str, action: str) -> list[dict[str, str]]:
    """The hidden inputs of every form posting to `action`, in page order."""
    forms = re.findall(
        rf'<form method="post" action="{re.escape(action)}"[^>]*>(.*?)</form>', html, re.S
    )
    return [
        {unescape(n): unescape(v) for n, v in re.findall(r'name="([^"]+)" value="([^"]*)"', f)}
        for f in forms
    ]


def sign_in(client: TestClient, username: str, password: str) -> Any:
    page = client.get("/worklist/login")
    token = hidden_fields(page.text, "/worklist/login")[0]["csrf_token"]
    return client.post(
        "/worklist/login",
        data={"username": username, "password": password, "csrf_token": token},
        headers=ORIGIN,
        follow_redirects=False,
    )


def planted_alert(
    pid: str, priority: str, raised_hours_ago: float, summary: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A Flag and its CommunicationRequest as the service makes them, with a chosen age."""
    raised = datetime.now(UTC) - timedelta(hours=raised_hours_ago)
    flag = {
        "resourceType": "Flag",
        "id": f"flag-{pid}",
        "status": "active",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/flag-category",
                        "code": "clinical",
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": ALERT_SYSTEM, "code": "bone-metastasis-risk"}]},
        "subject": {"reference": f"Patient/{pid}"},
        "period": {"start": iso(raised - timedelta(days=1))},
    }
    request = {
        "resourceType": "CommunicationRequest",
        "id": f"cr-{pid}",
        "status": "active",
        "category": [{"coding": [{"system": CATEGORY, "code": "alert"}]}],
        "priority": priority,
        "subject": {"reference": f"Patient/{pid}"},
        "about": [{"reference": f"Flag/flag-{pid}"}],
        "payload": [{"contentString": summary}],
        "authoredOn": iso(raised),
        "recipient": [{"reference": "CareTeam/oncology"}],
    }
    return flag, request
