"""``VEIL_*`` settings: the documented forms work, and a bad one is one line naming the variable."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from veil.settings import Settings, SettingsInvalid, get_settings


@pytest.mark.parametrize(
    "value",
    ["CUDAExecutionProvider,CPUExecutionProvider", '["CUDAExecutionProvider", "CPUExecutionProvider"]'],
)
def test_providers_take_the_form_help_shows_and_a_json_list(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("VEIL_PROVIDERS", value)
    assert get_settings().providers == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert "CUDAExecutionProvider,CPUExecutionProvider" in (
        Settings.model_fields["providers"].description or ""
    )


def test_lists_of_numbers_take_commas_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VEIL_WEBHOOK_RETRY_SCHEDULE_S", "1, 2.5,10")
    assert get_settings().webhook_retry_schedule_s == (1.0, 2.5, 10.0)


@pytest.mark.parametrize(
    ("name", "value"),
    [("VEIL_PORT", "eighty"), ("VEIL_WEBHOOK_RETRY_SCHEDULE_S", "[1,"), ("VEIL_MAX_DURATION_S", "nan")],
)
def test_a_bad_setting_names_the_variable_and_the_expected_form(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsInvalid) as caught:
        get_settings()
    assert caught.value.message.startswith(f"{name}: ") and "expected: " in caught.value.message
    assert value not in caught.value.message.split("expected")[0] or value == "nan"


def test_every_command_reports_a_bad_setting_in_one_line() -> None:
    env = {**os.environ, "VEIL_PORT": "eighty"}
    done = subprocess.run(
        [sys.executable, "-m", "veil", "models", "list"], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0, done.stderr
    assert done.stderr.startswith("error: VEIL_PORT: ") and "Traceback" not in done.stderr
