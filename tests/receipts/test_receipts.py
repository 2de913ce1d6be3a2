"""Receipts: signed, canonical, checkable with only the public key; any change to the receipt or the files
fails with a message that says what changed; rotation keeps old receipts verifiable."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from veil.receipts import (
    FileFacts,
    Keyring,
    ReceiptInvalid,
    ReceiptKeyError,
    ReceiptTimes,
    canonical_json,
    load_public_keys,
    sign_receipt,
    verify_receipt,
)
from veil.receipts.model import make_receipt
from veil.report import ModelInfo


def _facts(path: Path) -> FileFacts:
    return FileFacts(sha256=hashlib.sha256(path.read_bytes()).hexdigest(), size=path.stat().st_size)


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    src, out = tmp_path / "in.jpg", tmp_path / "out.jpg"
    src.write_bytes(b"original bytes" * 100)
    out.write_bytes(b"masked bytes" * 100)
    return src, out


def _signed(ring: Keyring, src: Path, out: Path, spec: dict[str, Any] | None = None) -> dict[str, Any]:
    receipt = make_receipt(
        spec=spec or {"mode": "redact", "method": "blur", "categories": {"face": {}}},
        job_id="job_1",
        veil_version="0.1.0",
        mode="redact",
        kind="image",
        input=_facts(src),
        output=_facts(out),
        models=[ModelInfo(name="centerface", category="face", sha256="a" * 64)],
        counts={"face": 3},
        frames=1,
        masked_frames=1,
        times=ReceiptTimes(finished_at=datetime(2026, 11, 30, 9, 0, tzinfo=UTC)),
    )
    data: dict[str, Any] = json.loads(json.dumps(sign_receipt(receipt, ring).model_dump(mode="json")))
    return data


def test_a_receipt_verifies_with_only_the_public_key(tmp_path: Path, files: tuple[Path, Path]) -> None:
    ring = Keyring.load(tmp_path / "keys")
    data = _signed(ring, *files)
    pem = tmp_path / "issuer.pem"
    pem.write_text(ring.published()[0]["public_key_pem"])
    result = verify_receipt(data, load_public_keys(pem), input_path=files[0], output_path=files[1])
    assert result.checked == ("input", "output") and result.key_id == ring.key_id
    assert "PRIVATE" not in pem.read_text()


def test_signing_is_deterministic(tmp_path: Path, files: tuple[Path, Path]) -> None:
    ring = Keyring.load(tmp_path / "keys")
    assert canonical_json(_signed(ring, *files)) == canonical_json(_signed(ring, *files))
    assert Keyring.load(tmp_path / "keys").key_id == ring.key_id, "the key is kept, not remade"


def test_a_changed_output_byte_fails(tmp_path: Path, files: tuple[Path, Path]) -> None:
    ring = Keyring.load(tmp_path / "keys")
    data = _signed(ring, *files)
    raw = bytearray(files[1].read_bytes())
    raw[10] ^= 1
    files[1].write_bytes(bytes(raw))
    with pytest.raises(ReceiptInvalid, match="the output file does not match the receipt: its sha256 is"):
        verify_receipt(data, list(ring.public_keys.values()), output_path=files[1])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r["spec"].update(method="pixelate"), "the spec in the receipt was changed after signing"),
        (
            lambda r: r.update(spec_sha256=hashlib.sha256(b"x").hexdigest()),
            "the spec in the receipt was changed after signing",
        ),
        (lambda r: r["counts"].update(face=2), "the signature does not match"),
        (lambda r: r["output"].update(sha256="0" * 64), "the signature does not match"),
    ],
)
def test_a_changed_field_fails(tmp_path: Path, files: tuple[Path, Path], change: Any, message: str) -> None:
    ring = Keyring.load(tmp_path / "keys")
    data = _signed(ring, *files)
    change(data["receipt"])
    with pytest.raises(ReceiptInvalid, match=message):
        verify_receipt(data, list(ring.public_keys.values()))


def test_re_signing_the_spec_with_its_digest_still_fails(tmp_path: Path, files: tuple[Path, Path]) -> None:
    ring = Keyring.load(tmp_path / "keys")
    data = _signed(ring, *files)
    data["receipt"]["spec"]["method"] = "box"
    data["receipt"]["spec_sha256"] = hashlib.sha256(canonical_json(data["receipt"]["spec"])).hexdigest()
    with pytest.raises(ReceiptInvalid, match="the signature does not match"):
        verify_receipt(data, list(ring.public_keys.values()))


def test_another_issuers_key_is_named(tmp_path: Path, files: tuple[Path, Path]) -> None:
    data = _signed(Keyring.load(tmp_path / "a"), *files)
    other = Keyring.load(tmp_path / "b")
    with pytest.raises(ReceiptInvalid, match="which is not among the public keys given"):
        verify_receipt(data, list(other.public_keys.values()))


def test_rotation_keeps_old_receipts_verifiable(tmp_path: Path, files: tuple[Path, Path]) -> None:
    old = Keyring.load(tmp_path / "keys")
    before = _signed(old, *files)
    new = Keyring.rotate(tmp_path / "keys")
    after = _signed(new, *files)
    assert new.key_id != old.key_id
    published = new.published()
    assert [k["current"] for k in published] == [True, False] and published[0]["key_id"] == new.key_id
    listing = tmp_path / "keys.json"
    listing.write_text(json.dumps({"keys": published}))
    keys = load_public_keys(listing)
    assert verify_receipt(before, keys).key_id == old.key_id
    assert verify_receipt(after, keys).key_id == new.key_id


def test_key_ids_in_a_key_list_are_recomputed(tmp_path: Path, files: tuple[Path, Path]) -> None:
    ring, other = Keyring.load(tmp_path / "a"), Keyring.load(tmp_path / "b")
    data = _signed(ring, *files)
    forged = other.published()[0] | {"key_id": ring.key_id}  # another key claiming the issuer's id
    listing = tmp_path / "keys.json"
    listing.write_text(json.dumps({"keys": [forged]}))
    with pytest.raises(ReceiptInvalid, match="not among the public keys"):
        verify_receipt(data, load_public_keys(listing))


def test_receipts_carry_no_boxes_and_no_webhook(tmp_path: Path, files: tuple[Path, Path]) -> None:
    spec = {
        "mode": "redact",
        "webhook": {"url": "https://hooks.example.org/x?token=s3cret"},
        "regions": [{"box": [1, 2, 30, 40], "start": 1.0, "end": 2.0, "method": "black", "shape": "rect"}],
        "exclusion_zones": [{"box": [5, 5, 9, 9]}],
        "tracked_regions": [
            {"keyframes": [{"frame": 3, "box": [1, 1, 5, 5]}, {"frame": 9, "box": [2, 2, 6, 6]}]}
        ],
    }
    data = _signed(Keyring.load(tmp_path / "keys"), *files, spec=spec)
    text = json.dumps(data)
    assert "box" not in text and "s3cret" not in text and "webhook" not in text
    region = {"start": 1.0, "end": 2.0, "method": "black", "shape": "rect"}
    assert data["receipt"]["spec"]["regions"] == [region], "time span and method stay, the box goes"
    assert data["receipt"]["spec"]["tracked_regions"] == [{"keyframes": [{"frame": 3}, {"frame": 9}]}]
    assert data["receipt"]["input"]["name"] is None


def test_not_a_receipt_and_bad_keys(tmp_path: Path) -> None:
    with pytest.raises(ReceiptInvalid, match="not a Veil receipt"):
        verify_receipt({"hello": 1}, [])
    bad = tmp_path / "bad.pem"
    bad.write_text("not a key")
    with pytest.raises(ReceiptKeyError):
        load_public_keys(bad)
    assert (tmp_path / "keys").exists() is False
    ring = Keyring.load(tmp_path / "keys")
    assert oct((tmp_path / "keys" / "signing-key.pem").stat().st_mode & 0o777) == "0o600"
    assert load_public_keys(tmp_path / "keys")[0].key_id == ring.key_id
