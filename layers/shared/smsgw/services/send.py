"""Accept a send request: store it, split it into chunks and put them on the send queue.

Idempotency without a second store: with an ``Idempotency-Key`` the request id is derived
from (caller, key), so a retry lands on the same request. The request header is written
with a condition and carries a fingerprint of the body:

- same key, same body, request already queued: the first reply again, nothing sent;
- same key, same body, an earlier attempt stopped half-way: the missing chunks are
  written and every chunk is queued again (the worker claims a chunk once, so a chunk
  queued twice is still submitted once);
- same key, different body: ``IdempotencyConflict`` (HTTP 409).

Once the header is stored the request is accepted, whatever happens next: if queueing
its chunks fails part-way (SQS throttled, the invocation out of time), the client still
gets its 202, and the reconciler queues the chunks within minutes (the header stays
``accepting``, on the due index, until every chunk is on the queue). A client that
retried instead would, without a key, have created a second request.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from smsgw.adapters.frequency import FrequencyStore
from smsgw.adapters.optouts import OptOutStore
from smsgw.adapters.queue import ChunkMessage, LaneQueues, SendQueue
from smsgw.adapters.search import SearchStore
from smsgw.adapters.table import MessageTable
from smsgw.domain.caps import FREQUENCY_CAPPED, FrequencyCaps
from smsgw.domain.errors import FieldProblem, FrequencyCapped, IdempotencyConflict
from smsgw.domain.model import (
    MAX_LISTED,
    Category,
    Chunk,
    ChunkRef,
    ChunkState,
    MessageGroup,
    RequestRecord,
    RequestStatus,
    SendCommand,
    plan_chunks,
)
from smsgw.domain.numbers import Rejection
from smsgw.observability import MetricUnit, logger, metrics


def fingerprint(body: Any) -> str:
    """Same JSON, whatever its spacing or key order, gives the same fingerprint."""
    canonical = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def accepted_reply(record: RequestRecord) -> dict[str, Any]:
    reply: dict[str, Any] = {
        "id": record.id,
        "status": "accepted",
        "recipients": record.recipients,
        "segments": record.segments,
        "total_segments": record.total_segments,
        "rejected": [r.as_dict() for r in record.rejected],
    }
    if record.rejected_count > len(record.rejected):  # the list holds the first MAX_LISTED
        reply["rejected_count"] = record.rejected_count
    if record.opted_out_count:
        reply["opted_out"] = list(record.opted_out)
        reply["opted_out_count"] = record.opted_out_count
    if record.reference is not None:
        reply["reference"] = record.reference
    return reply


class IntakeFinisher:
    """Puts an accepted request's chunks on the queue and marks it accepted: at intake, on
    a keyed replay of an intake that stopped short, and in the reconciler."""

    def __init__(self, store: MessageTable, queue: SendQueue | LaneQueues) -> None:
        self._store = store
        self._queue = queue  # each chunk goes on the queue of its request's lane

    def finish(self, record: RequestRecord, chunks: list[Chunk] | None = None) -> bool:
        """Queue every chunk of an accepted request, then mark it accepted. False when that
        could not be done now: the request stays ``accepting`` and the reconciler finishes
        it. Queued twice is harmless: the worker claims a chunk once."""
        if not record.chunk_count:
            return True
        if chunks is None:
            chunks = [c for c in self._store.chunks.list_chunks(record.id) if c.number < record.chunk_count]
        try:
            self._queue.enqueue(
                [
                    ChunkMessage(ChunkRef(record.id, c.number), len(c.mobiles), category=record.category)
                    for c in chunks
                ]
            )
            # Unless a worker was quicker and settled every chunk already.
            self._store.requests.mark_accepted(record.id)
        except Exception:
            logger.exception(
                "the request is stored but not yet wholly queued: the reconciler will finish it",
                extra={"request_id": record.id},
            )
            metrics.add_metric(name="IntakesUnfinished", unit=MetricUnit.Count, value=1)
            return False
        return True


class SendService:
    def __init__(
        self,
        store: MessageTable,
        queue: SendQueue | LaneQueues,
        opt_outs: OptOutStore,
        frequency: FrequencyStore,
        *,
        caps: FrequencyCaps,
        per_submit: int,
        default_validity_seconds: int = 36_000,
        search: SearchStore | None = None,
        hold_after_seconds: int = 0,
        release_lead_seconds: int = 300,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._search = search
        # A send scheduled further ahead than this is held by the gateway (0: never), and
        # released this long before its send time (``reconcile``): until then it can be
        # cancelled, and opt-outs and caps are applied when it goes.
        self._hold_after = hold_after_seconds
        self._release_lead = release_lead_seconds
        self._store = store
        self._intake = IntakeFinisher(store, queue)
        self._opt_outs = opt_outs
        self._frequency = frequency
        self._caps = caps
        self._per_submit = per_submit
        self._default_validity = default_validity_seconds
        self._clock = clock

    def send(
        self,
        command: Callable[[datetime], SendCommand],
        *,
        request_id: str,
        body_fingerprint: str,
        keyed: bool = False,
    ) -> dict[str, Any]:
        """A request as the API receives it: ``command(now)`` judges its body (raising
        ``InputError``) and gives the command to accept.

        A keyed request seen before gets its first reply before its body is judged afresh:
        a send_at that has passed since, or a cap the first send used up, must not turn it
        into a 400. That costs a new keyed request one consistent read, and no more."""
        if keyed and (reply := self.replay(request_id, body_fingerprint)) is not None:
            return reply
        now = self._clock()
        return self._accept(
            command(now), now, request_id=request_id, body_fingerprint=body_fingerprint, keyed=keyed
        )

    def accept(
        self, command: SendCommand, *, request_id: str, body_fingerprint: str, keyed: bool = False
    ) -> dict[str, Any]:
        """Store and queue a request. ``keyed``: its id comes from an Idempotency-Key, so
        it may exist already (a replay, or a retry of an attempt that stopped half-way)."""
        if keyed and (reply := self.replay(request_id, body_fingerprint)) is not None:
            return reply
        return self._accept(
            command, self._clock(), request_id=request_id, body_fingerprint=body_fingerprint, keyed=keyed
        )

    def _accept(
        self, command: SendCommand, now: datetime, *, request_id: str, body_fingerprint: str, keyed: bool
    ) -> dict[str, Any]:
        """Store and queue a request known not to exist yet (or, keyed, not to have been seen
        when this call began: a concurrent twin is caught by the header's condition)."""
        release_at = self._release_at(command, now)
        command = self._without_opted_out(command)
        if release_at is None:
            # A held send is counted against its caps when it is released (when it goes).
            command = self._apply_caps(command, holder=request_id if keyed else None)
        valid_until = int(now.timestamp()) + (command.valid_for or self._default_validity)
        if release_at is not None:
            # Its validity runs from its send time: it waits for it by design.
            valid_until = release_at + self._release_lead + (command.valid_for or self._default_validity)
        chunks = plan_chunks(
            request_id,
            command,
            self._per_submit,
            valid_until=valid_until,
            state=ChunkState.HELD if release_at is not None else ChunkState.QUEUED,
        )
        status = RequestStatus.SUBMITTED if not chunks else RequestStatus.ACCEPTING
        if chunks and release_at is not None:
            status = RequestStatus.ACCEPTED  # nothing to queue now: the release queues it
        record = RequestRecord(
            valid_until=valid_until,
            id=request_id,
            created_at=now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            recipients=command.recipients,
            segments=command.segments,
            total_segments=command.total_segments,
            chunk_count=len(chunks),
            rejected=command.rejected[:MAX_LISTED],
            rejected_count=len(command.rejected),
            reference=command.reference,
            category=command.category,
            send_time=command.send_time,
            append_id=command.append_id,
            caller=command.caller,
            fingerprint=body_fingerprint,
            opted_out=command.opted_out[:MAX_LISTED],
            opted_out_count=len(command.opted_out),
            status=status,
            callback_url=command.callback_url,
        )
        # Chunks first, the request header last: once the header exists, so does every
        # chunk, and a retry only has to queue them. A keyed retry may find chunks of a
        # call that stopped before its header: its own body's are written afresh (never
        # one a worker has claimed), another body's mean the key is taken.
        if not self._store.chunks.put_chunks(chunks, fingerprint=body_fingerprint, retry=keyed):
            raise IdempotencyConflict("this Idempotency-Key was used with a different request body")
        self._index(record, command)
        if not self._store.requests.create_request(record, release_at=release_at):
            existing = self._store.requests.get_request(request_id, consistent=True)
            if existing is None:
                raise IdempotencyConflict("this request is being changed by another call; retry")
            return self._again(existing, body_fingerprint)
        if release_at is None:
            self._intake.finish(record, chunks)
        metrics.add_metric(name="RecipientsAccepted", unit=MetricUnit.Count, value=command.recipients)
        metrics.add_metric(name="SegmentsAccepted", unit=MetricUnit.Count, value=command.total_segments)
        if command.rejected:
            metrics.add_metric(name="RecipientsRejected", unit=MetricUnit.Count, value=len(command.rejected))
        logger.info(
            "request accepted",
            extra={"request_id": request_id, "recipients": command.recipients, "chunks": len(chunks)},
        )
        return accepted_reply(record)

    def _release_at(self, command: SendCommand, now: datetime) -> int | None:
        """When a held send is released (epoch seconds), or None: it is queued now."""
        moment = command.send_time
        if not self._hold_after or moment is None:
            return None
        if moment.timestamp() - now.timestamp() <= self._hold_after:
            return None
        return int(moment.timestamp()) - self._release_lead

    def _index(self, record: RequestRecord, command: SendCommand) -> None:
        """The request's search entries (by number; its extension for replies), written
        before its header: once a request exists, it can be found."""
        if self._search is None:
            return
        expires_at = self._store.requests.expires_at_of(record)
        self._search.index_recipients(
            caller=record.caller,
            request_id=record.id,
            created_at=record.created_at,
            mobiles=(m for group in command.groups for m in group.mobiles),
            expires_at=expires_at,
        )
        if record.append_id:
            self._search.register_extension(
                caller=record.caller, append_id=record.append_id, expires_at=expires_at
            )

    def replay(self, request_id: str, body_fingerprint: str) -> dict[str, Any] | None:
        """A keyed request seen before: its first reply (409 for another body); None if new."""
        existing = self._store.requests.get_request(request_id, consistent=True)
        return None if existing is None else self._again(existing, body_fingerprint)

    def _again(self, existing: RequestRecord, body_fingerprint: str) -> dict[str, Any]:
        """The same key again: the first reply, after finishing what the first call left."""
        if existing.fingerprint != body_fingerprint:
            raise IdempotencyConflict("this Idempotency-Key was used with a different request body")
        if existing.status is RequestStatus.ACCEPTING:
            logger.warning(
                "queueing a request an earlier call stopped short of", extra={"request_id": existing.id}
            )
            self._intake.finish(existing)
        else:
            logger.info("idempotent replay", extra={"request_id": existing.id})
        return accepted_reply(existing)

    def _without_opted_out(self, command: SendCommand) -> SendCommand:
        """Marketing never goes to a number that replied an opt-out keyword."""
        if command.category is not Category.MARKETING:
            return command
        opted = self._opt_outs.opted_out(m for group in command.groups for m in group.mobiles)
        if not opted:
            return command
        skipped = tuple(dict.fromkeys(m for group in command.groups for m in group.mobiles if m in opted))
        metrics.add_metric(name="RecipientsOptedOut", unit=MetricUnit.Count, value=len(skipped))
        return replace(command, groups=_without(command.groups, opted), opted_out=skipped)

    def _apply_caps(self, command: SendCommand, *, holder: str | None) -> SendCommand:
        """Numbers over a frequency cap of the request's category are refused with the cap.

        ``holder``: a keyed request's id, so that its retry is not counted (nor refused) again."""
        caps = self._caps.for_category(command.category)
        if not caps:
            return command
        # A personalised request may send one number several messages: each one counts.
        mobiles = Counter(m for group in command.groups for m in group.mobiles)
        refused = self._frequency.take(mobiles, command.category, caps, holder=holder)
        if not refused:
            return command
        metrics.add_metric(name="RecipientsFrequencyCapped", unit=MetricUnit.Count, value=len(refused))
        rejections = tuple(Rejection(m, FREQUENCY_CAPPED, cap.describe()) for m, cap in refused.items())
        if len(refused) == len(mobiles):
            raise FrequencyCapped(
                [FieldProblem("to", f"{cap.describe()} for this number", m) for m, cap in refused.items()]
            )
        return replace(
            command, groups=_without(command.groups, set(refused)), rejected=command.rejected + rejections
        )


def _without(groups: tuple[MessageGroup, ...], excluded: set[str]) -> tuple[MessageGroup, ...]:
    kept = []
    for group in groups:
        mobiles = tuple(m for m in group.mobiles if m not in excluded)
        if mobiles:
            kept.append(MessageGroup(group.content, mobiles, group.segments))
    return tuple(kept)
