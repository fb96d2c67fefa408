"""`ALERTS_ACK_DEADLINES` parsing and the escalation settings (issue 13)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from service.ack_deadlines import DEFAULT_ACK_DEADLINES, parse_ack_deadlines
from service.config import Settings


def test_the_default_is_the_documented_one() -> None:
    assert dict(DEFAULT_ACK_DEADLINES) == {
        "stat": timedelta(minutes=15),
        "asap": timedelta(hours=1),
        "urgent": timedelta(hours=4),
        "routine": timedelta(days=3),
    }
    assert parse_ack_deadlines("stat=15m,asap=1h,urgent=4h,routine=3d") == DEFAULT_ACK_DEADLINES


def test_every_unit_and_spacing_and_case() -> None:
    parsed = parse_ack_deadlines(" STAT = 90s , asap=2m,urgent=3H, routine=1d ")
    assert dict(parsed) == {
        "stat": timedelta(seconds=90),
        "asap": timedelta(minutes=2),
        "urgent": timedelta(hours=3),
        "routine": timedelta(days=1),
    }


def test_priorities_left_out_keep_their_default() -> None:
    assert dict(parse_ack_deadlines("stat=5m")) == {
        **DEFAULT_ACK_DEADLINES,
        "stat": timedelta(minutes=5),
    }
    assert parse_ack_deadlines("") == DEFAULT_ACK_DEADLINES


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("stat=15", "unit '(none)' is not one of s, m, h, d"),
        ("stat=15w", "unit 'w' is not one of s, m, h, d"),
        ("soon=15m", "unknown priority 'soon'"),
        ("stat=0m", "longer than zero"),
        ("stat=15m,stat=10m", "'stat' is given twice"),
        ("stat=15m,,asap=1h", "empty entry"),
        ("stat:15m", "is not PRIORITY=NUMBER+UNIT"),
        ("stat=-5m", "is not PRIORITY=NUMBER+UNIT"),
        ("stat=1.5h", "is not PRIORITY=NUMBER+UNIT"),
        ("routine=400d", "longer than 365 days"),
        ("stat=2h", "stat (2:00:00) would wait longer than asap (1:00:00)"),
        ("urgent=4d", "urgent (4 days, 0:00:00) would wait longer than routine"),
    ],
)
def test_bad_values_are_refused_with_a_clear_message(text: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_ack_deadlines(text)
    assert message in str(caught.value)


def test_settings_read_and_check_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ALERTS_ACK_DEADLINES", "stat=1m,asap=2m")
    monkeypatch.setenv("ALERTS_ESCALATION_RECIPIENT", "PractitionerRole/oncall")
    settings = Settings(data_dir=tmp_path)
    assert settings.ack_deadline_map["stat"] == timedelta(minutes=1)
    assert settings.ack_deadline_map["routine"] == timedelta(days=3)
    assert settings.escalation_recipient == "PractitionerRole/oncall"
    defaults = Settings(data_dir=tmp_path, ack_deadlines="stat=15m,asap=1h,urgent=4h,routine=3d")
    assert defaults.ack_deadline_map == DEFAULT_ACK_DEADLINES


def test_settings_refuse_a_bad_deadline_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ALERTS_ACK_DEADLINES", "stat=15 minutes")
    with pytest.raises(ValidationError) as caught:
        Settings(data_dir=tmp_path)
    assert "ALERTS_ACK_DEADLINES" in str(caught.value)


@pytest.mark.parametrize(
    "bad", ["oncall", "https://example.org/PractitionerRole/1", "Observation/x", "CareTeam/"]
)
def test_settings_refuse_an_escalation_recipient_that_is_not_a_reference(
    bad: str, tmp_path: Path
) -> None:
    with pytest.raises(ValidationError, match="ALERTS_ESCALATION_RECIPIENT"):
        Settings(data_dir=tmp_path, escalation_recipient=bad)


def test_an_empty_escalation_recipient_is_unset(tmp_path: Path) -> None:
    assert Settings(data_dir=tmp_path, escalation_recipient="").escalation_recipient is None
