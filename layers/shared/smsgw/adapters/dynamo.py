"""What every DynamoDB store of the gateway shares: one table, ``pk``/``sk``, and these helpers.

The table's items, each with exactly one owner class that writes it. Items that expire
carry ``expires_at`` (TTL); the opt-out itself, a caller's callback settings and an
account's pause are kept until changed:

==========================  ==================  =============================================
pk                          sk                  what (owner)
==========================  ==================  =============================================
``REQ#<request id>``        ``META``            a request's header (``requests.RequestStore``)
``REQ#<request id>``        ``CHUNK#00007``     up to 200 numbers of one content: one submit
                                                (``chunks.ChunkStore``)
``REQ#<request id>``        ``COUNTED#00007``   chunk 7 is counted in the header's settled
                                                chunks (``requests.RequestStore``)
``MSG#<provider MsgId>``    ``LINK``            MsgId -> request and chunk, and one attribute
                                                per number with its report
                                                (``links.LinkStore``)
``RAW#<yyyymmdd>``          ``<time>#<hash>``   a push packet exactly as it arrived
                                                (``packets.RawPacketStore``)
``MO#<mobile>``             ``<time>#<hash>``   an inbound message (``inbound.InboundStore``)
``OPTOUT#<mobile>``         ``OPTOUT``          a number that opted out of marketing, and
``OPTOUT#<mobile>``         ``CHANGE#<t>#<id>`` who added or removed it through the API
                                                (``optouts.OptOutStore``)
``FREQ#<mobile>``           ``<category>#<d>``  frequency-cap counters of one Beijing day (and
                                                the keyed requests they counted)
                                                (``frequency.FrequencyStore``)
``TO#<caller>#<bucket>``    ``<time>#<id>``     search: a caller's requests by number
``EXT#<caller>``            ``<append id>``     search: a caller's extensions (replies)
                                                (both ``search.SearchStore``)
``CALLER#<caller digest>``  ``CALLBACK``        a caller's callback URL and signing secret
                                                (``callers.CallerStore``)
``RATE#<acct>#<tl>#<k>``    ``GCRA``            item k of a rate-limit timeline of an account:
                                                its next free slot (``tat``); ``tl`` the pool
                                                or a lane's reserved share
                                                (``throttle.SubmitRateLimiter``)
``RATE#<account>``          ``PAUSE``           the account's pause (``throttle.LanePause``);
                                                the shared account is ``guodu``
==========================  ==================  =============================================

Request and chunk items waiting for a reconciler sweep also carry ``due_kind``/``due_at``
(the sparse ``DueIndex``): their owner sets them; ``DueIndex`` reads the index and moves
or clears them once a sweep has looked.
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

from smsgw.domain.model import Chunk, RequestRecord

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


@dataclass(frozen=True)
class Written:
    """What one conditional write came to: ``ok`` and the call's ``answer``, or, when its
    condition did not hold, the item as it stood (``old``, raw attribute-value form, when
    the call asked for ``ReturnValuesOnConditionCheckFailure="ALL_OLD"``; else empty)."""

    ok: bool
    answer: dict[str, Any] = field(default_factory=dict)
    old: dict[str, Any] = field(default_factory=dict)


def attempt_write(write: Callable[[], Any]) -> Written:
    """Run one conditional write; a failed condition is an answer, not an error. Any other
    error (throttling after botocore's retries, a timeout...) is raised."""
    try:
        answer = write()
    except ClientError as err:
        if is_condition_failure(err):
            return Written(False, old=cast(dict[str, Any], err.response.get("Item") or {}))
        raise
    return Written(True, answer=answer if isinstance(answer, dict) else {})


def conditional_write(write: Callable[[], Any]) -> bool:
    """Run one conditional write; False when its condition did not hold (see ``attempt_write``)."""
    return attempt_write(write).ok


def attempt_transaction(write: Callable[[], Any]) -> bool:
    """Run one TransactWriteItems whose *first* item carries the condition that matters;
    False when that condition failed (the transaction changed nothing). Any other
    cancellation (a conflict, another item's condition) or error is raised."""
    try:
        write()
    except ClientError as err:
        reasons = err.response.get("CancellationReasons") or [{}]
        if reasons[0].get("Code") == "ConditionalCheckFailed":
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


class Lifetime:
    """How long a request's items live: ``RetentionDays`` after the moment they must
    outlive (TTL ``expires_at``). Shared by the owners of a request's items, so its
    header, chunks, markers and links go together."""

    def __init__(self, retention_days: int, clock: Callable[[], float] = time.time) -> None:
        self._retention = retention_days * 86_400
        self._clock = clock

    def expires_at(self, base: float | None = None) -> int:
        """When an item goes: ``RetentionDays`` after ``base`` (default: now)."""
        return int(max(self._clock(), base or 0)) + self._retention

    def base_of(self, record: Chunk | RequestRecord) -> int:
        """The moment a request's records must outlive: its send time (a scheduled send's
        reports arrive after it) or the end of its validity, whichever is later."""
        due = record.send_time
        return int(max(self._clock(), due.timestamp() if due else 0, record.valid_until))

    def of(self, record: Chunk | RequestRecord) -> int:
        """When the items of ``record``'s request go."""
        return self.expires_at(self.base_of(record))


class DueIndex:
    """The reconciler's hand on the sparse due index (``due_kind``/``due_at`` on request
    and chunk items, set by their owners): which items are due, and moving or clearing
    their due attributes once a sweep has looked. It writes nothing else of an item."""

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._db = client
        self._table = table_name

    def due(self, kind: str, *, now: int, limit: int = 100) -> list[tuple[str, str]]:
        """Keys (pk, sk) of items whose ``kind`` of sweep is due."""
        keys: list[tuple[str, str]] = []
        for shard in range(DUE_SHARDS):
            page = self._db.query(
                TableName=self._table,
                IndexName=DUE_INDEX,
                KeyConditionExpression="due_kind = :kind AND due_at <= :now",
                ExpressionAttributeValues={":kind": {"S": f"{kind}#{shard}"}, ":now": {"N": str(now)}},
                Limit=limit,
            )
            keys.extend((item["pk"]["S"], item["sk"]["S"]) for item in page.get("Items", []))
        return keys

    def reschedule(self, pk: str, sk: str, *, due_at: int, checks: int) -> None:
        """Look at a due item again at ``due_at``, its ``checks``-th look counted. Set, not
        added: a write applied whose answer was lost, and retried, counts it once."""
        update = Update(
            key(pk, sk),
            set={"due_at": due_at, "due_checks": checks},
            condition="attribute_exists(#due_kind)",
        )
        conditional_write(lambda: self._db.update_item(**update.request(self._table)))

    def clear_due(self, pk: str, sk: str) -> None:
        """Take an item off the due index (its sweep has nothing more to do)."""
        self._db.update_item(**Update(key(pk, sk), remove=("due_kind", "due_at")).request(self._table))
