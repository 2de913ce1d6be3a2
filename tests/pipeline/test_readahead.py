"""The analyse stage reads frames ahead on a thread of its own: same order, same errors, no thread left
behind when the consumer stops early (a frame limit, a cancel, an error)."""

from __future__ import annotations

import threading
from collections.abc import Generator, Iterator
from contextlib import closing
from pathlib import Path

import pytest

from tests.media.synthetic import make_clip
from veil.errors import JobCanceled
from veil.media import probe
from veil.pipeline import Engine, Plan, analyse
from veil.pipeline.readahead import read_ahead
from veil.spec import RedactionSpec


def _readers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "veil-read-ahead"]


def test_items_come_in_order_with_what_the_reader_made_of_them() -> None:
    seen_on: set[str] = set()

    def square(n: int) -> int:
        seen_on.add(threading.current_thread().name)
        return n * n

    assert list(read_ahead(range(50), square, depth=3)) == [(n, n * n) for n in range(50)]
    assert seen_on == {"veil-read-ahead"}
    assert not _readers()


def test_an_error_while_reading_reaches_the_consumer_after_the_items_before_it() -> None:
    def items() -> Iterator[int]:
        yield from range(5)
        raise OSError("disk gone")

    got: list[int] = []
    with pytest.raises(OSError, match="disk gone"):
        for n, _ in read_ahead(items(), lambda n: n):
            got.append(n)
    assert got == [0, 1, 2, 3, 4]
    assert not _readers()


@pytest.mark.timeout(30)  # the failure this guards against is a consumer waiting for ever
def test_items_that_cannot_even_start_raise_instead_of_hanging() -> None:
    class Broken:
        def __iter__(self) -> Iterator[int]:
            raise PermissionError("cannot open")

    with pytest.raises(PermissionError, match="cannot open"):
        list(read_ahead(Broken(), lambda n: n))
    assert not _readers()


def test_stopping_early_stops_the_reader_and_closes_the_source() -> None:
    closed = threading.Event()
    prepared: list[int] = []

    def endless() -> Iterator[int]:
        n = 0
        try:
            while True:
                yield n
                n += 1
        finally:
            closed.set()

    stream = read_ahead(endless(), prepared.append, depth=2)
    for n, _ in stream:
        if n == 10:
            break
    stream.close()
    assert closed.is_set() and not _readers()
    assert len(prepared) <= 10 + 1 + 2 + 1  # never more than `depth` (plus the one in hand) ahead


def test_depth_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="depth"):
        next(read_ahead([1], lambda n: n, depth=0))


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    return make_clip(tmp_path / "in.mp4", size_wh=(160, 120), frames=40, rate=10)


def test_analyse_counts_every_frame_and_honours_a_frame_limit(engine: Engine, clip: Path) -> None:
    plan = Plan.build(RedactionSpec(categories={"face": {}}))
    info = probe(clip)
    assert analyse(engine, plan, [clip], info=info)[1] == 40
    assert analyse(engine, plan, [clip, clip], info=info, frame_limit=55)[1] == 55
    assert not _readers()


def test_a_cancel_mid_analysis_leaves_no_reader_behind(engine: Engine, clip: Path) -> None:
    plan = Plan.build(RedactionSpec(categories={"face": {}}))
    calls = 0

    def cancel() -> bool:
        nonlocal calls
        calls += 1
        return calls > 3

    with pytest.raises(JobCanceled):
        analyse(engine, plan, [clip], info=probe(clip), cancel=cancel)
    assert not _readers()


def test_stopping_early_closes_the_sources_on_the_reader_thread() -> None:
    """Frames come from one generator per source file; stopping early must close the one in use (and
    with it its container) on the thread that decoded it, not later on another."""
    closed_on: list[str] = []

    def source() -> Generator[int, None, None]:
        try:
            yield from range(100)
        finally:
            closed_on.append(threading.current_thread().name)

    def sources() -> Iterator[int]:
        for _ in range(2):
            with closing(source()) as items:
                yield from items

    with closing(read_ahead(sources(), lambda n: n, depth=2)) as stream:
        for n, _ in stream:
            if n == 5:
                break
    assert closed_on == ["veil-read-ahead"]
