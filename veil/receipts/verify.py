"""Check a receipt offline: its spec digest, its signature against the given public keys, and, when
given, that the input and output files are the ones it states (by SHA-256). Every failure is a
``ReceiptInvalid`` whose message says what does not match."""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from veil.errors import VeilError
from veil.receipts.keys import PublicKey
from veil.receipts.model import SignedReceipt, canonical_json, spec_digest

__all__ = ["ReceiptInvalid", "Verified", "verify_receipt"]


class ReceiptInvalid(VeilError):
    code = "receipt_invalid"


@dataclass(frozen=True)
class Verified:
    receipt: SignedReceipt
    key_id: str
    checked: tuple[str, ...]
    """What was checked besides the signature: ``input``, ``output``."""


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_receipt(
    data: Any,
    public_keys: list[PublicKey],
    *,
    input_path: Path | None = None,
    output_path: Path | None = None,
) -> Verified:
    """Verify the parsed JSON of a receipt file. The signature is checked over the receipt exactly as it
    is in the file (its canonical bytes), not over a re-serialised copy."""
    if not isinstance(data, dict) or not isinstance(data.get("receipt"), dict):
        raise ReceiptInvalid("not a Veil receipt: no `receipt` object")
    try:
        signed = SignedReceipt.model_validate(data)
    except ValidationError as exc:
        where = ", ".join(".".join(str(p) for p in e.get("loc", ())) for e in exc.errors()[:5])
        raise ReceiptInvalid(f"not a valid Veil receipt (fields: {where})") from exc
    raw: dict[str, Any] = data["receipt"]

    if spec_digest(raw.get("spec", {})) != raw.get("spec_sha256"):
        raise ReceiptInvalid(
            "the spec in the receipt was changed after signing: it no longer matches its spec_sha256"
        )
    key_id = signed.signature.key_id
    keys = [k for k in public_keys if k.key_id == key_id]
    if not keys:
        known = ", ".join(sorted({k.key_id for k in public_keys})) or "none"
        raise ReceiptInvalid(
            f"the receipt was signed by key {key_id}, which is not among the public keys given ({known}); "
            "pass the issuer's keys with --public-key (GET /v1/receipt-keys publishes them)"
        )
    try:
        signature = base64.b64decode(signed.signature.value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ReceiptInvalid("the signature is not valid base64") from exc
    if not keys[0].verifies(signature, canonical_json(raw)):
        raise ReceiptInvalid(
            f"the signature does not match: the receipt was changed after key {key_id} signed it"
        )

    checked: list[str] = []
    receipt = signed.receipt
    if input_path is not None:
        actual = _sha256_of(input_path)
        if actual != receipt.input.sha256:
            raise ReceiptInvalid(
                f"the input file does not match the receipt: its sha256 is {actual}, "
                f"the receipt states {receipt.input.sha256}"
            )
        checked.append("input")
    if output_path is not None:
        if receipt.output is None:
            raise ReceiptInvalid("this receipt is for a detect run: it states no output file")
        actual = _sha256_of(output_path)
        if actual != receipt.output.sha256:
            raise ReceiptInvalid(
                f"the output file does not match the receipt: its sha256 is {actual}, "
                f"the receipt states {receipt.output.sha256}"
            )
        checked.append("output")
    return Verified(receipt=signed, key_id=key_id, checked=tuple(checked))
