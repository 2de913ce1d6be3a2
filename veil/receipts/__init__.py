"""Signed redaction receipts: proof, checkable offline by anyone holding the public key, that a given output
is the redaction of a given input, made with given models and settings by a given Veil version.

``model`` holds the receipt (what is signed) and its canonical bytes; ``keys`` the Ed25519 signing key
and the published public keys (``cryptography`` does the signing); ``verify`` checks a receipt and,
optionally, the files it names. Receipts carry no personal data: no boxes, no detections, and no file
names unless the caller asks for them.
"""

from veil.receipts.keys import Keyring, PublicKey, ReceiptKeyError, key_id_of, load_public_keys
from veil.receipts.model import (
    RECEIPT_FORMAT,
    FileFacts,
    Receipt,
    ReceiptTimes,
    Signature,
    SignedReceipt,
    canonical_json,
    receipt_spec,
    sign_receipt,
)
from veil.receipts.verify import ReceiptInvalid, Verified, verify_receipt

__all__ = [
    "RECEIPT_FORMAT",
    "FileFacts",
    "Keyring",
    "PublicKey",
    "Receipt",
    "ReceiptInvalid",
    "ReceiptKeyError",
    "ReceiptTimes",
    "Signature",
    "SignedReceipt",
    "Verified",
    "canonical_json",
    "key_id_of",
    "load_public_keys",
    "receipt_spec",
    "sign_receipt",
    "verify_receipt",
]
