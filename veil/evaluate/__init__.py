"""Score detectors against labelled image sets, and masks against labelled video (``veil eval``).

``veil.evaluate.clips`` (not imported here: it runs the pipeline) drives the video analysis."""

from veil.evaluate.datasets import DATASET_FORMATS, DatasetFormat, Sample, load_dataset
from veil.evaluate.evaluation import EvalResult, evaluate
from veil.evaluate.metrics import MatchCounts, match_greedy
from veil.evaluate.video import (
    ClipScorer,
    MotLabels,
    ObjectLeak,
    ScoreRule,
    VideoScore,
    core_covered,
    load_mot_labels,
    solid_fill_hidden,
)

__all__ = [
    "ClipScorer",
    "DATASET_FORMATS",
    "MotLabels",
    "ObjectLeak",
    "ScoreRule",
    "VideoScore",
    "core_covered",
    "load_mot_labels",
    "solid_fill_hidden",
    "DatasetFormat",
    "EvalResult",
    "MatchCounts",
    "Sample",
    "evaluate",
    "load_dataset",
    "match_greedy",
]
