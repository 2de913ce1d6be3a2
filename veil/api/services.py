"""The long-lived parts of one API process, built from ``Settings`` by ``Services.build``.

Every backend can be injected (storage, queue, runner, webhook HTTP client), which is
how unit tests run the real app on ``MemoryStorage`` without a model, and how the
Celery deployment swaps the queue. ``start`` applies the migrations before anything
serves; ``stop`` hands running jobs back to the queue.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

import httpx
from prometheus_client import CollectorRegistry, Counter, Histogram
from sqlalchemy import text

from veil.auth import OidcConfig, OidcVerifier
from veil.auth.ratelimit import DatabaseRateLimiter, Limiter, RateLimiter
from veil.auth.secrets import load_server_secret
from veil.clock import Clock, SystemClock
from veil.errors import StorageError, StorageFull, VeilError
from veil.jobs.db import Database
from veil.jobs.events import JobEvents
from veil.jobs.metrics import JobMetrics, JobStoreCollector
from veil.jobs.notify import WebhookNotifier
from veil.jobs.queue import JobQueue, LocalQueue, create_queue
from veil.jobs.retention import RetentionSweeper
from veil.jobs.runner import JobRunner, PipelineRunner
from veil.jobs.worker import WorkerContext
from veil.receipts import Keyring
from veil.settings import Settings
from veil.storage import Storage, create_storage
from veil.storage.space import probe_writable, require_free_space

__all__ = ["HttpMetrics", "Services", "limiter_for"]

log = logging.getLogger(__name__)


class HttpMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "veil_http_requests",
            "HTTP requests by route template and status.",
            labelnames=("method", "route", "status"),
            registry=registry,
        )
        self.duration = Histogram(
            "veil_http_request_duration_seconds",
            "Time to the end of the response, by route template.",
            labelnames=("method", "route"),
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=registry,
        )


@dataclass
class Services:
    settings: Settings
    db: Database
    storage: Storage
    runner: JobRunner
    ctx: WorkerContext
    queue: JobQueue
    events: JobEvents
    registry: CollectorRegistry
    job_metrics: JobMetrics
    http_metrics: HttpMetrics
    limiter: Limiter
    server_secret: bytes
    notifier: WebhookNotifier
    sweeper: RetentionSweeper
    receipt_keys: Keyring
    oidc: OidcVerifier | None = None
    """Verifies OIDC bearer tokens when VEIL_OIDC_ISSUER is set."""
    oidc_limiter: RateLimiter = field(default_factory=RateLimiter)
    """Per-caller rate limits of token callers (in this process: they have no API key row)."""
    clock: Clock = field(default_factory=SystemClock)
    """Wall-clock time for everything the API decides by it (link expiry, audit and job timestamps)."""
    engine_state: str = "idle"
    """``idle`` (no local workers), ``loading``, ``ok``, or the error code of a failed warm-up."""
    _warmup: threading.Thread | None = field(default=None, repr=False)

    @classmethod
    def build(
        cls,
        settings: Settings,
        *,
        storage: Storage | None = None,
        queue: JobQueue | None = None,
        runner: JobRunner | None = None,
        webhook_client: httpx.Client | None = None,
        clock: Clock | None = None,
    ) -> Services:
        db = Database.from_settings(settings)
        blob_storage = create_storage(settings, storage=storage)
        job_runner = runner or PipelineRunner(settings)
        events = JobEvents()
        registry = CollectorRegistry(auto_describe=False)
        job_metrics = JobMetrics(registry)
        registry.register(JobStoreCollector(db))
        server_secret = load_server_secret(settings)
        if settings.secret_key is None and db.dialect != "sqlite":
            log.warning(
                "VEIL_SECRET_KEY is unset with a shared database: links and webhook secrets made by this "
                "process will not verify on other API or worker machines; set the same key on all of them"
            )
        notifier = WebhookNotifier(
            settings=settings, db=db, server_secret=server_secret, client=webhook_client
        )
        ctx = WorkerContext.from_settings(
            settings,
            db=db,
            storage=blob_storage,
            runner=job_runner,
            events=events,
            metrics=job_metrics,
            notifier=notifier,
        )
        return cls(
            settings=settings,
            db=db,
            storage=blob_storage,
            runner=job_runner,
            ctx=ctx,
            queue=create_queue(settings, ctx=ctx, queue=queue),
            events=events,
            registry=registry,
            job_metrics=job_metrics,
            http_metrics=HttpMetrics(registry),
            limiter=limiter_for(settings, db),
            server_secret=server_secret,
            notifier=notifier,
            sweeper=RetentionSweeper(
                db=db,
                storage=blob_storage,
                interval_s=settings.sweep_interval_s,
                scratch_dir=ctx.scratch_dir,
            ),
            receipt_keys=Keyring.load(settings.data_dir / "receipt-keys", key_file=settings.receipt_key_file),
            oidc=oidc_verifier(settings),
            clock=clock or SystemClock(),
        )

    @property
    def runs_jobs_here(self) -> bool:
        return isinstance(self.queue, LocalQueue) and self.queue.workers > 0

    def start(self) -> None:
        self.db.upgrade()
        self.ctx.scratch_dir.mkdir(parents=True, exist_ok=True)
        if self.runs_jobs_here and isinstance(self.runner, PipelineRunner):
            self.engine_state = "loading"
            self._warmup = threading.Thread(target=self._warm_up, name="veil-warmup", daemon=True)
            self._warmup.start()
        elif self.runs_jobs_here:
            self.engine_state = "ok"
        self.queue.start()
        self.notifier.resume_pending()
        self.sweeper.start()

    def _warm_up(self) -> None:
        assert isinstance(self.runner, PipelineRunner)
        try:
            self.runner.warm_up()
        except VeilError as exc:
            self.engine_state = exc.code
            log.error("model warm-up failed", extra={"code": exc.code})
            return
        except Exception:
            self.engine_state = "internal_error"
            log.error("model warm-up failed", exc_info=True)
            return
        self.engine_state = "ok"
        log.info("models loaded")

    def stop(self) -> None:
        self.queue.stop()
        self.sweeper.stop()
        self.notifier.stop()
        self.db.dispose()

    def readiness(self) -> dict[str, str]:
        """Each dependency and its state; ready when all are ``ok``.

        Every check writes, because a full disk still answers reads: the database rewrites its one
        ``alembic_version`` row, storage writes and deletes a probe blob, and the data disk must have
        ``VEIL_MIN_FREE_MB`` free and take a 4 KiB synced write. A failure reads ``full`` (no space),
        ``unwritable`` or ``unavailable``."""
        checks: dict[str, str] = {}
        try:
            with self.db.begin() as session:
                session.execute(text("UPDATE alembic_version SET version_num = version_num"))
            checks["database"] = "ok"
        except Exception as exc:
            checks["database"] = _failure(exc)
        try:
            self.storage.put_stream("health/probe", [b"ok"])
            self.storage.delete("health/probe")
            checks["storage"] = "ok"
        except Exception as exc:
            checks["storage"] = _failure(exc)
        try:
            require_free_space(self.ctx.scratch_dir, min_free_bytes=self.settings.min_free_mb << 20)
            probe_writable(self.ctx.scratch_dir)
            checks["disk"] = "ok"
        except Exception as exc:
            checks["disk"] = _failure(exc)
        if self.engine_state != "idle":
            checks["models"] = self.engine_state
        return checks


def oidc_verifier(settings: Settings) -> OidcVerifier | None:
    """The OIDC token verifier the settings ask for, or None (API keys only)."""
    if settings.oidc_issuer is None:
        return None
    if settings.oidc_audience is None:
        raise ValueError("VEIL_OIDC_ISSUER needs VEIL_OIDC_AUDIENCE too")
    return OidcVerifier(
        OidcConfig(
            issuer=settings.oidc_issuer,
            audience=settings.oidc_audience,
            jwks_url=settings.oidc_jwks_url,
            jwks_file=settings.oidc_jwks_file,
            algorithms=settings.oidc_algorithms,
            tenant_claim=settings.oidc_tenant_claim,
            default_tenant=settings.oidc_default_tenant,
            scopes_claim=settings.oidc_scopes_claim,
        )
    )


def _failure(exc: Exception) -> str:
    if isinstance(exc, StorageFull):
        return "full"
    if isinstance(exc, StorageError):
        return "unwritable"
    return "unavailable"


def limiter_for(settings: Settings, db: Database) -> Limiter:
    """Shared buckets in the database when API processes may be several (a shared job store), else memory."""
    shared = settings.rate_limit_store == "database" or (
        settings.rate_limit_store == "auto" and db.dialect != "sqlite"
    )
    return DatabaseRateLimiter(db) if shared else RateLimiter()
