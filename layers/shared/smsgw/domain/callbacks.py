"""Callbacks (webhooks): where a request's events may be POSTed, and how they are signed.

**Where.** ``http``/``https`` only, no user name or password in the URL, and, in the cloud,
never an address that is not globally routable: private (10/8, 172.16/12, 192.168/16,
fc00::/7), loopback (127/8, ::1), link-local (169.254/16, where the instance metadata
lives; fe80::/10), shared (100.64/10), multicast, reserved or unspecified. Checked when
a URL is given (a literal address) and again at every delivery, on every address the
host name resolves to; the delivery then connects to the address it checked (a DNS
answer cannot change between the check and the connection). The local stack allows
loopback (``CallbackAllowLoopback``): its receivers run on this machine.

**How it is signed** (as Stripe signs its webhooks): header ``Smsgw-Signature:
t=<unix seconds>,v1=<hex>``, where ``<hex>`` is HMAC-SHA256 under the caller's callback
secret of ``"<t>." + body`` (the body's exact bytes). A receiver recomputes it, compares
in constant time, and refuses a ``t`` more than five minutes from its clock (a replay).
:func:`verify` is that check.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import time
from urllib.parse import urlsplit

MAX_URL_LENGTH = 2048
SIGNATURE_HEADER = "Smsgw-Signature"
EVENT_ID_HEADER = "Smsgw-Event-Id"
TOLERANCE_SECONDS = 300

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class CallbackUrlError(ValueError):
    """A callback URL the gateway will not POST to."""


def address_allowed(address: IpAddress, *, allow_loopback: bool = False) -> bool:
    """Whether a callback may be delivered to ``address``."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_loopback:
        return allow_loopback
    return address.is_global and not address.is_multicast


def check_url(url: str, *, allow_loopback: bool = False) -> str:
    """``url`` if a callback may go there (so far as the URL alone tells), else
    ``CallbackUrlError`` saying why."""
    if len(url) > MAX_URL_LENGTH:
        raise CallbackUrlError(f"is longer than {MAX_URL_LENGTH} characters")
    if not url.isascii() or any(c.isspace() for c in url):
        raise CallbackUrlError("must be an ASCII URL without spaces (encode the path)")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as err:
        raise CallbackUrlError("is not a URL") from err
    if parts.scheme not in ("http", "https"):
        raise CallbackUrlError("must be an http:// or https:// URL")
    if not parts.hostname:
        raise CallbackUrlError("names no host")
    if parts.username is not None or parts.password is not None:
        raise CallbackUrlError("must not hold a user name or password")
    if port == 0:
        raise CallbackUrlError("names port 0")
    try:
        address = ipaddress.ip_address(parts.hostname)
    except ValueError:
        host = parts.hostname.rstrip(".").lower()
        if (host == "localhost" or host.endswith(".localhost")) and not allow_loopback:
            raise CallbackUrlError("must not point to this host (localhost)") from None
        return url
    if not address_allowed(address, allow_loopback=allow_loopback):
        raise CallbackUrlError("must not point to a private, loopback or link-local address")
    return url


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``Smsgw-Signature`` header's value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify(
    secret: str, header: str, body: bytes, *, now: float | None = None, tolerance: int = TOLERANCE_SECONDS
) -> bool:
    """What a receiver does: True when ``header`` signs ``body`` under ``secret`` and its
    time is within ``tolerance`` seconds of ``now``."""
    fields: dict[str, list[str]] = {}
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        fields.setdefault(name, []).append(value)
    try:
        timestamp = int(fields["t"][0])
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    expected = sign(secret, timestamp, body).split("v1=", 1)[1]
    return any(hmac.compare_digest(expected, given) for given in fields.get("v1", []))
