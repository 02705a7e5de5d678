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
``RATE#guodu``              ``S#<epoch s>``     submits and recipients reserved in a second
                                                (``throttle.SubmitRateLimiter``)
``RATE#guodu``              ``PAUSE``           the lane's pause (``throttle.LanePause``)
==========================  ==================  ============================================
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

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


def is_condition_failure(err: ClientError) -> bool:
    return err.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


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
