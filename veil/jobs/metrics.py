"""Prometheus metrics of the job system, in a registry owned by the app (no import-time globals).

* ``veil_jobs{state}`` and ``veil_queue_depth`` are read from the job store at scrape
  time, so they are right across restarts and across processes.
* ``veil_job_processing_seconds`` and ``veil_job_frames_per_second`` are observed by
  the worker that ran the job. Labels hold only the mode, kind and state: no job ids.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from veil.jobs import store
from veil.jobs.db import Database
from veil.jobs.states import JobState

__all__ = ["JobMetrics", "JobStoreCollector"]


class JobMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.processing_seconds = Histogram(
            "veil_job_processing_seconds",
            "Wall time of a job run, from claim to terminal state.",
            labelnames=("mode", "kind"),
            buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 1800, 3600),
            registry=registry,
        )
        self.frames_per_second = Histogram(
            "veil_job_frames_per_second",
            "Frames processed per second of wall time, per finished video job.",
            labelnames=("mode",),
            buckets=(0.5, 1, 2, 5, 10, 20, 30, 60, 120, 240),
            registry=registry,
        )
        self.finished = Counter(
            "veil_jobs_finished",
            "Jobs that reached a terminal state in this process.",
            labelnames=("state",),
            registry=registry,
        )

    def observe(self, *, state: str, mode: str, kind: str | None, seconds: float, frames: int | None) -> None:
        self.finished.labels(state=state).inc()
        if state != "succeeded":
            return
        self.processing_seconds.labels(mode=mode, kind=kind or "unknown").observe(seconds)
        if kind == "video" and frames and seconds > 0:
            self.frames_per_second.labels(mode=mode).observe(frames / seconds)


class JobStoreCollector(Collector):
    """Jobs by state and queue depth, counted in the job store when Prometheus scrapes."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def collect(self) -> Iterator[Metric]:
        with self._db.begin() as session:
            counts = store.count_jobs_by_state(session=session)
        jobs = GaugeMetricFamily("veil_jobs", "Jobs in the store, by state.", labels=["state"])
        for state, count in counts.items():
            jobs.add_metric([state.value], count)
        yield jobs
        depth = GaugeMetricFamily("veil_queue_depth", "Jobs waiting for a worker.")
        depth.add_metric([], counts[JobState.QUEUED])
        yield depth

    def describe(self) -> Iterator[Metric]:
        return iter(())
