"""CI's short form of the reliability figures: ``bench/reliability.py --short`` must pass every scenario.

The full form (``make reliability``) writes ``docs/reliability.md`` by hand; this runs the embedded
scenarios at small sizes (bad-media corpus, 15 s of 8-client load, 4 concurrent videos, fairness between
tenants, SIGKILL of the server, a full disk), about two minutes on an idle 2-core machine, and fails
with the scenarios that broke their rule.

``make test`` runs it as a step of its own after the parallel pytest step (``make reliability-short``):
its scenarios time their own load and fairness, so it runs alone rather than beside other tests.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = [pytest.mark.slow, pytest.mark.reliability]


def test_every_reliability_scenario_passes_in_the_short_form(tmp_path: Path, shared_data: Path) -> None:
    doc = tmp_path / "reliability.md"
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "reliability.py"), "--short", "--output", str(doc)],
        capture_output=True,
        text=True,
        timeout=540,
        check=False,
        env={**os.environ, "VEIL_TEST_DATA": str(shared_data)},  # the autouse fixture removed VEIL_*
    )
    written = doc.read_text() if doc.exists() else ""
    assert done.returncode == 0, f"{written}\n--- stderr\n{done.stderr[-4000:]}"
    assert "6 of 6 scenarios passed" in written
