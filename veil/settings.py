"""All configuration, from ``VEIL_*`` environment variables (or a ``.env`` file).

Nothing deep inside the engine reads the environment: the edges (CLI, API,
worker) call ``get_settings()`` once and pass values down.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import platformdirs
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings", "get_settings"]


def _default_model_dir() -> Path:
    return Path(platformdirs.user_cache_dir("veil")) / "models"


def _default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("veil"))


class Settings(BaseSettings):
    """Every ``VEIL_*`` variable. ``veil serve --help`` prints this table."""

    model_config = SettingsConfigDict(env_prefix="VEIL_", env_file=".env", extra="ignore", frozen=True)

    # engine
    model_dir: Path = Field(default_factory=_default_model_dir, description="Model cache (filled by `veil models pull`).")
    providers: list[str] = Field(
        default_factory=lambda: ["CPUExecutionProvider"],
        description="onnxruntime execution providers in order of preference, "
        "e.g. CUDAExecutionProvider,CPUExecutionProvider.",
    )
    intra_op_threads: int = Field(0, ge=0, le=256, description="onnxruntime threads per session (0 = all cores).")

    # service
    data_dir: Path = Field(default_factory=_default_data_dir, description="SQLite file and blobs in embedded mode.")
    host: str = Field("127.0.0.1", description="Bind address of `veil serve`.")
    port: int = Field(8000, ge=1, le=65535, description="Port of `veil serve`.")
    database_url: str | None = Field(None, description="SQLAlchemy URL. Unset: SQLite in VEIL_DATA_DIR.")
    storage_url: str | None = Field(None, description="`file:///dir` or `s3://bucket/prefix`. Unset: VEIL_DATA_DIR/blobs.")
    queue: Literal["local", "celery"] = Field("local", description="`local` in-process workers or `celery`.")
    broker_url: str = Field("redis://127.0.0.1:6379/0", description="Celery broker (redis:// or amqp://).")
    workers: int = Field(1, ge=0, le=64, description="In-process worker threads of `veil serve` (local queue).")
    max_upload_mb: int = Field(2048, ge=1, description="Largest accepted upload (413 above).")
    max_pixels: int = Field(80_000_000, ge=1, description="Largest frame, in pixels (422 above).")
    max_duration_s: float = Field(4 * 3600, gt=0, description="Longest video, in seconds (422 above).")
    retention_hours: float = Field(24.0, gt=0, description="Inputs and outputs are deleted after this many hours.")
    webhook_allow_private: bool = Field(False, description="Allow webhooks to private, loopback and link-local hosts.")
    segment_seconds: float = Field(60.0, gt=0, description="Split longer videos into segments processed in parallel.")
    s3_endpoint_url: str | None = Field(None, description="S3-compatible endpoint, e.g. http://127.0.0.1:9000.")
    s3_region: str = Field("us-east-1", description="S3 region.")
    s3_access_key_id: str | None = Field(None, description="S3 access key id.")
    s3_secret_access_key: str | None = Field(None, description="S3 secret key.")
    log_level: Literal["debug", "info", "warning", "error"] = Field("info", description="Log level.")

    # client (`veil jobs …`, `veil.client`)
    api_url: str = Field("http://127.0.0.1:8000", description="Base URL of the API that `veil jobs` calls.")
    api_key: SecretStr | None = Field(None, description="API key `veil jobs` sends (see `veil keys create`).")


def get_settings() -> Settings:
    """A fresh ``Settings`` from the environment. Call it at the edges only."""
    return Settings()
