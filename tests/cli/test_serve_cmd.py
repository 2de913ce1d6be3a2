"""``veil serve --help`` and ``veil keys``: the same settings and job store as the server."""

from __future__ import annotations

import json
import os

from typer.testing import CliRunner

from veil.auth.keys import find_api_key
from veil.cli import app
from veil.jobs.db import Database
from veil.settings import Settings, get_settings

runner = CliRunner()


def test_serve_help_lists_every_setting() -> None:
    result = runner.invoke(app, ["serve", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for name in Settings.model_fields:
        assert f"VEIL_{name.upper()}" in result.output


def test_keys_create_list_revoke_share_the_job_store() -> None:
    created = runner.invoke(
        app, ["keys", "create", "--name", "ci", "--scopes", "jobs:read,admin", "--tenant", "acme", "--json"]
    )
    assert created.exit_code == 0, created.output
    key = json.loads(created.stdout)
    assert key["key"].startswith("veil_") and key["webhook_secret"].startswith("whsec_")
    assert key["scopes"] == ["jobs:read", "admin"] and key["tenant"] == "acme"

    db = Database.from_settings(get_settings())  # what `veil serve` opens, from the same VEIL_DATA_DIR
    with db.begin() as session:
        found = find_api_key(session=session, key=key["key"])
        assert found is not None and found.tenant_id == "acme"
    assert os.environ["VEIL_DATA_DIR"] in str(db.engine.url)

    listed = json.loads(runner.invoke(app, ["keys", "list", "--json"]).stdout)["data"]
    assert [k["id"] for k in listed] == [key["id"]] and "key" not in listed[0]
    assert runner.invoke(app, ["keys", "revoke", key["id"]]).exit_code == 0
    assert runner.invoke(app, ["keys", "revoke", key["id"]]).exit_code == 1
    with db.begin() as session:
        assert find_api_key(session=session, key=key["key"]) is None
    db.dispose()


def test_keys_create_refuses_unknown_scopes() -> None:
    result = runner.invoke(app, ["keys", "create", "--name", "x", "--scopes", "jobs:read,root"])
    assert result.exit_code != 0 and "scopes" in result.output
