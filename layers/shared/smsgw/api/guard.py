"""Guards of the push endpoint, which the platform calls without signing anything.

The only secrets are the token in the URL and, optionally, the source addresses. The
token is compared in constant time, and read from Secrets Manager (cached) so rotating
it needs no deployment.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Callable

from smsgw.domain.errors import Forbidden


class TokenGuard:
    """``accepted`` gives the tokens valid now: the current one and, while a rotation is
    under way, the previous one, so pushes keep landing until the platform has the new URL."""

    def __init__(self, accepted: Callable[[], list[str]]) -> None:
        self._accepted = accepted

    def check(self, presented: str) -> None:
        given = presented.encode("utf-8")
        # Compare with every token (no early exit), each in constant time.
        matches = [hmac.compare_digest(given, token.encode("utf-8")) for token in self._accepted() if token]
        if not any(matches):
            raise Forbidden("forbidden")


class SourceAllowList:
    """Addresses and networks (``221.179.172.68, 124.251.7.0/24``); empty allows any."""

    def __init__(self, setting: str) -> None:
        self._networks = [
            ipaddress.ip_network(part.strip(), strict=False) for part in setting.split(",") if part.strip()
        ]

    def check(self, source_ip: str | None) -> None:
        if not self._networks:
            return
        try:
            address = ipaddress.ip_address(source_ip or "")
        except ValueError as err:
            raise Forbidden("forbidden") from err
        if not any(address in network for network in self._networks):
            raise Forbidden("forbidden")
