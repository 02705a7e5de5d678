"""Every boto3 client of the gateway, made one way: with timeouts and retries that fit a
function's timeout.

botocore's defaults (60 s to connect, 60 s to read, "legacy" retries: up to ten tries for
DynamoDB) can outlast a whole 29-30 s invocation, so one stalled call would cost it. Each
client here gets short timeouts and the "standard" retry mode (exponential backoff with
jitter, throttling and transient errors retried, a retry quota), so the worst case of
one call is known: ``attempts * (connect + read)`` plus backoff of a second or two.
"""

from __future__ import annotations

import threading
from typing import Any

import boto3
from botocore.config import Config

from smsgw.adapters.limits import ClientLimits


def config(limits: ClientLimits) -> Config:
    """The botocore ``Config`` of ``limits``."""
    return Config(
        connect_timeout=limits.connect_timeout,
        read_timeout=limits.read_timeout,
        retries={"mode": "standard", "total_max_attempts": limits.max_attempts},
        # The handlers of one container share a client across threads (the parallel
        # writes of a push or of the frequency caps): room for all of them.
        max_pool_connections=16,
    )


def client(service: str, limits: ClientLimits) -> Any:
    """A boto3 client for ``service`` with ``limits`` (region and endpoint from the environment)."""
    return boto3.client(service, config=config(limits))  # type: ignore[call-overload]


class LazyClient:
    """A client of ``service`` made when first used, once: for a route that few invocations
    take, so that the others do not pay for it at cold start (~5-10 ms a client)."""

    def __init__(self, service: str, limits: ClientLimits) -> None:
        self._service = service
        self._limits = limits
        self._client: Any = None
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = client(self._service, self._limits)
        return getattr(self._client, name)
