"""The ``veil`` command. Each command module registers itself on ``app``.

Command modules, named for their commands: ``redact_cmd`` (redact, detect), ``models_cmd`` (models …),
``eval_cmd`` (eval), ``serve_cmd`` (serve), ``keys_cmd`` (keys …), ``jobs_cmd`` (jobs …),
``worker_cmd`` (worker) and ``receipts_cmd`` (verify, receipts …). They import lazily-heavy
modules inside the command functions so that ``veil --help`` stays fast.
"""

from __future__ import annotations

import importlib

import typer

__all__ = ["app", "main"]

app = typer.Typer(
    name="veil",
    help="Find and mask faces and licence plates in images and video, on your own machines.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

_COMMAND_MODULES = (
    "redact_cmd",
    "models_cmd",
    "eval_cmd",
    "serve_cmd",
    "keys_cmd",
    "jobs_cmd",
    "worker_cmd",
    "receipts_cmd",
)

for _name in _COMMAND_MODULES:
    try:
        _module = importlib.import_module(f"veil.cli.{_name}")
    except ModuleNotFoundError as exc:  # a command module not written yet
        if exc.name != f"veil.cli.{_name}":
            raise
        continue
    _module.register(app)


def main() -> None:
    from veil.settings import SettingsInvalid

    try:
        app()
    except SettingsInvalid as exc:  # one line naming the variable, not a pydantic-settings traceback
        typer.echo(f"error: {exc.message} [{exc.code}]", err=True)
        raise SystemExit(2) from None
