"""POSTing callbacks without letting a URL reach inside the network (SSRF).

A callback URL is the caller's, so where it points is not trusted: every delivery
resolves the host itself, checks every address it resolves to
(``domain.callbacks.address_allowed``), and connects to an address it checked, never
to a name resolved again later (a DNS answer that changes between the check and the
connection, "DNS rebinding", gains nothing). TLS still verifies the certificate against
the URL's host name. No proxy from the environment, no redirect followed (a redirect is a
failed delivery: it could point anywhere).
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from urllib3.util import connection

from smsgw.domain.callbacks import address_allowed

USER_AGENT = "smsgw-callbacks/1"


class ForbiddenAddressError(NewConnectionError):
    """The host resolves to an address callbacks may not reach."""


def allowed_addresses(host: str, port: int, *, allow_loopback: bool) -> list[str]:
    """Every address ``host`` resolves to, if each may be reached; else ForbiddenAddress
    (one bad address is enough: a host that also resolves inside is not delivered to)."""
    found = [str(info[4][0]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]
    addresses = list(dict.fromkeys(found))
    for address in addresses:
        if not address_allowed(ipaddress.ip_address(address.split("%")[0]), allow_loopback=allow_loopback):
            raise PermissionError(f"{host} resolves to an address callbacks may not reach")
    return addresses


class _Pinned:
    """Resolves, checks and connects to a checked address (mixed into urllib3's connections)."""

    allow_loopback = False

    def _new_conn(self) -> socket.socket:
        conn: Any = self
        try:
            addresses = allowed_addresses(conn._dns_host, conn.port, allow_loopback=self.allow_loopback)
        except socket.gaierror as err:
            raise NameResolutionError(conn.host, conn, err) from err
        except PermissionError as err:
            raise ForbiddenAddressError(conn, str(err)) from err
        failure: Exception | None = None
        for address in addresses:
            try:
                return connection.create_connection(
                    (address, conn.port),
                    conn.timeout,
                    source_address=conn.source_address,
                    socket_options=conn.socket_options,
                )
            except TimeoutError as err:
                failure = ConnectTimeoutError(conn, f"connection to {conn.host} timed out")
                failure.__cause__ = err
            except OSError as err:
                failure = NewConnectionError(conn, f"failed to connect: {err}")
                failure.__cause__ = err
        raise failure or NewConnectionError(conn, "no address to connect to")


def _adapter(allow_loopback: bool) -> HTTPAdapter:
    http = type("PinnedHTTPConnection", (_Pinned, HTTPConnection), {"allow_loopback": allow_loopback})
    https = type("PinnedHTTPSConnection", (_Pinned, HTTPSConnection), {"allow_loopback": allow_loopback})
    http_pool = type("PinnedHTTPPool", (HTTPConnectionPool,), {"ConnectionCls": http})
    https_pool = type("PinnedHTTPSPool", (HTTPSConnectionPool,), {"ConnectionCls": https})

    class PinnedAdapter(HTTPAdapter):
        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            super().init_poolmanager(*args, **kwargs)
            self.poolmanager.pool_classes_by_scheme = {"http": http_pool, "https": https_pool}

    return PinnedAdapter(max_retries=0)


@dataclass(frozen=True)
class Answer:
    status: int | None  # None: no answer (refused, timed out, a forbidden address...)
    reason: str

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class WebhookPoster:
    """POSTs a signed body to a callback URL, guarded as described above."""

    def __init__(
        self, *, allow_loopback: bool = False, connect_timeout: float = 3.05, read_timeout: float = 10.0
    ) -> None:
        self._session = requests.Session()
        self._session.trust_env = False  # no proxy, no .netrc from the environment
        adapter = _adapter(allow_loopback)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        self._timeout = (connect_timeout, read_timeout)

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> Answer:
        try:
            response = self._session.post(
                url,
                data=body,
                headers={"Content-Type": "application/json", "User-Agent": USER_AGENT, **headers},
                timeout=self._timeout,
                allow_redirects=False,
            )
        except requests.ConnectionError as err:
            forbidden = _caused_by(err, ForbiddenAddressError)
            return Answer(None, "forbidden address" if forbidden else "no connection")
        except requests.Timeout:
            return Answer(None, "timed out")
        except requests.RequestException as err:
            return Answer(None, type(err).__name__)
        response.close()
        return Answer(response.status_code, response.reason or "")


def _caused_by(err: BaseException, kind: type[BaseException]) -> bool:
    seen: BaseException | None = err
    for _ in range(10):
        if seen is None:
            return False
        if isinstance(seen, kind):
            return True
        reason = getattr(seen, "reason", None)
        nxt = reason if isinstance(reason, BaseException) else seen.__cause__ or seen.__context__
        if nxt is None and seen.args and isinstance(seen.args[0], BaseException):
            nxt = seen.args[0]
        seen = nxt
    return False
