"""Inbound (MO) messages and the opt-out list in DynamoDB."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from smsgw.adapters.dynamo import batch_get, from_item, is_condition_failure, iso, key, to_item
from smsgw.provider.push import Inbound

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


def optout_key(mobile: str) -> dict[str, Any]:
    return key(f"OPTOUT#{mobile}", "OPTOUT")


@dataclass(frozen=True)
class OptOut:
    mobile: str
    keyword: str
    source: str  # "mo" (the person replied) or "api" (an operator added it)
    created_at: str


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

    def add_opt_out(self, mobile: str, *, keyword: str, source: str) -> bool:
        """Put a number on the opt-out list (kept until removed); False if it was there."""
        try:
            self._db.put_item(
                TableName=self._table,
                Item=to_item(
                    {
                        **{"pk": f"OPTOUT#{mobile}", "sk": "OPTOUT"},
                        "kind": "optout",
                        "mobile": mobile,
                        "keyword": keyword,
                        "source": source,
                        "created_at": iso(self._clock()),
                    }
                ),
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as err:
            if is_condition_failure(err):
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
            data["mobile"], data.get("keyword", ""), data.get("source", ""), data.get("created_at", "")
        )

    def remove_opt_out(self, mobile: str) -> bool:
        result = self._db.delete_item(TableName=self._table, Key=optout_key(mobile), ReturnValues="ALL_OLD")
        return bool(result.get("Attributes"))

    def opted_out(self, mobiles: Iterable[str]) -> set[str]:
        """Which of these numbers are on the opt-out list."""
        keys = [optout_key(m) for m in dict.fromkeys(mobiles)]
        return {
            item["pk"]["S"].removeprefix("OPTOUT#")
            for item in batch_get(self._db, self._table, keys, projection="pk")
        }
