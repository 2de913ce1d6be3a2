"""``veil serve`` over TLS with a certificate made in the test: the handshake offers TLS 1.3, TLS 1.2 still
works, older versions are refused, and X-Forwarded-Proto is believed only from trusted proxies."""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.live_server import LiveServer

pytestmark = pytest.mark.slow


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for localhost and 127.0.0.1, and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


@contextmanager
def tls_server(data_dir: Path, cert: Path, key: Path, **env: str) -> Iterator[LiveServer]:
    with LiveServer(data_dir, {"VEIL_WORKERS": "1", **env}, tls=(cert, key)) as server:
        yield server


def trusting(cert: Path, *, maximum: ssl.TLSVersion | None = None) -> ssl.SSLContext:
    """A client trusting ``cert``; with ``maximum``, one that offers nothing newer (and, for old versions,
    lowers OpenSSL's own security level, so that only the server can be what refuses)."""
    context = ssl.create_default_context(cafile=str(cert))
    if maximum is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
            context.maximum_version = maximum
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
    return context


def handshake(port: int, context: ssl.SSLContext) -> str | None:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            return tls.version()


def link_for(url: str, cert: Path, key: str, media_dir: Path, **headers: str) -> str:
    with httpx.Client(base_url=url, verify=trusting(cert), timeout=120) as client:
        auth = {"Authorization": f"Bearer {key}"}
        with (media_dir / "street.jpg").open("rb") as fh:
            job = client.post(
                "/v1/jobs",
                params={"wait": 60},
                headers=auth,
                files={"file": ("street.jpg", fh, "image/jpeg"), "spec": (None, '{"mode":"redact"}')},
            ).json()
        assert job["state"] == "succeeded", job
        made = client.post(f"/v1/jobs/{job['id']}/links", headers={**auth, **headers})
        assert made.status_code == 201, made.text
        return str(made.json()["url"])


def test_tls_offers_1_3_keeps_1_2_and_refuses_older(tmp_path: Path, media_dir: Path) -> None:
    cert, key = make_certificate(tmp_path)
    with tls_server(tmp_path / "data", cert, key) as server:
        url, port = server.url, server.port
        assert handshake(port, trusting(cert)) == "TLSv1.3"
        assert handshake(port, trusting(cert, maximum=ssl.TLSVersion.TLSv1_2)) == "TLSv1.2"
        with pytest.raises(ssl.SSLError) as refused:
            handshake(port, trusting(cert, maximum=ssl.TLSVersion.TLSv1_1))
        assert "NO_PROTOCOLS_AVAILABLE" not in str(refused.value), "the server refused, not our own OpenSSL"
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{url}/healthz", timeout=5)  # an untrusted certificate is not silently accepted

        api_key = str(server.create_key(name="tls")["key"])
        # from a trusted proxy (loopback, the default) X-Forwarded-Proto is believed
        assert link_for(url, cert, api_key, media_dir, **{"X-Forwarded-Proto": "http"}).startswith("http://")
        assert link_for(url, cert, api_key, media_dir).startswith("https://127.0.0.1:")


def test_forwarded_headers_from_untrusted_peers_are_ignored(tmp_path: Path, media_dir: Path) -> None:
    cert, key = make_certificate(tmp_path)
    with tls_server(tmp_path / "data", cert, key, VEIL_TRUSTED_PROXIES="10.9.8.7") as server:
        api_key = str(server.create_key(name="tls")["key"])
        link = link_for(server.url, cert, api_key, media_dir, **{"X-Forwarded-Proto": "http"})
        assert link.startswith("https://127.0.0.1:"), link
