"""The worklist in a real browser (Debian's headless Chromium) against the real server.

A nurse signs in, an alert raised after the page opened appears without a reload, and
acknowledging then closing it (by keyboard and by mouse) takes it off the list. Chromium
missing is a failure, not a skip: this is the only check that the page works in a browser.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from contract import CODE_SYSTEM_BASE, FINDING_CODE_SYSTEM_NAME, FINDING_EXTENSION_URL
from service.auth import mint
from tests.builders import back_pain_story, days_ago, lab, transaction

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
USER, PASSWORD = "ward-nurse", "s3cret: with colon"
SECRET = "browser-test-secret-" + uuid.uuid4().hex


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    """`fhir-alerts serve` on the embedded default (SQLite, in-process worker) in a subprocess."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALERTS_")}
    env |= {
        "ALERTS_DATA_DIR": str(tmp_path / "data"),
        "ALERTS_JWT_SECRET": SECRET,
        "ALERTS_WORKLIST_USERS": f"{USER}:{PASSWORD}",
        "ALERTS_RELAY_INTERVAL_SECONDS": "0.1",
        "PYTHONPATH": str(REPO),
    }
    log = (tmp_path / "server.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from service.cli import app; app()",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env=env,
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (tmp_path / "server.log").read_text()
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.2)
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        log.close()


def _api(base: str) -> httpx.Client:
    token = mint(SECRET, scope="system/*.*")
    return httpx.Client(
        base_url=base,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json"},
        timeout=30,
    )


@pytest.mark.browser
def test_nurse_sees_a_new_alert_live_acknowledges_and_closes_it(server: str) -> None:
    assert CHROMIUM.exists(), (
        "Debian chromium is required for the browser test: apt-get install -y chromium"
    )
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    pid = "browser-" + uuid.uuid4().hex[:8]
    api = _api(server)
    # Earlier results within normal limits (no alert of their own): the trends to draw.
    history = [
        lab(f"{pid}-ca{i}", pid, "17861-6", v, "mg/dL", days_ago(d))
        for i, (v, d) in enumerate([(9.4, 200), (9.7, 120), (9.6, 40)])
    ] + [
        lab(f"{pid}-alp{i}", pid, "6768-6", v, "U/L", days_ago(d))
        for i, (v, d) in enumerate([(88, 200), (92, 120), (90, 40)])
    ]
    assert api.post("/fhir", json=transaction(*history)).status_code == 200
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("dialog", lambda dialog: dialog.accept())

            # Not signed in: the page sends the nurse to sign in; a wrong password is refused.
            page.goto(f"{server}/worklist")
            expect(
                page.get_by_role("heading", name="Sign in to the oncology worklist")
            ).to_be_visible()
            page.get_by_label("User name").fill(USER)
            page.get_by_label("Password").fill("wrong")
            page.get_by_role("button", name="Sign in").click()
            expect(page.get_by_role("alert")).to_contain_text("Wrong user name or password")
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Sign in").click()
            expect(page.get_by_role("heading", level=1)).to_have_text("Oncology nurse worklist")
            expect(page.locator("#alerts")).to_contain_text("No alerts are waiting")
            page.evaluate("window.__sameDocument = true")

            # An alert raised after the page opened shows up without a reload.
            r = api.post("/fhir", json=back_pain_story(pid))
            assert r.status_code == 200, r.text
            card = page.locator("li.alert", has_text=f"Patient/{pid}")
            expect(card).to_be_visible(timeout=30_000)
            assert page.evaluate("window.__sameDocument === true"), "the page was reloaded"
            expect(card.locator(".badge")).to_have_text("Priority: Urgent")
            expect(card).to_contain_text("New back pain")
            expect(card.locator("table.evidence")).to_contain_text(f"Condition/{pid}-bp")
            expect(card.locator("svg polyline")).to_have_count(2)  # calcium and ALP trends
            expect(card).to_contain_text("within the upper limit 10.5 mg/dL")
            expect(page.locator("#live")).to_contain_text(f"Urgent alert for Patient/{pid}")
            expect(page).to_have_title("(1) Oncology worklist · fhir-alerts")
            page.screenshot(path=str(ARTIFACTS / "worklist.png"), full_page=True)

            # Acknowledge by keyboard: the request is completed, the alert moves down.
            ack = card.get_by_role("button", name=f"Acknowledge alert for Patient/{pid}")
            ack.focus()
            page.keyboard.press("Enter")
            expect(
                page.get_by_role("status").filter(has_text="Alert acknowledged.")
            ).to_be_visible()
            acknowledged = page.locator("section", has=page.locator("#open-heading"))
            expect(acknowledged.locator("li.alert", has_text=f"Patient/{pid}")).to_be_visible()
            found = api.get(f"/fhir/CommunicationRequest?patient={pid}").json()
            assert [e["resource"]["status"] for e in found["entry"]] == ["completed"]

            # Close it: the Flag is inactive and the alert leaves the list.
            page.get_by_role("button", name=f"Close alert for Patient/{pid}").click()
            expect(page.get_by_role("status").filter(has_text="Alert closed.")).to_be_visible()
            expect(page.locator("li.alert", has_text=f"Patient/{pid}")).to_have_count(0)
            flags = api.get(f"/fhir/Flag?patient={pid}").json()
            assert [e["resource"]["status"] for e in flags["entry"]] == ["inactive"]
            assert flags["entry"][0]["resource"]["period"]["end"]

            # Signing out ends the page session.
            page.get_by_role("button", name="Sign out").click()
            expect(page.get_by_role("status")).to_contain_text("You have signed out")
            page.goto(f"{server}/worklist")
            expect(
                page.get_by_role("heading", name="Sign in to the oncology worklist")
            ).to_be_visible()
        finally:
            browser.close()


WORKLIST_ARTIFACTS = ARTIFACTS / "worklist"
_NAMES = [
    "Ada Lovelace",
    "Grace Hopper",
    "Mary Somerville",
    "Emmy Noether",
    "Lise Meitner",
    "Rosalind Franklin",
    "Dorothy Hodgkin",
    "Barbara McClintock",
    "Chien-Shiung Wu",
    "Katherine Johnson",
    "Hedy Lamarr",
    "Rachel Carson",
    "Florence Nightingale",
    "Marie Curie",
    "Sophie Germain",
    "Caroline Herschel",
    "Henrietta Leavitt",
    "Vera Rubin",
    "Tu Youyou",
    "Gerty Cori",
]


def _seed_twenty(api: httpx.Client) -> list[str]:
    """Twenty alerts of every priority and age, each with a named patient, MRN and birth date."""
    from tests.api.web.support import planted_alert

    priorities = ["stat", "asap", "urgent", "routine"]
    resources: list[dict[str, object]] = []
    pids = []
    for i, name in enumerate(_NAMES):
        pid = f"tri{i:02d}-" + uuid.uuid4().hex[:6]
        pids.append(pid)
        given, family = name.split(" ", 1)
        resources.append(
            {
                "resourceType": "Patient",
                "id": pid,
                "identifier": [
                    {
                        "type": {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                                    "code": "MR",
                                }
                            ]
                        },
                        "system": "urn:test:mrn",
                        "value": f"MRN{40000 + i * 37}",
                    }
                ],
                "name": [{"given": [given], "family": family}],
                "birthDate": f"{1945 + i}-0{1 + i % 9}-1{i % 10}",
                "gender": "female",
            }
        )
        flag, request = planted_alert(pid, priorities[i % 4], 0.2 + i * 0.7, f"Summary {name}.")
        flag["extension"] = [
            {
                "url": FINDING_EXTENSION_URL,
                "valueCodeableConcept": {
                    "coding": [
                        {
                            "system": f"{CODE_SYSTEM_BASE}/{FINDING_CODE_SYSTEM_NAME}",
                            "code": "new-back-pain",
                            "display": "New back pain",
                        }
                    ]
                },
            }
        ]
        request["recipient"] = [{"reference": "CareTeam/oncology", "display": "Oncology team"}]
        resources += [flag, request]
    r = api.post("/fhir", json=transaction(*resources))
    assert r.status_code == 200, r.text
    return pids


@pytest.mark.browser
def test_triage_worklist_twenty_rows_filter_expand_acknowledge_snooze(server: str) -> None:
    """Issue 13: 20 alerts fit one 1366×768 screen; filter, expand a row in place, acknowledge
    and snooze by keyboard; screenshots at 1366×768 and 420×900 for a reviewer."""
    assert CHROMIUM.exists(), "Debian chromium is required: apt-get install -y chromium"
    from playwright.sync_api import expect, sync_playwright

    WORKLIST_ARTIFACTS.mkdir(parents=True, exist_ok=True)
    print(f"\nworklist screenshots: {WORKLIST_ARTIFACTS}")
    api = _api(server)
    pids = _seed_twenty(api)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1366, "height": 768})
            page.goto(f"{server}/worklist")
            page.get_by_label("User name").fill(USER)
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Sign in").click()
            rows = page.locator("#waiting-heading ~ ol li.alert")
            expect(rows).to_have_count(20, timeout=30_000)

            # All twenty rows in one 1366×768 screen, each on one line.
            page.screenshot(path=str(WORKLIST_ARTIFACTS / "worklist-1366x768.png"))
            box = rows.nth(19).bounding_box()
            assert box is not None and box["y"] + box["height"] <= 768, box
            heights = {round(rows.nth(i).bounding_box()["height"]) for i in range(20)}  # type: ignore[index]
            assert max(heights) <= 32, heights
            # STAT first, the longest waiting first: Henrietta Leavitt, 11 h, well overdue.
            first = rows.first
            expect(first.locator(".badge")).to_have_text("Priority: STAT")
            expect(first).to_contain_text("Henrietta Leavitt")
            expect(first.locator(".mrn")).to_have_text("MRN MRN40592")
            expect(first.locator(".agesex")).to_have_text(re.compile(r"^\d+ y F$"))
            expect(first.locator(".due")).to_contain_text("overdue 11 h")
            expect(first.locator(".due")).to_have_css("color", "rgb(164, 22, 26)")

            # Filter by priority, then by name (a plain GET form: the URL says what is shown).
            page.get_by_label("Priority").select_option("routine")
            page.get_by_role("button", name="Filter").click()
            expect(page).to_have_url(f"{server}/worklist?priority=routine&status=&q=")
            expect(rows).to_have_count(5)
            page.get_by_label("Name or MRN").fill("carson")
            page.get_by_label("Name or MRN").press("Enter")
            expect(rows).to_have_count(1)
            expect(rows.first).to_contain_text("Rachel Carson")
            page.screenshot(path=str(WORKLIST_ARTIFACTS / "worklist-filtered-1366x768.png"))
            page.get_by_role("link", name="Clear filters").click()
            expect(rows).to_have_count(20)

            # Expand a row in place by keyboard: no navigation, the details are shown.
            page.evaluate("window.__sameDocument = true")
            ada = page.locator("li.alert", has_text="Ada Lovelace")
            expand = ada.locator("button.expand")
            expand.focus()
            page.keyboard.press("Enter")
            expect(expand).to_have_attribute("aria-expanded", "true")
            details = ada.locator(".more")
            expect(details).to_be_visible()
            expect(details).to_contain_text("Summary Ada Lovelace.")
            expect(details).to_contain_text("Calcium (mg/dL)")
            assert page.evaluate("window.__sameDocument === true")
            page.screenshot(path=str(WORKLIST_ARTIFACTS / "worklist-expanded-1366x768.png"))
            page.keyboard.press("Enter")
            expect(details).to_be_hidden()

            # Acknowledge the first by keyboard.
            ack = ada.get_by_role("button", name="Acknowledge alert for Ada Lovelace")
            ack.focus()
            page.keyboard.press("Enter")
            expect(
                page.get_by_role("status").filter(has_text="Alert acknowledged.")
            ).to_be_visible()
            expect(rows).to_have_count(19)
            found = api.get(f"/fhir/CommunicationRequest?patient={pids[0]}").json()
            assert [e["resource"]["status"] for e in found["entry"]] == ["completed"]

            # Snooze the next one: the reason and duration in its small form.
            row = page.locator("li.alert", has_text="Grace Hopper")
            row.locator("summary", has_text="Snooze").click()
            row.get_by_label("Snooze for").select_option("4")
            row.get_by_label("Snooze reason").fill("Waiting for the ward round")
            page.screenshot(path=str(WORKLIST_ARTIFACTS / "worklist-snooze-form-1366x768.png"))
            row.get_by_role("button", name="Snooze alert for Grace Hopper now").click()
            expect(page.get_by_role("status").filter(has_text="Alert snoozed.")).to_be_visible()
            snoozed = page.locator("li.alert", has_text="Grace Hopper")
            expect(snoozed.locator(".due")).to_contain_text("Snoozed until")
            found = api.get(f"/fhir/CommunicationRequest?patient={pids[1]}").json()
            assert [e["resource"]["status"] for e in found["entry"]] == ["on-hold"]
            page.get_by_label("Status").select_option("snoozed")
            page.get_by_role("button", name="Filter").click()
            expect(rows).to_have_count(1)
            page.get_by_role("link", name="Clear filters").click()

            # The same list on a phone-sized screen.
            page.set_viewport_size({"width": 420, "height": 900})
            page.reload()
            expect(rows).to_have_count(19)
            page.screenshot(path=str(WORKLIST_ARTIFACTS / "worklist-420x900.png"))
            overflow = page.evaluate("document.documentElement.scrollWidth")
            assert overflow <= 420, overflow

            # A link to one alert (as CDS Hooks cards give) opens its details.
            page.set_viewport_size({"width": 1366, "height": 768})
            page.goto(f"{server}/worklist#flag-flag-{pids[5]}")
            linked = page.locator(f"#flag-flag-{pids[5]}")
            expect(linked.locator(".more")).to_be_visible()
            expect(linked.locator("button.expand")).to_have_attribute("aria-expanded", "true")

            page.goto(f"{server}/worklist/report")
            expect(page.get_by_role("heading", level=1)).to_have_text("Alert burden report")
            page.screenshot(path=str(WORKLIST_ARTIFACTS / "report-1366x768.png"), full_page=True)
        finally:
            browser.close()
