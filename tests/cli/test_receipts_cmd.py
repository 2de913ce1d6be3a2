"""``veil redact --report`` writes a signed receipt per file; ``veil verify`` checks it, offline."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from typer.testing import CliRunner

from veil.cli import app

runner = CliRunner()


def test_report_run_writes_receipts_that_verify_elsewhere(
    tmp_path: Path, media_dir: Path, monkeypatch
) -> None:
    out = tmp_path / "out"
    src = media_dir / "street.jpg"
    done = runner.invoke(
        app,
        ["redact", str(src), "-o", str(out / "street.jpg"), "--report", str(out / "report.json")],
    )
    assert done.exit_code == 0, done.output
    receipt = out / "report.receipts" / "street.jpg.receipt.json"
    report = json.loads((out / "report.json").read_text())
    assert report["files"][0]["receipt"] == str(receipt)
    stated = json.loads(receipt.read_text())["receipt"]
    assert stated["input"]["name"] is None and "street" not in receipt.read_text()
    assert stated["counts"] == report["files"][0]["counts"] and stated["models"]

    keys = runner.invoke(app, ["receipts", "keys", "--json"])
    assert keys.exit_code == 0, keys.output
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keys.json").write_text(keys.stdout)
    shutil.copy(receipt, elsewhere / "receipt.json")
    monkeypatch.setenv("VEIL_DATA_DIR", str(tmp_path / "empty-data-dir"))

    ok = runner.invoke(
        app,
        [
            "verify",
            str(elsewhere / "receipt.json"),
            "--input",
            str(src),
            "--output",
            str(out / "street.jpg"),
            "--public-key",
            str(elsewhere / "keys.json"),
        ],
    )
    assert ok.exit_code == 0, ok.output
    assert "signature: valid" in ok.stdout and "output: sha256" in ok.stdout and "matches" in ok.stdout

    no_keys = runner.invoke(app, ["verify", str(elsewhere / "receipt.json")])
    assert no_keys.exit_code == 1 and "pass the issuer's with --public-key" in no_keys.output

    wrong_input = runner.invoke(
        app,
        [
            "verify",
            str(elsewhere / "receipt.json"),
            "--input",
            str(out / "street.jpg"),
            "--public-key",
            str(elsewhere / "keys.json"),
        ],
    )
    assert wrong_input.exit_code == 1 and "FAILED: the input file does not match" in wrong_input.output


def test_rotate_key_keeps_the_old_public_key(tmp_path: Path) -> None:
    first = runner.invoke(app, ["receipts", "keys"]).stdout.split()[0]
    rotated = runner.invoke(app, ["receipts", "rotate-key"])
    assert rotated.exit_code == 0 and first not in rotated.stdout
    listed = json.loads(runner.invoke(app, ["receipts", "keys", "--json"]).stdout)["keys"]
    assert [k["current"] for k in listed] == [True, False] and listed[1]["key_id"] == first
