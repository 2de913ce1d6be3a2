"""``veil verify`` and ``veil receipts …``: check signed receipts offline, list and rotate the signing key.

``veil verify`` needs nothing but the receipt and the issuer's public keys (a PEM file, or the JSON of
``GET /v1/receipt-keys`` / ``veil receipts keys --json``); without ``--public-key`` it uses the keys of
this machine's ``VEIL_DATA_DIR``. It exits 0 when every check passes and 1 with one line saying what
does not match.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from veil.receipts import PublicKey

__all__ = ["register"]

receipts_app = typer.Typer(help="Signed receipts: the signing key and its public keys.", no_args_is_help=True)


def _local_public_keys() -> list[PublicKey]:
    from veil.receipts import load_public_keys
    from veil.settings import get_settings

    settings = get_settings()
    keys: list[PublicKey] = []
    directory = settings.data_dir / "receipt-keys"
    if directory.is_dir():
        keys.extend(load_public_keys(directory))
    if settings.receipt_key_file is not None:
        keys.extend(load_public_keys(settings.receipt_key_file))
    return keys


def verify(
    receipt: Annotated[Path, typer.Argument(help="The receipt JSON file.", exists=True, dir_okay=False)],
    input_file: Annotated[
        Path | None,
        typer.Option("--input", help="Check that this is the input the receipt states.", exists=True),
    ] = None,
    output_file: Annotated[
        Path | None,
        typer.Option("--output", help="Check that this is the output the receipt states.", exists=True),
    ] = None,
    public_key: Annotated[
        list[Path] | None,
        typer.Option(
            "--public-key",
            help="Issuer's public key: PEM, or the JSON of GET /v1/receipt-keys (repeatable). "
            "Unset: the keys in this machine's VEIL_DATA_DIR.",
            exists=True,
        ),
    ] = None,
) -> None:
    """Check a receipt's signature offline, and that the given files are the ones it states."""
    from veil.errors import VeilError
    from veil.receipts import load_public_keys, verify_receipt

    try:
        keys: list[PublicKey] = []
        if public_key:
            for path in public_key:
                keys.extend(load_public_keys(path))
        else:
            keys = _local_public_keys()
            if not keys:
                raise typer.BadParameter("no public keys here; pass the issuer's with --public-key")
        try:
            data = json.loads(receipt.read_bytes())
        except (OSError, ValueError) as exc:
            raise typer.BadParameter(f"{receipt.name} is not a JSON file") from exc
        result = verify_receipt(data, keys, input_path=input_file, output_path=output_file)
    except VeilError as exc:
        typer.echo(f"FAILED: {exc.message}", err=True)
        raise typer.Exit(code=1) from None
    except typer.BadParameter as exc:
        typer.echo(f"FAILED: {exc}", err=True)
        raise typer.Exit(code=1) from None
    stated = result.receipt.receipt
    what = f"job {stated.job_id}" if stated.job_id else "a CLI run"
    lines = [f"OK: receipt of {what} ({stated.mode}, {stated.kind}, Veil {stated.veil_version})"]
    lines.append(f"  signature: valid, key {result.key_id}")
    for name in ("input", "output"):
        facts = getattr(stated, name)
        if facts is None:
            continue
        state = "matches" if name in result.checked else "not checked (pass --" + name + " FILE)"
        lines.append(f"  {name}: sha256 {facts.sha256} {state}")
    typer.echo("\n".join(lines))


def keys(
    as_json: Annotated[bool, typer.Option("--json", help="Print the JSON of GET /v1/receipt-keys.")] = False,
) -> None:
    """List the public keys of this machine's receipt signing keys (made on first use)."""
    from veil.receipts import Keyring
    from veil.settings import get_settings

    settings = get_settings()
    ring = Keyring.load(settings.data_dir / "receipt-keys", key_file=settings.receipt_key_file)
    published = ring.published()
    if as_json:
        typer.echo(json.dumps({"keys": published}, indent=2))
        return
    for key in published:
        typer.echo(f"{key['key_id']}{'  (current)' if key['current'] else ''}")


def rotate_key() -> None:
    """Make a new signing key; the old public key stays published, so old receipts still verify."""
    from veil.receipts import Keyring
    from veil.settings import get_settings

    settings = get_settings()
    if settings.receipt_key_file is not None:
        typer.echo("VEIL_RECEIPT_KEY_FILE is set: replace that file to rotate", err=True)
        raise typer.Exit(code=1)
    ring = Keyring.rotate(settings.data_dir / "receipt-keys")
    typer.echo(f"new signing key {ring.key_id}; restart `veil serve` to sign with it")


def register(app: typer.Typer) -> None:
    app.command("verify")(verify)
    receipts_app.command("keys")(keys)
    receipts_app.command("rotate-key")(rotate_key)
    app.add_typer(receipts_app, name="receipts")
