"""The reconciler: a scheduled sweep that finishes what no message will bring back.

Two kinds of item wait on the sparse due index (``adapters.dynamo.DUE_INDEX``):

- a request still ``accepting`` a few minutes after its intake began: the call that took
  it stopped before every chunk was on the queue (SQS failed part-way, the API's time ran
  out). Its chunks are queued now (again: the worker claims a chunk once) and it is
  marked accepted. No client retry is needed, and an unkeyed one is never asked for.
- a submitted chunk whose report timeout (``ReportTimeoutHours``, 72 by default, as AWS
  End User Messaging) has passed: its numbers with no report end ``unknown`` with detail
  ``no_report``, announced and counted. A report that still comes settles them after all:
  reports always win over the timeout.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from smsgw.adapters.events import EventPublisher
from smsgw.adapters.reports import ReportStore
from smsgw.adapters.store import MessageStore
from smsgw.domain.model import ChunkRef, ChunkState, RequestStatus
from smsgw.observability import MetricUnit, logger, metrics
from smsgw.services.announce import no_report_event
from smsgw.services.send import IntakeFinisher


@dataclass
class Swept:
    intakes_finished: int = 0
    chunks_checked: int = 0
    recipients_unknown: int = 0
    failures: int = 0


class ReconcileService:
    def __init__(
        self,
        store: MessageStore,
        intake: IntakeFinisher,
        reports: ReportStore,
        events: EventPublisher,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._intake = intake
        self._reports = reports
        self._events = events
        self._clock = clock

    def sweep(self, *, budget_seconds: float) -> Swept:
        """One pass over what is due now, for at most ``budget_seconds`` (the next scheduled
        run goes on). An item that fails stays due for the next run."""
        swept = Swept()
        now = int(self._clock())
        ends_at = time.monotonic() + budget_seconds
        for pk, _ in self._store.due("accepting", now=now):
            if time.monotonic() > ends_at:
                return swept
            request_id = pk.removeprefix("REQ#")
            self._guarded(swept, partial(self._finish_intake, swept, request_id), pk)
        for pk, sk in self._store.due("report", now=now):
            if time.monotonic() > ends_at:
                return swept
            ref = ChunkRef(pk.removeprefix("REQ#"), int(sk.split("#")[1]))
            self._guarded(swept, partial(self._settle_silent, swept, ref), f"{pk}/{sk}")
        if swept.intakes_finished or swept.recipients_unknown or swept.failures:
            logger.info("reconciled", extra=vars(swept))
        return swept

    @staticmethod
    def _guarded(swept: Swept, step: Callable[[], None], item: str) -> None:
        try:
            step()
        except Exception:
            swept.failures += 1
            logger.exception("reconciling an item failed; it stays due", extra={"item": item})

    def _finish_intake(self, swept: Swept, request_id: str) -> None:
        request = self._store.get_request(request_id, consistent=True)
        if request is None:
            return
        if request.status is not RequestStatus.ACCEPTING:
            self._store.clear_due(f"REQ#{request_id}", "META")
            return
        logger.warning("finishing an intake that stopped half-way", extra={"request_id": request_id})
        if self._intake.finish(request):
            swept.intakes_finished += 1
            metrics.add_metric(name="IntakesReconciled", unit=MetricUnit.Count, value=1)

    def _settle_silent(self, swept: Swept, ref: ChunkRef) -> None:
        swept.chunks_checked += 1
        chunk = self._store.get_chunk(ref)
        if chunk is None or chunk.state is not ChunkState.SUBMITTED or not chunk.msg_id:
            self._store.clear_due(f"REQ#{ref.request_id}", f"CHUNK#{ref.number:05d}")
            return
        link = self._reports.link(chunk.msg_id, consistent=True)
        reported = set(link.reports) if link else set()
        silent = [m for m in chunk.mobiles if m not in reported]
        if not silent:
            self._store.clear_due(f"REQ#{ref.request_id}", f"CHUNK#{ref.number:05d}")
            return
        # Announced before it is marked: a run stopping in between announces again (the
        # same event id) rather than never.
        self._events.publish([no_report_event(chunk.request_id, chunk.reference, chunk.msg_id, silent)])
        if self._store.mark_no_report(chunk):
            swept.recipients_unknown += len(silent)
            # Not RecipientsUnknown: that one pages when submits get no answer; a missing
            # report is the carrier's silence (no-delivery-reports watches the push URL).
            metrics.add_metric(name="RecipientsNoReport", unit=MetricUnit.Count, value=len(silent))
