"""``veil jobs …``: submit files to a running Veil API, follow them, download results.

A thin shell over ``veil.client.Client``. The server and key come from ``--url``/``--key`` or from
``VEIL_API_URL`` (default ``http://127.0.0.1:8000``) and ``VEIL_API_KEY``; prefer the variable for the key,
since command lines end up in shell history and ``ps``. Job objects go to stdout as JSON, so scripts can
pipe them to ``jq``; progress notes and errors go to stderr, errors as one line with the API's stable code,
and any failure exits non-zero.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

if TYPE_CHECKING:
    from veil.client import Client, Job

__all__ = ["register"]

jobs_app = typer.Typer(
    name="jobs",
    help="Submit files to a Veil API server, follow jobs and download results.",
    no_args_is_help=True,
)

UrlOpt = Annotated[
    str | None, typer.Option("--url", help="API base URL. Default: $VEIL_API_URL or http://127.0.0.1:8000.")
]
KeyOpt = Annotated[
    str | None,
    typer.Option("--key", help="API key. Default: $VEIL_API_KEY (preferred: keeps it out of history)."),
]
JobIdArg = Annotated[str, typer.Argument(help="Job id.")]


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=1)


def _client(url: str | None, key: str | None) -> Client:
    from veil.client import Client
    from veil.settings import get_settings

    settings = get_settings()
    api_key = key or (settings.api_key.get_secret_value() if settings.api_key else None)
    if not api_key:
        _fail("no API key: set VEIL_API_KEY or pass --key (create one with `veil keys create`)")
    return Client(url or settings.api_url, api_key)


def _print_job(job: Job) -> None:
    typer.echo(json.dumps(job.model_dump(mode="json"), indent=2))


def _run(action: Any) -> Any:
    """Run ``action()`` and turn client errors into one line on stderr and exit code 1."""
    from veil.client import JobWaitTimeout, VeilAPIError

    try:
        return action()
    except VeilAPIError as exc:
        _fail(str(exc))
    except JobWaitTimeout as exc:
        _fail(f"{exc} (the job keeps running; `veil jobs get {exc.job.id}` to follow it)")
    except OSError as exc:
        _fail(f"cannot write the output: {exc.strerror or type(exc).__name__}")


def _load_spec(value: str | None) -> dict[str, Any] | None:
    """``--spec '{"method": "pixelate"}'`` or ``--spec @spec.json``."""
    if value is None:
        return None
    text = value
    if value.startswith("@"):
        try:
            text = Path(value[1:]).read_text(encoding="utf-8")
        except OSError as exc:
            _fail(f"cannot read the spec file: {exc.strerror or type(exc).__name__}")
    try:
        spec = json.loads(text)
    except json.JSONDecodeError as exc:
        _fail(f"--spec is not valid JSON (line {exc.lineno}, column {exc.colno})")
    if not isinstance(spec, dict):
        _fail("--spec must be a JSON object")
    return spec


def _finish(job: Job, output: Path | None, client: Client) -> None:
    """Print the job; download it with ``-o``; exit 1 if it did not succeed."""
    _print_job(job)
    if job.state in ("failed", "canceled"):
        error = job.error or {}
        reason = f"{error.get('code', job.state)}: {error.get('message', '')}".rstrip(": ")
        _fail(f"job {job.id} {job.state} ({reason})")
    if output is not None:
        _run(lambda: client.download(job.id, output))
        typer.echo(f"{job.id} -> {output}", err=True)


def _expand(paths: list[Path]) -> list[Path]:
    """Files as given, and the media files directly inside any folder, in name order."""
    from veil.jobs.blobs import MEDIA_SUFFIXES

    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(
                p for p in sorted(path.iterdir()) if p.is_file() and p.suffix.lower() in MEDIA_SUFFIXES
            )
        else:
            files.append(path)
    return files


def _submit_batch(
    files: list[Path],
    spec_dict: dict[str, Any] | None,
    client: Client,
    *,
    wait: bool,
    timeout: float,
    output: Path | None,
) -> None:
    """Several files: one batch; with -o DIR, its ZIP is unpacked there."""
    import zipfile

    batch = _run(lambda: client.submit_batch(files, spec_dict))
    if not (wait or output is not None):
        typer.echo(json.dumps(batch, indent=2))
        return
    batch = _run(lambda: client.wait_batch(batch["id"], timeout=timeout))
    typer.echo(json.dumps({k: batch[k] for k in ("id", "state", "counts")}))
    if output is not None:
        output.mkdir(parents=True, exist_ok=True)
        archive = _run(lambda: client.download_batch(batch["id"], output / f"{batch['id']}.zip"))
        with zipfile.ZipFile(archive) as zipped:
            names = {
                name.split("-", 1)[1].rsplit(".", 1)[0]: name for name in zipped.namelist() if "-" in name
            }
            for source, job in zip(files, batch["jobs"], strict=True):
                name = names.get(job["id"])
                if name is not None:
                    zipped.extract(name, output)
                    typer.echo(f"{source} -> {output / name}", err=True)
        archive.unlink()
    failed = [j for j in batch["jobs"] if j["state"] != "succeeded"]
    if failed:
        _fail(f"{len(failed)} of {len(batch['jobs'])} jobs did not succeed")


@jobs_app.command("submit")
def submit(
    files: Annotated[
        list[Path],
        typer.Argument(
            exists=True,
            readable=True,
            help="Images or videos, or folders of them. Several files are sent as one batch.",
        ),
    ],
    spec: Annotated[
        str | None,
        typer.Option("--spec", help="Redaction spec as JSON, or @file.json. Default: server default."),
    ] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Wait until the job finishes.")] = False,
    timeout: Annotated[
        float, typer.Option("--timeout", min=1.0, help="Seconds --wait and -o wait before giving up.")
    ] = 600.0,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="Download the result to this file (implies --wait); for several files, into this folder.",
        ),
    ] = None,
    idempotency_key: Annotated[
        str | None,
        typer.Option("--idempotency-key", help="Resubmitting with the same key returns the same job."),
    ] = None,
    url: UrlOpt = None,
    key: KeyOpt = None,
) -> None:
    """Upload FILE as a new job and print the job object; several files or a folder go as one batch."""
    spec_dict = _load_spec(spec)
    inputs = _expand(files)
    if not inputs:
        _fail("no media files to submit")
    if len(inputs) > 1 or any(path.is_dir() for path in files):
        if idempotency_key is not None:
            _fail("--idempotency-key applies to single jobs, not batches")
        with _client(url, key) as client:
            _submit_batch(inputs, spec_dict, client, wait=wait, timeout=timeout, output=output)
        return
    file = inputs[0]
    with _client(url, key) as client:
        if not (wait or output is not None):
            _print_job(_run(lambda: client.submit(file, spec_dict, idempotency_key=idempotency_key)))
            return
        deadline = time.monotonic() + timeout
        job = _run(
            lambda: client.submit(file, spec_dict, wait=min(timeout, 30.0), idempotency_key=idempotency_key)
        )
        if not job.terminal:
            job = _run(lambda: client.wait(job.id, timeout=max(1.0, deadline - time.monotonic())))
        _finish(job, output, client)


@jobs_app.command("get")
def get(job_id: JobIdArg, url: UrlOpt = None, key: KeyOpt = None) -> None:
    """Print one job (state, progress, counts, error, result_url)."""
    with _client(url, key) as client:
        _print_job(_run(lambda: client.get(job_id)))


@jobs_app.command("list")
def list_jobs(
    state: Annotated[
        str | None, typer.Option("--state", help="Only jobs in this state (queued, running, succeeded, …).")
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", min=1, max=100_000, help="Print at most this many jobs.")
    ] = 50,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per line instead of columns.")
    ] = False,
    url: UrlOpt = None,
    key: KeyOpt = None,
) -> None:
    """List jobs, newest first: id, state, progress and creation time."""
    with _client(url, key) as client:

        def collect() -> list[Job]:
            found: list[Job] = []
            for job in client.iter_jobs(state=state, limit=min(limit, 100)):
                found.append(job)
                if len(found) >= limit:
                    break
            return found

        for job in _run(collect):
            if as_json:
                typer.echo(json.dumps(job.model_dump(mode="json")))
            else:
                created = job.created_at.isoformat(timespec="seconds") if job.created_at else ""
                typer.echo(f"{job.id}\t{job.state}\t{job.progress:.0f}%\t{created}")


@jobs_app.command("download")
def download(
    job_id: JobIdArg,
    output: Annotated[
        Path, typer.Option("--output", "-o", dir_okay=False, help="Where to write the result.")
    ],
    url: UrlOpt = None,
    key: KeyOpt = None,
) -> None:
    """Download the redacted file of a finished job."""
    with _client(url, key) as client:
        _run(lambda: client.download(job_id, output))
    typer.echo(f"{job_id} -> {output}", err=True)


@jobs_app.command("cancel")
def cancel(job_id: JobIdArg, url: UrlOpt = None, key: KeyOpt = None) -> None:
    """Ask a queued or running job to stop."""
    with _client(url, key) as client:
        _print_job(_run(lambda: client.cancel(job_id)))


@jobs_app.command("delete")
def delete(job_id: JobIdArg, url: UrlOpt = None, key: KeyOpt = None) -> None:
    """Delete a job and its input and output files."""
    with _client(url, key) as client:
        _run(lambda: client.delete(job_id))
    typer.echo(f"{job_id} deleted", err=True)


def register(app: typer.Typer) -> None:
    app.add_typer(jobs_app, name="jobs")
