"""probe → decode → detect → track → redact → encode, as one call.

CONTRACT (implementation in progress by the lead; signatures are fixed):

    class Engine:
        def __init__(self, *, model_dir: Path, runtime: RuntimeOptions) -> None
        @classmethod
        def from_settings(cls, settings: Settings) -> Engine
        # Holds loaded detectors, reused across jobs; safe to share between threads.

    def run(engine: Engine, spec: RedactionSpec, input_path: Path, output_path: Path | None, *,
            progress: Callable[[float], None] | None = None,   # fraction 0..1
            cancel: Callable[[], bool] | None = None,           # True -> raises JobCanceled
            source_report: Report | None = None,                # tracks of a finished detect job (spec.source_job)
            thumbnails_dir: Path | None = None,                 # detect mode: writes <track_id>.jpg per track
            file_label: str | None = None,                      # goes into Report.file (CLI passes the path; API None)
            ) -> Report

    def output_suffix(spec: RedactionSpec, info: MediaInfo) -> str   # ".mp4", ".jpg", ...

mode="redact" writes output_path; mode="detect" needs output_path=None.
Raises veil.errors.MediaError subclasses for bad input, SpecError for bad spec/source_report,
JobCanceled when cancel() turns true, ModelMissing when `veil models pull` has not run.
"""
