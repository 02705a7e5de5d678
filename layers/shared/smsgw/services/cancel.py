"""``DELETE /v1/messages/{id}``: call off what has not been handed to the platform.

Each chunk still held (a scheduled send the gateway keeps until shortly before its send
time), queued or waiting to be retried is cancelled with one conditional write; a worker
claims a chunk with one conditional write too, so a chunk is either cancelled or on its
way, never both. What had left (being submitted, submitted, unknown) is not touched and
is counted in the answer; so are recipients that had already ended (failed, expired).

Cancelling twice answers the same: the counts are those of the chunks' states. Every
cancelled chunk is announced (``Recipients Cancelled``) and counted in its request, so a
request cancelled whole completes; a call that stopped half-way (its answer lost) is
finished by calling again.
"""

from __future__ import annotations

from typing import Any

from smsgw.adapters.events import EventPublisher
from smsgw.adapters.table import MessageTable
from smsgw.domain.callers import is_request_id, same_caller
from smsgw.domain.errors import NotFound
from smsgw.domain.events import Event
from smsgw.domain.model import CANCELLABLE_STATES, LEFT_STATES, Chunk, ChunkRef, ChunkState
from smsgw.observability import MetricUnit, logger, metrics
from smsgw.services.finality import count_settled
from smsgw.services.status import NO_SUCH_REQUEST


class CancelService:
    def __init__(self, store: MessageTable, events: EventPublisher) -> None:
        self._store = store
        self._events = events

    def cancel(self, request_id: str, *, caller: str) -> dict[str, Any]:
        if not is_request_id(request_id):
            raise NotFound(NO_SUCH_REQUEST)
        request = self._store.requests.get_request(request_id, consistent=True)
        if request is None or not same_caller(request.caller, caller):
            raise NotFound(NO_SUCH_REQUEST)
        chunks: list[Chunk] = []
        for chunk in self._store.chunks.list_chunks(request_id, consistent=True):
            if chunk.number >= request.chunk_count:
                continue  # a stopped first attempt's, replanned by its retry
            if chunk.state in CANCELLABLE_STATES:
                chunk = self._store.chunks.cancel_chunk(ChunkRef(request_id, chunk.number)) or chunk  # noqa: PLW2901
            chunks.append(chunk)
        cancelled = [c for c in chunks if c.state is ChunkState.CANCELLED]
        for chunk in cancelled:
            # Announced (once: only while not yet counted) and counted; repeated by a
            # second DELETE if this one stops half-way.
            count_settled(self._store, self._publish, chunk)
        count = sum(len(c.mobiles) for c in cancelled)
        left = sum(len(c.mobiles) for c in chunks if c.state in LEFT_STATES)
        ended = sum(len(c.mobiles) for c in chunks if c.state in (ChunkState.FAILED, ChunkState.EXPIRED))
        metrics.add_metric(name="RecipientsCancelled", unit=MetricUnit.Count, value=count)
        logger.info("cancel", extra={"request_id": request_id, "cancelled": count, "already_left": left})
        return {
            "id": request_id,
            "cancelled": count,
            "already_left": left,
            "already_final": ended,
            "total": request.recipients,
        }

    def _publish(self, events: list[Event]) -> None:
        self._events.publish(events)
