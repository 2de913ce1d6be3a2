"""``veil serve`` and ``veil keys …``: the API service and its API keys.

Both read the same ``Settings`` (``VEIL_*`` variables, ``.env``), so a key made with
``veil keys create`` in a shell works against ``veil serve`` at once: they share the job
store (``VEIL_DATABASE_URL``, default the SQLite file in ``VEIL_DATA_DIR``). Heavy
imports happen inside the commands so ``veil --help`` stays fast.
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


keys_app = typer.Typer(
    help="Create, list and revoke API keys (stored hashed in the job store).", no_args_is_help=True
)


def _database() -> Any:
    from veil.jobs.db import Database
    from veil.settings import get_settings

    settings = get_settings()
    db = Database.from_settings(settings)
    db.upgrade()
    return settings, db


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="A name to recognise the key by.", min=1)],
    scopes: Annotated[
        str, typer.Option(help="Comma-separated: jobs:read, jobs:write, admin.")
    ] = "jobs:read,jobs:write",
    tenant: Annotated[
        str, typer.Option(help="Tenant the key acts for; it sees only this tenant's jobs.")
    ] = "default",
    rate_limit: Annotated[
        int | None, typer.Option(min=1, help="Requests per minute (default VEIL_RATE_LIMIT_PER_MINUTE).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Create a key and print it once, with its webhook secret. Only a hash of the key is stored."""
    from veil.jobs import store
    from veil.jobs.schemas import SCOPES, ApiKeyCreated, api_key_public
    from veil.jobs.secrets import load_server_secret, webhook_secret
    from veil.jobs.worker import utcnow

    wanted = [s.strip() for s in scopes.replace(" ", ",").split(",") if s.strip()]
    unknown = [s for s in wanted if s not in SCOPES]
    if unknown or not wanted:
        raise typer.BadParameter(f"scopes must be among {', '.join(SCOPES)}", param_hint="--scopes")
    if not tenant or len(tenant) > 64 or not all(c.isalnum() or c in "-_." for c in tenant):
        raise typer.BadParameter("1-64 letters, digits, '-', '_' or '.'", param_hint="--tenant")
    if len(name) > 100:
        raise typer.BadParameter("at most 100 characters", param_hint="--name")
    settings, db = _database()
    try:
        now = utcnow()
        with db.begin() as session:
            row, key = store.create_api_key(
                session=session,
                name=name,
                tenant_id=tenant,
                scopes=wanted,
                now=now,
                rate_limit_per_minute=rate_limit,
            )
            store.append_audit(
                session=session, actor="cli", action="key.create", outcome="ok", now=now, tenant_id=tenant
            )
        created = ApiKeyCreated(
            **api_key_public(row).model_dump(),
            key=key,
            webhook_secret=webhook_secret(load_server_secret(settings), row.id),
        )
    finally:
        db.dispose()
    if as_json:
        typer.echo(created.model_dump_json())
        return
    typer.echo(f"id:             {created.id}")
    typer.echo(f"tenant:         {created.tenant}")
    typer.echo(f"scopes:         {' '.join(created.scopes)}")
    typer.echo(f"key:            {created.key}")
    typer.echo(f"webhook secret: {created.webhook_secret}")
    typer.echo("Store the key and the webhook secret now: they are not shown again.", err=True)


@keys_app.command("list")
def keys_list(
    tenant: Annotated[str | None, typer.Option(help="Only keys of this tenant.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List keys (ids, names, tenants, scopes, state); never the keys themselves."""
    from rich.console import Console
    from rich.table import Table

    from veil.jobs import store
    from veil.jobs.schemas import ApiKeysPublic, api_key_public

    _settings, db = _database()
    try:
        with db.begin() as session:
            rows = store.list_api_keys(session=session, tenant_id=tenant)
            keys = ApiKeysPublic(data=[api_key_public(r) for r in rows])
    finally:
        db.dispose()
    if as_json:
        typer.echo(keys.model_dump_json())
        return
    table = Table("name", "tenant", "scopes", "created", "state")
    table.add_column("id", no_wrap=True)
    for k in keys.data:
        state = "revoked" if k.revoked_at else "active"
        table.add_row(k.name, k.tenant, ",".join(k.scopes), f"{k.created_at:%Y-%m-%d %H:%M}", state, k.id)
    Console().print(table)


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="Key id (key_…), from `veil keys list`.")],
) -> None:
    """Revoke a key: it gets 401 from its next request."""
    from veil.jobs import store
    from veil.jobs.worker import utcnow

    _settings, db = _database()
    try:
        now = utcnow()
        with db.begin() as session:
            row = store.get_api_key(session=session, key_id=key_id)
            revoked = store.revoke_api_key(session=session, key_id=key_id, now=now)
            if revoked and row is not None:
                store.append_audit(
                    session=session,
                    actor="cli",
                    action="key.revoke",
                    outcome="ok",
                    now=now,
                    tenant_id=row.tenant_id,
                )
    finally:
        db.dispose()
    if not revoked:
        typer.echo(f"error: no active key {key_id}", err=True)
        raise typer.Exit(1)
    typer.echo(f"revoked {key_id}")


def register(app: typer.Typer) -> None:
    app.command("serve", epilog=settings_help())(serve)
    app.add_typer(keys_app, name="keys")
