"""What every DynamoDB store of the gateway shares: one table, ``pk``/``sk``, and these helpers.

Key layout of the table (every item also carries ``expires_at`` for TTL):

==========================  ==================  ============================================
pk                          sk                  what (store)
==========================  ==================  ============================================
``REQ#<request id>``        ``META``            a request (``store.MessageStore``)
``REQ#<request id>``        ``CHUNK#00007``     up to 200 numbers of one content, one submit
``REQ#<request id>``        ``COUNTED#00007``   chunk 7 is counted in the request's settled
                                                chunks (``store.count_settled_chunk``)
``MSG#<provider MsgId>``    ``LINK``            MsgId -> request and chunk; report counters
``MSG#<provider MsgId>``    ``R#07``            reports of the MsgId's numbers ending in
                                                07, 27, ... (``reports.ReportStore``)
``RAW#<yyyymmdd>``          ``<time>#<hash>``   a push packet exactly as it arrived
``MO#<mobile>``             ``<time>#<hash>``   an inbound message (``inbound.InboundStore``)
``OPTOUT#<mobile>``         ``OPTOUT``          a number that opted out of marketing
``OPTOUT#<mobile>``         ``CHANGE#<t>#<id>`` who added or removed it through the API
``FREQ#<mobile>``           ``<category>#<d>``  frequency-cap counters of one Beijing day (and
                                                the keyed requests they counted)
                                                (``frequency.FrequencyStore``)
``RATE#<acct>#<tl>#<k>``    ``GCRA``            item k of a rate-limit timeline of an account:
                                                its next free slot (``tat``); ``tl`` the pool
                                                or a lane's reserved share
                                                (``throttle.SubmitRateLimiter``)
``RATE#<account>``          ``PAUSE``           the account's pause (``throttle.LanePause``);
                                                the shared account is ``guodu``
==========================  ==================  ============================================
"""

from __future__ import annotations

import re
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, cast

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()
BATCH_WRITE_LIMIT = 25
BATCH_GET_LIMIT = 100


class StoreUnavailable(RuntimeError):
    """DynamoDB could not take the write, even after retries."""


def to_item(values: dict[str, Any]) -> dict[str, Any]:
    return {key: _serializer.serialize(value) for key, value in values.items() if value is not None}


def from_item(item: dict[str, Any]) -> dict[str, Any]:
    out = {key: _deserializer.deserialize(value) for key, value in item.items()}
    return {key: int(value) if isinstance(value, Decimal) else value for key, value in out.items()}


def key(pk: str, sk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def request_key(request_id: str) -> dict[str, Any]:
    return key(f"REQ#{request_id}", "META")


def chunk_key(request_id: str, number: int) -> dict[str, Any]:
    return key(f"REQ#{request_id}", f"CHUNK#{number:05d}")


def link_key(msg_id: str) -> dict[str, Any]:
    return key(f"MSG#{msg_id}", "LINK")


# The sparse index of the reconciler's sweeps: only items waiting for one carry ``due_kind``
# ("<sweep>#<shard>") and ``due_at`` (epoch seconds). Sharded, so that no index partition
# takes every request's writes.
DUE_INDEX = "DueIndex"
DUE_SHARDS = 4


def due_kind(sweep: str, request_id: str) -> str:
    return f"{sweep}#{zlib.crc32(request_id.encode()) % DUE_SHARDS}"


def is_condition_failure(err: ClientError) -> bool:
    return err.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


@dataclass(frozen=True)
class Update:
    """One UpdateItem, built from its clauses instead of edited as a string.

    Every attribute is referred to by a name placeholder (``#st``), so no reserved word can
    break an expression; ``condition`` names attributes the same way (``#st = :claimed``)
    and gives its values in ``values``."""

    key: dict[str, Any]
    set: dict[str, Any] = field(default_factory=dict)  # attribute -> value (None: skipped)
    add: dict[str, int] = field(default_factory=dict)
    remove: tuple[str, ...] = ()
    condition: str = ""
    values: dict[str, Any] = field(default_factory=dict)  # the condition's :values

    def request(self, table: str) -> dict[str, Any]:
        names: dict[str, str] = {}
        values: dict[str, Any] = {}
        clauses: list[str] = []

        def name(attribute: str) -> str:
            names[f"#{attribute}"] = attribute
            return f"#{attribute}"

        def value(raw: Any) -> str:
            placeholder = f":u{len(values)}"
            values[placeholder] = _serializer.serialize(raw)
            return placeholder

        sets = [f"{name(a)} = {value(v)}" for a, v in self.set.items() if v is not None]
        if sets:
            clauses.append("SET " + ", ".join(sets))
        if self.add:
            clauses.append("ADD " + ", ".join(f"{name(a)} {value(v)}" for a, v in self.add.items()))
        if self.remove:
            clauses.append("REMOVE " + ", ".join(name(a) for a in self.remove))
        request: dict[str, Any] = {
            "TableName": table,
            "Key": self.key,
            "UpdateExpression": " ".join(clauses),
        }
        if self.condition:
            for attribute in _NAME.findall(self.condition):
                name(attribute)
            request["ConditionExpression"] = self.condition
            values.update({k: _serializer.serialize(v) for k, v in self.values.items()})
        request["ExpressionAttributeNames"] = names
        if values:
            request["ExpressionAttributeValues"] = values
        return request


_NAME = re.compile(r"#(\w+)")


def conditional_write(write: Callable[[], Any]) -> bool:
    """Run one conditional write; False when its condition did not hold. Any other error
    (throttling after botocore's retries, a timeout...) is raised."""
    try:
        write()
    except ClientError as err:
        if is_condition_failure(err):
            return False
        raise
    return True


def old_item(err: ClientError) -> dict[str, Any]:
    """The item as it stood when a write's condition failed (``ReturnValuesOnConditionCheckFailure``)."""
    item = cast(dict[str, Any] | None, err.response.get("Item"))
    return from_item(item) if item else {}


def iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def batch_write(
    db: DynamoDBClient,
    table: str,
    requests: Sequence[dict[str, Any]],
    *,
    sleep: Callable[[float], None] = time.sleep,
    attempts: int = 8,
) -> None:
    """BatchWriteItem in groups of 25, retrying ``UnprocessedItems`` to the end."""
    for start in range(0, len(requests), BATCH_WRITE_LIMIT):
        pending: dict[str, Any] = {table: list(requests[start : start + BATCH_WRITE_LIMIT])}
        for attempt in range(attempts):
            pending = dict(db.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {})
            if not pending:
                break
            sleep(min(0.05 * 2**attempt, 1.0))
        if pending:
            raise StoreUnavailable(f"{len(pending[table])} writes left unprocessed by DynamoDB")


def batch_get(
    db: DynamoDBClient,
    table: str,
    keys: Sequence[dict[str, Any]],
    *,
    projection: str | None = None,
    consistent: bool = False,
    sleep: Callable[[float], None] = time.sleep,
    attempts: int = 8,
) -> Iterator[dict[str, Any]]:
    """BatchGetItem in groups of 100, retrying ``UnprocessedKeys`` to the end."""
    for start in range(0, len(keys), BATCH_GET_LIMIT):
        request: dict[str, Any] = {
            "Keys": list(keys[start : start + BATCH_GET_LIMIT]),
            "ConsistentRead": consistent,
        }
        if projection:
            request["ProjectionExpression"] = projection
        pending: dict[str, Any] = {table: request}
        for attempt in range(attempts):
            result = db.batch_get_item(RequestItems=pending)
            yield from result.get("Responses", {}).get(table, [])
            pending = dict(result.get("UnprocessedKeys") or {})
            if not pending:
                break
            sleep(min(0.05 * 2**attempt, 1.0))
        if pending:
            raise StoreUnavailable("reads left unprocessed by DynamoDB")
