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
    DUE_INDEX,
    DUE_SHARDS,
    Update,
    batch_get,
    batch_write,
    chunk_key,
    conditional_write,
    due_kind,
    from_item,
    is_condition_failure,
    iso,
    key,
    link_key,
    old_item,
    request_key,
    to_item,
)
from smsgw.adapters.links import link_from_item
from smsgw.adapters.search import reference_key
from smsgw.domain.model import (
    STALE_CLAIM,
    Category,
    Chunk,
    ChunkRef,
    ChunkState,
    RequestRecord,
    RequestStatus,
    Settlement,
)
from smsgw.domain.numbers import Rejection
from smsgw.domain.reports import Link
from smsgw.provider.guodu import format_send_time, parse_send_time

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
        report_timeout_seconds: int = 0,
        accepting_grace_seconds: int = 120,
        claims: DynamoDBClient | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._db = client
        self._table = table_name
        self._retention = retention_days * 86_400
        # 0: no report timeout (a recipient waits for its report until its records expire).
        self._report_timeout = report_timeout_seconds
        self._accepting_grace = accepting_grace_seconds
        # Claims go through a client that does not retry: a claim applied while botocore
        # waits to retry it would stand, should the worker die then, for a chunk never sent.
        self._claims = claims or client
        self._clock = clock
        self._sleep = sleep

    def _expires_at(self, base: float | None = None) -> int:
        """When an item goes (TTL): ``RetentionDays`` after ``base`` (default: now)."""
        return int(max(self._clock(), base or 0)) + self._retention

    def expires_at_of(self, record: RequestRecord) -> int:
        """When the request's records go: ``RetentionDays`` after it (or its send time)."""
        return self._expires_at(self._lifetime_base(record))

    def _lifetime_base(self, record: Chunk | RequestRecord) -> int:
        """The moment a request's records must outlive: its send time (a scheduled send's
        reports arrive after it) or the end of its validity, whichever is later."""
        due = record.send_time
        return int(max(self._clock(), due.timestamp() if due else 0, record.valid_until))

    # ------------------------------------------------------------------ intake

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
            "expires_at": self._expires_at(self._lifetime_base(request)),
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
        expires_at = self._expires_at(max((self._lifetime_base(c) for c in chunks), default=0))
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
            "send_time": format_send_time(chunk.send_time),
            "append_id": chunk.append_id,
            "ref": chunk.reference,
            "cat": chunk.category.value,
            "valid_until": chunk.valid_until or None,
            "st": chunk.state.value,
            "attempts": chunk.attempts,
            "skipped": _skipped_text(chunk.skipped) or None,
            "expires_at": expires_at,
        }

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

    def reschedule(self, pk: str, sk: str, *, due_at: int) -> None:
        """Look at a due item again at ``due_at`` (and count how often it was looked at)."""
        update = Update(
            key(pk, sk),
            set={"due_at": due_at},
            add={"due_checks": 1},
            condition="attribute_exists(#due_kind)",
        )
        conditional_write(lambda: self._db.update_item(**update.request(self._table)))

    def nudge_completion(self, request_id: str) -> None:
        """Check a request's completion at the next sweep (a fact that may finish it came)."""
        update = Update(
            request_key(request_id),
            set={"due_at": int(self._clock())},
            condition="begins_with(#due_kind, :complete)",
            values={":complete": "complete#"},
        )
        conditional_write(lambda: self._db.update_item(**update.request(self._table)))

    def due(self, kind: str, *, now: int, limit: int = 100) -> list[tuple[str, str]]:
        """Keys (pk, sk) of items whose ``kind`` of sweep is due (the sparse due index)."""
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

    def list_chunks(self, request_id: str, *, consistent: bool = False) -> list[Chunk]:
        """Every chunk of a request, in order."""
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :chunk)",
            "ExpressionAttributeValues": {":pk": {"S": f"REQ#{request_id}"}, ":chunk": {"S": "CHUNK#"}},
            "ConsistentRead": consistent,
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
            send_time=parse_send_time(data.get("send_time", "")),
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
            claim=data.get("claim", ""),
            lease_until=data.get("lease_until", 0),
            no_report=bool(data.get("no_report_at")),
            skipped=_skipped_of(data.get("skipped", "")),
        )

    def get_links(self, msg_ids: Sequence[str]) -> dict[str, Link]:
        """These MsgIds' links, with their reports; one known only from reports that beat
        the submit's answer has no request yet."""
        keys = [link_key(m) for m in dict.fromkeys(msg_ids)]
        return {link.msg_id: link for link in map(link_from_item, batch_get(self._db, self._table, keys))}

    def get_chunk(self, ref: ChunkRef, *, consistent: bool = True) -> Chunk | None:
        item = self._db.get_item(
            TableName=self._table, Key=chunk_key(ref.request_id, ref.number), ConsistentRead=consistent
        ).get("Item")
        return self._chunk_from(ref.request_id, from_item(item)) if item else None

    def clear_due(self, pk: str, sk: str) -> None:
        """Take an item off the due index (its sweep has nothing more to do)."""
        self._db.update_item(**Update(key(pk, sk), remove=("due_kind", "due_at")).request(self._table))

    def mark_no_report(self, chunk: Chunk) -> bool:
        """The report timeout of a submitted chunk has passed: the numbers without a report
        read ``unknown`` (``no_report``) from now on. False if marked before."""
        update = Update(
            chunk_key(chunk.request_id, chunk.number),
            set={"no_report_at": int(self._clock())},
            remove=("due_kind", "due_at"),
            condition="#st = :submitted AND attribute_not_exists(#no_report_at)",
            values={":submitted": ChunkState.SUBMITTED.value},
        )
        return conditional_write(lambda: self._db.update_item(**update.request(self._table)))

    # ------------------------------------------------------------------ one attempt

    def claim_chunk(self, ref: ChunkRef, *, token: str, lease_seconds: int) -> Claim:
        """Take a queued (or retrying) chunk for one submit attempt, under ``token``.

        A single conditional write: two workers holding copies of the same SQS message
        cannot both claim it, and a chunk already submitted is never claimed again. When
        botocore retries a claim whose answer was lost, the retry fails against the claim
        it made itself: the token tells that apart from another worker's claim."""
        now = self._clock()
        lease_until = int(now) + lease_seconds
        request = Update(
            chunk_key(ref.request_id, ref.number),
            set={
                "st": ChunkState.SUBMITTING.value,
                "claim": token,
                "lease_until": lease_until,
                "updated_at": iso(now),
            },
            add={"attempts": 1},
            condition="#st IN (:queued, :retrying)",
            values={":queued": ChunkState.QUEUED.value, ":retrying": ChunkState.RETRYING.value},
        ).request(self._table)
        try:
            result = self._claims.update_item(
                **request, ReturnValues="ALL_NEW", ReturnValuesOnConditionCheckFailure="ALL_OLD"
            )
        except ClientError as err:
            if not is_condition_failure(err):
                raise
            data = old_item(err)
            if not data:
                return Claim(chunk=None, claimed=False)
            chunk = self._chunk_from(ref.request_id, data)
            mine = chunk.claim == token and chunk.state is ChunkState.SUBMITTING
            return Claim(chunk, claimed=mine, lease_until=data.get("lease_until", 0))
        return Claim(self._chunk_from(ref.request_id, from_item(result["Attributes"])), True, lease_until)

    def settle(self, chunk: Chunk, settlement: Settlement) -> bool:
        """Write what attempt ``settlement.token`` made of ``chunk``: only while that attempt
        holds the claim (or a worker took it for a dead one's and guessed ``unknown``: the
        attempt's own answer is the truth and replaces the guess).

        A submit the platform accepted also links its MsgId to the request, in one
        transaction, so that a report can always find its request. Returns False when the
        chunk was no longer this attempt's to settle. A write whose answer was lost and
        which botocore retried counts as done: the item shows it was this attempt's."""
        update = self._settle_update(chunk, settlement)
        if settlement.state is ChunkState.SUBMITTED and settlement.msg_id:
            link = self._link_update(chunk, settlement.msg_id)
            try:
                items: list[Any] = [
                    {"Update": update.request(self._table)},
                    {"Update": link.request(self._table)},
                ]
                self._db.transact_write_items(
                    TransactItems=items,
                    # botocore gives the call a ClientRequestToken that its own retries
                    # reuse: DynamoDB answers a retry of an applied transaction with success.
                )
                return True
            except ClientError as err:
                if err.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                    raise
            # Cancelled: the chunk's condition failed (perhaps against this very write,
            # retried), or another write was under way on an item (a report landing on
            # the MsgId's item). The platform accepted either way: the link first, so that
            # a report can find its request, then the chunk, still only if it is ours.
            self._db.update_item(**link.request(self._table))
        try:
            self._db.update_item(**update.request(self._table), ReturnValuesOnConditionCheckFailure="ALL_OLD")
        except ClientError as err:
            if not is_condition_failure(err):
                raise
            old = old_item(err)
            return (
                old.get("claim") == settlement.token
                and old.get("st") == settlement.state.value
                and old.get("code") == settlement.code
            )
        return True

    def _settle_update(self, chunk: Chunk, settlement: Settlement) -> Update:
        values: dict[str, Any] = {
            "st": settlement.state.value,
            "code": settlement.code,
            "detail": settlement.detail,
            "updated_at": iso(self._clock()),
            "msg_id": settlement.msg_id,
            "valid_until": settlement.valid_until,
        }
        if settlement.restart_attempts:
            values["attempt_base"] = chunk.attempts
        if settlement.state is ChunkState.SUBMITTED and self._report_timeout:
            # Swept after the report timeout: numbers with no report by then end "unknown".
            due_at = self._lifetime_base(chunk) if chunk.send_time else int(self._clock())
            values.update(due_kind=due_kind("report", chunk.request_id), due_at=due_at + self._report_timeout)
        return Update(
            chunk_key(chunk.request_id, chunk.number),
            set=values,
            add={} if settlement.attempt_counted else {"attempts": -1},
            remove=("lease_until",),
            # A chunk claimed before claims carried a token (an upgrade) is settled by its state.
            condition=("#claim = :token" if settlement.token else "attribute_not_exists(#claim)")
            + " AND (#st = :claimed OR (#st = :unknown AND #code = :stale))",
            values={
                **({":token": settlement.token} if settlement.token else {}),
                ":claimed": ChunkState.SUBMITTING.value,
                ":unknown": ChunkState.UNKNOWN.value,
                ":stale": STALE_CLAIM,
            },
        )

    def _link_update(self, chunk: Chunk, msg_id: str) -> Update:
        # An update, not a put: reports that beat the submit's answer are kept.
        return Update(
            link_key(msg_id),
            set={
                "kind": "link",
                "request_id": chunk.request_id,
                "chunk": chunk.number,
                "submitted_at": iso(self._clock()),
                "expires_at": self._expires_at(self._lifetime_base(chunk)),
                "reference": chunk.reference,
            },
        )

    def mark_stale(self, chunk: Chunk) -> bool:
        """A worker claimed ``chunk`` and stopped (timeout, crash) while its submit may have
        left: the chunk ends ``unknown``. Should that worker's own answer still arrive (a
        settle message), it replaces this guess."""
        return self.settle(
            chunk,
            Settlement(chunk.claim, ChunkState.UNKNOWN, STALE_CLAIM, "worker stopped mid-submit"),
        )

    def is_counted(self, chunk: Chunk) -> bool:
        """Whether ``chunk`` was counted settled (``count_settled_chunk``): its final-state
        event, published before it is counted, went out then."""
        item = self._db.get_item(
            TableName=self._table,
            Key=key(f"REQ#{chunk.request_id}", f"COUNTED#{chunk.number:05d}"),
            ConsistentRead=True,
            ProjectionExpression="pk",
        ).get("Item")
        return bool(item)

    def cancel_chunk(self, ref: ChunkRef) -> Chunk | None:
        """Call a chunk off, if nothing of it has left (held, queued, retrying); returns the
        chunk as it now stands. A worker's claim is one conditional write too, so a chunk is
        either cancelled or claimed, never both. Applied twice (botocore retried a write whose
        answer was lost), it finds the chunk cancelled: the same outcome."""
        update = Update(
            chunk_key(ref.request_id, ref.number),
            set={
                "st": ChunkState.CANCELLED.value,
                "code": "cancelled",
                "detail": "cancelled before it was handed to the platform",
                "updated_at": iso(self._clock()),
            },
            remove=("due_kind", "due_at"),
            condition="#st IN (:held, :queued, :retrying)",
            values={
                ":held": ChunkState.HELD.value,
                ":queued": ChunkState.QUEUED.value,
                ":retrying": ChunkState.RETRYING.value,
            },
        ).request(self._table)
        try:
            result = self._db.update_item(
                **update, ReturnValues="ALL_NEW", ReturnValuesOnConditionCheckFailure="ALL_OLD"
            )
        except ClientError as err:
            if not is_condition_failure(err):
                raise
            data = old_item(err)
            return self._chunk_from(ref.request_id, data) if data else None
        return self._chunk_from(ref.request_id, from_item(result["Attributes"]))

    def release_chunk(self, chunk: Chunk, *, keep: Sequence[str], skipped: Sequence[tuple[str, str]]) -> bool:
        """A held chunk goes to the send queue's worker: its numbers are now ``keep`` (those
        opted out or over a cap since intake are ``skipped``). With none kept it is over:
        cancelled. False when it was not held any more (cancelled meanwhile, released by an
        earlier run)."""
        state = ChunkState.QUEUED if keep else ChunkState.CANCELLED
        update = Update(
            chunk_key(chunk.request_id, chunk.number),
            set={
                "st": state.value,
                "to": ",".join(keep),
                "skipped": _skipped_text(skipped) or None,
                "updated_at": iso(self._clock()),
                **({} if keep else {"code": "skipped", "detail": "every number was skipped at release"}),
            },
            condition="#st = :held",
            values={":held": ChunkState.HELD.value},
        )
        return conditional_write(lambda: self._db.update_item(**update.request(self._table)))

    def count_settled_chunk(self, chunk: Chunk) -> RequestRecord:
        """Count ``chunk`` settled, once; returns the request as it stands after.

        A small marker item per counted chunk and the request's counter move in one
        transaction, so counting a chunk again changes nothing: a settle that stopped before
        its count is finished by the message's next delivery, and the request's item stays
        small (a set of chunk numbers on it would be rewritten whole, and billed, per chunk)."""
        request_id = chunk.request_id
        marker = key(f"REQ#{request_id}", f"COUNTED#{chunk.number:05d}")
        expires_at = self._expires_at(self._lifetime_base(chunk))
        try:
            self._db.transact_write_items(
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
        except ClientError as err:
            reasons = err.response.get("CancellationReasons") or [{}]
            if reasons[0].get("Code") != "ConditionalCheckFailed":
                raise  # a conflict or a missing request: the message is delivered again
            # Counted before: by an earlier delivery, or by this very call, whose answer
            # was lost and which botocore retried.
        request = self.get_request(request_id, consistent=True)
        if request is None:
            raise LookupError(f"request {request_id} is gone")
        return request


def _skipped_text(skipped: Sequence[tuple[str, str]]) -> str:
    return ",".join(f"{mobile}:{reason}" for mobile, reason in skipped)


def _skipped_of(text: str) -> tuple[tuple[str, str], ...]:
    pairs = (part.split(":", 1) for part in text.split(",") if ":" in part)
    return tuple((mobile, reason) for mobile, reason in pairs)
