"""A request's header and its settled-chunk markers in DynamoDB (layout in ``dynamo.py``).

``REQ#<id>`` / ``META`` is the request as accepted, its status (``accepting`` ->
``accepted`` -> ``submitted`` -> ``completed``) and the count of its settled chunks;
``REQ#<id>`` / ``COUNTED#<n>`` marks chunk n counted in it, so a chunk is counted once
however often its settle is repeated. Both live as long as the request's other items.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from smsgw.adapters.dynamo import (
    Lifetime,
    Update,
    attempt_transaction,
    batch_get,
    conditional_write,
    due_kind,
    from_item,
    key,
    request_key,
    to_item,
)
from smsgw.adapters.search import reference_key
from smsgw.domain.model import Category, Chunk, RequestRecord, RequestStatus
from smsgw.domain.numbers import Rejection
from smsgw.provider.guodu import format_send_time, parse_send_time

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


def counted_key(request_id: str, number: int) -> dict[str, Any]:
    return key(f"REQ#{request_id}", f"COUNTED#{number:05d}")


class RequestStore:
    def __init__(
        self,
        client: DynamoDBClient,
        table_name: str,
        *,
        lifetime: Lifetime,
        accepting_grace_seconds: int = 120,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db = client
        self._table = table_name
        self._lifetime = lifetime
        self._accepting_grace = accepting_grace_seconds
        self._clock = clock

    def expires_at_of(self, record: RequestRecord) -> int:
        """When the request's records go: ``RetentionDays`` after it (or its send time)."""
        return self._lifetime.of(record)

    def create_request(self, request: RequestRecord, *, release_at: int | None = None) -> bool:
        """Store the request header; False when a request with this id already exists.
        ``release_at``: its chunks are held, to be released then (epoch seconds)."""
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
            "send_time": format_send_time(request.send_time),
            "append_id": request.append_id,
            "caller": request.caller,
            "status": request.status.value,
            "settled_chunks": 0,
            "fingerprint": request.fingerprint,
            "opted_out": list(request.opted_out),
            "opted_out_count": request.opted_out_count,
            "rejected_count": request.rejected_count,
            "valid_until": request.valid_until or None,
            "callback_url": request.callback_url,
            "expires_at": self._lifetime.of(request),
        }
        if request.reference is not None:
            # The sparse reference index (GET /v1/messages?reference=): the caller's own. Its
            # projection holds keys only: the header's later updates write no index entry.
            values["ref_key"] = reference_key(request.caller, request.reference)
        if request.status is RequestStatus.ACCEPTING:
            # Until its chunks are all on the queue: should the intake stop half-way, the
            # reconciler finds it here and queues them (``accepting_due``).
            values["due_kind"] = due_kind("accepting", request.id)
            values["due_at"] = int(self._clock()) + self._accepting_grace
        elif release_at is not None:
            # Held by the gateway: the reconciler releases its chunks shortly before send_at.
            values["due_kind"] = due_kind("release", request.id)
            values["due_at"] = release_at
        elif request.status is RequestStatus.SUBMITTED:
            # Nothing to send (every number opted out): complete at the next sweep.
            values["due_kind"] = due_kind("complete", request.id)
            values["due_at"] = int(self._clock())
        return conditional_write(
            lambda: self._db.put_item(
                TableName=self._table,
                Item=to_item(values),
                ConditionExpression="attribute_not_exists(pk)",
            )
        )

    def mark_accepted(self, request_id: str) -> bool:
        """Every chunk of the request is on the queue; False if it was marked already (or
        a worker has settled every chunk meanwhile)."""
        update = Update(
            request_key(request_id),
            set={"status": RequestStatus.ACCEPTED.value},
            remove=("due_kind", "due_at"),
            condition="#status = :accepting",
            values={":accepting": RequestStatus.ACCEPTING.value},
        )
        return conditional_write(lambda: self._db.update_item(**update.request(self._table)))

    def mark_submitted(self, request_id: str) -> bool:
        """Every chunk has settled (from accepting too: the intake may not have marked it).
        The request waits on the due index for its completion check (``complete``): its
        recipients are final once their reports (or the report timeout) are in. False when
        it was marked before (or completed)."""
        update = Update(
            request_key(request_id),
            set={
                "status": RequestStatus.SUBMITTED.value,
                "due_kind": due_kind("complete", request_id),
                "due_at": int(self._clock()),
            },
            condition="#status IN (:accepting, :accepted)",
            values={":accepting": RequestStatus.ACCEPTING.value, ":accepted": RequestStatus.ACCEPTED.value},
        )
        return conditional_write(lambda: self._db.update_item(**update.request(self._table)))

    def mark_completed(self, request_id: str, completed_at: str) -> bool:
        """Every recipient is final: the request is completed (and off the due index).
        False when it was completed before."""
        update = Update(
            request_key(request_id),
            set={"status": RequestStatus.COMPLETED.value, "completed_at": completed_at},
            remove=("due_kind", "due_at", "due_checks"),
            condition="#status <> :completed",
            values={":completed": RequestStatus.COMPLETED.value},
        )
        return conditional_write(lambda: self._db.update_item(**update.request(self._table)))

    def nudge_completion(self, request_id: str) -> None:
        """Check a request's completion at the next sweep (a fact that may finish it came)."""
        update = Update(
            request_key(request_id),
            set={"due_at": int(self._clock())},
            condition="begins_with(#due_kind, :complete)",
            values={":complete": "complete#"},
        )
        conditional_write(lambda: self._db.update_item(**update.request(self._table)))

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
            send_time=parse_send_time(data.get("send_time", "")),
            append_id=data.get("append_id", ""),
            caller=data.get("caller", ""),
            status=RequestStatus(data["status"]),
            settled_chunks=data.get("settled_chunks", 0),
            fingerprint=data.get("fingerprint", ""),
            opted_out=tuple(data.get("opted_out", [])),
            opted_out_count=data.get("opted_out_count", 0),
            rejected_count=data.get("rejected_count", len(data.get("rejected", []))),
            valid_until=data.get("valid_until", 0),
            callback_url=data.get("callback_url"),
            completed_at=data.get("completed_at"),
            due_checks=data.get("due_checks", 0),
        )

    def get_requests(self, request_ids: Sequence[str]) -> dict[str, RequestRecord]:
        """Several requests' headers at once (a page of search results)."""
        keys = [request_key(r) for r in dict.fromkeys(request_ids)]
        found = (self._request_from(from_item(item)) for item in batch_get(self._db, self._table, keys))
        return {record.id: record for record in found}

    def is_counted(self, chunk: Chunk) -> bool:
        """Whether ``chunk`` was counted settled (``count_settled_chunk``): its final-state
        event, published before it is counted, went out then."""
        item = self._db.get_item(
            TableName=self._table,
            Key=counted_key(chunk.request_id, chunk.number),
            ConsistentRead=True,
            ProjectionExpression="pk",
        ).get("Item")
        return bool(item)

    def count_settled_chunk(self, chunk: Chunk) -> RequestRecord:
        """Count ``chunk`` settled, once; returns the request as it stands after.

        A small marker item per counted chunk and the request's counter move in one
        transaction, so counting a chunk again changes nothing: a settle that stopped before
        its count is finished by the message's next delivery, and the request's item stays
        small (a set of chunk numbers on it would be rewritten whole, and billed, per chunk)."""
        request_id = chunk.request_id
        marker = counted_key(request_id, chunk.number)
        expires_at = self._lifetime.of(chunk)
        # False: counted before, by an earlier delivery or by this very call, whose answer
        # was lost and which botocore retried. A conflict or a missing request raises: the
        # message is delivered again.
        attempt_transaction(
            lambda: self._db.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self._table,
                            "Item": {**marker, "expires_at": {"N": str(expires_at)}},
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
        )
        request = self.get_request(request_id, consistent=True)
        if request is None:
            raise LookupError(f"request {request_id} is gone")
        return request
