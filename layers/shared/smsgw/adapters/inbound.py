"""Inbound (MO) messages and the opt-out list in DynamoDB.

The opt-out list is the deployment's, not a caller's: a person who replied TD opted out
of the company. A change made through the API records its caller: on the opt-out itself
(``changed_by``) and, in the same transaction, in a change entry under the number
(``OPTOUT#<mobile>`` / ``CHANGE#<time>#<id>``: action, caller, time), so a removal is on
record too. An opt-out by reply records ``source`` "mo".
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from smsgw.adapters.dynamo import batch_get, from_item, is_condition_failure, iso, key, to_item
from smsgw.adapters.search import inbound_day
from smsgw.domain.inbound import Inbound, OptOut
from smsgw.domain.times import platform_time

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


def optout_key(mobile: str) -> dict[str, Any]:
    return key(f"OPTOUT#{mobile}", "OPTOUT")


class InboundStore:
    def __init__(
        self,
        client: DynamoDBClient,
        table_name: str,
        *,
        retention_days: int = 30,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db = client
        self._table = table_name
        self._retention = retention_days * 86_400
        self._clock = clock

    def record_inbound(self, message: Inbound) -> bool:
        """Store an MO message under its mobile; False when this very message was stored before."""
        now = self._clock()
        fingerprint = hashlib.sha256(
            f"{message.received_time}|{message.append_id}|{message.content}".encode()
        ).hexdigest()[:16]
        stamp = message.received_time or iso(now)
        # When it came (the platform's time, else ours): the sparse inbound index's keys,
        # for GET /v1/inbound in a time range (search.InboundIndex).
        at = platform_time(message.received_time) or datetime.fromtimestamp(int(now), UTC)
        try:
            self._db.put_item(
                TableName=self._table,
                Item=to_item(
                    {
                        "pk": f"MO#{message.mobile}",
                        "sk": f"{stamp}#{fingerprint}",
                        "kind": "inbound",
                        "content": message.content,
                        "received_time": message.received_time,
                        "append_id": message.append_id,
                        "stored_at": iso(now),
                        "in_day": inbound_day(at),
                        "in_at": int(at.timestamp()),
                        "expires_at": int(now) + self._retention,
                    }
                ),
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as err:
            if is_condition_failure(err):
                return False
            raise
        return True

    def add_opt_out(self, mobile: str, *, keyword: str, source: str, changed_by: str | None = None) -> bool:
        """Put a number on the opt-out list (kept until removed); False if it was there.

        ``changed_by``: the caller adding it through the API (recorded with a change entry)."""
        put: dict[str, Any] = {
            "TableName": self._table,
            "Item": to_item(
                {
                    **{"pk": f"OPTOUT#{mobile}", "sk": "OPTOUT"},
                    "kind": "optout",
                    "mobile": mobile,
                    "keyword": keyword,
                    "source": source,
                    "created_at": iso(self._clock()),
                    "changed_by": changed_by,
                }
            ),
            "ConditionExpression": "attribute_not_exists(pk)",
        }
        if changed_by is None:
            try:
                self._db.put_item(**put)
            except ClientError as err:
                if is_condition_failure(err):
                    return False
                raise
            return True
        return self._change(mobile, {"Put": put}, action="added", caller=changed_by)

    def _change(self, mobile: str, write: dict[str, Any], *, action: str, caller: str) -> bool:
        """``write`` and its change entry, both or neither; False when ``write``'s condition
        failed (nothing changed, so nothing is recorded)."""
        now = self._clock()
        entry: dict[str, Any] = {
            "TableName": self._table,
            "Item": to_item(
                {
                    "pk": f"OPTOUT#{mobile}",
                    # Ordered by time (to the microsecond), unique even within one.
                    "sk": f"CHANGE#{iso(now)[:-1]}.{int(now * 1e6) % 1_000_000:06d}Z#{uuid.uuid4().hex[:8]}",
                    "kind": "optout_change",
                    "action": action,
                    "caller": caller,
                    "at": iso(now),
                    "expires_at": int(now) + self._retention,
                }
            ),
        }
        try:
            items: list[Any] = [write, {"Put": entry}]
            self._db.transact_write_items(TransactItems=items)
        except ClientError as err:
            reasons = err.response.get("CancellationReasons") or [{}]
            if reasons[0].get("Code") == "ConditionalCheckFailed":
                return False
            raise
        return True

    def get_opt_out(self, mobile: str) -> OptOut | None:
        item = self._db.get_item(TableName=self._table, Key=optout_key(mobile), ConsistentRead=True).get(
            "Item"
        )
        if not item:
            return None
        data = from_item(item)
        return OptOut(
            data["mobile"],
            data.get("keyword", ""),
            data.get("source", ""),
            data.get("created_at", ""),
            data.get("changed_by"),
        )

    def remove_opt_out(self, mobile: str, *, changed_by: str) -> bool:
        """Take a number off the list, recording the caller; False if it was not on it."""
        delete: dict[str, Any] = {
            "TableName": self._table,
            "Key": optout_key(mobile),
            "ConditionExpression": "attribute_exists(pk)",
        }
        return self._change(mobile, {"Delete": delete}, action="removed", caller=changed_by)

    def opted_out(self, mobiles: Iterable[str]) -> set[str]:
        """Which of these numbers are on the opt-out list."""
        keys = [optout_key(m) for m in dict.fromkeys(mobiles)]
        return {
            item["pk"]["S"].removeprefix("OPTOUT#")
            for item in batch_get(self._db, self._table, keys, projection="pk")
        }
