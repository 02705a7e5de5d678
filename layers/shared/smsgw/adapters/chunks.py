"""A request's chunks in DynamoDB (layout in ``dynamo.py``): ``REQ#<id>`` / ``CHUNK#<n>``.

A chunk is up to 200 numbers of one content, one submit. It holds its numbers as one
comma-separated string (the provider's own ``DesMobile`` form), which keeps items small:
write cost is per KB, not per recipient. Its attributes, where the name is short (they are
written once per chunk and read on every claim, and renaming stored attributes would
strand the items already written):

=================  ==========================================================
``n``              the chunk's number in its request (as in its sort key)
``to``             its numbers, comma-separated
``st``             its state (``domain.model.ChunkState``)
``fp``             the fingerprint of the request body it was written for
``ref``            the request's ``reference``
``cat``            the request's category (its lane)
``code``           the last result code (the platform's, or the gateway's own)
=================  ==========================================================

Every other attribute has its full name (``attempts``, ``claim``, ``lease_until``,
``msg_id``, ``send_time``, ``valid_until``, ...). A chunk lives as long as its request.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from smsgw.adapters.dynamo import (
    Lifetime,
    Update,
    attempt_write,
    batch_write,
    chunk_key,
    conditional_write,
    due_kind,
    from_item,
    iso,
    to_item,
)
from smsgw.adapters.links import LinkStore
from smsgw.domain.model import (
    STALE_CLAIM,
    Category,
    Chunk,
    ChunkRef,
    ChunkState,
    Settlement,
)
from smsgw.provider.guodu import format_send_time, parse_send_time

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


@dataclass(frozen=True)
class Claim:
    """The outcome of trying to claim a chunk for a submit."""

    chunk: Chunk | None  # the chunk as it now stands (None: no such chunk)
    claimed: bool
    lease_until: int = 0


class ChunkStore:
    def __init__(
        self,
        client: DynamoDBClient,
        table_name: str,
        *,
        lifetime: Lifetime,
        links: LinkStore,
        report_timeout_seconds: int = 0,
        claims: DynamoDBClient | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._db = client
        self._table = table_name
        self._lifetime = lifetime
        # A submit the platform accepted links its MsgId in the same transaction as the
        # chunk's settlement: the link item is the LinkStore's, which builds its clause.
        self._links = links
        # 0: no report timeout (a recipient waits for its report until its records expire).
        self._report_timeout = report_timeout_seconds
        # Claims go through a client that does not retry: a claim applied while botocore
        # waits to retry it would stand, should the worker die then, for a chunk never sent.
        self._claims = claims or client
        self._clock = clock
        self._sleep = sleep

    def put_chunks(self, chunks: Sequence[Chunk], *, fingerprint: str, retry: bool = False) -> bool:
        """Write a request's chunks, each marked with its body's ``fingerprint``.

        ``retry``: the request's key may have been used by a call that stopped before its
        header (so nothing of it was queued). Chunks of the same body not yet claimed are
        written afresh (the plan may differ: an opt-out since); claimed ones are left to
        their worker; a chunk of another body means the key is taken: nothing more is
        written, and False is returned. One call per chunk."""
        expires_at = self._lifetime.expires_at(max((self._lifetime.base_of(c) for c in chunks), default=0))
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
            written = attempt_write(
                partial(
                    self._db.put_item,
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
            )
            if not written.ok and written.old.get("fp", {}).get("S") != fingerprint:
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

    def get_chunk(self, ref: ChunkRef, *, consistent: bool = True) -> Chunk | None:
        item = self._db.get_item(
            TableName=self._table, Key=chunk_key(ref.request_id, ref.number), ConsistentRead=consistent
        ).get("Item")
        return self._chunk_from(ref.request_id, from_item(item)) if item else None

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
        written = attempt_write(
            lambda: self._claims.update_item(
                **request, ReturnValues="ALL_NEW", ReturnValuesOnConditionCheckFailure="ALL_OLD"
            )
        )
        if written.ok:
            return Claim(
                self._chunk_from(ref.request_id, from_item(written.answer["Attributes"])), True, lease_until
            )
        if not written.old:
            return Claim(chunk=None, claimed=False)
        data = from_item(written.old)
        chunk = self._chunk_from(ref.request_id, data)
        mine = chunk.claim == token and chunk.state is ChunkState.SUBMITTING
        return Claim(chunk, claimed=mine, lease_until=data.get("lease_until", 0))

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
            # The early-report handshake (domain/reports.py): the link is an update of the
            # MsgId's item, which reports may have reached first; they stay.
            link = self._links.link_clause(chunk, settlement.msg_id)
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
        written = attempt_write(
            lambda: self._db.update_item(
                **update.request(self._table), ReturnValuesOnConditionCheckFailure="ALL_OLD"
            )
        )
        if written.ok:
            return True
        old = from_item(written.old)
        return (
            old.get("claim") == settlement.token
            and old.get("st") == settlement.state.value
            and old.get("code") == settlement.code
        )

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
            due_at = self._lifetime.base_of(chunk) if chunk.send_time else int(self._clock())
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

    def mark_stale(self, chunk: Chunk) -> bool:
        """A worker claimed ``chunk`` and stopped (timeout, crash) while its submit may have
        left: the chunk ends ``unknown``. Should that worker's own answer still arrive (a
        settle message), it replaces this guess."""
        return self.settle(
            chunk,
            Settlement(chunk.claim, ChunkState.UNKNOWN, STALE_CLAIM, "worker stopped mid-submit"),
        )

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
        written = attempt_write(
            lambda: self._db.update_item(
                **update, ReturnValues="ALL_NEW", ReturnValuesOnConditionCheckFailure="ALL_OLD"
            )
        )
        if written.ok:
            return self._chunk_from(ref.request_id, from_item(written.answer["Attributes"]))
        return self._chunk_from(ref.request_id, from_item(written.old)) if written.old else None

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


def _skipped_text(skipped: Sequence[tuple[str, str]]) -> str:
    return ",".join(f"{mobile}:{reason}" for mobile, reason in skipped)


def _skipped_of(text: str) -> tuple[tuple[str, str], ...]:
    pairs = (part.split(":", 1) for part in text.split(",") if ":" in part)
    return tuple((mobile, reason) for mobile, reason in pairs)
