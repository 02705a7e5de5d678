"""Polling a request's status until it gets somewhere: nothing of it queued
(``send --wait``) or every recipient in a final state (``status --watch``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from smsgw_cli.client import GatewayClient
from smsgw_cli.models import Status

DEFAULT_INTERVAL = 2.0
# With no change for this long, a heartbeat line says the wait goes on (and why).
DEFAULT_HEARTBEAT = 10.0


@dataclass(frozen=True)
class WatchResult:
    raw: dict[str, Any]  # the last reply, as sent (first page of recipients)
    status: Status
    reached: bool  # the goal was reached (else the time ran out)
    elapsed: float


def submitted(status: Status) -> bool:
    """Nothing left to submit: no recipient is queued (``send --wait``)."""
    return status.settled


def final(status: Status) -> bool:
    """Every recipient is delivered, failed, unknown, expired, cancelled, rejected or opted
    out (``status --watch``): delivery reports included."""
    return status.finished


def until(
    client: GatewayClient,
    request_id: str,
    goal: Callable[[Status], bool],
    *,
    interval: float = DEFAULT_INTERVAL,
    timeout: float | None = None,
    on_change: Callable[[Status, float], None] = lambda _status, _elapsed: None,
    on_heartbeat: Callable[[Status, float, float], None] = lambda _status, _elapsed, _quiet: None,
    heartbeat: float = DEFAULT_HEARTBEAT,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> WatchResult:
    """Poll every ``interval`` seconds until ``goal`` holds for the status or ``timeout``
    passes (``None``: no limit). ``on_change`` hears each status whose state or counts
    changed; ``on_heartbeat`` (status, elapsed, seconds without a change) hears that the
    wait goes on, every ``heartbeat`` seconds without a change."""
    start = clock()
    seen: tuple[str, tuple[tuple[str, int], ...]] | None = None
    changed_at = beat_at = start
    while True:
        raw = client.status(request_id)
        status = Status.from_json(raw)
        now = clock()
        elapsed = now - start
        state = (status.status, tuple(status.ordered_counts()))
        if state != seen:
            on_change(status, elapsed)
            seen = state
            changed_at = beat_at = now
        elif now - beat_at >= heartbeat and not goal(status):
            on_heartbeat(status, elapsed, now - changed_at)
            beat_at = now
        if goal(status):
            return WatchResult(raw, status, True, elapsed)
        if timeout is not None and elapsed >= timeout:
            return WatchResult(raw, status, False, elapsed)
        sleep(interval if timeout is None else max(0.0, min(interval, timeout - elapsed)))
