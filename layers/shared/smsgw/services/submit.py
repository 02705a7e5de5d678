"""Submit one chunk to the platform: the work behind every message on the send queue.

For each SQS message the worker calls ``SubmitService.handle``. It claims the chunk (one
conditional write, so a chunk is submitted once however often its message arrives),
submits it, and settles it by the one classification table in ``provider.guodu``:

==========  =================================================================
accepted    keep the MsgId and the link MsgId -> request; the chunk is done
rejected    06-10: fail its recipients with the code; never retried
transient   -1, HTTP 5xx, no connection: release it and retry with a growing,
            jittered delay (the SQS visibility timeout); after the queue's
            maxReceiveCount, SQS moves it to the dead-letter queue
account     02, 04, 05, 11: as transient, counted for an alarm
unknown     a code not in the table: parked in the dead-letter queue at once
ambiguous   sent, no answer: recorded as ``unknown``; resent only when
            ``RESEND_AMBIGUOUS`` is on (off by default: no duplicate SMS)
==========  =================================================================

Before a submit, the lane decides when it may leave: no worker submits while the lane
is paused (the platform kept failing), every submit takes a slot of the provider's rate
limit shared by all workers, marketing waits out quiet hours, and a chunk past its
validity ends ``expired`` instead of going out late.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import NoReturn

from smsgw.adapters.events import Event, EventPublisher
from smsgw.adapters.queue import BadMessage, SendQueue, decode_ref
from smsgw.adapters.reports import ReportStore
from smsgw.adapters.store import MessageStore
from smsgw.adapters.throttle import LanePause, SubmitRateLimiter, Throttled
from smsgw.domain.model import SETTLED_STATES, Category, Chunk, ChunkState, RequestStatus
from smsgw.domain.numbers import mask_mobile
from smsgw.domain.quiet import SEND_AT_ONCE_WITHIN, QuietHours, send_time_moment
from smsgw.observability import MetricUnit, logger, metrics
from smsgw.provider.client import GuoduClient, SubmitResult
from smsgw.provider.guodu import BEIJING, Outcome, ProtocolError, SubmitRequest, format_send_time
from smsgw.provider.push import Report
from smsgw.services.announce import report_events, request_submitted_event


class RetryLater(Exception):
    """The chunk goes back to the queue; SQS hands it out again after the delay set."""


@dataclass(frozen=True)
class QueueMessage:
    body: str
    receipt_handle: str
    receive_count: int


@dataclass(frozen=True)
class RetryPolicy:
    base_seconds: int = 10
    max_seconds: int = 900
    # Failed submits before the chunk is parked in the dead-letter queue. Counted on the
    # chunk, not by SQS: a message handed back while the lane is paused or throttled, or
    # held for quiet hours, has not failed and must not use up the chunk's attempts.
    max_attempts: int = 8

    def delay(self, attempt: int, rng: Callable[[], float] = random.random) -> int:
        """Exponential backoff with "equal jitter": between half and all of the step."""
        step = min(self.max_seconds, self.base_seconds * 2 ** max(0, attempt - 1))
        return int(step / 2 + rng() * step / 2)


@dataclass(frozen=True)
class Lane:
    """What paces the submits: the shared rate limit, the shared pause, quiet hours."""

    limiter: SubmitRateLimiter
    pause: LanePause
    quiet_hours: QuietHours | None = None
    max_hold_seconds: float = 5.0  # a pause this short is waited out in the invocation


# SQS holds a message back for at most 12 hours.
MAX_DEFER_SECONDS = 43_200 - 60


class SubmitService:
    def __init__(
        self,
        store: MessageStore,
        queue: SendQueue,
        client: GuoduClient,
        *,
        reports: ReportStore,
        events: EventPublisher,
        lane: Lane,
        retry: RetryPolicy,
        resend_ambiguous: bool = False,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self._store = store
        self._queue = queue
        self._client = client
        self._reports = reports
        self._events = events
        self._lane = lane
        self._retry = retry
        self._resend_ambiguous = resend_ambiguous
        self._clock = clock
        self._sleep = sleep
        self._rng = rng

    def handle(self, message: QueueMessage, *, lease_seconds: int, deadline: float) -> None:
        """Submit the chunk a queue message points at; raises ``RetryLater`` to keep it queued."""
        try:
            ref = decode_ref(message.body)
        except BadMessage as err:
            logger.error("not a chunk message: parked", extra={"reason": str(err)})
            self._queue.park(message.body, f"bad message: {err}")
            return
        self._wait_for_lane(message, deadline)
        claim = self._store.claim_chunk(ref, lease_seconds=lease_seconds)
        chunk = claim.chunk
        if chunk is None:
            logger.error("chunk not found: parked", extra={"request_id": ref.request_id, "chunk": ref.number})
            self._queue.park(message.body, "chunk not found")
            return
        if not claim.claimed:
            self._not_claimed(message, chunk, claim.lease_until)
            return
        try:
            result = self._attempt(message, chunk, deadline)
        except RetryLater:
            raise
        except Exception:
            # DynamoDB or Secrets Manager down, a bug...: nothing left for the platform, so give
            # the chunk back now. A claim left standing would later read "may have been sent".
            logger.exception("submit failed inside the gateway", extra=_ids(chunk))
            self._retry_later(message, chunk, "internal", "internal error")
            return
        if result is None:
            return  # expired
        self._answered(chunk, result)
        self._pace(result.outcome)
        self._settle(message, chunk, result)

    def _attempt(self, message: QueueMessage, chunk: Chunk, deadline: float) -> SubmitResult | None:
        """What lies between the claim and the platform's answer: the chunk's validity, quiet
        hours, a slot of the rate limit, the submit. None: the chunk has expired."""
        if self._expired(chunk):
            return None
        send_time = self._quiet_hours(message, chunk, self._send_time(chunk))
        try:
            self._lane.limiter.acquire(len(chunk.mobiles), deadline=deadline)
        except Throttled as err:
            self._store.hold_chunk(chunk, code="throttled", detail=str(err), valid_until=chunk.valid_until)
            metrics.add_metric(name="SubmitsThrottled", unit=MetricUnit.Count, value=1)
            self._defer(message, err.retry_after)
        try:
            request = SubmitRequest(chunk.mobiles, chunk.content, send_time, chunk.append_id)
        except ProtocolError as err:
            return SubmitResult(Outcome.REJECTED, "invalid", detail=str(err))
        return self._client.submit(request)

    def _defer(self, message: QueueMessage, seconds: float) -> NoReturn:
        """Hand the message back to SQS for ``seconds`` (plus jitter); not a failed attempt."""
        delay = min(MAX_DEFER_SECONDS, int(seconds + self._rng() * max(1.0, seconds / 10)) + 1)
        self._queue.delay(message.receipt_handle, delay)
        raise RetryLater(f"deferred {delay} s")

    def _wait_for_lane(self, message: QueueMessage, deadline: float) -> None:
        """While the lane is paused no worker submits: short pauses are waited out here,
        longer ones hand the message back until the pause ends."""
        pause = self._lane.pause.remaining()
        if not pause:
            return
        if pause <= min(self._lane.max_hold_seconds, deadline - self._clock()):
            self._sleep(pause)
            return
        metrics.add_metric(name="SubmitsHeldByPause", unit=MetricUnit.Count, value=1)
        self._defer(message, pause)

    def _pace(self, outcome: Outcome) -> None:
        if outcome in (Outcome.TRANSIENT, Outcome.AMBIGUOUS, Outcome.ACCOUNT):
            pause = self._lane.pause.record_failure()
            if pause:
                logger.warning("the platform keeps failing: the lane pauses", extra={"pause_seconds": pause})
                metrics.add_metric(name="LanePaused", unit=MetricUnit.Count, value=1)
        elif outcome in (Outcome.ACCEPTED, Outcome.REJECTED):
            self._lane.pause.record_success()

    def _expired(self, chunk: Chunk) -> bool:
        if not chunk.valid_until or self._clock() <= chunk.valid_until:
            return False
        logger.warning("not submitted within its validity: expired", extra=_ids(chunk))
        if self._store.record_attempt(
            chunk, state=ChunkState.EXPIRED, code="expired", detail="not submitted within its validity"
        ):
            metrics.add_metric(name="RecipientsExpired", unit=MetricUnit.Count, value=len(chunk.mobiles))
            self._count_settled(chunk)
        return True

    def _send_time(self, chunk: Chunk) -> str:
        """The chunk's SendTime while it lies ahead; empty (at once) once it is due. A
        scheduled chunk that waited past its time (retries, a backlog) goes at once, as
        intake does with a send_at about now: the document provides no past SendTime."""
        due = send_time_moment(chunk.send_time)
        now = datetime.fromtimestamp(self._clock(), tz=BEIJING)
        return chunk.send_time if due is not None and due > now + SEND_AT_ONCE_WITHIN else ""

    def _quiet_hours(self, message: QueueMessage, chunk: Chunk, send_time: str) -> str:
        """The SendTime to submit with. Marketing due in quiet hours waits until they end:
        a scheduled one is rescheduled (the platform holds it), an immediate one goes back
        to the queue until morning, its validity extended by the wait."""
        quiet = self._lane.quiet_hours
        if quiet is None or chunk.category is not Category.MARKETING:
            return send_time
        now = datetime.fromtimestamp(self._clock(), tz=BEIJING)
        due = send_time_moment(send_time) or now
        if not quiet.contains(due):
            return send_time
        resume = quiet.end_after(due)
        if send_time:
            return format_send_time(resume)
        wait = (resume - now).total_seconds()
        self._store.hold_chunk(
            chunk,
            code="quiet_hours",
            detail=f"marketing held until {resume:%H:%M} Beijing time",
            valid_until=chunk.valid_until + int(wait) if chunk.valid_until else 0,
        )
        metrics.add_metric(
            name="RecipientsHeldForQuietHours", unit=MetricUnit.Count, value=len(chunk.mobiles)
        )
        return self._defer(message, wait)  # raises: back on the queue until morning

    def _not_claimed(self, message: QueueMessage, chunk: Chunk, lease_until: int) -> None:
        if chunk.state is not ChunkState.SUBMITTING:
            logger.info("duplicate message for a settled chunk", extra=_ids(chunk, state=chunk.state.value))
            if chunk.state in SETTLED_STATES:
                # The delivery that settled it may have stopped before counting it: count
                # again (a no-op if it was), so the request still completes and is announced.
                self._count_settled(chunk)
            return
        if lease_until > self._clock():
            # Keep this copy until the claim is due: should the other worker die, this
            # message is what brings the chunk to a settled state.
            logger.info("chunk is being submitted by another worker", extra=_ids(chunk))
            self._defer(message, lease_until - self._clock())
        # A worker claimed it and died (timeout, crash) while its request may have left.
        logger.warning("stale claim: the earlier attempt may have been sent", extra=_ids(chunk))
        if self._store.record_attempt(
            chunk, state=ChunkState.UNKNOWN, code="stale_claim", detail="worker stopped mid-submit"
        ):
            metrics.add_metric(name="SubmitsAmbiguous", unit=MetricUnit.Count, value=1)
            metrics.add_metric(name="RecipientsUnknown", unit=MetricUnit.Count, value=len(chunk.mobiles))
            self._count_settled(chunk)

    def _answered(self, chunk: Chunk, result: SubmitResult) -> None:
        # The platform's own time: not the rate limiter's wait before it (0 when none was made).
        metrics.add_metric(name="SubmitLatency", unit=MetricUnit.Milliseconds, value=result.seconds * 1000)
        metrics.add_metric(name=f"SubmitResult_{result.code}", unit=MetricUnit.Count, value=1)
        logger.info(
            "submit answered",
            extra=_ids(
                chunk,
                outcome=result.outcome.value,
                code=result.code,
                numbers=len(chunk.mobiles),
                first=mask_mobile(chunk.mobiles[0]),
            ),
        )

    def _settle(self, message: QueueMessage, chunk: Chunk, result: SubmitResult) -> None:
        outcome = result.outcome
        if outcome is Outcome.ACCEPTED:
            if not self._store.record_submitted(
                chunk, msg_id=result.msg_id, code=result.code, detail=result.detail
            ):  # a worker took our claim for a dead one's; the link is written all the same
                logger.warning("accepted, but the chunk was settled meanwhile", extra=_ids(chunk))
            if result.msg_id:
                self._announce_early_reports(chunk, result.msg_id)
            metrics.add_metric(name="RecipientsSubmitted", unit=MetricUnit.Count, value=len(chunk.mobiles))
            self._count_settled(chunk)
        elif outcome is Outcome.REJECTED or (outcome is Outcome.AMBIGUOUS and not self._resend_ambiguous):
            state = ChunkState.FAILED if outcome is Outcome.REJECTED else ChunkState.UNKNOWN
            if self._store.record_attempt(chunk, state=state, code=result.code, detail=result.detail):
                metrics.add_metric(
                    name=f"Recipients{state.value.title()}", unit=MetricUnit.Count, value=len(chunk.mobiles)
                )
                self._count_settled(chunk)
        elif outcome is Outcome.UNKNOWN:
            self._store.record_attempt(
                chunk, state=ChunkState.RETRYING, code=result.code, detail=result.detail
            )
            self._queue.park(message.body, f"unknown ResultCode {result.code}")
            metrics.add_metric(name="SubmitsParked", unit=MetricUnit.Count, value=1)
        else:  # transient, account, or ambiguous with resending on
            if outcome is Outcome.ACCOUNT:
                metrics.add_metric(name="AccountErrors", unit=MetricUnit.Count, value=1)
            self._retry_later(message, chunk, result.code, result.detail)

    def _retry_later(self, message: QueueMessage, chunk: Chunk, code: str, detail: str) -> None:
        """After a failed attempt: retry with a growing delay, or, when the chunk has used
        its attempts, park it in the dead-letter queue for a person (``smsgw redrive``)."""
        attempt = chunk.attempts - chunk.attempt_base
        if attempt < self._retry.max_attempts:
            self._store.record_attempt(chunk, state=ChunkState.RETRYING, code=code, detail=detail)
            self._queue.delay(message.receipt_handle, self._retry.delay(attempt))
            metrics.add_metric(name="SubmitRetries", unit=MetricUnit.Count, value=1)
            raise RetryLater(f"chunk {chunk.number} of {chunk.request_id}: attempt {attempt} failed")
        logger.error(
            "attempts used up: parked in the dead-letter queue",
            extra=_ids(chunk, code=code, attempts=attempt),
        )
        self._store.park_chunk(chunk, code=code, detail=f"dead-lettered after {attempt} attempts: {detail}")
        self._queue.park(message.body, f"gave up after {attempt} attempts: {code} {detail}")
        metrics.add_metric(name="SubmitsDeadLettered", unit=MetricUnit.Count, value=1)

    def _count_settled(self, chunk: Chunk) -> None:
        request = self._store.count_settled_chunk(chunk.request_id, chunk.number)
        if request.settled_chunks >= request.chunk_count and request.status is not RequestStatus.SUBMITTED:
            logger.info("request fully submitted", extra={"request_id": chunk.request_id})
            # Announced before it is marked: a worker stopping in between leaves the mark to
            # the next delivery, which announces again (the same event id) rather than never.
            self._publish(
                [
                    request_submitted_event(
                        request.id, request.reference, request.recipients, request.chunk_count
                    )
                ]
            )
            self._store.set_request_status(chunk.request_id, RequestStatus.SUBMITTED)

    def _announce_early_reports(self, chunk: Chunk, msg_id: str) -> None:
        """Reports that beat the submit's answer were stored unannounced (their MsgId had
        no request yet): now that the link exists, announce them with the request id."""
        link = self._reports.link(msg_id, consistent=True)
        if link is None or not link.reports:
            return
        mine = set(chunk.mobiles)
        early = [
            Report(msg_id, mobile, r.status, r.msg, r.report_time)
            for mobile, r in link.reports.items()
            if mobile in mine
        ]
        logger.info(
            "announcing reports that arrived before the submit's answer",
            extra=_ids(chunk, reports=len(early)),
        )
        self._publish(report_events(early, {msg_id: link}))

    def _publish(self, events: list[Event]) -> None:
        """The submit itself succeeded: a failure to announce it must not make SQS resend it."""
        try:
            self._events.publish(events)
        except Exception:
            logger.exception(
                "events could not be published",
                extra={
                    "event_types": sorted({e.detail_type for e in events}),
                    "event_ids": [e.event_id for e in events],
                },
            )
            metrics.add_metric(name="EventsFailed", unit=MetricUnit.Count, value=len(events))


def _ids(chunk: Chunk, **extra: object) -> dict[str, object]:
    return {"request_id": chunk.request_id, "chunk": chunk.number, **extra}
