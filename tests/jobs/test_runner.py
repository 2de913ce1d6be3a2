"""``PipelineRunner``, what a worker runs for a job: the engine loaded once and shared, the categories the
API may accept, the output suffix checked before a job is queued, and progress and cancel on a real file."""

from __future__ import annotations

from pathlib import Path

import pytest

from veil.errors import JobCanceled, SpecError
from veil.jobs.runner import JobRunner, PipelineRunner
from veil.media import probe
from veil.pipeline import Engine
from veil.settings import Settings
from veil.spec import RedactionSpec


@pytest.fixture
def runner(engine: Engine) -> PipelineRunner:
    return PipelineRunner(Settings(), engine=engine)


def test_offers_the_builtin_categories(runner: PipelineRunner) -> None:
    as_protocol: JobRunner = runner  # what the API and the workers hold it as
    assert {"face", "license_plate"} <= set(as_protocol.available_categories())


def test_the_engine_loads_on_warm_up_not_before(tmp_path: Path) -> None:
    runner = PipelineRunner(Settings(data_dir=tmp_path))
    assert not runner.loaded, "nothing is loaded before it is needed"
    runner.warm_up()
    assert runner.loaded
    runner.warm_up()  # again: a no-op
    assert runner.loaded


@pytest.mark.parametrize(
    ("file", "spec", "suffix"),
    [
        ("street.jpg", {}, ".jpg"),
        ("street.jpg", {"output": {"format": "png"}}, ".png"),
        ("faces_2560.png", {}, ".png"),
        ("faces_2560x1920_audio.mp4", {}, ".mp4"),
        ("faces_2560x1920_audio.mp4", {"output": {"format": "mkv"}}, ".mkv"),
    ],
)
def test_output_suffix_follows_the_input_and_the_spec(
    runner: PipelineRunner, media_dir: Path, file: str, spec: dict[str, object], suffix: str
) -> None:
    assert runner.output_suffix(RedactionSpec.model_validate(spec), probe(media_dir / file)) == suffix


@pytest.mark.parametrize(
    ("file", "spec"),
    [
        ("street.jpg", {"output": {"format": "mp4"}}),
        ("faces_2560x1920_audio.mp4", {"output": {"format": "png"}}),
    ],
)
def test_an_output_that_does_not_fit_the_input_is_a_spec_error(
    runner: PipelineRunner, media_dir: Path, file: str, spec: dict[str, object]
) -> None:
    with pytest.raises(SpecError):
        runner.output_suffix(RedactionSpec.model_validate(spec), probe(media_dir / file))


def test_run_reports_progress_up_to_the_end(runner: PipelineRunner, media_dir: Path, tmp_path: Path) -> None:
    src = media_dir / "faces_2560x1920_audio.mp4"
    seen: list[float] = []
    report = runner.run(
        RedactionSpec(categories={"face": {}}, output={"preset": "ultrafast"}),
        src,
        tmp_path / "out.mp4",
        info=probe(src),
        progress=seen.append,
        cancel=lambda: False,
        source_report=None,
        thumbnails_dir=None,
    )
    assert report.output is not None and (tmp_path / "out.mp4").stat().st_size > 0
    assert seen and seen == sorted(seen) and 0 <= seen[0] and seen[-1] <= 1.0
    assert seen[-1] >= 0.9


def test_a_canceled_job_stops_and_writes_no_output(
    runner: PipelineRunner, media_dir: Path, tmp_path: Path
) -> None:
    src = media_dir / "faces_2560x1920_audio.mp4"
    with pytest.raises(JobCanceled):
        runner.run(
            RedactionSpec(categories={"face": {}}),
            src,
            tmp_path / "out.mp4",
            info=probe(src),
            progress=lambda _p: None,
            cancel=lambda: True,
            source_report=None,
            thumbnails_dir=None,
        )
    assert not (tmp_path / "out.mp4").exists()
