"""Celery for scaled-out Veil: ``create_celery(settings)`` builds the app and its tasks.

Tasks take ids only (JSON), reload the job, and are idempotent, so that Celery's at-least-once
delivery is safe: acknowledged late, re-delivered when their worker dies, and fenced by the job's
claim so that a job finishes exactly once::

    task                                       queue      what
    veil.job(job_id)                           <ns>.gpu   a whole job, or the start of a segmented one
                                               (<ns>.cpu for images: they never wait behind videos)
    veil.segment.analyse(job_id, attempt, i)   <ns>.gpu   detect + track segment i (chord header)
    veil.segment.stitch(job_id, attempt)       <ns>.cpu   join the tracks (chord callback)
    veil.segment.render(job_id, attempt, i)    <ns>.cpu   mask + encode segment i (chord header)
    veil.segment.finish(job_id, attempt)       <ns>.cpu   join the video, report, conclude (callback)
    veil.webhook(job_id)                       <ns>.cpu   deliver the signed webhook of a finished job

Tenants are served round robin: a job's message priority falls with the number of its tenant's jobs
already in flight (``job_level``), so a tenant's first job overtakes another tenant's backlog; the
steps of a split job run one level below the job that started them, so a new tenant's job also
overtakes the queued segments of another tenant's long video. Queues are priority queues
(RabbitMQ ``x-max-priority``, Redis one list per level).

Detection runs on the ``gpu`` queue and everything else on the ``cpu`` queue: a GPU machine runs
``veil worker --queues gpu`` next to ``veil worker --queues cpu``; a CPU-only fleet takes both (the
default). Queue names and the control exchange carry ``VEIL_CELERY_NAMESPACE`` (default ``veil``), so
that deployments sharing a broker never take each other's tasks or answer each other's pings; each
queue has its own direct exchange. Chords need a result backend: the broker when it is Redis, else
the job database (``VEIL_RESULT_BACKEND`` overrides both).

When a worker dies mid-job, its task is delivered again: at once with RabbitMQ (the connection
drops), after ``VEIL_BROKER_VISIBILITY_TIMEOUT_S`` with Redis. A re-delivered ``veil.job`` that
finds the job still ``running`` under the dead worker's claim waits for the claim to go stale
(``VEIL_JOB_STALE_S`` without a heartbeat) and takes it over; steps of a segmented job redo only
the pieces that are not stored yet.

Each worker process builds its context (database engine, storage client, models) lazily, after
the pool forked it; nothing here runs at import time.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from celery import Celery, chord
from celery.exceptions import Retry
from kombu.entity import Exchange, Queue

from veil.jobs import store
from veil.jobs.states import JobState
from veil.jobs.worker import WorkerContext, execute_job
from veil.settings import Settings

if TYPE_CHECKING:
    from celery.app.task import Task

    from veil.jobs.segmented import SegmentedJobs

__all__ = [
    "CPU",
    "GPU",
    "TASK_ANALYSE",
    "TASK_FINISH",
    "TASK_JOB",
    "TASK_RENDER",
    "TASK_STITCH",
    "TASK_WEBHOOK",
    "CeleryDispatcher",
    "CeleryNotifier",
    "TOP_LEVEL",
    "WorkerRuntime",
    "create_celery",
    "job_level",
    "message_priority",
    "queue_name",
    "result_backend_url",
    "runtime_of",
]

log = logging.getLogger(__name__)

GPU = "gpu"
CPU = "cpu"

TASK_JOB = "veil.job"
TASK_ANALYSE = "veil.segment.analyse"
TASK_STITCH = "veil.segment.stitch"
TASK_RENDER = "veil.segment.render"
TASK_FINISH = "veil.segment.finish"
TASK_WEBHOOK = "veil.webhook"

_ROLES = {
    TASK_JOB: GPU,
    TASK_ANALYSE: GPU,
    TASK_STITCH: CPU,
    TASK_RENDER: CPU,
    TASK_FINISH: CPU,
    TASK_WEBHOOK: CPU,
    "celery.chord_unlock": CPU,
}

_STEP_RETRIES = 5
"""Transient failures (storage, database, broker) a step survives before the job fails."""
_JOIN_RETRIES = 120
"""Early chord callbacks wait this many times (up to 30 s each) for a missing piece."""
_WAIT_RETRIES = 200
"""A re-delivered ``veil.job`` checks this many times (every ``job_stale_s``) whether the worker that
holds the job is gone; the job is then taken over. A job that a live worker still runs after that is
left to that worker (its own message is delivered again if it dies)."""


def queue_name(settings: Settings, role: str) -> str:
    """The broker queue of ``role`` (``gpu`` or ``cpu``) in this deployment: ``<namespace>.<role>``."""
    return f"{settings.celery_namespace}.{role}"


TOP_LEVEL = 9
"""Priority levels run from 0 (last) to ``TOP_LEVEL`` (first); ``message_priority`` maps them to brokers."""


def _is_redis(url: str) -> bool:
    return url.startswith(("redis://", "rediss://"))


def job_level(tenant_rank: int) -> int:
    """The level of a job whose tenant has ``tenant_rank`` jobs in flight before it: a tenant's first job
    is at the top, each further one a level lower (never 0, which is below every job start)."""
    return max(1, TOP_LEVEL - tenant_rank)


def message_priority(settings: Settings, level: int) -> int:
    """Celery's ``priority`` for ``level`` on this deployment's broker: RabbitMQ serves high numbers
    first, Redis (kombu's one list per priority) low numbers first."""
    level = max(0, min(TOP_LEVEL, level))
    return TOP_LEVEL - level if _is_redis(settings.broker_url) else level


def level_of(settings: Settings, priority: int | None) -> int | None:
    """The level a message's ``priority`` stands for (``None``: the message had none)."""
    if priority is None:
        return None
    return TOP_LEVEL - priority if _is_redis(settings.broker_url) else priority


def result_backend_url(settings: Settings) -> str:
    """``VEIL_RESULT_BACKEND``; else the broker when it is Redis; else the job database."""
    if settings.result_backend:
        return settings.result_backend
    if _is_redis(settings.broker_url):
        return settings.broker_url
    from veil.jobs.db import database_url

    return f"db+{database_url(settings)}"


def _backoff(retries: int, *, cap: float = 30.0) -> float:
    return float(min(2.0**retries, cap))


class CeleryNotifier:
    """Sends webhooks as ``veil.webhook`` tasks, so a worker never blocks on a slow receiver."""

    def __init__(self, app: Celery) -> None:
        self._app = app

    def dispatch(self, job_id: str) -> None:
        try:
            self._app.send_task(TASK_WEBHOOK, args=[job_id], ignore_result=True)
        except Exception:  # the webhook stays pending; the API resends pending ones when it starts
            log.warning("webhook could not be queued", extra={"job_id": job_id}, exc_info=True)


class CeleryDispatcher:
    """Runs segment stages as chords: the pieces in parallel on any worker, then the join step."""

    def __init__(self, app: Celery, settings: Settings | None = None) -> None:
        self._app = app
        self._settings = settings

    def _chord(self, header: str, body: str, job_id: str, attempt: int, count: int) -> None:
        options = self._priority()
        signature = self._app.signature
        pieces = [
            signature(header, args=(job_id, attempt, i), immutable=True, **options) for i in range(count)
        ]
        callback = self._app.signature(body, args=(job_id, attempt), immutable=True, **options)
        chord(pieces, app=self._app)(callback)

    def _priority(self) -> dict[str, int]:
        """The steps' priority: one level below the ``veil.job`` message that started the job, the same
        as the step that dispatches the next stage. Nothing when not run from a prioritised task."""
        task = self._app.current_task
        if self._settings is None or task is None or task.request is None:
            return {}
        level = level_of(self._settings, (task.request.delivery_info or {}).get("priority"))
        if level is None:
            return {}
        if task.name == TASK_JOB:
            level = max(0, level - 1)
        return {"priority": message_priority(self._settings, level)}

    def analyse(self, job_id: str, attempt: int, count: int) -> None:
        self._chord(TASK_ANALYSE, TASK_STITCH, job_id, attempt, count)

    def render(self, job_id: str, attempt: int, count: int) -> None:
        self._chord(TASK_RENDER, TASK_FINISH, job_id, attempt, count)


class WorkerRuntime:
    """What one worker process needs to run tasks, built on first use (after the pool forked)."""

    def __init__(self, settings: Settings, app: Celery) -> None:
        self.settings = settings
        self._app = app
        self._lock = threading.Lock()
        self._ctx: WorkerContext | None = None
        self._jobs: SegmentedJobs | None = None

    def _build(self) -> None:
        from veil.jobs.runner import PipelineRunner
        from veil.jobs.segmented import SegmentedJobs
        from veil.pipeline import Engine

        engine = Engine.from_settings(self.settings)
        ctx = WorkerContext.from_settings(
            self.settings,
            runner=PipelineRunner(self.settings, engine=engine),
            notifier=CeleryNotifier(self._app),
            take_over_stale=True,
        )
        dispatcher = CeleryDispatcher(self._app, self.settings)
        self._jobs = SegmentedJobs(ctx=ctx, engine=engine, dispatcher=dispatcher)
        self._ctx = ctx

    def context(self) -> WorkerContext:
        with self._lock:
            if self._ctx is None:
                self._build()
            assert self._ctx is not None
            return self._ctx

    def segmented(self) -> SegmentedJobs:
        self.context()
        assert self._jobs is not None
        return self._jobs

    def warm_up(self) -> None:
        """Load the default models now, so that the first task does not pay for it."""
        from veil.jobs.runner import PipelineRunner

        runner = self.context().runner
        if isinstance(runner, PipelineRunner):
            runner.warm_up()


def runtime_of(app: Celery) -> WorkerRuntime:
    """The ``WorkerRuntime`` that ``create_celery`` attached to ``app``."""
    runtime = getattr(app, "veil_runtime", None)
    if not isinstance(runtime, WorkerRuntime):
        raise RuntimeError("this Celery app was not made by veil.jobs.celery_app.create_celery")
    return runtime


def create_celery(settings: Settings) -> Celery:
    """The Celery app for ``settings``, with Veil's tasks registered on it."""
    app = Celery("veil", set_as_current=False)
    visibility = settings.broker_visibility_timeout_s
    queues = {role: _queue(queue_name(settings, role)) for role in (GPU, CPU)}
    conf: dict[str, Any] = {
        "broker_url": settings.broker_url,
        "result_backend": result_backend_url(settings),
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "task_acks_on_failure_or_timeout": True,
        "worker_prefetch_multiplier": 1,
        "task_default_queue": queues[CPU].name,
        "task_default_exchange": queues[CPU].name,
        "task_default_routing_key": queues[CPU].name,
        "task_queues": tuple(queues.values()),
        "task_routes": {task: {"queue": queues[role].name} for task, role in _ROLES.items()},
        "control_exchange": settings.celery_namespace,
        "event_exchange": f"{settings.celery_namespace}.events",
        "task_publish_retry_policy": {
            "max_retries": 3,
            "interval_start": 0.0,
            "interval_step": 0.5,
            "interval_max": 2.0,
        },
        "broker_connection_retry_on_startup": True,
        "broker_connection_timeout": 5.0,
        "worker_cancel_long_running_tasks_on_connection_loss": True,
        "worker_hijack_root_logger": False,
        "worker_redirect_stdouts": False,
        "result_expires": 86400,
        "result_extended": False,
        "enable_utc": True,
        "timezone": "UTC",
    }
    if _is_redis(settings.broker_url):
        conf["broker_transport_options"] = {
            "visibility_timeout": visibility,
            "priority_steps": list(range(TOP_LEVEL + 1)),  # one list per level, not kombu's 4 buckets
            # look for messages of dead workers often enough for the timeout to mean what it says
            "unacked_restore_interval": max(1, min(10, int(visibility // 4))),
            "unacked_restore_throttle": 1,
        }
    if conf["result_backend"].startswith(("redis://", "rediss://")):
        conf["result_backend_transport_options"] = {"visibility_timeout": visibility}
    app.conf.update(conf)
    runtime = WorkerRuntime(settings, app)
    app.veil_runtime = runtime
    _register_tasks(app)
    return app


def _register_tasks(app: Celery) -> None:
    """Veil's tasks on ``app``, each a body below made a task by the one factory, ``_task``."""
    _task(app, TASK_JOB, _run_job, max_retries=_WAIT_RETRIES)
    for name in (TASK_ANALYSE, TASK_RENDER):  # the pieces: a chord's header collects their results
        _task(app, name, _run_step, ignore_result=False)
    for name in (TASK_STITCH, TASK_FINISH):  # the joins: they also wait for pieces on their way
        _task(app, name, _run_step, max_retries=_JOIN_RETRIES)
    _task(app, TASK_WEBHOOK, _deliver_webhook)


def _task(
    app: Celery,
    name: str,
    body: Callable[..., Any],
    *,
    max_retries: int = _STEP_RETRIES,
    ignore_result: bool = True,
) -> None:
    """Register ``body`` as the task ``name``: bound (it gets the task as ``self``, and through
    ``self.app`` the worker's runtime), its retries bounded, and not shared (a shared task would bind
    every app to the first one)."""
    options = {"bind": True, "max_retries": max_retries, "ignore_result": ignore_result}
    app.task(name=name, shared=False, **options)(body)


def _queue(name: str) -> Queue:
    """A durable priority queue with its own direct exchange and routing key, so that no message
    reaches two."""
    exchange = Exchange(name, type="direct")  # type: ignore[no-untyped-call]
    return Queue(name, exchange, routing_key=name, queue_arguments={"x-max-priority": TOP_LEVEL})  # type: ignore[no-untyped-call]


def _redelivered(task: Task[Any, Any]) -> bool:
    info = task.request.delivery_info or {}
    return bool(info.get("redelivered")) or bool(task.request.retries)


def _retry(task: Task[Any, Any], exc: Exception, *, max_retries: int | None = None) -> Retry:
    """Retry ``task`` after ``exc`` with exponential backoff (``max_retries`` None: the task's own)."""
    return task.retry(exc=exc, countdown=_backoff(task.request.retries), max_retries=max_retries)


def _run_job(self: Task[Any, Any], job_id: str) -> str:
    """``veil.job``: a whole job, or the start of a segmented one; see the module docstring."""
    from veil.jobs.segmented import StartOutcome, wants_segments

    runtime = runtime_of(self.app)
    settings = runtime.settings
    try:
        ctx = runtime.context()
        with ctx.db.begin() as session:
            row = store.get_job(session=session, job_id=job_id)
        if row is None or JobState(row.state).terminal:
            return "skipped"
        if wants_segments(row, segment_seconds=settings.segment_seconds):
            jobs = runtime.segmented()
            if jobs.dispatched(job_id):
                return "in flight"  # its pieces travel as their own tasks
            if jobs.start(job_id) is StartOutcome.STARTED:
                return "segmented"
        state = execute_job(job_id, ctx=ctx)
        if state is not None:
            return state.value
        with ctx.db.begin() as session:
            row = store.get_job(session=session, job_id=job_id)
        holder_may_be_dead = _redelivered(self)
        if row is not None and JobState(row.state) is JobState.RUNNING and holder_may_be_dead:
            # Another worker holds the claim. If it died, the claim goes stale and we take over.
            raise self.retry(countdown=settings.job_stale_s)
        return "skipped"
    except Retry:
        raise
    except Exception as exc:  # the database or the store is unreachable: try again shortly
        log.warning("job task failed; retrying", extra={"job_id": job_id}, exc_info=True)
        raise _retry(self, exc, max_retries=_STEP_RETRIES) from exc


_STEPS = {TASK_ANALYSE: "analyse", TASK_RENDER: "render", TASK_STITCH: "stitch", TASK_FINISH: "finish"}
"""The ``SegmentedJobs`` method each step task runs."""


def _run_step(self: Task[Any, Any], job_id: str, attempt: int, *index: int) -> None:
    """One step of a split job: a piece (``job_id, attempt, index``) or a join step (``job_id,
    attempt``), which also waits, up to ``_JOIN_RETRIES`` times, for pieces on their way. Other
    failures are retried ``_STEP_RETRIES`` times, then fail the job."""
    from veil.jobs.segmented import Incomplete

    step = _STEPS[self.name]
    jobs = runtime_of(self.app).segmented()
    retries = self.request.retries
    try:
        getattr(jobs, step)(job_id, attempt, *index)
    except Incomplete as exc:
        if retries >= _JOIN_RETRIES:
            _fail(jobs, job_id, attempt, exc)
            return
        raise _retry(self, exc) from exc
    except Exception as exc:
        if retries >= _STEP_RETRIES:
            log.error("segment step gave up", extra={"job_id": job_id, "step": step}, exc_info=True)
            _fail(jobs, job_id, attempt, exc)
            return
        log.warning("segment step failed; retrying", extra={"job_id": job_id, "step": step})
        raise _retry(self, exc) from exc


def _deliver_webhook(self: Task[Any, Any], job_id: str) -> str | None:
    """``veil.webhook``: deliver a finished job's webhook (signed, retried with backoff inside, every
    attempt recorded)."""
    import time

    from veil.auth.secrets import load_server_secret
    from veil.jobs.notify import WebhookNotifier

    runtime = runtime_of(self.app)
    settings, ctx = runtime.settings, runtime.context()
    notifier = WebhookNotifier(settings=settings, db=ctx.db, server_secret=load_server_secret(settings))
    try:
        return notifier.deliver_now(job_id, sleep=time.sleep)
    except Exception as exc:
        raise _retry(self, exc) from exc


def _fail(jobs: SegmentedJobs, job_id: str, attempt: int, exc: BaseException) -> None:
    from veil.jobs.lifecycle import failure

    try:
        jobs.fail(job_id, attempt, failure(exc))
    except Exception:  # nothing more to do here; the job stays running until its claim goes stale
        log.error("could not record the failure", extra={"job_id": job_id}, exc_info=True)
