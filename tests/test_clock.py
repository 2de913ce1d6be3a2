"""The clock the API's services carry: real by default, turned by hand in tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from veil.clock import ManualClock, SystemClock, utcnow


def test_the_system_clock_tells_aware_utc_time_in_both_forms() -> None:
    clock = SystemClock()
    now = clock.now()
    assert now.tzinfo is not None and abs((now - utcnow()).total_seconds()) < 5
    assert abs(clock.time() - now.timestamp()) < 5


def test_a_manual_clock_moves_only_when_told() -> None:
    start = datetime(2030, 1, 1, tzinfo=UTC)
    clock = ManualClock(start)
    assert clock.now() == start and clock.time() == start.timestamp()
    clock.advance(90.5)
    assert clock.now() == start + timedelta(seconds=90.5)
    with pytest.raises(ValueError, match="forward"):
        clock.advance(-1)
    with pytest.raises(ValueError, match="aware"):
        ManualClock(datetime(2030, 1, 1))
