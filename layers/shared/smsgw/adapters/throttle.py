"""The provider's rate limit and the lane's pause, shared by every worker instance.

Both live in the gateway's table, so they hold across all concurrent Lambda containers,
not only inside one.

**Rate limit.** Each wall-clock second has a small item counting the submits and the
recipients reserved in it. A worker reserves its submit in the earliest second with
room, with one conditional ``ADD`` (no read-then-write race), then waits for that
second to begin. No second ever holds more than the configured submits (and
recipients, except that a single submit larger than the recipient limit may take an
otherwise empty second alone).

**Pause.** When the platform answers ``-1``, times out or refuses our account several
times within a short window, the whole lane stops for a while, doubling while the
failures go on: every worker sees the pause and holds its messages, instead of each
message bouncing through the queue on its own schedule.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from botocore.exceptions import ClientError

from smsgw.adapters.dynamo import from_item, is_condition_failure, key

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

SLOT_TTL_SECONDS = 3_600
# A submit starts within this part of its reserved second, or takes another slot.
LATE_AFTER_SECONDS = 0.8


class Throttled(Exception):
    """No second within reach had room: try again a little later."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"rate limit: retry in {retry_after:.0f} s")
        self.retry_after = retry_after


@dataclass(frozen=True)
class RateLimit:
    submits_per_second: int = 0  # 0: no limit
    recipients_per_second: int = 0  # 0: no limit
    max_wait_seconds: int = 5  # how far ahead a worker may reserve (and then wait)

    @property
    def enabled(self) -> bool:
        return self.submits_per_second > 0 or self.recipients_per_second > 0


class SubmitRateLimiter:
    def __init__(
        self,
        client: DynamoDBClient,
        table_name: str,
        limit: RateLimit,
        *,
        lane: str = "guodu",
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._db = client
        self._table = table_name
        self._limit = limit
        self._pk = f"RATE#{lane}"
        self._clock = clock
        self._sleep = sleep
        self._hint = 0  # the earliest second this worker last found with room

    def acquire(self, recipients: int, *, deadline: float) -> float:
        """Reserve a submit of ``recipients`` numbers and wait for its second; returns the wait."""
        if not self._limit.enabled:
            return 0.0
        started = self._clock()
        # Too late in this second to be sure to use it: start with the next one.
        late = started - int(started) >= LATE_AFTER_SECONDS
        second = max(int(started) + late, self._hint)
        last = min(int(started) + self._limit.max_wait_seconds, int(deadline) - 1)
        while second <= last:
            if not self._reserve(second, recipients):
                second += 1
                continue
            self._hint = second
            wait = max(0.0, second - self._clock())
            if wait:
                self._sleep(wait)
            if self._clock() < second + LATE_AFTER_SECONDS:
                return self._clock() - started
            # Woken too late to be sure to land in the reserved second (a busy host): the
            # slot is lost, never overrun; reserve another.
            second = max(int(self._clock()), second + 1)
        self._hint = second
        raise Throttled(retry_after=max(1.0, second - started))

    def _reserve(self, second: int, recipients: int) -> bool:
        conditions, values = [], {":one": {"N": "1"}, ":k": {"N": str(recipients)}}
        if self._limit.submits_per_second:
            conditions.append("(attribute_not_exists(n) OR n < :max_n)")
            values[":max_n"] = {"N": str(self._limit.submits_per_second)}
        if self._limit.recipients_per_second:
            conditions.append("(attribute_not_exists(r) OR r <= :room)")
            values[":room"] = {"N": str(self._limit.recipients_per_second - recipients)}
        values[":exp"] = {"N": str(second + SLOT_TTL_SECONDS)}
        try:
            self._db.update_item(
                TableName=self._table,
                Key=key(self._pk, f"S#{second}"),
                UpdateExpression="ADD n :one, r :k SET expires_at = :exp",
                ConditionExpression=" AND ".join(conditions),
                ExpressionAttributeValues=values,
            )
        except ClientError as err:
            if is_condition_failure(err):
                return False
            raise
        return True


@dataclass(frozen=True)
class PausePolicy:
    failures: int = 3  # this many failures ...
    window_seconds: int = 10  # ... within this window pause the lane
    base_seconds: int = 5  # for this long, doubling while it goes on,
    max_seconds: int = 300  # up to this


class LanePause:
    def __init__(
        self,
        client: DynamoDBClient,
        table_name: str,
        policy: PausePolicy,
        *,
        lane: str = "guodu",
        clock: Callable[[], float] = time.time,
        cache_seconds: float = 1.0,
    ) -> None:
        self._db = client
        self._table = table_name
        self._policy = policy
        self._key = key(f"RATE#{lane}", "PAUSE")
        self._clock = clock
        self._cache_seconds = cache_seconds
        self._cached: tuple[float, float, int] = (-1.0, 0.0, 0)  # (read at, until, step)

    def remaining(self) -> float:
        """Seconds the lane stays paused (0 when it runs); read at most once a second."""
        now = self._clock()
        read_at, until, _ = self._cached
        if now - read_at > self._cache_seconds:
            item = self._db.get_item(TableName=self._table, Key=self._key).get("Item")
            data = from_item(item) if item else {}
            until, step = float(data.get("until", 0)), int(data.get("step", 0))
            self._cached = (now, until, step)
        return max(0.0, self._cached[1] - now)

    def record_failure(self) -> float:
        """Count a failure of the platform; returns the pause it started (0 if none)."""
        now = self._clock()
        cutoff = now - self._policy.window_seconds
        try:
            result = self._db.update_item(
                TableName=self._table,
                Key=self._key,
                UpdateExpression="ADD failures :one",
                ConditionExpression="window_start > :cutoff",
                ExpressionAttributeValues={":one": {"N": "1"}, ":cutoff": {"N": f"{cutoff:.3f}"}},
                ReturnValues="ALL_NEW",
            )
            data = from_item(result["Attributes"])
        except ClientError as err:
            if not is_condition_failure(err):
                raise
            # A new window: start counting again.
            self._db.update_item(
                TableName=self._table,
                Key=self._key,
                UpdateExpression="SET failures = :one, window_start = :now",
                ExpressionAttributeValues={":one": {"N": "1"}, ":now": {"N": f"{now:.3f}"}},
            )
            data = {"failures": 1}
        if int(data.get("failures", 0)) < self._policy.failures:
            return 0.0
        return self._trip(now, int(data.get("step", 0)))

    def _trip(self, now: float, step: int) -> float:
        pause: float = min(self._policy.max_seconds, self._policy.base_seconds * 2**step)
        values: dict[str, Any] = {
            ":until": {"N": f"{now + pause:.3f}"},
            ":now": {"N": f"{now:.3f}"},
            ":zero": {"N": "0"},
            ":one": {"N": "1"},
        }
        try:
            # Only one worker trips it: the others see a pause already running.
            self._db.update_item(
                TableName=self._table,
                Key=self._key,
                UpdateExpression="SET #until = :until, failures = :zero, window_start = :now ADD step :one",
                ConditionExpression="attribute_not_exists(#until) OR #until < :now",
                ExpressionAttributeNames={"#until": "until"},
                ExpressionAttributeValues=values,
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as err:
            if not is_condition_failure(err):
                raise
            # Someone else paused the lane: hold to it now, not at the next read.
            running = cast(dict[str, Any], err.response.get("Item") or {})
            until = float(running.get("until", {}).get("N", "0"))
            self._cached = (now, until, int(running.get("step", {}).get("N", "0")))
            return 0.0
        self._cached = (now, now + pause, step + 1)
        return pause

    def record_success(self) -> None:
        """The platform answers again: the next pause starts short."""
        if self._cached[2] == 0:
            return
        self._db.update_item(
            TableName=self._table,
            Key=self._key,
            UpdateExpression="SET step = :zero, failures = :zero",
            ExpressionAttributeValues={":zero": {"N": "0"}},
        )
        self._cached = (self._cached[0], self._cached[1], 0)
