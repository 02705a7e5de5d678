"""DynamoDB access for requests, chunks and MsgId links (one table, ``pk``/``sk``).

Item layout (every item carries ``expires_at`` for TTL):

========================  ==============  =================================================
pk                        sk              what
========================  ==============  =================================================
``REQ#<request id>``      ``META``        the request: counts, reference, status
``REQ#<request id>``      ``CHUNK#00007`` up to 200 numbers of one content and their
                                          submission state (one provider submit)
``MSG#<provider MsgId>``  ``LINK``        which request and chunk a MsgId belongs to
========================  ==============  =================================================

A chunk holds its numbers as one comma-separated string (the provider's own ``DesMobile``
form), which keeps items small: write cost is per KB, not per recipient.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, cast

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from smsgw.domain.model import (
    Category,
    Chunk,
    ChunkRef,
    ChunkState,
    RequestRecord,
    RequestStatus,
)
from smsgw.domain.numbers import Rejection

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()
BATCH_WRITE_LIMIT = 25


class StoreUnavailable(RuntimeError):
    """DynamoDB could not take the write, even after retries."""


def _to_item(values: dict[str, Any]) -> dict[str, Any]:
    return {key: _serializer.serialize(value) for key, value in values.items() if value is not None}


def _from_item(item: dict[str, Any]) -> dict[str, Any]:
    out = {key: _deserializer.deserialize(value) for key, value in item.items()}
    return {key: int(value) if isinstance(value, Decimal) else value for key, value in out.items()}


def request_key(request_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"REQ#{request_id}"}, "sk": {"S": "META"}}


def chunk_key(request_id: str, number: int) -> dict[str, Any]:
    return {"pk": {"S": f"REQ#{request_id}"}, "sk": {"S": f"CHUNK#{number:05d}"}}


def link_key(msg_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"MSG#{msg_id}"}, "sk": {"S": "LINK"}}


def _is_condition_failure(err: ClientError) -> bool:
    return err.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


@dataclass(frozen=True)
class Link:
    msg_id: str
    request_id: str
    chunk: int
    reference: str | None


@dataclass(frozen=True)
class Claim:
    """The outcome of trying to claim a chunk for a submit."""

    chunk: Chunk | None  # the chunk as it now stands (None: no such chunk)
    claimed: bool
    lease_until: int = 0


class MessageStore:
    def __init__(
        self,
        client: DynamoDBClient,
        table_name: str,
        *,
        retention_days: int = 30,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._db = client
        self._table = table_name
        self._retention = retention_days * 86_400
        self._clock = clock
        self._sleep = sleep

    def _expires_at(self) -> int:
        return int(self._clock()) + self._retention

    # ------------------------------------------------------------------ intake

    def create_request(self, request: RequestRecord) -> bool:
        """Store the request header; False when a request with this id already exists."""
        values = {
            "pk": f"REQ#{request.id}",
            "sk": "META",
            "kind": "request",
            "id": request.id,
            "created_at": request.created_at,
            "recipients": request.recipients,
            "segments": request.segments,
            "total_segments": request.total_segments,
            "chunk_count": request.chunk_count,
            "rejected": [{"to": r.to, "reason": r.reason} for r in request.rejected],
            "reference": request.reference,
            "category": request.category.value,
            "send_time": request.send_time,
            "append_id": request.append_id,
            "caller": request.caller,
            "status": request.status.value,
            "settled_chunks": 0,
            "fingerprint": request.fingerprint,
            "expires_at": self._expires_at(),
        }
        try:
            self._db.put_item(
                TableName=self._table,
                Item=_to_item(values),
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as err:
            if _is_condition_failure(err):
                return False
            raise
        return True

    def put_chunks(self, chunks: Sequence[Chunk]) -> None:
        expires_at = self._expires_at()
        requests = [
            {
                "PutRequest": {
                    "Item": {
                        **chunk_key(c.request_id, c.number),
                        **_to_item(self._chunk_values(c, expires_at)),
                    }
                }
            }
            for c in chunks
        ]
        for start in range(0, len(requests), BATCH_WRITE_LIMIT):
            self._batch_write(requests[start : start + BATCH_WRITE_LIMIT])

    @staticmethod
    def _chunk_values(chunk: Chunk, expires_at: int) -> dict[str, Any]:
        return {
            "kind": "chunk",
            "n": chunk.number,
            "to": ",".join(chunk.mobiles),
            "content": chunk.content,
            "segments": chunk.segments,
            "send_time": chunk.send_time,
            "append_id": chunk.append_id,
            "ref": chunk.reference,
            "st": chunk.state.value,
            "attempts": chunk.attempts,
            "expires_at": expires_at,
        }

    def _batch_write(self, requests: list[dict[str, Any]], attempts: int = 8) -> None:
        pending: dict[str, Any] = {self._table: requests}
        for attempt in range(attempts):
            result = self._db.batch_write_item(RequestItems=pending)
            pending = dict(result.get("UnprocessedItems") or {})
            if not pending:
                return
            self._sleep(min(0.05 * 2**attempt, 1.0))
        raise StoreUnavailable(f"{len(pending[self._table])} writes left unprocessed by DynamoDB")

    def existing_chunk_numbers(self, request_id: str) -> set[int]:
        numbers: set[int] = set()
        for item in self._query_chunks(request_id, projection="n", consistent=True):
            numbers.add(int(item["n"]))
        return numbers

    def set_request_status(self, request_id: str, status: RequestStatus) -> None:
        self._db.update_item(
            TableName=self._table,
            Key=request_key(request_id),
            UpdateExpression="SET #s = :s",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":s": {"S": status.value}},
        )

    # ------------------------------------------------------------------ reading

    def get_request(self, request_id: str, *, consistent: bool = False) -> RequestRecord | None:
        item = self._db.get_item(
            TableName=self._table, Key=request_key(request_id), ConsistentRead=consistent
        ).get("Item")
        if not item:
            return None
        data = _from_item(item)
        return RequestRecord(
            id=data["id"],
            created_at=data["created_at"],
            recipients=data["recipients"],
            segments=data["segments"],
            total_segments=data["total_segments"],
            chunk_count=data["chunk_count"],
            rejected=tuple(Rejection(r["to"], r["reason"]) for r in data.get("rejected", [])),
            reference=data.get("reference"),
            category=Category(data.get("category", Category.TRANSACTIONAL)),
            send_time=data.get("send_time", ""),
            append_id=data.get("append_id", ""),
            caller=data.get("caller", ""),
            status=RequestStatus(data["status"]),
            settled_chunks=data.get("settled_chunks", 0),
            fingerprint=data.get("fingerprint", ""),
        )

    def list_chunks(self, request_id: str, *, start: int = 0, limit: int | None = None) -> list[Chunk]:
        chunks: list[Chunk] = []
        for item in self._query_chunks(request_id, start=start):
            chunks.append(self._chunk_from(request_id, item))
            if limit is not None and len(chunks) >= limit:
                break
        return chunks

    def get_chunk(self, ref: ChunkRef, *, consistent: bool = True) -> Chunk | None:
        item = self._db.get_item(
            TableName=self._table, Key=chunk_key(ref.request_id, ref.number), ConsistentRead=consistent
        ).get("Item")
        return self._chunk_from(ref.request_id, _from_item(item)) if item else None

    def _query_chunks(
        self, request_id: str, *, start: int = 0, projection: str | None = None, consistent: bool = False
    ) -> Iterator[dict[str, Any]]:
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND sk BETWEEN :from AND :to",
            "ExpressionAttributeValues": {
                ":pk": {"S": f"REQ#{request_id}"},
                ":from": {"S": f"CHUNK#{start:05d}"},
                ":to": {"S": "CHUNK#99999"},
            },
            "ConsistentRead": consistent,
        }
        if projection:
            kwargs["ProjectionExpression"] = projection
        while True:
            page = self._db.query(**kwargs)
            for item in page.get("Items", []):
                yield _from_item(item)
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    @staticmethod
    def _chunk_from(request_id: str, data: dict[str, Any]) -> Chunk:
        return Chunk(
            request_id=request_id,
            number=data["n"],
            mobiles=tuple(data["to"].split(",")) if data.get("to") else (),
            content=data.get("content", ""),
            segments=data.get("segments", 0),
            send_time=data.get("send_time", ""),
            append_id=data.get("append_id", ""),
            reference=data.get("ref"),
            state=ChunkState(data["st"]),
            attempts=data.get("attempts", 0),
            msg_id=data.get("msg_id"),
            result_code=data.get("code"),
            detail=data.get("detail"),
            updated_at=data.get("updated_at"),
        )

    def get_links(self, msg_ids: Sequence[str]) -> dict[str, Link]:
        links: dict[str, Link] = {}
        unique = list(dict.fromkeys(msg_ids))
        for start in range(0, len(unique), 100):
            keys: list[dict[str, Any]] = [link_key(m) for m in unique[start : start + 100]]
            pending: dict[str, Any] = {self._table: {"Keys": keys}}
            while pending:
                result = self._db.batch_get_item(RequestItems=pending)
                for item in result.get("Responses", {}).get(self._table, []):
                    data = _from_item(item)
                    msg_id = data["pk"].removeprefix("MSG#")
                    links[msg_id] = Link(msg_id, data["request_id"], data["chunk"], data.get("reference"))
                pending = dict(result.get("UnprocessedKeys") or {})
        return links

    # ------------------------------------------------------------------ submission

    def claim_chunk(self, ref: ChunkRef, *, lease_seconds: int) -> Claim:
        """Take a queued (or retrying) chunk for one submit attempt.

        A single conditional write: two workers holding copies of the same SQS message
        cannot both claim it, and a chunk already submitted is never claimed again.
        """
        now = self._clock()
        lease_until = int(now) + lease_seconds
        try:
            result = self._db.update_item(
                TableName=self._table,
                Key=chunk_key(ref.request_id, ref.number),
                UpdateExpression="SET st = :claimed, lease_until = :lease, updated_at = :now "
                "ADD attempts :one",
                ConditionExpression="st IN (:queued, :retrying)",
                ExpressionAttributeValues={
                    ":claimed": {"S": ChunkState.SUBMITTING.value},
                    ":queued": {"S": ChunkState.QUEUED.value},
                    ":retrying": {"S": ChunkState.RETRYING.value},
                    ":lease": {"N": str(lease_until)},
                    ":now": {"S": _iso(now)},
                    ":one": {"N": "1"},
                },
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as err:
            if not _is_condition_failure(err):
                raise
            old = cast(dict[str, Any] | None, err.response.get("Item"))
            if not old:
                return Claim(chunk=None, claimed=False)
            data = _from_item(old)
            return Claim(
                self._chunk_from(ref.request_id, data), claimed=False, lease_until=data.get("lease_until", 0)
            )
        return Claim(self._chunk_from(ref.request_id, _from_item(result["Attributes"])), True, lease_until)

    def record_submitted(self, chunk: Chunk, *, msg_id: str | None, code: str, detail: str) -> bool:
        """The platform accepted the chunk: keep its MsgId and the link back to the request,
        in one transaction so that a report can always find its request.

        Returns False when the chunk was no longer ours to settle (it should not happen: a
        claim outlives the function's timeout); the link is written all the same, because
        the platform did accept the submit."""
        now = _iso(self._clock())
        update = self._settle_update(chunk, ChunkState.SUBMITTED, code, detail, msg_id)
        if not msg_id:
            return self._settle(update)
        link = {
            **link_key(msg_id),
            **_to_item(
                {
                    "kind": "link",
                    "request_id": chunk.request_id,
                    "chunk": chunk.number,
                    "reference": chunk.reference,
                    "submitted_at": now,
                    "expires_at": self._expires_at(),
                }
            ),
        }
        try:
            self._db.transact_write_items(
                TransactItems=[
                    cast(Any, {"Update": update}),
                    {"Put": {"TableName": self._table, "Item": link}},
                ]
            )
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                raise
            self._db.put_item(TableName=self._table, Item=link)
            return False
        return True

    def record_attempt(self, chunk: Chunk, *, state: ChunkState, code: str, detail: str) -> bool:
        """Settle or release a chunk we claimed with the outcome of its attempt.

        Conditional on the claim still standing: False means someone else settled it."""
        return self._settle(self._settle_update(chunk, state, code, detail))

    def _settle_update(
        self, chunk: Chunk, state: ChunkState, code: str, detail: str, msg_id: str | None = None
    ) -> dict[str, Any]:
        return {
            "TableName": self._table,
            "Key": chunk_key(chunk.request_id, chunk.number),
            "UpdateExpression": "SET st = :st, code = :code, detail = :detail, updated_at = :now"
            + (", msg_id = :msg" if msg_id else "")
            + " REMOVE lease_until",
            "ConditionExpression": "st = :claimed",
            "ExpressionAttributeValues": {
                ":st": {"S": state.value},
                ":code": {"S": code},
                ":detail": {"S": detail},
                ":now": {"S": _iso(self._clock())},
                ":claimed": {"S": ChunkState.SUBMITTING.value},
                **({":msg": {"S": msg_id}} if msg_id else {}),
            },
        }

    def _settle(self, update: dict[str, Any]) -> bool:
        try:
            self._db.update_item(**update)
        except ClientError as err:
            if _is_condition_failure(err):
                return False
            raise
        return True

    def count_settled_chunk(self, request_id: str) -> tuple[int, int]:
        """Count one more settled chunk; returns (settled, total) after the increment."""
        result = self._db.update_item(
            TableName=self._table,
            Key=request_key(request_id),
            UpdateExpression="ADD settled_chunks :one",
            ExpressionAttributeValues={":one": {"N": "1"}},
            ConditionExpression="attribute_exists(pk)",
            ReturnValues="ALL_NEW",
        )
        data = _from_item(result["Attributes"])
        return data["settled_chunks"], data["chunk_count"]


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))
