"""Counting a settled chunk in its request, and announcing what that settles.

Used by every path that settles a chunk: the worker (submitted, failed, unknown, expired),
``DELETE /v1/messages/{id}`` (cancelled) and the release of held chunks (all skipped).

The order makes each fact announced once and never lost:

1. a chunk the gateway settled itself (failed at submit, unknown, expired, cancelled) is
   announced while it is *not yet counted* (one consistent read of its counted marker):
   a later delivery of the same message, or a settle order written twice, finds it
   counted and announces nothing; a run that stopped between the two announces again,
   under the same ``event_id``;
2. it is counted (one transaction, idempotent);
3. once every chunk is counted, ``Request Submitted`` goes out and the request waits for
   its completion check (``reconcile``), which announces ``Request Completed``.
"""

from __future__ import annotations

from collections.abc import Callable

from smsgw.adapters.table import MessageTable
from smsgw.domain.events import Event
from smsgw.domain.model import Chunk, RequestStatus
from smsgw.observability import logger
from smsgw.services.announce import chunk_event, request_submitted_event

Publish = Callable[[list[Event]], None]


def count_settled(store: MessageTable, publish: Publish, chunk: Chunk) -> bool:
    """Announce ``chunk``'s final state (if it has one of its own and is not yet counted),
    count it, and announce its request once every chunk is counted. Raises on AWS errors:
    the caller repeats it (every step is idempotent)."""
    event = chunk_event(chunk)
    if event is not None and not store.requests.is_counted(chunk):
        publish([event])
    request = store.requests.count_settled_chunk(chunk)
    if request.settled_chunks >= request.chunk_count and request.status in (
        RequestStatus.ACCEPTING,
        RequestStatus.ACCEPTED,
    ):
        logger.info("request fully submitted", extra={"request_id": chunk.request_id})
        # Announced before it is marked: a run stopping in between leaves the mark to the
        # next one, which announces again (the same event id).
        publish(
            [request_submitted_event(request.id, request.reference, request.recipients, request.chunk_count)]
        )
        store.requests.mark_submitted(chunk.request_id)
    return True
