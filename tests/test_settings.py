"""``VEIL_*`` settings, read once at the edges: the documented forms work, a bad one is one line naming the
variable (never its value), and the secrets people paste from examples are refused."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

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


def test_defaults_are_the_embedded_single_machine_setup(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VEIL_DATA_DIR")
    settings = Settings()
    assert (settings.queue, settings.workers, settings.database_url, settings.storage_url) == (
        "local",
        1,
        None,
        None,
    )
    assert settings.providers == ["CPUExecutionProvider"] and settings.int8 is True
    assert (settings.host, settings.port) == ("127.0.0.1", 8000), "loopback unless told otherwise"
    assert settings.secret_key is None and settings.webhook_allow_private is False
    assert settings.data_dir.is_absolute() and settings.model_dir.is_absolute()


def test_every_variable_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env = {
        "VEIL_DATA_DIR": str(tmp_path / "data"),
        "VEIL_PROVIDERS": '["CUDAExecutionProvider", "CPUExecutionProvider"]',
        "VEIL_INT8": "false",
        "VEIL_WORKERS": "0",
        "VEIL_QUEUE": "celery",
        "VEIL_RETENTION_HOURS": "0.5",
        "VEIL_WEBHOOK_ALLOW_PRIVATE": "true",
        "VEIL_LOG_FORMAT": "text",
        "VEIL_API_KEY": "veil_abc",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = get_settings()
    assert settings.data_dir == tmp_path / "data"
    assert settings.providers == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert (settings.int8, settings.workers, settings.queue) == (False, 0, "celery")
    assert settings.retention_hours == 0.5 and settings.webhook_allow_private is True
    assert settings.log_format == "text"
    assert settings.api_key is not None and settings.api_key.get_secret_value() == "veil_abc"
    assert "veil_abc" not in repr(settings), "secrets never show in a repr or a log line"


def test_get_settings_reads_the_environment_afresh(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VEIL_WORKERS", "3")
    assert get_settings().workers == 3
    monkeypatch.setenv("VEIL_WORKERS", "5")
    assert get_settings().workers == 5


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("VEIL_PORT", "0"),
        ("VEIL_PORT", "70000"),
        ("VEIL_WORKERS", "-1"),
        ("VEIL_WORKERS", "many"),
        ("VEIL_QUEUE", "kafka"),
        ("VEIL_LOG_FORMAT", "xml"),
        ("VEIL_LOG_LEVEL", "verbose"),
        ("VEIL_MAX_UPLOAD_MB", "0"),
        ("VEIL_RETENTION_HOURS", "0"),
        ("VEIL_RETENTION_HOURS", "nan"),
        ("VEIL_SEGMENT_SECONDS", "inf"),
        ("VEIL_LINK_TTL_S", str(8 * 86400)),
        ("VEIL_JOB_MAX_ATTEMPTS", "0"),
        ("VEIL_CELERY_NAMESPACE", "Has Spaces"),
        ("VEIL_RATE_LIMIT_STORE", "redis"),
        ("VEIL_INT8", "maybe"),
    ],
)
def test_a_bad_value_is_an_error_that_names_the_setting(
    variable: str, value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsInvalid) as info:
        get_settings()
    assert info.value.message.startswith(f"{variable}: ") and "expected: " in info.value.message


@pytest.mark.parametrize(
    "secret",
    [
        "changeme" * 4,
        "x" * 40,
        "0123456" * 5,  # long enough, too few distinct characters
        "my-example-key-0123456789abcdefghijk",
        "SuperSecretValue-0123456789-abcdefgh",
    ],
    ids=["changeme", "one-char", "seven-chars", "example", "secret"],
)
def test_a_placeholder_secret_key_is_refused(secret: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VEIL_SECRET_KEY", secret)
    with pytest.raises(SettingsInvalid, match="^VEIL_SECRET_KEY: .*placeholder") as info:
        get_settings()
    assert secret not in info.value.message, "the refused secret is not echoed back"


def test_a_short_secret_key_is_refused_and_a_real_one_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VEIL_SECRET_KEY", "a1b2c3d4e5f6")
    with pytest.raises(SettingsInvalid, match="^VEIL_SECRET_KEY: "):
        get_settings()
    real = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
    monkeypatch.setenv("VEIL_SECRET_KEY", real)
    settings = get_settings()
    assert settings.secret_key is not None and settings.secret_key.get_secret_value() == real
    assert real not in repr(settings)


def test_settings_are_frozen() -> None:
    settings = Settings()
    with pytest.raises(ValidationError):
        settings.workers = 4  # type: ignore[misc]


def test_every_setting_says_what_it_does() -> None:
    fields = Settings.model_fields
    assert len(fields) >= 40
    assert not [name for name, field in fields.items() if not field.description]


def test_non_finite_floats_are_refused_in_code_too() -> None:
    with pytest.raises(ValidationError, match="finite"):
        Settings(max_wait_s=math.inf)


def test_importing_settings_loads_nothing_of_the_engine() -> None:
    """A leaf: the CLI and the API read settings without paying for onnxruntime or PyAV."""
    code = (
        "import json, sys, veil.settings; "
        "tops = ('onnxruntime', 'av', 'cv2', 'veil'); "
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in tops)))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=dict(os.environ)
    )
    loaded = json.loads(done.stdout)
    assert "veil.settings" in loaded
    heavy = [
        m
        for m in loaded
        if not m.startswith("veil")
        or m.split(".")[1:2] in (["detect"], ["media"], ["pipeline"], ["jobs"], ["api"])
    ]
    assert heavy == [], heavy
