"""Inbound (MO) messages in DynamoDB: ``MO#<mobile>`` / ``<time>#<hash>``, kept
``RetentionDays``. Its one owner is ``InboundStore`` (the opt-out list, which replies feed,
is ``optouts.OptOutStore``'s)."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from smsgw.adapters.dynamo import conditional_write, iso, to_item
from smsgw.adapters.search import inbound_day
from smsgw.domain.inbound import Inbound
from smsgw.domain.times import platform_time

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


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
        return conditional_write(
            lambda: self._db.put_item(
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
        )
