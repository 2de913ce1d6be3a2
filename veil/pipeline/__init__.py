"""probe → decode → detect → track → redact → encode: an immutable ``Plan`` and the stages that take it.

    Plan.build(spec)  →  analyse  →  stitch (split jobs)  →  render  →  report

Video runs in two passes over the file. ``analyse`` decodes, detects (on the frames the schedule
picks) and tracks; a reader thread decodes a few frames ahead and estimates the camera's motion
(``readahead``), so that this work fills the cores onnxruntime leaves idle. Tracks are then finalized
offline, because padding a track *before* it first appears needs to know the future. ``render``
decodes again and masks each frame with the finished tracks while the encoder writes the output.
Decoding twice costs far less than detection, and the split is also the review loop: a ``detect`` job
stops after ``analyse``, and a later ``redact`` job renders the reviewed tracks of its report
(``Plan.reviewed_tracks``) without detecting again.

``run`` composes the stages for one file (CLI, in-process workers, whole-file Celery tasks). Split jobs
compose ``split``, ``analyse_segment`` per piece, ``stitch``, ``render_segment`` per piece, ``join``
and ``report`` across workers; ``veil.jobs.segmented`` keeps only their orchestration.
"""

from veil.detect import available_categories
from veil.media import MediaInfo, probe
from veil.pipeline.analysis import analyse, stitch
from veil.pipeline.compose import run
from veil.pipeline.engine import Engine
from veil.pipeline.plan import Plan, check_output, check_spec, output_suffix
from veil.pipeline.rendering import render
from veil.pipeline.reporting import report, write_video_preview, write_video_thumbnails
from veil.pipeline.segments import Piece, Split, Unsplittable, analyse_segment, join, render_segment, split
from veil.track import Track, tracks_from_npz, tracks_to_npz

__all__ = [
    "Engine",
    "MediaInfo",
    "Piece",
    "Plan",
    "Split",
    "Track",
    "Unsplittable",
    "analyse",
    "analyse_segment",
    "available_categories",
    "check_output",
    "check_spec",
    "join",
    "output_suffix",
    "probe",
    "render",
    "render_segment",
    "report",
    "run",
    "split",
    "stitch",
    "tracks_from_npz",
    "tracks_to_npz",
    "write_video_preview",
    "write_video_thumbnails",
]
