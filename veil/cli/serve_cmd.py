"""``veil serve``: the API service, configured by ``Settings`` (``VEIL_*`` variables, ``.env``).

Heavy imports happen inside the command so ``veil --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

__all__ = ["register", "settings_help"]


def settings_help() -> str:
    """One paragraph per ``VEIL_*`` variable: name, default and description (for ``veil serve --help``)."""
    from pydantic_core import PydanticUndefined

    from veil.settings import Settings

    lines = ["Configuration (environment variables or a .env file):"]
    for name, info in Settings.model_fields.items():
        default = info.default
        shown = "" if default is None or default is PydanticUndefined else f" (default: {default})"
        lines.append(f"VEIL_{name.upper()}: {info.description or ''}{shown}")
    return "\n\n".join(lines)


def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (VEIL_HOST).")] = None,
    port: Annotated[int | None, typer.Option(min=1, max=65535, help="Port (VEIL_PORT).")] = None,
    workers: Annotated[
        int | None, typer.Option(min=0, max=64, help="In-process job workers (VEIL_WORKERS).")
    ] = None,
    ssl_certfile: Annotated[
        Path | None, typer.Option(help="Serve HTTPS with this certificate chain, PEM (VEIL_TLS_CERTFILE).")
    ] = None,
    ssl_keyfile: Annotated[
        Path | None, typer.Option(help="The certificate's private key, PEM (VEIL_TLS_KEYFILE).")
    ] = None,
) -> None:
    """Start the redaction API (SQLite, local files and in-process workers unless configured otherwise)."""
    import uvicorn

    from veil.api import create_app
    from veil.api.tls import harden
    from veil.jobs.logs import configure_logging
    from veil.settings import get_settings

    settings = get_settings()
    overrides: dict[str, Any] = {
        "host": host,
        "port": port,
        "workers": workers,
        "tls_certfile": ssl_certfile,
        "tls_keyfile": ssl_keyfile,
    }
    settings = settings.model_copy(update={k: v for k, v in overrides.items() if v is not None})
    if (settings.tls_certfile is None) != (settings.tls_keyfile is None):
        raise typer.BadParameter("TLS needs a certificate and its key: --ssl-certfile and --ssl-keyfile")
    configure_logging(level=settings.log_level, fmt=settings.log_format)
    app = create_app(settings)
    password = settings.tls_keyfile_password
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=30,
        proxy_headers=True,
        forwarded_allow_ips=[p.strip() for p in settings.trusted_proxies.split(",") if p.strip()] or [],
        ssl_certfile=None if settings.tls_certfile is None else str(settings.tls_certfile),
        ssl_keyfile=None if settings.tls_keyfile is None else str(settings.tls_keyfile),
        ssl_keyfile_password=None if password is None else password.get_secret_value(),
    )
    config.load()  # builds the SSL context from the files, which ``harden`` then tightens
    if config.ssl is not None:
        harden(config.ssl)
    uvicorn.Server(config).run()


def register(app: typer.Typer) -> None:
    app.command("serve", epilog=settings_help())(serve)
