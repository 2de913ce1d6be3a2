"""``veil worker --check``: the health report an operator or a container runtime reads."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from veil.cli import app

runner = CliRunner()


def _beat(data_dir: Path, name: str, *, age_s: float, interval_s: float = 10.0) -> None:
    directory = data_dir / "workers"
    directory.mkdir(parents=True, exist_ok=True)
    at = datetime.now(UTC) - timedelta(seconds=age_s)
    facts = {
        "name": name,
        "pid": 1,
        "queues": ["veil.gpu"],
        "interval_s": interval_s,
        "heartbeat_at": at.isoformat(),
    }
    (directory / f"{name}.json").write_text(json.dumps(facts))


def test_local_check_passes_while_a_heartbeat_is_fresh_and_fails_once_it_is_stale() -> None:
    data_dir = Path(os.environ["VEIL_DATA_DIR"])
    result = runner.invoke(app, ["worker", "--check", "--local"])
    assert result.exit_code == 1 and json.loads(result.stdout) == {"healthy": False, "heartbeats": []}

    _beat(data_dir, "a@host", age_s=2)
    _beat(data_dir, "b@host", age_s=600)
    result = runner.invoke(app, ["worker", "--check", "--local"])
    report = json.loads(result.stdout)
    assert result.exit_code == 0 and report["healthy"]
    assert {b["name"]: b["fresh"] for b in report["heartbeats"]} == {"a@host": True, "b@host": False}

    result = runner.invoke(app, ["worker", "--check", "--local", "--hostname", "b@host"])
    assert result.exit_code == 1  # that one stopped beating


def test_fleet_check_reports_an_unreachable_broker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VEIL_BROKER_URL", "redis://127.0.0.1:9/0")
    result = runner.invoke(app, ["worker", "--check", "--timeout", "1"])
    report = json.loads(result.stdout)
    assert result.exit_code == 1
    assert report["healthy"] is False and report["broker"] == "unavailable" and report["workers"] == []
    assert report["database"] == report["storage"] == "ok"  # the embedded defaults are there
