"""All configuration, from ``VEIL_*`` environment variables (or a ``.env`` file).

Nothing deep inside the engine reads the environment: the edges (CLI, API,
worker) call ``get_settings()`` once and pass values down. This module is a
leaf: it imports nothing of Veil, and the layers that need a part of it
(``veil.detect.runtime.RuntimeOptions.from_settings``) derive it themselves.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

import platformdirs
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict, SettingsError

from veil.errors import VeilError

__all__ = ["Settings", "SettingsInvalid", "get_settings"]


class SettingsInvalid(VeilError):
    """A ``VEIL_*`` variable that cannot be used; the message names it and the form it takes."""

    code = "invalid_setting"


def _default_model_dir() -> Path:
    return Path(platformdirs.user_cache_dir("veil")) / "models"


def _default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("veil"))


class Settings(BaseSettings):
    """Every ``VEIL_*`` variable. ``veil serve --help`` prints this table."""

    model_config = SettingsConfigDict(
        env_prefix="VEIL_", env_file=".env", extra="ignore", frozen=True, allow_inf_nan=False
    )

    # engine
    model_dir: Path = Field(
        default_factory=_default_model_dir, description="Model cache (filled by `veil models pull`)."
    )
    providers: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["CPUExecutionProvider"],
        description="onnxruntime execution providers in order of preference, "
        "comma-separated, e.g. CUDAExecutionProvider,CPUExecutionProvider (a JSON list works too).",
    )
    intra_op_threads: int = Field(
        0, ge=0, le=256, description="onnxruntime threads per session (0 = all cores)."
    )
    int8: bool = Field(
        True,
        description="Run the face detector as a calibrated INT8 model on the CPU (2-4x faster, same "
        "faces-dev recall with its own thresholds). false: the fp32 model. GPU providers always use fp32.",
    )

    # service
    data_dir: Path = Field(
        default_factory=_default_data_dir, description="SQLite file and blobs in embedded mode."
    )
    host: str = Field("127.0.0.1", description="Bind address of `veil serve`.")
    port: int = Field(8000, ge=1, le=65535, description="Port of `veil serve`.")
    tls_certfile: Path | None = Field(
        None, description="Serve HTTPS with this certificate chain (PEM); TLS 1.2 minimum, 1.3 preferred."
    )
    tls_keyfile: Path | None = Field(None, description="The private key (PEM) of VEIL_TLS_CERTFILE.")
    tls_keyfile_password: SecretStr | None = Field(None, description="Password of VEIL_TLS_KEYFILE, if any.")
    trusted_proxies: str = Field(
        "127.0.0.1",
        max_length=2000,
        description="Comma-separated addresses or networks of reverse proxies whose X-Forwarded-Proto and "
        "X-Forwarded-For are believed; from anyone else they are ignored. Empty: believe none.",
    )
    database_url: str | None = Field(None, description="SQLAlchemy URL. Unset: SQLite in VEIL_DATA_DIR.")
    storage_url: str | None = Field(
        None, description="`file:///dir` or `s3://bucket/prefix`. Unset: VEIL_DATA_DIR/blobs."
    )
    queue: Literal["local", "celery"] = Field("local", description="`local` in-process workers or `celery`.")
    broker_url: str = Field("redis://127.0.0.1:6379/0", description="Celery broker (redis:// or amqp://).")
    result_backend: str | None = Field(
        None,
        description="Celery result backend, used only to join segment tasks (chords). Unset: the broker "
        "when it is Redis, else the job database (db+postgresql+psycopg://...).",
    )
    celery_namespace: str = Field(
        "veil",
        pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$",
        description="Prefix of the Celery queues (`<ns>.gpu`, `<ns>.cpu`) and control exchange, so that "
        "several deployments (or test runs) can share one broker without taking each other's tasks.",
    )
    broker_visibility_timeout_s: float = Field(
        3600.0,
        ge=5,
        le=7 * 86400,
        description="Redis broker: a task unacknowledged this long (its worker died) is delivered again. "
        "Keep it above the longest task; segments keep tasks short.",
    )
    workers: int = Field(
        1, ge=0, le=64, description="In-process worker threads of `veil serve` (local queue)."
    )
    image_lane: bool = Field(
        True,
        description="`veil serve` runs one more worker thread that takes only images, so a still never "
        "waits behind another tenant's long video (local queue).",
    )
    max_upload_mb: int = Field(2048, ge=1, description="Largest accepted upload (413 above).")
    max_pixels: int = Field(80_000_000, ge=1, description="Largest frame, in pixels (422 above).")
    max_duration_s: float = Field(4 * 3600, gt=0, description="Longest video, in seconds (422 above).")
    max_frames: int = Field(
        500_000,
        ge=1,
        description="Most video frames (422 above): 4.6 hours at 30 fps. Cost grows with frames, "
        "whatever their size.",
    )
    max_decode_gigapixels: float = Field(
        1000.0,
        gt=0,
        description="Most frames x pixels of a video, in gigapixels (422 above): the decode and detect cost. "
        "1000 allows 1 hour of 4K30 or 4.5 hours of 1080p30 (1 hour of 1080p30 is 224).",
    )
    retention_hours: float = Field(
        24.0, gt=0, description="Inputs and outputs are deleted after this many hours."
    )
    webhook_allow_private: bool = Field(
        False, description="Allow webhooks to private, loopback and link-local hosts."
    )
    segment_seconds: float = Field(
        60.0, gt=0, description="Split longer videos into segments processed in parallel."
    )
    s3_endpoint_url: str | None = Field(
        None, description="S3-compatible endpoint, e.g. http://127.0.0.1:9000."
    )
    s3_region: str = Field("us-east-1", description="S3 region.")
    s3_access_key_id: str | None = Field(None, description="S3 access key id.")
    s3_secret_access_key: str | None = Field(None, description="S3 secret key.")
    log_level: Literal["debug", "info", "warning", "error"] = Field("info", description="Log level.")

    # API service (issue 4)
    secret_key: SecretStr | None = Field(
        None,
        min_length=32,
        description="Signs download links and derives per-key webhook secrets. Unset: generated once into "
        "VEIL_DATA_DIR/secret_key. Give every API and worker machine the same value.",
    )
    public_url: str | None = Field(
        None, description="Base URL clients reach the API at (result_url, signed links). Unset: request host."
    )
    queue_max: int = Field(1000, ge=1, description="Most queued jobs before POST /v1/jobs answers 503.")
    rate_limit_per_minute: int = Field(
        600, ge=1, description="Requests per minute per API key (429 above); a key may set its own."
    )
    rate_limit_store: Literal["auto", "memory", "database"] = Field(
        "auto",
        description="Where the per-key buckets live: `memory` (per API process) or `database` (the job "
        "database, shared by every API process). `auto`: database unless the job store is SQLite.",
    )
    body_timeout_s: float = Field(
        30.0,
        gt=0,
        le=3600,
        description="A request body that sends nothing for this many seconds is answered 408.",
    )
    db_ride_through_s: float = Field(
        10.0,
        ge=0,
        le=120,
        description="A GET or HEAD that finds the job database unreachable (a PostgreSQL restart) is run "
        "again for up to this many seconds before it is answered 503 `unavailable` (0: at once).",
    )
    min_free_mb: int = Field(
        256,
        ge=0,
        description="Below this much free space on VEIL_DATA_DIR, submissions get 507 storage_full and "
        "/readyz reports the disk as full.",
    )
    max_wait_s: float = Field(
        120.0, ge=0, le=3600, description="Longest `?wait=` / `Prefer: wait=` a request may hold."
    )
    link_ttl_s: int = Field(
        86400, ge=1, le=7 * 86400, description="Default lifetime of a signed download link, in seconds."
    )
    sweep_interval_s: float = Field(
        300.0, gt=0, description="How often the retention sweeper looks for expired blobs, in seconds."
    )
    job_max_attempts: int = Field(
        3, ge=1, le=20, description="A job whose worker died this many times fails instead of running again."
    )
    job_stale_s: float = Field(
        120.0, gt=0, description="A running job silent this long may be taken over by another worker."
    )
    webhook_retry_schedule_s: Annotated[tuple[float, ...], NoDecode] = Field(
        (10, 60, 300, 900, 1800, 3600, 7200, 14400, 21600, 21600, 21600, 21600),
        min_length=0,
        max_length=50,
        description="Seconds to wait before each webhook retry, comma-separated or a JSON list; one "
        "attempt more than entries. Default: 12 retries over 31.9 hours (10 s, 1 min, 5 min, 15 min, "
        "30 min, 1 h, 2 h, 4 h, then every 6 h), each shortened by up to 20 % of jitter.",
    )
    receipt_key_file: Path | None = Field(
        None,
        description="Ed25519 private key (PEM) that signs job receipts; give every API process the same one. "
        "Unset: generated once into VEIL_DATA_DIR/receipt-keys.",
    )
    oidc_issuer: str | None = Field(
        None,
        max_length=500,
        description="OIDC bearer tokens: the issuer (`iss`) to accept, e.g. "
        "https://sso.example.org/realms/x. Unset: only API keys.",
    )
    oidc_audience: str | None = Field(
        None, max_length=500, description="OIDC: the audience (`aud`) to accept."
    )
    oidc_jwks_url: str | None = Field(
        None, max_length=2000, description="OIDC: the provider's JWKS URL (keys are cached for 5 minutes)."
    )
    oidc_jwks_file: Path | None = Field(None, description="OIDC: a JWKS file instead of a URL (air-gapped).")
    oidc_algorithms: Annotated[tuple[str, ...], NoDecode] = Field(
        ("RS256", "ES256", "PS256", "EdDSA"),
        max_length=10,
        description="OIDC: accepted signature algorithms, comma-separated or a JSON list; asymmetric only.",
    )
    oidc_tenant_claim: str = Field(
        "veil_tenant", max_length=100, description="OIDC: the claim that names the caller's tenant."
    )
    oidc_default_tenant: str | None = Field(
        None, max_length=64, description="OIDC: the tenant of tokens without the tenant claim (unset: 401)."
    )
    oidc_scopes_claim: str = Field(
        "scope",
        max_length=100,
        description="OIDC: the claim with Veil scopes (`jobs:read`, `jobs:write`, `admin`): a "
        "space-separated string or a list.",
    )
    log_format: Literal["json", "text"] = Field("json", description="Service log lines: JSON or plain text.")

    # client (`veil jobs …`, `veil.client`)
    api_url: str = Field("http://127.0.0.1:8000", description="Base URL of the API that `veil jobs` calls.")
    api_key: SecretStr | None = Field(None, description="API key `veil jobs` sends (see `veil keys create`).")

    @field_validator("webhook_retry_schedule_s")
    @classmethod
    def _delays_in_range(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if any(not 0 <= delay <= 7 * 86400 for delay in value):
            raise ValueError("each webhook retry delay must be between 0 and 604800 seconds (7 days)")
        return value

    def probe_limits(self) -> dict[str, Any]:
        """The admission limits ``veil.media.probe`` takes, as keyword arguments."""
        return {
            "max_pixels": self.max_pixels,
            "max_duration_s": self.max_duration_s,
            "max_frames": self.max_frames,
            "max_decode_pixels": int(self.max_decode_gigapixels * 1e9),
        }

    @field_validator("providers", "webhook_retry_schedule_s", "oidc_algorithms", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        """Lists come from the environment as ``a,b,c`` (what ``--help`` shows) or a JSON list."""
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                import json

                try:
                    return json.loads(text)
                except ValueError as exc:
                    raise ValueError("not a JSON list; give comma-separated values instead") from exc
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @field_validator("secret_key")
    @classmethod
    def _not_placeholder(cls, value: SecretStr | None) -> SecretStr | None:
        """Refuse the secrets people paste from examples: a known key signs links anyone can forge."""
        if value is not None:
            raw = value.get_secret_value().lower()
            placeholders = ("changeme", "changethis", "secret", "example")
            if len(set(raw)) < 8 or any(word in raw for word in placeholders):
                raise ValueError("VEIL_SECRET_KEY looks like a placeholder; use e.g. `openssl rand -hex 32`")
        return value


def get_settings() -> Settings:
    """A fresh ``Settings`` from the environment. Call it at the edges only.

    Raises ``SettingsInvalid`` with one line that names the variable, what is wrong and the expected
    form (never the value: it may be a secret)."""
    try:
        return Settings()
    except ValidationError as exc:
        error = exc.errors(include_url=False, include_input=False)[0]
        field = str(error["loc"][0]) if error["loc"] else ""
        raise SettingsInvalid(_one_line(field, str(error["msg"]))) from None
    except SettingsError as exc:
        found = re.search(r'field "(\w+)"', str(exc))
        raise SettingsInvalid(_one_line(found.group(1) if found else "", "cannot be parsed")) from None


def _one_line(field: str, problem: str) -> str:
    info = Settings.model_fields.get(field)
    if info is None:
        return f"a VEIL_* setting is invalid: {problem}"
    expected = f"; expected: {info.description}" if info.description else ""
    return f"VEIL_{field.upper()}: {problem}{expected}"
