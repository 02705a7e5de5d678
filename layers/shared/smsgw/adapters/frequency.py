"""Counting messages per number for the frequency caps (``domain.caps``).

One item per number, category and Beijing day holds a counter per cap window. Taking a
send is one conditional ``ADD`` over all the number's windows at once: either every
counter has room and all go up, or none moves, so concurrent sends cannot overshoot.

A request that may be retried under the same id (one with an Idempotency-Key) takes its
send as a named ``holder``: the item remembers the holders it counted, so the retry of a
call that failed after taking (DynamoDB or SQS down half-way) is not counted twice, and
not refused by its own first attempt.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from smsgw.adapters.dynamo import attempt_write, key
from smsgw.domain.caps import DAY, Cap
from smsgw.domain.model import Category

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

BEIJING_OFFSET = 8 * 3_600
THREADS = 8


class FrequencyStore:
    def __init__(
        self, client: DynamoDBClient, table_name: str, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._db = client
        self._table = table_name
        self._clock = clock
        self._pool = ThreadPoolExecutor(max_workers=THREADS, thread_name_prefix="caps")

    def take(
        self,
        mobiles: Mapping[str, int],
        category: Category,
        caps: Sequence[Cap],
        *,
        holder: str | None = None,
    ) -> dict[str, Cap]:
        """Count ``mobiles[m]`` messages to each number ``m``, all of a number's or none;
        returns the numbers refused and the cap each hit.

        ``holder``: the request taking them; a number it has taken already is not counted again."""
        if not caps:
            return {}
        now = int(self._clock())
        refused: dict[str, Cap] = {}
        numbers = list(mobiles)
        results = self._pool.map(
            lambda m: self._take(m, mobiles[m], category, caps, now=now, holder=holder), numbers
        )
        for mobile, cap in zip(numbers, results, strict=True):
            if cap is not None:
                refused[mobile] = cap
        return refused

    def _take(
        self,
        mobile: str,
        count: int,
        category: Category,
        caps: Sequence[Cap],
        *,
        now: int,
        holder: str | None,
    ) -> Cap | None:
        too_many = next((cap for cap in caps if count > cap.limit), None)
        if too_many is not None:
            return too_many  # more messages than the cap allows at all
        local = now + BEIJING_OFFSET
        day, second_of_day = divmod(local, DAY)
        names = {
            f"#w{i}": f"w{c.window_seconds}_{second_of_day // c.window_seconds}" for i, c in enumerate(caps)
        }
        values: dict[str, Any] = {
            ":count": {"N": str(count)},
            ":exp": {"N": str((day + 2) * DAY - BEIJING_OFFSET)},
        }
        conditions = []
        for i, cap in enumerate(caps):
            values[f":room{i}"] = {"N": str(cap.limit - count)}
            conditions.append(f"(attribute_not_exists(#w{i}) OR #w{i} <= :room{i})")
        adds = [f"#w{i} :count" for i in range(len(caps))]
        if holder:
            names["#holders"] = "holders"
            values[":holder"] = {"S": holder}
            values[":holders"] = {"SS": [holder]}
            conditions.insert(0, "NOT contains(#holders, :holder)")
            adds.append("#holders :holders")
        written = attempt_write(
            lambda: self._db.update_item(
                TableName=self._table,
                Key=key(f"FREQ#{mobile}", f"{category.value}#{day}"),
                UpdateExpression="ADD " + ", ".join(adds) + " SET expires_at = :exp",
                ConditionExpression=" AND ".join(conditions),
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        )
        if not written.ok:
            old = written.old
            if holder and holder in old.get("holders", {}).get("SS", []):
                return None  # this request took it already: a retry, not another message
            for i, cap in enumerate(caps):
                if int(old.get(names[f"#w{i}"], {}).get("N", "0")) + count > cap.limit:
                    return cap
            return caps[0]
        return None
