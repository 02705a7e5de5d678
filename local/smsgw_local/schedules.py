"""``Type: Schedule`` events: EventBridge invoking a function on a ``rate(...)`` schedule.

``rate(N minute|minutes|hour|hours|day|days)`` is supported: the function is invoked
asynchronously every period (the first time one period after start-up, as a new rule
does) with EventBridge's "Scheduled Event" payload. ``cron(...)`` expressions are not
supported locally; such a schedule is reported at start-up and skipped.
"""

from __future__ import annotations

import logging
import re
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from smsgw_local.runtime import Invocation, RuntimeStopped

log = logging.getLogger("smsgw_local.schedule")

_UNITS = {"minute": 60, "minutes": 60, "hour": 3600, "hours": 3600, "day": 86_400, "days": 86_400}


class UnsupportedSchedule(ValueError):
    """A schedule expression the local stack cannot run."""


def rate_seconds(expression: str) -> int:
    """The period of ``rate(N unit)`` in seconds; :class:`UnsupportedSchedule` otherwise."""
    match = re.fullmatch(r"\s*rate\(\s*(\d+)\s+([a-z]+)\s*\)\s*", expression)
    if match is None or match.group(2) not in _UNITS:
        raise UnsupportedSchedule(
            f"unsupported schedule expression {expression!r} (only rate(...) runs locally)"
        )
    value, unit = int(match.group(1)), match.group(2)
    # EventBridge wants "rate(1 hour)" but "rate(2 hours)".
    if value < 1 or (value == 1) != (not unit.endswith("s")):
        raise UnsupportedSchedule(f"invalid rate expression {expression!r}")
    return value * _UNITS[unit]


def scheduled_event(
    rule_arn: str, *, account: str, region: str, now: datetime | None = None
) -> dict[str, Any]:
    moment = now or datetime.now(UTC)
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account,
        "time": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [rule_arn],
        "detail": {},
    }


class Schedule:
    """One rate schedule invoking one function until stopped."""

    def __init__(
        self,
        function: str,
        expression: str,
        invoke: Callable[[dict[str, Any]], Invocation],
        *,
        rule_arn: str,
        account: str,
        region: str,
        period: float | None = None,
    ) -> None:
        """``period``: run every ``period`` seconds instead of at the expression's rate
        (the local stack's ``SMSGW_SCHEDULE_SECONDS``: no waiting a minute locally)."""
        self.function = function
        self.expression = expression
        self.period: float = rate_seconds(expression) if period is None else period
        self._invoke = invoke
        self._rule_arn = rule_arn
        self._account = account
        self._region = region
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"schedule-{function}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(2.0)

    def event(self) -> dict[str, Any]:
        """The payload of the next invocation."""
        return scheduled_event(self._rule_arn, account=self._account, region=self._region)

    def _run(self) -> None:
        while not self._stopping.wait(self.period):
            event = self.event()
            try:
                invocation = self._invoke(event)
            except RuntimeStopped:
                return
            if not invocation.ok:
                log.warning("%s: scheduled invocation failed: %s", self.function, invocation.error)
