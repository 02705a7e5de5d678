"""The reconciler: a scheduled sweep (every minute) that finishes what no message brings back.

Four kinds of item wait on the sparse due index (``adapters.dynamo.DUE_INDEX``), each a
sweep of its own, in this order:

- ``accepting``: a request still accepting a few minutes after its intake began: the call
  that took it stopped before every chunk was on the queue (SQS failed part-way, the API's
  time ran out). Its chunks are queued now (again: the worker claims a chunk once) and it
  is marked accepted. No client retry is needed, and an unkeyed one is never asked for.
- ``release``: a request scheduled further ahead than ``ScheduledHoldSeconds``, whose
  chunks the gateway holds itself (so that ``DELETE`` can still call them off) until
  ``ScheduledReleaseLeadSeconds`` before its send time. At release each held chunk is
  screened again: numbers that opted out (marketing) or went over a frequency cap since
  intake are skipped (announced as ``Recipients Skipped``); the rest go on the send queue,
  to be submitted with the platform's SendTime. A run that stops half-way is finished by
  the next: the request stays due until its released chunks are all on the queue.
- ``report``: a submitted chunk whose report timeout (``ReportTimeoutHours``, 72 by
  default, as AWS End User Messaging) has passed: its numbers with no report end
  ``unknown`` with detail ``no_report``, announced and counted. A report that still comes
  settles them after all: reports always win over the timeout.
- ``complete``: a request whose chunks have all settled: once every recipient is final (its
  report, or ``no_report``), it is marked ``completed`` and ``Request Completed`` is
  announced with its counts. Until then it is looked at again, less and less often (1, 5,
  30 minutes, 2 hours, then every 6 hours); a report timeout that ends its last
  recipients brings the check forward to the next run.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from smsgw.adapters.events import EventPublisher
from smsgw.adapters.frequency import FrequencyStore
from smsgw.adapters.optouts import OptOutStore
from smsgw.adapters.queue import ChunkMessage, LaneQueues, SendQueue
from smsgw.adapters.table import MessageTable
from smsgw.domain.caps import FREQUENCY_CAPPED, FrequencyCaps
from smsgw.domain.events import Event
from smsgw.domain.model import Category, Chunk, ChunkRef, ChunkState, RecipientStatus, RequestStatus
from smsgw.domain.times import iso
from smsgw.observability import MetricUnit, logger, metrics
from smsgw.services.announce import no_report_event, request_completed_event, skipped_event
from smsgw.services.finality import count_settled
from smsgw.services.send import IntakeFinisher
from smsgw.services.status import counts_view, load, recipient_counts

# Completion checks back off: the delay after the n-th unsuccessful one (the last repeats).
COMPLETION_BACKOFF = (60, 300, 1_800, 7_200, 21_600)
OPTED_OUT = "opted_out"


@dataclass
class Swept:
    intakes_finished: int = 0
    chunks_checked: int = 0
    recipients_unknown: int = 0
    requests_released: int = 0
    recipients_released: int = 0
    recipients_skipped: int = 0
    requests_completed: int = 0
    failures: int = 0


@dataclass(frozen=True)
class Screen:
    """What a held chunk is screened against at its release."""

    opt_outs: OptOutStore
    frequency: FrequencyStore
    caps: FrequencyCaps


class ReconcileService:
    def __init__(
        self,
        store: MessageTable,
        intake: IntakeFinisher,
        events: EventPublisher,
        *,
        queue: SendQueue | LaneQueues | None = None,
        screen: Screen | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._intake = intake
        self._events = events
        self._queue = queue
        self._screen = screen
        self._clock = clock

    def sweep(self, *, budget_seconds: float) -> Swept:
        """One pass over what is due now, for at most ``budget_seconds`` (the next scheduled
        run goes on). An item that fails stays due for the next run."""
        swept = Swept()
        now = int(self._clock())
        ends_at = time.monotonic() + budget_seconds
        steps: list[tuple[str, Callable[[str, str], Callable[[], None]]]] = [
            ("accepting", lambda pk, _: partial(self._finish_intake, swept, pk.removeprefix("REQ#"))),
            ("release", lambda pk, _: partial(self._release, swept, pk.removeprefix("REQ#"))),
            ("report", lambda pk, sk: partial(self._settle_silent, swept, _chunk_ref(pk, sk))),
            ("complete", lambda pk, _: partial(self._complete, swept, pk.removeprefix("REQ#"))),
        ]
        for kind, step in steps:
            if kind == "release" and self._queue is None:
                continue
            for pk, sk in self._store.due.due(kind, now=now):
                if time.monotonic() > ends_at:
                    return swept
                self._guarded(swept, step(pk, sk), f"{pk}/{sk}")
        if any(vars(swept).values()):
            logger.info("reconciled", extra=vars(swept))
        return swept

    @staticmethod
    def _guarded(swept: Swept, step: Callable[[], None], item: str) -> None:
        try:
            step()
        except Exception:
            swept.failures += 1
            logger.exception("reconciling an item failed; it stays due", extra={"item": item})

    def _publish(self, events: list[Event]) -> None:
        if events:
            self._events.publish(events)

    # -- accepting ------------------------------------------------------------------------

    def _finish_intake(self, swept: Swept, request_id: str) -> None:
        request = self._store.requests.get_request(request_id, consistent=True)
        if request is None:
            return
        if request.status is not RequestStatus.ACCEPTING:
            self._store.due.clear_due(f"REQ#{request_id}", "META")
            return
        logger.warning("finishing an intake that stopped half-way", extra={"request_id": request_id})
        if self._intake.finish(request):
            swept.intakes_finished += 1
            metrics.add_metric(name="IntakesReconciled", unit=MetricUnit.Count, value=1)

    # -- release --------------------------------------------------------------------------

    def _release(self, swept: Swept, request_id: str) -> None:
        request = self._store.requests.get_request(request_id, consistent=True)
        if request is None or self._queue is None:
            return
        for chunk in self._chunks(request_id, request.chunk_count):
            if chunk.state is not ChunkState.HELD:
                continue
            keep, skipped = self._screened(request_id, chunk)
            if self._store.chunks.release_chunk(chunk, keep=keep, skipped=skipped):
                swept.recipients_released += len(keep)
                swept.recipients_skipped += len(skipped)
        # Read again: released by this run (a release whose answer was lost and which
        # botocore retried reads False, yet was applied) or by one that stopped before
        # queueing them. Every held chunk is released by now or cancelled; each released
        # one is queued (again: harmless, the worker claims a chunk once), never stranded.
        released = [
            c
            for c in self._chunks(request_id, request.chunk_count)
            if c.state is ChunkState.QUEUED or (c.state is ChunkState.CANCELLED and c.skipped)
        ]
        self._publish([skipped_event(c, c.skipped) for c in released if c.skipped])
        self._queue.enqueue(
            [
                ChunkMessage(ChunkRef(request_id, c.number), len(c.mobiles), category=request.category)
                for c in released
                if c.state is ChunkState.QUEUED
            ]
        )
        for chunk in released:
            if chunk.state is ChunkState.CANCELLED and not chunk.mobiles:
                count_settled(self._store, self._publish, chunk)  # every number skipped
        self._store.due.clear_due(f"REQ#{request_id}", "META")
        swept.requests_released += 1
        metrics.add_metric(name="RequestsReleased", unit=MetricUnit.Count, value=1)

    def _chunks(self, request_id: str, count: int) -> list[Chunk]:
        return [c for c in self._store.chunks.list_chunks(request_id, consistent=True) if c.number < count]

    def _screened(self, request_id: str, chunk: Chunk) -> tuple[list[str], list[tuple[str, str]]]:
        """The chunk's numbers that may still go, and those that may not (with why)."""
        if self._screen is None:
            return list(chunk.mobiles), []
        skipped: dict[str, str] = {}
        if chunk.category is Category.MARKETING:
            skipped.update(dict.fromkeys(self._screen.opt_outs.opted_out(chunk.mobiles), OPTED_OUT))
        caps = self._screen.caps.for_category(chunk.category)
        candidates = [m for m in chunk.mobiles if m not in skipped]
        if caps and candidates:
            # Counted now, when they go, under the request: a run repeated counts nothing twice.
            refused = self._screen.frequency.take(
                Counter(candidates), chunk.category, caps, holder=f"{request_id}#{chunk.number}"
            )
            skipped.update(dict.fromkeys(refused, FREQUENCY_CAPPED))
        keep = [m for m in chunk.mobiles if m not in skipped]
        return keep, [(m, skipped[m]) for m in chunk.mobiles if m in skipped]

    # -- report timeout -------------------------------------------------------------------

    def _settle_silent(self, swept: Swept, ref: ChunkRef) -> None:
        swept.chunks_checked += 1
        chunk = self._store.chunks.get_chunk(ref)
        if chunk is None or chunk.state is not ChunkState.SUBMITTED or not chunk.msg_id:
            self._store.due.clear_due(f"REQ#{ref.request_id}", f"CHUNK#{ref.number:05d}")
            return
        link = self._store.links.link(chunk.msg_id, consistent=True)
        reported = set(link.reports) if link else set()
        silent = [m for m in chunk.mobiles if m not in reported]
        if not silent:
            self._store.due.clear_due(f"REQ#{ref.request_id}", f"CHUNK#{ref.number:05d}")
            return
        # Announced before it is marked: a run stopping in between announces again (the
        # same event id) rather than never.
        self._publish([no_report_event(chunk.request_id, chunk.reference, chunk.msg_id, silent)])
        if self._store.chunks.mark_no_report(chunk):
            swept.recipients_unknown += len(silent)
            # Not RecipientsUnknown: that one pages when submits get no answer; a missing
            # report is the carrier's silence (no-delivery-reports watches the push URL).
            metrics.add_metric(name="RecipientsNoReport", unit=MetricUnit.Count, value=len(silent))
        self._store.requests.nudge_completion(chunk.request_id)

    # -- completion -----------------------------------------------------------------------

    def _complete(self, swept: Swept, request_id: str) -> None:
        request = self._store.requests.get_request(request_id, consistent=True)
        if request is None or request.status is RequestStatus.COMPLETED:
            self._store.due.clear_due(f"REQ#{request_id}", "META")
            return
        chunks, links = load(self._store, request)
        counts = recipient_counts(request, chunks, links)
        if counts[RecipientStatus.QUEUED] or counts[RecipientStatus.SUBMITTED]:
            delay = COMPLETION_BACKOFF[min(request.due_checks, len(COMPLETION_BACKOFF) - 1)]
            self._store.due.reschedule(
                f"REQ#{request_id}", "META", due_at=int(self._clock()) + delay, checks=request.due_checks + 1
            )
            return
        completed_at = iso(self._clock())
        # Announced before it is marked: a run stopping in between announces again (the
        # same event id, the same counts: final states never change).
        self._publish(
            [
                request_completed_event(
                    request.id, request.reference, counts_view(request, counts), completed_at
                )
            ]
        )
        if self._store.requests.mark_completed(request_id, completed_at):
            swept.requests_completed += 1
            metrics.add_metric(name="RequestsCompleted", unit=MetricUnit.Count, value=1)


def _chunk_ref(pk: str, sk: str) -> ChunkRef:
    return ChunkRef(pk.removeprefix("REQ#"), int(sk.split("#")[1]))
