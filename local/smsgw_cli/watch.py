"""Polling a request's status until nothing of it is queued (``--wait``, ``--watch``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from smsgw_cli.client import GatewayClient
from smsgw_cli.models import Status

DEFAULT_INTERVAL = 2.0


@dataclass(frozen=True)
class Outcome:
    raw: dict[str, Any]  # the last reply, as sent (first page of recipients)
    status: Status
    settled: bool
    elapsed: float


def until_settled(
    client: GatewayClient,
    request_id: str,
    *,
    interval: float = DEFAULT_INTERVAL,
    timeout: float | None = None,
    on_change: Callable[[Status, float], None] = lambda _status, _elapsed: None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Outcome:
    """Poll every ``interval`` seconds until the request is settled or ``timeout`` passes
    (``None``: no limit). ``on_change`` hears each status whose state or counts changed."""
    start = clock()
    seen: tuple[str, tuple[tuple[str, int], ...]] | None = None
    while True:
        raw = client.status(request_id)
        status = Status.from_json(raw)
        elapsed = clock() - start
        state = (status.status, tuple(status.ordered_counts()))
        if state != seen:
            on_change(status, elapsed)
            seen = state
        if status.settled:
            return Outcome(raw, status, True, elapsed)
        if timeout is not None and elapsed >= timeout:
            return Outcome(raw, status, False, elapsed)
        sleep(interval if timeout is None else max(0.0, min(interval, timeout - elapsed)))
