"""Score detectors against labelled image sets (``veil eval``)."""

from veil.evaluate.datasets import DATASET_FORMATS, DatasetFormat, Sample, load_dataset
from veil.evaluate.evaluation import EvalResult, evaluate
from veil.evaluate.metrics import MatchCounts, match_greedy

__all__ = [
    "DATASET_FORMATS",
    "DatasetFormat",
    "EvalResult",
    "MatchCounts",
    "Sample",
    "evaluate",
    "load_dataset",
    "match_greedy",
]
