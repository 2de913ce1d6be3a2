"""``veil keys …``: create, list and revoke API keys.

They read the same ``Settings`` as ``veil serve``, so a key made with ``veil keys create`` in a
shell works against ``veil serve`` at once: they share the job store (``VEIL_DATABASE_URL``,
default the SQLite file in ``VEIL_DATA_DIR``). Heavy imports happen inside the commands so
``veil --help`` stays fast.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from veil.auth.audit import append_audit
from veil.auth.keys import create_api_key, get_api_key, list_api_keys, revoke_api_key

__all__ = ["register"]


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
    from veil.auth.schemas import SCOPES, ApiKeyCreated, api_key_public
    from veil.auth.secrets import load_server_secret, webhook_secret
    from veil.clock import utcnow

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
            row, key = create_api_key(
                session=session,
                name=name,
                tenant_id=tenant,
                scopes=wanted,
                now=now,
                rate_limit_per_minute=rate_limit,
            )
            append_audit(
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

    from veil.auth.schemas import ApiKeysPublic, api_key_public

    _settings, db = _database()
    try:
        with db.begin() as session:
            rows = list_api_keys(session=session, tenant_id=tenant)
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
    from veil.clock import utcnow

    _settings, db = _database()
    try:
        now = utcnow()
        with db.begin() as session:
            row = get_api_key(session=session, key_id=key_id)
            revoked = revoke_api_key(session=session, key_id=key_id, now=now)
            if revoked and row is not None:
                append_audit(
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
    app.add_typer(keys_app, name="keys")
