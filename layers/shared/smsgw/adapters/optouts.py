"""The opt-out list in DynamoDB: ``OPTOUT#<mobile>`` / ``OPTOUT`` (kept until removed) and
its change entries ``OPTOUT#<mobile>`` / ``CHANGE#<time>#<id>`` (kept ``RetentionDays``).
Its one owner is ``OptOutStore``.

The opt-out list is the deployment's, not a caller's: a person who replied TD opted out
of the company. A change made through the API records its caller: on the opt-out itself
(``changed_by``) and, in the same transaction, in a change entry under the number
(``OPTOUT#<mobile>`` / ``CHANGE#<time>#<id>``: action, caller, time), so a removal is on
record too. An opt-out by reply records ``source`` "mo".
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from smsgw.adapters.dynamo import (
    attempt_transaction,
    batch_get,
    conditional_write,
    from_item,
    iso,
    key,
    to_item,
)
from smsgw.domain.inbound import OptOut

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


def optout_key(mobile: str) -> dict[str, Any]:
    return key(f"OPTOUT#{mobile}", "OPTOUT")


class OptOutStore:
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
        self._retention = retention_days * 86_400  # of the change entries
        self._clock = clock

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
            return conditional_write(lambda: self._db.put_item(**put))
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
        items: list[Any] = [write, {"Put": entry}]
        return attempt_transaction(lambda: self._db.transact_write_items(TransactItems=items))

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
