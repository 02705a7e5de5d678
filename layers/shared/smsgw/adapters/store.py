"""DynamoDB access for requests, chunks and MsgId links (layout in ``dynamo.py``).

A chunk holds its numbers as one comma-separated string (the provider's own ``DesMobile``
form), which keeps items small: write cost is per KB, not per recipient.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from botocore.exceptions import ClientError

from smsgw.adapters.dynamo import (
    batch_get,
    batch_write,
    chunk_key,
    from_item,
    is_condition_failure,
    iso,
    key,
    link_key,
    request_key,
    to_item,
)
from smsgw.adapters.links import Link
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
            "rejected": [r.as_dict() for r in request.rejected],
            "reference": request.reference,
            "category": request.category.value,
            "send_time": request.send_time,
            "append_id": request.append_id,
            "caller": request.caller,
            "status": request.status.value,
            "settled_chunks": 0,
            "fingerprint": request.fingerprint,
            "opted_out": list(request.opted_out),
            "opted_out_count": request.opted_out_count,
            "rejected_count": request.rejected_count,
            "expires_at": self._expires_at(),
        }
        try:
            self._db.put_item(
                TableName=self._table,
                Item=to_item(values),
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as err:
            if is_condition_failure(err):
                return False
            raise
        return True

    def put_chunks(self, chunks: Sequence[Chunk], *, fingerprint: str, retry: bool = False) -> bool:
        """Write a request's chunks, each marked with its body's ``fingerprint``.

        ``retry``: the request's key may have been used by a call that stopped before its
        header (so nothing of it was queued). Chunks of the same body not yet claimed are
        written afresh (the plan may differ: an opt-out since); claimed ones are left to
        their worker; a chunk of another body means the key is taken: nothing more is
        written, and False is returned. One call per chunk."""
        expires_at = self._expires_at()
        items = [
            {
                **chunk_key(c.request_id, c.number),
                **to_item({**self._chunk_values(c, expires_at), "fp": fingerprint}),
            }
            for c in chunks
        ]
        if not retry:
            batch_write(
                self._db, self._table, [{"PutRequest": {"Item": item}} for item in items], sleep=self._sleep
            )
            return True
        for item in items:
            try:
                self._db.put_item(
                    TableName=self._table,
                    Item=item,
                    ConditionExpression="attribute_not_exists(pk)"
                    " OR (fp = :fp AND st = :queued AND attempts = :zero)",
                    ExpressionAttributeValues={
                        ":fp": {"S": fingerprint},
                        ":queued": {"S": ChunkState.QUEUED.value},
                        ":zero": {"N": "0"},
                    },
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
            except ClientError as err:
                if not is_condition_failure(err):
                    raise
                old = cast(dict[str, Any], err.response.get("Item") or {})
                if old.get("fp", {}).get("S") != fingerprint:
                    return False
        return True

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
            "cat": chunk.category.value,
            "valid_until": chunk.valid_until or None,
            "st": chunk.state.value,
            "attempts": chunk.attempts,
            "expires_at": expires_at,
        }

    def set_request_status(
        self, request_id: str, status: RequestStatus, *, only_from: RequestStatus | None = None
    ) -> None:
        """``only_from``: change it only from that status (a worker may be ahead of us)."""
        condition: dict[str, Any] = {}
        values: dict[str, Any] = {":s": {"S": status.value}}
        if only_from is not None:
            condition = {"ConditionExpression": "#s = :from"}
            values[":from"] = {"S": only_from.value}
        try:
            self._db.update_item(
                TableName=self._table,
                Key=request_key(request_id),
                UpdateExpression="SET #s = :s",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues=values,
                **condition,
            )
        except ClientError as err:
            if not (only_from is not None and is_condition_failure(err)):
                raise

    # ------------------------------------------------------------------ reading

    def get_request(self, request_id: str, *, consistent: bool = False) -> RequestRecord | None:
        item = self._db.get_item(
            TableName=self._table, Key=request_key(request_id), ConsistentRead=consistent
        ).get("Item")
        if not item:
            return None
        return self._request_from(from_item(item))

    @staticmethod
    def _request_from(data: dict[str, Any]) -> RequestRecord:
        return RequestRecord(
            id=data["id"],
            created_at=data["created_at"],
            recipients=data["recipients"],
            segments=data["segments"],
            total_segments=data["total_segments"],
            chunk_count=data["chunk_count"],
            rejected=tuple(
                Rejection(r["to"], r["reason"], r.get("detail")) for r in data.get("rejected", [])
            ),
            reference=data.get("reference"),
            category=Category(data.get("category", Category.TRANSACTIONAL)),
            send_time=data.get("send_time", ""),
            append_id=data.get("append_id", ""),
            caller=data.get("caller", ""),
            status=RequestStatus(data["status"]),
            settled_chunks=data.get("settled_chunks", 0),
            fingerprint=data.get("fingerprint", ""),
            opted_out=tuple(data.get("opted_out", [])),
            opted_out_count=data.get("opted_out_count", 0),
            rejected_count=data.get("rejected_count", len(data.get("rejected", []))),
        )

    def list_chunks(self, request_id: str) -> list[Chunk]:
        """Every chunk of a request, in order."""
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :chunk)",
            "ExpressionAttributeValues": {":pk": {"S": f"REQ#{request_id}"}, ":chunk": {"S": "CHUNK#"}},
        }
        chunks: list[Chunk] = []
        while True:
            page = self._db.query(**kwargs)
            chunks.extend(self._chunk_from(request_id, from_item(item)) for item in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return chunks
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
            category=Category(data.get("cat", Category.TRANSACTIONAL)),
            valid_until=data.get("valid_until", 0),
            state=ChunkState(data["st"]),
            attempts=data.get("attempts", 0),
            attempt_base=data.get("attempt_base", 0),
            msg_id=data.get("msg_id"),
            result_code=data.get("code"),
            detail=data.get("detail"),
            updated_at=data.get("updated_at"),
        )

    def get_links(self, msg_ids: Sequence[str]) -> dict[str, Link]:
        """These MsgIds' links, with their reports; one known only from reports that beat
        the submit's answer has no request yet."""
        keys = [link_key(m) for m in dict.fromkeys(msg_ids)]
        return {link.msg_id: link for link in map(Link.from_item, batch_get(self._db, self._table, keys))}

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
                    ":now": {"S": iso(now)},
                    ":one": {"N": "1"},
                },
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as err:
            if not is_condition_failure(err):
                raise
            old = cast(dict[str, Any] | None, err.response.get("Item"))
            if not old:
                return Claim(chunk=None, claimed=False)
            data = from_item(old)
            return Claim(
                self._chunk_from(ref.request_id, data), claimed=False, lease_until=data.get("lease_until", 0)
            )
        return Claim(self._chunk_from(ref.request_id, from_item(result["Attributes"])), True, lease_until)

    def record_submitted(self, chunk: Chunk, *, msg_id: str | None, code: str, detail: str) -> bool:
        """The platform accepted the chunk: keep its MsgId and the link back to the request,
        in one transaction so that a report can always find its request.

        Returns False when the chunk was no longer ours to settle (it should not happen: a
        claim outlives the function's timeout); the link is written all the same, because
        the platform did accept the submit. A transaction DynamoDB cancels for a conflicting
        write is done as two writes instead."""
        now = iso(self._clock())
        update = self._settle_update(chunk, ChunkState.SUBMITTED, code, detail, msg_id)
        if not msg_id:
            return self._settle(update)
        link: dict[str, Any] = {
            "TableName": self._table,
            "Key": link_key(msg_id),
            # An update, not a put: counters of reports that beat the answer are kept.
            "UpdateExpression": "SET #kind = :kind, #rid = :rid, #chunk = :n, #at = :now, #exp = :exp"
            + (", #ref = :ref" if chunk.reference else ""),
            "ExpressionAttributeNames": {
                "#kind": "kind",
                "#rid": "request_id",
                "#chunk": "chunk",
                "#at": "submitted_at",
                "#exp": "expires_at",
                **({"#ref": "reference"} if chunk.reference else {}),
            },
            "ExpressionAttributeValues": {
                ":kind": {"S": "link"},
                ":rid": {"S": chunk.request_id},
                ":n": {"N": str(chunk.number)},
                ":now": {"S": now},
                ":exp": {"N": str(self._expires_at())},
                **({":ref": {"S": chunk.reference}} if chunk.reference else {}),
            },
        }
        try:
            items: list[Any] = [{"Update": update}, {"Update": link}]
            self._db.transact_write_items(TransactItems=items)
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                raise
            # Cancelled because the chunk was no longer ours, or because another write was
            # under way on one of the items (TransactionConflict: a report landing on the
            # MsgId's item). The platform accepted either way: the link first, so that a
            # report can find its request, then the chunk, still only if it is ours.
            self._db.update_item(**link)
            return self._settle(update)
        return True

    def record_attempt(self, chunk: Chunk, *, state: ChunkState, code: str, detail: str) -> bool:
        """Settle or release a chunk we claimed with the outcome of its attempt.

        Conditional on the claim still standing: False means someone else settled it."""
        return self._settle(self._settle_update(chunk, state, code, detail))

    def hold_chunk(self, chunk: Chunk, *, code: str, detail: str, valid_until: int) -> bool:
        """Give a claimed chunk back to the queue without counting an attempt (quiet hours)."""
        update = self._settle_update(chunk, ChunkState.QUEUED, code, detail)
        update["UpdateExpression"] = update["UpdateExpression"].replace(
            " REMOVE lease_until", ", valid_until = :valid ADD attempts :minus_one REMOVE lease_until"
        )
        update["ExpressionAttributeValues"][":valid"] = {"N": str(valid_until)}
        update["ExpressionAttributeValues"][":minus_one"] = {"N": "-1"}
        return self._settle(update)

    def park_chunk(self, chunk: Chunk, *, code: str, detail: str) -> bool:
        """Release a chunk that used up its attempts; its next claim (after a redrive)
        starts a fresh count of attempts."""
        update = self._settle_update(chunk, ChunkState.RETRYING, code, detail)
        update["UpdateExpression"] = update["UpdateExpression"].replace(
            " REMOVE lease_until", ", attempt_base = attempts REMOVE lease_until"
        )
        return self._settle(update)

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
                ":now": {"S": iso(self._clock())},
                ":claimed": {"S": ChunkState.SUBMITTING.value},
                **({":msg": {"S": msg_id}} if msg_id else {}),
            },
        }

    def _settle(self, update: dict[str, Any]) -> bool:
        try:
            self._db.update_item(**update)
        except ClientError as err:
            if is_condition_failure(err):
                return False
            raise
        return True

    def count_settled_chunk(self, request_id: str, number: int) -> RequestRecord:
        """Count chunk ``number`` settled, once; returns the request as it stands after.

        A small marker item per counted chunk and the request's counter move in one
        transaction, so counting a chunk again changes nothing: a settle that stopped before
        its count is finished by the message's next delivery, and the request's item stays
        small (a set of chunk numbers on it would be rewritten whole, and billed, per chunk)."""
        marker = key(f"REQ#{request_id}", f"COUNTED#{number:05d}")
        try:
            self._db.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self._table,
                            "Item": {**marker, "expires_at": {"N": str(self._expires_at())}},
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                    {
                        "Update": {
                            "TableName": self._table,
                            "Key": request_key(request_id),
                            "UpdateExpression": "ADD settled_chunks :one",
                            "ConditionExpression": "attribute_exists(pk)",
                            "ExpressionAttributeValues": {":one": {"N": "1"}},
                        }
                    },
                ]
            )
        except ClientError as err:
            reasons = err.response.get("CancellationReasons") or [{}]
            if reasons[0].get("Code") != "ConditionalCheckFailed":
                raise  # a conflict or a missing request: the message is delivered again
        request = self.get_request(request_id, consistent=True)
        if request is None:
            raise LookupError(f"request {request_id} is gone")
        return request
