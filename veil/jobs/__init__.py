"""Jobs: the state machine, the job lifecycle, the job store (SQLAlchemy + Alembic), queues, workers,
split jobs, retention, webhooks.

Layering: ``jobs`` sits above ``pipeline`` and below ``api`` and ``cli``, beside ``auth`` (keys,
audit, rate limits) and ``storage``; it reaches media, detection and tracking only through the
pipeline's stages. The API writes job rows and enqueues ids; a worker (in-process thread or Celery
task) calls ``execute_job``, or runs a split job's steps; both follow ``veil.jobs.lifecycle`` and meet
the API only in the job table and the blob storage.
"""

from veil.jobs.db import Database, create_db_engine, database_url, upgrade_database
from veil.jobs.events import JobEvents
from veil.jobs.metrics import JobMetrics, JobStoreCollector
from veil.jobs.notify import WebhookNotifier
from veil.jobs.queue import JobQueue, LocalQueue, create_queue
from veil.jobs.retention import RetentionSweeper, sweep
from veil.jobs.runner import JobRunner, PipelineRunner
from veil.jobs.schemas import (
    SCOPES,
    ApiKeyCreated,
    ApiKeyPublic,
    ApiKeysPublic,
    AuditEntryPublic,
    AuditPublic,
    JobPublic,
    JobsPublic,
    Scope,
    WebhookDeliveriesPublic,
    job_public,
)
from veil.jobs.states import TERMINAL_STATES, JobState
from veil.jobs.worker import WorkerContext, execute_job

__all__ = [
    "SCOPES",
    "TERMINAL_STATES",
    "ApiKeyCreated",
    "ApiKeyPublic",
    "ApiKeysPublic",
    "AuditEntryPublic",
    "AuditPublic",
    "Database",
    "JobEvents",
    "JobMetrics",
    "JobPublic",
    "JobQueue",
    "JobRunner",
    "JobState",
    "JobStoreCollector",
    "JobsPublic",
    "LocalQueue",
    "PipelineRunner",
    "RetentionSweeper",
    "Scope",
    "WebhookDeliveriesPublic",
    "WebhookNotifier",
    "WorkerContext",
    "create_db_engine",
    "create_queue",
    "database_url",
    "execute_job",
    "job_public",
    "sweep",
    "upgrade_database",
]
