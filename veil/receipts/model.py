"""The receipt: what is signed, and the canonical bytes the signature covers.

Canonical form: the ``receipt`` object serialised as JSON with sorted keys, no whitespace
(``separators=(",", ":")``) and ASCII escapes, UTF-8 encoded. Any JSON library that can do those
three things reproduces the bytes, so the receipt can be checked without Veil.
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from veil.report import ModelInfo

if TYPE_CHECKING:
    from veil.receipts.keys import Keyring

__all__ = [
    "RECEIPT_FORMAT",
    "FileFacts",
    "Receipt",
    "ReceiptTimes",
    "Signature",
    "SignedReceipt",
    "canonical_json",
    "make_receipt",
    "receipt_spec",
    "sign_receipt",
    "spec_digest",
]

RECEIPT_FORMAT = "veil-receipt/1"
SHA256 = r"^[0-9a-f]{64}$"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FileFacts(_Model):
    sha256: str = Field(pattern=SHA256, description="SHA-256 of the file's bytes, hex.")
    size: int = Field(ge=0, description="Size in bytes.")
    content_type: str | None = Field(None, max_length=100, description="MIME type, when known.")
    name: str | None = Field(
        None, max_length=1000, description="File name; only present when the caller asked for names."
    )


class ReceiptTimes(_Model):
    created_at: datetime | None = Field(None, description="When the job was submitted (API jobs).")
    started_at: datetime | None = Field(None, description="When processing started.")
    finished_at: datetime = Field(description="When processing finished; also when the receipt was issued.")
    processing_s: float | None = Field(None, ge=0, description="Processing time in seconds.")


class Receipt(_Model):
    """The signed statement. It holds hashes, settings, model identities and counts, never boxes."""

    format: Literal["veil-receipt/1"] = Field("veil-receipt/1", description="Receipt format and version.")
    job_id: str | None = Field(None, max_length=64, description="API job id; unset for CLI runs.")
    veil_version: str = Field(max_length=40, description="Version of Veil that made the output.")
    mode: Literal["redact", "detect"] = Field(description="`redact` wrote an output; `detect` only looked.")
    kind: Literal["image", "video"] = Field(description="Kind of media.")
    input: FileFacts = Field(description="The file that was redacted.")
    output: FileFacts | None = Field(None, description="The redacted file (unset for `detect`).")
    spec: dict[str, Any] = Field(
        description="The redaction spec as run, without the webhook and without region boxes."
    )
    spec_sha256: str = Field(pattern=SHA256, description="SHA-256 of the canonical JSON of `spec`.")
    models: list[ModelInfo] = Field(description="Detector models: name, category and weights' SHA-256.")
    counts: dict[str, int] = Field(description="Tracks (video) or boxes (image) found per category.")
    frames: int | None = Field(None, ge=0, description="Frames in the input.")
    masked_frames: int | None = Field(None, ge=0, description="Frames with at least one mask.")
    times: ReceiptTimes


class Signature(_Model):
    alg: Literal["Ed25519"] = "Ed25519"
    key_id: str = Field(max_length=80, description="Which published key signed (`GET /v1/receipt-keys`).")
    value: str = Field(max_length=200, description="Base64 Ed25519 signature over the canonical receipt.")


class SignedReceipt(_Model):
    receipt: Receipt
    signature: Signature


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no whitespace, ASCII: the bytes a receipt's signature covers."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return text.encode("ascii")


def _without_boxes(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_boxes(v) for k, v in value.items() if k != "box"}
    if isinstance(value, list):
        return [_without_boxes(v) for v in value]
    return value


def receipt_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """The spec as a receipt states it: no webhook (a delivery address, perhaps with a token in it) and no
    boxes of regions, tracked regions or exclusion zones (where people were); their count, frames, time
    spans and methods stay."""
    out = {k: v for k, v in spec.items() if k != "webhook"}
    for name in ("regions", "tracked_regions", "exclusion_zones"):
        if isinstance(out.get(name), list):
            out[name] = _without_boxes(out[name])
    return out


def spec_digest(spec: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(spec)).hexdigest()


def make_receipt(*, spec: dict[str, Any], **facts: Any) -> Receipt:
    """A receipt for a run of ``spec`` (the full spec: it is trimmed by ``receipt_spec`` here)."""
    stated = receipt_spec(spec)
    return Receipt(spec=stated, spec_sha256=spec_digest(stated), **facts)


def sign_receipt(receipt: Receipt, keyring: Keyring) -> SignedReceipt:
    """Sign ``receipt`` with the keyring's current key."""
    payload = canonical_json(receipt.model_dump(mode="json"))
    value = keyring.sign(payload)
    return SignedReceipt(
        receipt=receipt,
        signature=Signature(key_id=keyring.key_id, value=base64.b64encode(value).decode("ascii")),
    )
