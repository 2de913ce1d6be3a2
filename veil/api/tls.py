"""TLS for ``veil serve``: TLS 1.2 at least, TLS 1.3 whenever the client can (OpenSSL picks the highest
version both sides offer), no TLS compression, and the server's cipher order for TLS 1.2."""

from __future__ import annotations

import ssl

__all__ = ["harden"]


def harden(context: ssl.SSLContext) -> ssl.SSLContext:
    """Apply Veil's TLS floor to the server context Uvicorn built from the certificate and key."""
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.maximum_version = ssl.TLSVersion.MAXIMUM_SUPPORTED
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    context.set_ciphers("ECDHE+AESGCM:ECDHE+CHACHA20")  # TLS 1.2 suites; TLS 1.3 suites are all strong
    return context
