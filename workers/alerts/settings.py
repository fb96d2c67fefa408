"""What a deployment may change about the alerts, in one frozen object.

The episode logic is pure, so it takes its configuration as an argument instead of reading the
environment: the worker builds one `AlertSettings` from `service.config.Settings`, tests build
their own. Nothing clinical is here: look-back windows, thresholds and recommended actions are
the rule set's (`ruleset/data/ruleset-v1.json`, passed as a `RuleConfig`).
"""

from __future__ import annotations

from dataclasses import dataclass

from contract import (
    ALERT_CODE_SYSTEM_NAME,
    CODE_SYSTEM_BASE,
    FINDING_CODE_SYSTEM_NAME,
    RED_FLAG_CODE_SYSTEM_NAME,
    RULESET_VERSION_URL,
)


@dataclass(frozen=True, slots=True)
class AlertSettings:
    """Who is told, who is speaking, and which URLs the service's own codes live under."""

    # CommunicationRequest.recipient; the worker passes ALERTS_ONCOLOGY_TEAM.
    oncology_team: str = "CareTeam/oncology"
    # The people the oncology team resolves to (its stored CareTeam's Practitioner /
    # PractitionerRole members, workers/routing.py); empty = the team reference itself.
    recipients: tuple[str, ...] = ()
    device: str = "Device/fhir-alerts"  # Flag.author, CommunicationRequest.requester/sender
    device_display: str = "fhir-alerts bone-metastasis surveillance"
    code_system_base: str = CODE_SYSTEM_BASE
    ruleset_extension_url: str = RULESET_VERSION_URL

    @property
    def alert_recipients(self) -> tuple[str, ...]:
        """CommunicationRequest.recipient of every alert request."""
        return self.recipients or (self.oncology_team,)

    @property
    def alert_system(self) -> str:
        return f"{self.code_system_base}/{ALERT_CODE_SYSTEM_NAME}"

    @property
    def finding_system(self) -> str:
        return f"{self.code_system_base}/{FINDING_CODE_SYSTEM_NAME}"

    @property
    def red_flag_system(self) -> str:
        return f"{self.code_system_base}/{RED_FLAG_CODE_SYSTEM_NAME}"
