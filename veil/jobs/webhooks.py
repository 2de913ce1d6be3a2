"""Signed webhook delivery, safe against server-side request forgery.

A webhook URL comes from an API caller, so Veil treats it as hostile: it must not let a caller make the
service talk to its own loopback, the private network, or a cloud metadata endpoint. Three rules do that:

1. The URL is http(s), carries no credentials, and every address its host resolves to is public
   (``validate_webhook_url``). Private, loopback, link-local, multicast, reserved and unspecified
   addresses, and IPv6 forms that embed one of those IPv4 addresses (mapped, 6to4, Teredo, NAT64), are
   refused unless the operator sets ``VEIL_WEBHOOK_ALLOW_PRIVATE=true``. Cloud metadata addresses and the
   unspecified address are refused even then: no legitimate receiver lives there.
2. The check runs again right before each attempt, because DNS answers change (DNS rebinding).
3. The connection goes to the address that was just checked: the request URL carries the IP, while the
   ``Host`` header and TLS SNI/certificate check use the original name. httpx never resolves the name
   itself, so a second, different DNS answer cannot redirect the request. Redirects are never followed.

Receivers verify the ``Veil-Signature`` header with :func:`verify` (or its few lines in any language)::

    Veil-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + raw body)>

Recompute the HMAC over the *raw* request body, compare in constant time, and reject timestamps older than
a few minutes to stop replays. ``Veil-Delivery`` is the same for every attempt of one delivery, so receivers
can drop duplicates; each attempt is signed afresh with its own timestamp.

Nothing here logs or puts in an error the URL (paths often hold tokens), the secret, or the body.
"""

from __future__ import annotations

import email.utils
import hashlib
import hmac
import ipaddress
import logging
import random
import socket
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx

from veil import __version__
from veil.errors import WebhookRefused

__all__ = [
    "SIGNATURE_HEADER",
    "DeliveryAttempt",
    "Resolver",
    "AttemptResult",
    "WebhookTarget",
    "attempt_once",
    "deliver",
    "resolve_host",
    "resolve_webhook_url",
    "sign",
    "validate_webhook_url",
    "verify",
]

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "Veil-Signature"
USER_AGENT = f"Veil-Webhook/{__version__}"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Sequence[str]]
"""``(host, port) -> IP address strings``. The default is :func:`resolve_host` (``socket.getaddrinfo``)."""

_METADATA_ADDRESSES: frozenset[IPAddress] = frozenset(
    {
        ipaddress.ip_address("169.254.169.254"),  # AWS, GCP, Azure, OpenStack, DigitalOcean
        ipaddress.ip_address("169.254.170.2"),  # AWS ECS task credentials
        ipaddress.ip_address("fd00:ec2::254"),  # AWS IMDS over IPv6
        ipaddress.ip_address("100.100.100.200"),  # Alibaba Cloud
    }
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
_RETRY_STATUSES = frozenset({408, 429})
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class WebhookTarget:
    """A webhook URL that passed the checks, with the addresses it resolved to at that moment."""

    url: httpx.URL
    host: str
    """The host in ASCII (IDNA) form, as sent in ``Host`` and SNI."""
    port: int
    addresses: tuple[str, ...]
    """Every address the host resolved to; all of them passed the checks."""


@dataclass(frozen=True)
class DeliveryAttempt:
    """One POST of one delivery, as recorded in the job's delivery log. Holds no URL, body or secret."""

    attempt: int
    """1-based attempt number."""
    status_code: int | None
    """HTTP status the receiver answered, or ``None`` when no response arrived."""
    error: str | None
    """Short reason when not delivered (``HTTP 500``, ``timeout``, ``webhook_url_refused: …``)."""
    at: datetime
    """When the attempt started (UTC)."""
    duration_ms: float
    delivered: bool


def resolve_host(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to, in resolver order, without duplicates. Raises ``OSError``."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    seen: dict[str, None] = {}
    for _family, _type, _proto, _canon, sockaddr in infos:
        seen.setdefault(str(sockaddr[0]).split("%", 1)[0], None)
    return list(seen)


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses an IPv6 address routes to, so ``::ffff:127.0.0.1`` is judged as ``127.0.0.1``."""
    found: list[ipaddress.IPv4Address] = []
    if ip.ipv4_mapped is not None:
        found.append(ip.ipv4_mapped)
    if ip.sixtofour is not None:
        found.append(ip.sixtofour)
    if ip.teredo is not None:
        found.extend(ip.teredo)
    if ip in _NAT64 or (ip in _IPV4_COMPATIBLE and int(ip) > 1):
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return found


_BROADCAST = ipaddress.IPv4Address("255.255.255.255")


def _refusal(ip: IPAddress, *, allow_private: bool) -> str | None:
    """Why ``ip`` is not a webhook target, with its article ("an unspecified address"), or ``None``
    when it is fine. The limited broadcast address is named as such (Python counts it as private)."""
    candidates: list[IPAddress] = [ip]
    if isinstance(ip, ipaddress.IPv6Address):  # judge the embedded IPv4 first: its reason is the telling one
        candidates[:0] = _embedded_ipv4(ip)
    for candidate in candidates:
        if candidate in _METADATA_ADDRESSES:
            return "a cloud metadata address"
        if candidate.is_unspecified:
            return "an unspecified address"
        if allow_private:
            continue
        for reason, hit in (
            ("a loopback address", candidate.is_loopback),
            ("a link-local address", candidate.is_link_local),
            ("a multicast address", candidate.is_multicast),
            ("the broadcast address", candidate == _BROADCAST),
            ("a private address", candidate.is_private),
            ("a reserved address", candidate.is_reserved),
            ("a non-global address", not candidate.is_global),
        ):
            if hit:
                return reason
    return None


def _parse(url: str | httpx.URL) -> tuple[httpx.URL, str, int]:
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise WebhookRefused("webhook URL is not a valid URL") from exc
    if parsed.scheme not in _DEFAULT_PORTS:
        raise WebhookRefused("webhook URL must use http or https")
    if parsed.userinfo:
        raise WebhookRefused("webhook URL must not contain credentials")
    host = parsed.raw_host.decode("ascii")
    if not host:
        raise WebhookRefused("webhook URL has no host")
    return parsed, host, parsed.port or _DEFAULT_PORTS[parsed.scheme]


def _check(addresses: Sequence[str], *, allow_private: bool) -> tuple[str, ...]:
    if not addresses:
        raise WebhookRefused("webhook host resolves to no address")
    for text in addresses:
        try:
            ip = ipaddress.ip_address(text)
        except ValueError as exc:
            raise WebhookRefused("webhook host resolves to an unparseable address") from exc
        reason = _refusal(ip, allow_private=allow_private)
        if reason is not None:
            hint = "" if allow_private else " (set VEIL_WEBHOOK_ALLOW_PRIVATE=true to allow private targets)"
            raise WebhookRefused(f"webhook host resolves to {reason}{hint}")
    return tuple(addresses)


def resolve_webhook_url(
    url: str | httpx.URL, *, allow_private: bool, resolver: Resolver = resolve_host
) -> WebhookTarget:
    """Check ``url`` and resolve its host; every resolved address must pass (see the module docstring).

    Raises ``WebhookRefused`` for a bad URL, a refused address, or a host that does not resolve.
    """
    parsed, host, port = _parse(url)
    try:
        addresses = resolver(host, port)
    except OSError as exc:
        raise WebhookRefused("webhook host does not resolve") from exc
    return WebhookTarget(parsed, host, port, _check(addresses, allow_private=allow_private))


def validate_webhook_url(url: str, *, allow_private: bool, resolver: Resolver = resolve_host) -> None:
    """Refuse (``WebhookRefused``, code ``webhook_url_refused``) a URL Veil must not call. Use at submit time
    so that callers hear about a bad URL at once; :func:`deliver` checks again before every attempt."""
    resolve_webhook_url(url, allow_private=allow_private, resolver=resolver)


def _mac(secret: bytes, timestamp: int, body: bytes) -> str:
    return hmac.new(secret, f"{timestamp}.".encode("ascii") + body, hashlib.sha256).hexdigest()


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    """The ``Veil-Signature`` value: ``t=<timestamp>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>``."""
    if not secret:
        raise ValueError("webhook secret must not be empty")
    return f"t={int(timestamp)},v1={_mac(secret, int(timestamp), body)}"


def verify(
    secret: bytes, header: str, body: bytes, *, tolerance_s: float = 300, now: float | None = None
) -> bool:
    """For receivers: ``True`` when ``header`` signs ``body`` with ``secret`` and its timestamp is within
    ``tolerance_s`` of ``now`` (default: the clock). Several ``v1=`` entries are accepted (secret rotation).
    Malformed headers give ``False``, never an exception."""
    if not secret:
        return False
    timestamp: int | None = None
    candidates: list[bytes] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            continue
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                return False
        elif key == "v1":
            candidates.append(value.encode("utf-8", "replace"))
    if timestamp is None or not candidates:
        return False
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_s:
        return False
    expected = _mac(secret, timestamp, body).encode("ascii")
    matched = False
    for candidate in candidates:  # compare all, so the time taken does not depend on which one matched
        matched |= hmac.compare_digest(expected, candidate)
    return matched


def _retry_after_s(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP date), or ``None``."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _host_header(target: WebhookTarget) -> str:
    host = f"[{target.host}]" if ":" in target.host else target.host
    return host if target.port == _DEFAULT_PORTS[target.url.scheme] else f"{host}:{target.port}"


def _post_pinned(
    client: httpx.Client,
    target: WebhookTarget,
    address: str,
    headers: dict[str, str],
    body: bytes,
    timeout_s: float,
) -> tuple[int, str | None]:
    """POST to ``address`` with ``target``'s Host and SNI; return status and ``Retry-After``. Body unread."""
    extensions = {}
    if target.url.scheme == "https" and target.host != address:
        extensions["sni_hostname"] = target.host  # TLS verifies the certificate against the real name
    request = client.build_request(
        "POST",
        target.url.copy_with(host=address),
        content=body,
        headers={**headers, "Host": _host_header(target)},
        timeout=httpx.Timeout(timeout_s),
        extensions=extensions,
    )
    response = client.send(request, stream=True, follow_redirects=False)
    try:
        return response.status_code, response.headers.get("Retry-After")
    finally:
        response.close()


@dataclass(frozen=True)
class _Outcome:
    status: int | None
    error: str | None
    retryable: bool
    retry_after: str | None = None


def _attempt(
    http: httpx.Client,
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    allow_private: bool,
    resolver: Resolver,
    timeout_s: float,
) -> _Outcome:
    """One attempt: check and resolve the URL again, then POST to the first address that connects."""
    try:
        parsed, host, port = _parse(url)
        target = WebhookTarget(parsed, host, port, _check(resolver(host, port), allow_private=allow_private))
        for index, address in enumerate(target.addresses):
            try:
                status, retry_after = _post_pinned(http, target, address, headers, body, timeout_s)
                break
            except (httpx.ConnectError, httpx.ConnectTimeout):
                if index == len(target.addresses) - 1:
                    raise  # a dual-stack host may refuse on one family; the last failure counts
    except WebhookRefused as exc:
        return _Outcome(None, f"{exc.code}: {exc.message}", retryable=False)
    except httpx.TimeoutException:
        return _Outcome(None, "timeout", retryable=True)
    except httpx.ConnectError:
        return _Outcome(None, "connect_error", retryable=True)
    except httpx.HTTPError as exc:
        return _Outcome(None, f"transport_error: {type(exc).__name__}", retryable=True)
    except OSError:  # from the resolver: DNS trouble is usually temporary
        return _Outcome(None, "dns_error", retryable=True)
    if 200 <= status < 300:
        return _Outcome(status, None, retryable=False)
    redirect = " (redirect not followed)" if 300 <= status < 400 else ""
    retryable = status >= 500 or status in _RETRY_STATUSES
    return _Outcome(status, f"HTTP {status}{redirect}", retryable=retryable, retry_after=retry_after)


@dataclass(frozen=True)
class AttemptResult:
    attempt: DeliveryAttempt
    retryable: bool
    """Worth another attempt (408, 429, 5xx, network trouble); 2xx, other 4xx, 3xx and refusals are not."""
    retry_after_s: float | None
    """The receiver's ``Retry-After``, in seconds, when it sent one."""


def attempt_once(
    url: str,
    body: bytes,
    *,
    event: str,
    delivery_id: str,
    number: int,
    secret: bytes,
    allow_private: bool,
    extra_headers: dict[str, str] | None = None,
    timeout_s: float = 10,
    client: httpx.Client | None = None,
    resolver: Resolver = resolve_host,
) -> AttemptResult:
    """One signed POST of ``body``, checked against SSRF first. ``extra_headers`` (a receiver's own auth)
    go out with it and are never logged. Never raises for network or receiver trouble."""
    http = client or httpx.Client(trust_env=False, follow_redirects=False)
    try:
        started_at, started = datetime.now(UTC), time.monotonic()
        headers = {
            **(extra_headers or {}),
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "Veil-Event": event,
            "Veil-Delivery": delivery_id,
            SIGNATURE_HEADER: sign(secret, int(time.time()), body),
        }
        outcome = _attempt(
            http, url, body, headers, allow_private=allow_private, resolver=resolver, timeout_s=timeout_s
        )
    finally:
        if client is None:
            http.close()
    delivered = outcome.error is None
    log.info(
        "webhook delivery=%s event=%s attempt=%d status=%s error=%s",
        delivery_id, event, number, outcome.status, outcome.error,
    )  # fmt: skip
    return AttemptResult(
        attempt=DeliveryAttempt(
            attempt=number,
            status_code=outcome.status,
            error=outcome.error,
            at=started_at,
            duration_ms=(time.monotonic() - started) * 1000.0,
            delivered=delivered,
        ),
        retryable=outcome.retryable and not delivered,
        retry_after_s=_retry_after_s(outcome.retry_after),
    )


def deliver(
    url: str,
    body: bytes,
    *,
    event: str,
    secret: bytes,
    allow_private: bool,
    max_attempts: int = 6,
    base_delay_s: float = 1.0,
    max_delay_s: float = 300,
    timeout_s: float = 10,
    client: httpx.Client | None = None,
    sleep: Callable[[float], None] = time.sleep,
    resolver: Resolver = resolve_host,
    rng: random.Random | None = None,
) -> list[DeliveryAttempt]:
    """POST ``body`` (the JSON job object) to ``url`` until a 2xx, a permanent failure, or ``max_attempts``.

    2xx is delivered. 3xx (never followed), and 4xx other than 408 and 429, are permanent failures, as is
    a URL that fails the SSRF checks (repeated before every attempt). 408, 429, 5xx, timeouts and network
    errors are retried after a full-jitter exponential backoff, ``uniform(0, min(max_delay_s,
    base_delay_s * 2**(n-1)))``, but never sooner than a ``Retry-After`` (capped at ``max_delay_s``).
    Returns every attempt; never raises for network or receiver trouble. ``client`` may be shared; it is
    never asked to follow redirects. ``resolver`` and ``rng`` exist for tests and custom DNS.
    """
    if max_attempts < 1:
        raise ValueError("max_attempts must be at least 1")
    rng = rng or random.Random()
    delivery_id = str(uuid.uuid4())
    # Our own client ignores proxy variables: a proxy would resolve the name itself and defeat pinning.
    http = client or httpx.Client(trust_env=False, follow_redirects=False)
    attempts: list[DeliveryAttempt] = []
    try:
        for number in range(1, max_attempts + 1):
            result = attempt_once(
                url,
                body,
                event=event,
                delivery_id=delivery_id,
                number=number,
                secret=secret,
                allow_private=allow_private,
                timeout_s=timeout_s,
                client=http,
                resolver=resolver,
            )
            attempts.append(result.attempt)
            if not result.retryable or number == max_attempts:
                break
            delay = rng.uniform(0.0, min(max_delay_s, base_delay_s * 2 ** (number - 1)))
            hinted = result.retry_after_s
            if hinted is not None:
                delay = max(delay, min(hinted, max_delay_s))
            sleep(delay)
    finally:
        if client is None:
            http.close()
    return attempts
