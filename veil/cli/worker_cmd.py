"""``veil worker``: a Celery worker for scaled-out Veil, and ``veil worker --check``, its health report.

The worker reads the same ``VEIL_*`` settings as ``veil serve`` (database, storage, broker, models),
applies the database migrations if the API has not yet, and consumes the ``gpu`` queue (detection)
and the ``cpu`` queue (masking, encoding, joining, webhooks) unless ``--queues`` narrows it. Each pool
process loads the models in the background right after it starts, so the first task does not wait.

Health, two ways:

* while it runs, the worker writes a heartbeat file, ``VEIL_DATA_DIR/workers/<name>.json``, every
  ``--heartbeat-s`` seconds; ``veil worker --check --local`` exits 0 while a heartbeat on this
  machine is fresh (a container HEALTHCHECK or a systemd watchdog needs no broker round trip);
* ``veil worker --check`` asks the fleet over the broker (Celery ``inspect ping``, ``active_queues``,
  ``active``) and checks the database and the blob store: exit 0 when all are reachable and at
  least one worker (or the one named by ``--hostname``) answers. It prints one JSON object.

Running jobs keep their own heartbeat in the job table (``heartbeat_at``), which is how a job
whose worker died is recognised and taken over.
"""

from __future__ import annotations

import json
import os
import socket
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from celery import Celery

    from veil.settings import Settings

__all__ = ["heartbeat_dir", "read_heartbeats", "register", "worker"]

_POOLS = ("prefork", "solo", "threads")
_DEFAULT_QUEUES = "gpu,cpu"


def heartbeat_dir(settings: Settings) -> Path:
    return Path(settings.data_dir) / "workers"


def read_heartbeats(directory: Path) -> list[dict[str, Any]]:
    """Every heartbeat file in ``directory``, with ``age_s`` added (unreadable files are skipped)."""
    now = datetime.now(UTC)
    beats: list[dict[str, Any]] = []
    for path in sorted(directory.glob("*.json")):
        try:
            beat = json.loads(path.read_text())
            at = datetime.fromisoformat(str(beat["heartbeat_at"]))
        except (OSError, ValueError, KeyError):
            continue
        beat["age_s"] = round((now - at).total_seconds(), 1)
        beats.append(beat)
    return beats


class _HeartbeatFile:
    """Rewrites ``<dir>/<name>.json`` every ``interval_s`` (atomically) while the worker runs."""

    def __init__(self, directory: Path, facts: dict[str, Any], interval_s: float) -> None:
        safe = "".join(c if c.isalnum() or c in "-_.@" else "_" for c in str(facts["name"]))
        self.path = directory / f"{safe}.json"
        self._facts = facts
        self._interval_s = interval_s
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="veil-worker-heartbeat", daemon=True)

    def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._write()
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self.path.unlink(missing_ok=True)

    def _write(self) -> None:
        beat = {**self._facts, "heartbeat_at": datetime.now(UTC).isoformat(timespec="seconds")}
        part = self.path.with_suffix(".json.part")
        part.write_text(json.dumps(beat))
        part.replace(self.path)

    def _loop(self) -> None:
        while not self._stopped.wait(self._interval_s):
            try:
                self._write()
            except OSError:  # a full disk must not stop the worker; the check will report it stale
                continue


def _install_signals(app: Celery, *, pool: str, beat: _HeartbeatFile) -> None:
    from celery import signals

    from veil.jobs.celery_app import runtime_of

    runtime = runtime_of(app)

    def warm_up() -> None:
        import logging

        try:
            runtime.warm_up()
        except Exception:  # tasks will report the model error as the job's error code
            logging.getLogger("veil.worker").error("model warm-up failed", exc_info=True)

    def on_process_init(**_kw: Any) -> None:
        # Runs in each pool process after the fork; Celery expects it to return within seconds.
        threading.Thread(target=warm_up, name="veil-warmup", daemon=True).start()

    def on_ready(**_kw: Any) -> None:
        beat.start()
        if pool != "prefork":
            threading.Thread(target=warm_up, name="veil-warmup", daemon=True).start()

    def on_shutdown(**_kw: Any) -> None:
        beat.stop()

    signals.worker_process_init.connect(on_process_init, weak=False)
    signals.worker_ready.connect(on_ready, weak=False)
    signals.worker_shutdown.connect(on_shutdown, weak=False)


def _check(
    settings: Settings, *, node: str | None, timeout: float, local: bool
) -> tuple[bool, dict[str, Any]]:
    """The health report and whether it is healthy; see the module docstring."""
    beats = read_heartbeats(heartbeat_dir(settings))
    stale_after = 3 * max(float(b.get("interval_s", 10.0)) for b in beats) if beats else 30.0
    for beat in beats:
        beat["fresh"] = beat["age_s"] <= stale_after
    mine = [b for b in beats if node is None or b.get("name") == node]
    if local:
        return any(b["fresh"] for b in mine), {"heartbeats": beats}

    from sqlalchemy import text

    from veil.jobs.celery_app import create_celery
    from veil.jobs.db import Database
    from veil.storage import create_storage

    report: dict[str, Any] = {"heartbeats": beats}
    db = Database.from_settings(settings)
    try:
        with db.begin() as session:
            session.execute(text("SELECT 1"))
        report["database"] = "ok"
    except Exception:
        report["database"] = "unavailable"
    finally:
        db.dispose()
    try:
        create_storage(settings).exists("health/probe")
        report["storage"] = "ok"
    except Exception:
        report["storage"] = "unavailable"
    app = create_celery(settings)
    try:
        with app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=timeout)
        report["broker"] = "ok"
        pongs = app.control.inspect(timeout=timeout, destination=[node] if node else None).ping() or {}
        queues: dict[str, Any] = {}
        active: dict[str, Any] = {}
        if pongs:  # ask the workers that answered, and stop waiting once each of them replied
            known = app.control.inspect(timeout=timeout, destination=sorted(pongs), limit=len(pongs))
            queues = known.active_queues() or {}
            active = known.active() or {}
        report["workers"] = [
            {
                "name": name,
                "queues": sorted(q.get("name", "") for q in queues.get(name, [])),
                "active_tasks": len(active.get(name, [])),
            }
            for name in sorted(pongs)
        ]
    except Exception:
        report["broker"] = "unavailable"
        report["workers"] = []
    finally:
        app.close()
    healthy = (
        report["database"] == "ok"
        and report["storage"] == "ok"
        and report["broker"] == "ok"
        and bool(report["workers"])
    )
    return healthy, report


def worker(
    queues: Annotated[
        str,
        typer.Option(
            help="Comma-separated queues: gpu (detection), cpu (masking, encoding, joining, webhooks), "
            "or full names; gpu and cpu mean <VEIL_CELERY_NAMESPACE>.gpu and .cpu."
        ),
    ] = _DEFAULT_QUEUES,
    concurrency: Annotated[
        int,
        typer.Option(
            min=1, max=256, help="Tasks at once (pool processes). 1 per GPU; see README: Running at scale."
        ),
    ] = 1,
    pool: Annotated[str, typer.Option(help="Celery pool: prefork (default), solo or threads.")] = "prefork",
    hostname: Annotated[
        str | None, typer.Option(help="Worker name, unique in the fleet. Default: veil-<pid>@<host>.")
    ] = None,
    heartbeat_s: Annotated[
        float, typer.Option(min=1.0, max=300.0, help="Seconds between heartbeat-file writes.")
    ] = 10.0,
    check: Annotated[
        bool, typer.Option("--check", help="Print a health report (JSON) and exit 0 if healthy, 1 if not.")
    ] = False,
    local: Annotated[
        bool, typer.Option("--local", help="With --check: only this machine's heartbeat files, no broker.")
    ] = False,
    timeout: Annotated[
        float, typer.Option(min=0.1, max=60.0, help="With --check: seconds to wait for answers.")
    ] = 3.0,
) -> None:
    """Run a Celery worker for VEIL_QUEUE=celery deployments (or check the fleet's health)."""
    from veil.jobs.logs import configure_logging
    from veil.settings import get_settings

    settings = get_settings().model_copy(update={"queue": "celery"})
    if check:
        healthy, report = _check(settings, node=hostname, timeout=timeout, local=local)
        typer.echo(json.dumps({"healthy": healthy, **report}))
        raise typer.Exit(0 if healthy else 1)
    if pool not in _POOLS:
        raise typer.BadParameter(f"must be one of {', '.join(_POOLS)}", param_hint="--pool")
    from veil.jobs.celery_app import CPU, GPU, create_celery, queue_name

    roles = {GPU: queue_name(settings, GPU), CPU: queue_name(settings, CPU)}
    wanted = [roles.get(q.strip(), q.strip()) for q in queues.split(",") if q.strip()]
    if not wanted:
        raise typer.BadParameter("name at least one queue", param_hint="--queues")
    from veil.jobs.db import Database

    configure_logging(level=settings.log_level, fmt=settings.log_format)
    db = Database.from_settings(settings)
    try:
        db.upgrade()  # before any pool process forks; PostgreSQL serialises concurrent upgrades
    finally:
        db.dispose()
    node = hostname or f"veil-{os.getpid()}@{socket.gethostname()}"
    app = create_celery(settings)
    facts = {
        "name": node,
        "pid": os.getpid(),
        "queues": wanted,
        "concurrency": concurrency,
        "pool": pool,
        "interval_s": heartbeat_s,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    _install_signals(app, pool=pool, beat=_HeartbeatFile(heartbeat_dir(settings), facts, heartbeat_s))
    app.worker_main(
        [
            "worker",
            "--queues",
            ",".join(wanted),
            "--concurrency",
            str(concurrency),
            "--pool",
            pool,
            "--hostname",
            node,
            "--loglevel",
            settings.log_level.upper(),
            "--without-mingle",
            "--without-gossip",
        ]
    )


def register(app: typer.Typer) -> None:
    from veil.cli.serve_cmd import settings_help

    app.command("worker", epilog=settings_help())(worker)
