"""Submit one chunk to the platform: the work behind every message on the send queue.

For each SQS message the worker calls ``SubmitService.handle``, which returns what became
of the message (``Done``, ``RetryAfter``, ``Parked``).

"Not now" has three words here, and only three:

- **hold**: the chunk waits *without* using anything up: a fresh copy of the message is
  queued, due later, and this one is let go (``_hold``, ``Then.HOLD``; a claim given back
  is settled ``queued`` with ``attempt_counted=False``). A paused lane, a full rate
  limit, quiet hours, AWS failing before the submit, too little time left, another
  worker's live claim: none is the chunk's fault, so none nears the dead-letter queue.
- **retry**: a counted attempt failed; the *same* message comes back after a backoff
  (``_retry``, ``RetryAfter``, ``Then.RETRY``, ``RetryPolicy.backoff``,
  ``SendQueue.retry``). Its receive count grows: the queue's ``maxReceiveCount`` is the
  safety net behind ``max_attempts``.
- **park**: to the dead-letter queue, for a person (``_park``, ``Parked``, ``Then.PARK``,
  ``SendQueue.park``; ``smsgw redrive`` brings it back).

The flow, top to bottom:

Each lane (``verification``, ``transactional``, ``marketing``) has a service of its own:
its queue and dead-letter queue, the client and rate limit of the account it submits
with. Whatever it queues again (a hold, a settle order) goes to its own queue; what it
parks, to its own dead-letter queue.

1. **Not now?** A hold that is not over, a paused lane, a full rate limit: a fresh copy of
   the message is queued with a delay and this one is let go. Waiting never counts toward
   the queue's ``maxReceiveCount``: only failed attempts do. A message on the wrong lane
   (queued before lanes existed, or moved by hand) is handed to its own lane's queue.
2. **Claim** the chunk under a token of this attempt (one conditional write: a chunk is
   submitted once however often its message arrives; a retried claim is known as ours).
   What could block (the credentials, a rate-limit slot) is done *before* the claim, so a
   worker that stops between claim and submit is almost certainly one whose submit left.
   The worker wakes for its slot just early enough to claim, then sends at the slot.
3. **Submit**, unless the chunk has expired, must wait out quiet hours, or the invocation
   is too near its end: then the claim is given back at once. The client fails over to
   the platform's next address only when a try provably never left.
4. **Settle** by the one classification table in ``provider.guodu``:

   ==========  =================================================================
   accepted    keep the MsgId and the link MsgId -> request; the chunk is done
   rejected    06-10: fail its recipients with the code; never retried
   transient   -1, HTTP 503/429, no connection: release it and retry with a
               growing, jittered delay; after ``max_attempts``, park it in the
               dead-letter queue for a person (``smsgw redrive``)
   account     02, 04, 05, 11: as transient, counted for an alarm
   unknown     a code not in the table: parked in the dead-letter queue at once
   ambiguous   sent, no answer (or HTTP 500/502/504): recorded ``unknown``;
               resent only when ``RESEND_AMBIGUOUS`` is on (no duplicate SMS)
   ==========  =================================================================

   Once the platform has answered, the answer is recorded whatever DynamoDB does: the
   settle is retried in place, and if it still fails it goes on the queue as a *settle
   order* that a later delivery writes. A claim is never left to read "maybe sent".
"""

from __future__ import annotations

import random
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from botocore.exceptions import BotoCoreError, ClientError

from smsgw.adapters.events import EventPublisher
from smsgw.adapters.queue import (
    BadMessage,
    ChunkMessage,
    LaneQueues,
    SendQueue,
    SettleOrder,
    Then,
    decode_all,
    encode,
)
from smsgw.adapters.table import MessageTable
from smsgw.adapters.throttle import LanePause, Permit, SubmitRateLimiter, Throttled
from smsgw.domain.events import Event
from smsgw.domain.model import (
    CLAIMABLE_STATES,
    SETTLED_STATES,
    STALE_CLAIM,
    Category,
    Chunk,
    ChunkState,
    Settlement,
    SubmitVerdict,
)
from smsgw.domain.numbers import mask_mobile
from smsgw.domain.quiet import QuietHours
from smsgw.domain.reports import Report
from smsgw.domain.times import SEND_AT_ONCE_WITHIN, from_epoch
from smsgw.observability import MetricUnit, logger, metrics, single_metric
from smsgw.provider.client import GuoduClient, PreparedSubmit, SubmitResult
from smsgw.provider.guodu import Credentials, ProtocolError, SubmitRequest, format_send_time
from smsgw.services.announce import dead_lettered_event, report_events
from smsgw.services.finality import count_settled


@dataclass(frozen=True)
class QueueMessage:
    body: str
    receipt_handle: str
    receive_count: int


# -- what becomes of a message ----------------------------------------------------------


@dataclass(frozen=True)
class Done:
    """The message is finished with (settled, handed on as a fresh copy, or a duplicate)."""

    reason: str = ""


@dataclass(frozen=True)
class RetryAfter:
    """Leave the message on the queue: SQS hands it out again after ``seconds``."""

    seconds: int
    reason: str = ""


@dataclass(frozen=True)
class Parked:
    """The message went to the dead-letter queue, for a person."""

    reason: str


Disposition = Done | RetryAfter | Parked


@dataclass(frozen=True)
class RetryPolicy:
    base_seconds: int = 10
    max_seconds: int = 900
    # Failed submits before the chunk is parked in the dead-letter queue. Counted on the
    # chunk, not by SQS: a message held back (lane paused, throttled, quiet hours) has
    # not failed and must not use up the chunk's attempts.
    max_attempts: int = 8

    def backoff(self, attempt: int, rng: Callable[[], float] = random.random) -> int:
        """Exponential backoff with "equal jitter": between half and all of the step."""
        step = min(self.max_seconds, self.base_seconds * 2 ** max(0, attempt - 1))
        return int(step / 2 + rng() * step / 2)


@dataclass(frozen=True)
class Lane:
    """What paces the submits: the account's rate limit and pause, quiet hours; and which
    category the lane carries (None: whatever comes)."""

    limiter: SubmitRateLimiter
    pause: LanePause
    quiet_hours: QuietHours | None = None
    max_hold_seconds: float = 5.0  # a pause this short is waited out in the invocation
    category: Category | None = None


@dataclass(frozen=True)
class Decision:
    """What an attempt makes of its chunk, and what then becomes of the chunk."""

    settlement: Settlement
    then: Then = Then.DONE
    seconds: int = 0  # how long a hold or a retry waits
    reason: str = ""  # why it is parked


# Time kept at the end of an invocation for a settle order, once writing in place failed.
ORDER_RESERVE_SECONDS = 6.0
# The worker wakes this much before its slot to read, prepare and claim the chunk: twice
# the longest of the last CLAIMS_KEPT of those, within these bounds (one that takes
# longer than that and the slot's slack makes the worker miss its slot and take another;
# a quarter more than the longest missed about one slot in 25 on a busy host).
CLAIM_LEAD_FACTOR = 2.0
CLAIM_LEAD_MIN_SECONDS = 0.005
CLAIM_LEAD_MAX_SECONDS = 0.3
CLAIMS_KEPT = 16
# How long a chunk waits (and as much again, at random) when AWS failed before its submit.
AWS_HOLD_SECONDS = 5.0


class SubmitService:
    def __init__(
        self,
        store: MessageTable,
        queue: SendQueue,
        client: GuoduClient,
        *,
        events: EventPublisher,
        lane: Lane,
        retry: RetryPolicy,
        resend_ambiguous: bool = False,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        rng: Callable[[], float] = random.random,
        new_token: Callable[[], str] = lambda: str(uuid.uuid4()),
        lanes: LaneQueues | None = None,
    ) -> None:
        self._store = store
        self._queue = queue
        self._client = client
        self._events = events
        self._lane = lane
        self._retry_policy = retry
        self._resend_ambiguous = resend_ambiguous
        self._clock = clock
        self._sleep = sleep
        self._rng = rng
        self._new_token = new_token
        self._lanes = lanes  # every lane's queue, for a message that came on the wrong one
        self._claims: deque[float] = deque([0.02], maxlen=CLAIMS_KEPT)  # how long claims took

    # -- the flow -------------------------------------------------------------------------

    def handle(
        self, message: QueueMessage, *, lease_seconds: int, deadline: float, ends_at: float
    ) -> Disposition:
        """What one delivery of ``message`` comes to. ``deadline``: the last moment a submit
        may start and still get its answer recorded; ``ends_at``: the invocation's end."""
        try:
            orders = decode_all(message.body)
        except BadMessage as err:
            logger.error("not a chunk message: parked", extra={"reason": str(err)})
            return self._park(message.body, f"bad message: {err}")
        if len(orders) == 1:
            return self._handle_one(message, orders[0], lease_seconds, deadline, ends_at)
        # A group of small chunks: each is handled on its own; one that must come back
        # later goes on in a message of its own, and the group is done.
        kept = False
        for order in orders:
            part = QueueMessage(encode(order), "", message.receive_count)
            outcome = self._handle_one(part, order, lease_seconds, deadline, ends_at)
            if isinstance(outcome, RetryAfter):
                try:
                    self._queue.requeue(order, outcome.seconds, now=self._clock())
                except Exception:
                    logger.warning("could not queue a chunk of a group again", extra=_ref_ids(order))
                    kept = True
        return self._retry(message, 1) if kept else Done("group")

    def _handle_one(
        self, message: QueueMessage, order: ChunkMessage, lease_seconds: int, deadline: float, ends_at: float
    ) -> Disposition:
        if order.settle is not None:
            return self._carry_out(message, order, order.settle)
        if order.not_before > self._clock() + 1:
            return self._hold(message, order, order.not_before - self._clock())
        try:
            return self._attempt(
                message, order, lease_seconds=lease_seconds, deadline=deadline, ends_at=ends_at
            )
        except Throttled as err:
            metrics.add_metric(name="SubmitsThrottled", unit=MetricUnit.Count, value=1)
            return self._hold(message, order, err.retry_after)
        except (ClientError, BotoCoreError):
            # AWS failed before the submit (nothing is claimed, or the claim was given back):
            # not the chunk's failure, so waiting it out must not use up its receives.
            logger.warning("AWS failed before the submit: held", extra=_ref_ids(order), exc_info=True)
            return self._hold(message, order, AWS_HOLD_SECONDS * (1 + self._rng()))
        except Exception:
            # A failure of the gateway itself: SQS hands it out again (and, should it never
            # pass, its maxReceiveCount ends in the dead-letter queue for a person).
            logger.exception("the gateway failed before the submit", extra=_ref_ids(order))
            return self._retry(message, self._retry_policy.backoff(message.receive_count, self._rng))

    def _attempt(
        self,
        message: QueueMessage,
        order: ChunkMessage,
        *,
        lease_seconds: int,
        deadline: float,
        ends_at: float,
    ) -> Disposition:
        if self._elsewhere(order.category):
            return self._move(message, order, order.category)
        pause = self._lane_pause(deadline)
        if pause:
            metrics.add_metric(name="SubmitsHeldByPause", unit=MetricUnit.Count, value=1)
            return self._hold(message, order, pause)
        # Everything that takes time comes before the claim: the credentials, a slot of the
        # rate limit, the chunk itself, the request body. The claim is then the last thing
        # before the request leaves, so that a worker found dead holding a claim is one
        # whose request may well have left ("unknown" is then the truth).
        credentials = self._client.credentials()
        lead = min(CLAIM_LEAD_MAX_SECONDS, max(CLAIM_LEAD_MIN_SECONDS, CLAIM_LEAD_FACTOR * max(self._claims)))
        permit = self._lane.limiter.acquire(order.recipients, deadline=deadline, lead=lead)
        began = self._clock()
        read = self._read_claimable(message, order)
        if not isinstance(read, Chunk):
            return read
        token = self._new_token()
        # Either why it must not go now, or the request ready to leave.
        plan = self._before_submit(read, token, deadline) or self._prepare(read, token, credentials)
        try:
            claim = self._store.chunks.claim_chunk(order.ref, token=token, lease_seconds=lease_seconds)
        except Exception:
            self._give_back_unanswered_claim(order, token, ends_at)
            raise
        self._claims.append(max(0.0, self._clock() - began))
        chunk = claim.chunk
        if chunk is None or not claim.claimed:
            return self._not_claimed(message, order, chunk or read, claim.lease_until)
        # The claim is ours: from here on every path ends in a settlement of it.
        decision = plan if isinstance(plan, Decision) else self._submit(chunk, token, plan, permit)
        return self._conclude(message, order, chunk, decision, ends_at)

    def _read_claimable(self, message: QueueMessage, order: ChunkMessage) -> Chunk | Disposition:
        """The chunk, when this worker may claim it; otherwise what becomes of the message."""
        read = self._store.chunks.get_chunk(order.ref)
        if read is None:
            logger.error("chunk not found: parked", extra=_ref_ids(order))
            return self._park(message.body, "chunk not found")
        if read.state not in CLAIMABLE_STATES:
            return self._not_claimed(message, order, read, read.lease_until)
        if self._elsewhere(read.category):
            # On the wrong lane (another account, maybe): handed to its own, unclaimed.
            return self._move(message, replace(order, category=read.category), read.category)
        return read

    def _elsewhere(self, category: Category | None) -> bool:
        """Whether a chunk of ``category`` belongs on another lane than this one."""
        mine = self._lane.category
        return (
            self._lanes is not None
            and mine is not None
            and category is not None
            and category is not mine
            and self._lanes.of(category).url != self._lanes.of(mine).url
        )

    def _move(self, message: QueueMessage, order: ChunkMessage, category: Category | None) -> Disposition:
        """Hand the message to the queue of its own lane, and let this one go."""
        if self._lanes is None:
            return Done()
        try:
            self._lanes.of(category).requeue(order, 0, now=self._clock())
        except Exception:
            logger.warning("could not hand a chunk to its lane", extra=_ref_ids(order), exc_info=True)
            return self._retry(message, self._retry_policy.backoff(message.receive_count, self._rng))
        logger.info("chunk handed to its own lane", extra=_ref_ids(order, lane=str(category)))
        return Done("moved to its lane")

    def _before_submit(self, chunk: Chunk, token: str, deadline: float) -> Decision | None:
        """Why the chunk must not go now (expired, quiet hours, out of time), or None."""
        now = self._clock()
        if chunk.valid_until and now > chunk.valid_until:
            logger.warning("not submitted within its validity: expired", extra=_ids(chunk))
            return Decision(
                Settlement(token, ChunkState.EXPIRED, "expired", "not submitted within its validity")
            )
        held = self._quiet_hours_hold(chunk, token, now)
        if held is not None:
            return held
        if now > deadline:
            # Too little time left to submit and record the answer: give it back.
            return Decision(
                Settlement(token, ChunkState.QUEUED, "held", "queued again", attempt_counted=False),
                Then.HOLD,
            )
        return None

    def _prepare(self, chunk: Chunk, token: str, credentials: Credentials) -> PreparedSubmit | Decision:
        """The request, ready to go (or the decision for a chunk the document refuses)."""
        try:
            request = SubmitRequest(
                chunk.mobiles, chunk.content, format_send_time(self._send_time(chunk)), chunk.append_id
            )
        except ProtocolError as err:
            return Decision(Settlement(token, ChunkState.FAILED, "invalid", str(err)))
        return self._client.prepare(request, credentials)

    def _submit(self, chunk: Chunk, token: str, prepared: PreparedSubmit, permit: Permit) -> Decision:
        try:
            result = self._client.send(prepared, before_send=permit.use)
        except Throttled as err:
            # Woken too late for the slot, and no other within reach: nothing was sent.
            metrics.add_metric(name="SubmitsThrottled", unit=MetricUnit.Count, value=1)
            return Decision(
                Settlement(token, ChunkState.QUEUED, "held", "queued again", attempt_counted=False),
                Then.HOLD,
                int(err.retry_after),
            )
        except Exception:  # raised before anything was sent (the client's promise)
            logger.exception("the submit could not be made", extra=_ids(chunk))
            return self._failed_attempt(chunk, token, "internal", "internal error before the submit")
        finally:
            if permit.missed:
                metrics.add_metric(name="RateSlotsMissed", unit=MetricUnit.Count, value=permit.missed)
        self._answered(chunk, result)
        decision = self._decide(chunk, token, result)
        self._pace(result.verdict)
        return decision

    def _decide(self, chunk: Chunk, token: str, result: SubmitResult) -> Decision:
        """The classification table, applied: what the answer makes of the chunk."""
        verdict, code, detail = result.verdict, result.code, result.detail
        if verdict is SubmitVerdict.ACCEPTED:
            return Decision(Settlement(token, ChunkState.SUBMITTED, code, detail, msg_id=result.msg_id))
        if verdict is SubmitVerdict.REJECTED:
            return Decision(Settlement(token, ChunkState.FAILED, code, detail))
        if verdict is SubmitVerdict.AMBIGUOUS and not self._resend_ambiguous:
            metrics.add_metric(name="SubmitsAmbiguous", unit=MetricUnit.Count, value=1)
            return Decision(Settlement(token, ChunkState.UNKNOWN, code, detail))
        if verdict is SubmitVerdict.UNKNOWN:
            metrics.add_metric(name="SubmitsParked", unit=MetricUnit.Count, value=1)
            return Decision(
                Settlement(token, ChunkState.RETRYING, code, detail, restart_attempts=True),
                Then.PARK,
                reason=f"unknown ResultCode {code}",
            )
        # transient, account, or ambiguous with resending on
        if verdict is SubmitVerdict.ACCOUNT:
            metrics.add_metric(name="AccountErrors", unit=MetricUnit.Count, value=1)
        return self._failed_attempt(chunk, token, code, detail)

    def _failed_attempt(self, chunk: Chunk, token: str, code: str, detail: str) -> Decision:
        """Retry with a growing delay, or, when the chunk has used its attempts, park it in
        the dead-letter queue for a person (``smsgw redrive``)."""
        attempt = chunk.attempts - chunk.attempt_base
        if attempt < self._retry_policy.max_attempts:
            metrics.add_metric(name="SubmitRetries", unit=MetricUnit.Count, value=1)
            return Decision(
                Settlement(token, ChunkState.RETRYING, code, detail),
                Then.RETRY,
                self._retry_policy.backoff(attempt, self._rng),
            )
        logger.error("attempts used up: parked in the dead-letter queue", extra=_ids(chunk, code=code))
        metrics.add_metric(name="SubmitsDeadLettered", unit=MetricUnit.Count, value=1)
        return Decision(
            Settlement(
                token,
                ChunkState.RETRYING,
                code,
                f"dead-lettered after {attempt} attempts: {detail}",
                restart_attempts=True,
            ),
            Then.PARK,
            reason=f"gave up after {attempt} attempts: {code} {detail}",
        )

    # -- recording a decision -------------------------------------------------------------

    def _conclude(
        self, message: QueueMessage, order: ChunkMessage, chunk: Chunk, decision: Decision, ends_at: float
    ) -> Disposition:
        """Write the decision (in place, else as a settle order), then do what it says."""
        written = self._write(chunk, decision.settlement, ends_at)
        if written is None:
            return self._send_order(message, order, decision)
        if not written:
            logger.warning("the chunk was settled meanwhile by another worker", extra=_ids(chunk))
        elif decision.settlement.settles and not self._after_settle(chunk, decision.settlement):
            return self._retry(message, 1)  # settled; its next delivery counts it
        elif decision.then is Then.PARK:
            self._announce_parked(chunk, decision.settlement)
        return self._then(message, order, decision)

    def _write(self, chunk: Chunk, settlement: Settlement, ends_at: float) -> bool | None:
        """Settle in place, retrying while time allows; None: it could not be written."""
        for attempt in range(4):
            try:
                return self._store.chunks.settle(chunk, settlement)
            except Exception:
                logger.warning(
                    "could not record the attempt; trying again",
                    extra=_ids(chunk, state=settlement.state.value),
                    exc_info=True,
                )
            wait = min(2.0, 0.25 * 2**attempt)
            if self._clock() + wait + ORDER_RESERVE_SECONDS > ends_at:
                break
            self._sleep(wait)
        return None

    def _send_order(self, message: QueueMessage, order: ChunkMessage, decision: Decision) -> Disposition:
        """DynamoDB would not take the settlement: keep it on the queue, for a later delivery
        to write. The message carrying it replaces this one."""
        settle = SettleOrder(decision.settlement, decision.then, decision.seconds, decision.reason)
        carrier = replace(order, settle=settle, not_before=0)
        metrics.add_metric(name="SettleOrdersQueued", unit=MetricUnit.Count, value=1)
        try:
            self._queue.requeue(carrier, 0, now=self._clock())
            logger.warning("attempt recorded as a settle order on the queue", extra=_ref_ids(order))
            return Done("settle order queued")
        except Exception:
            logger.exception("the settle order could not be queued: parking it", extra=_ref_ids(order))
        try:
            self._queue.park(encode(carrier), "settle order: DynamoDB and the send queue failed")
            return Parked("settle order parked")
        except Exception:
            logger.exception(
                "the attempt could not be recorded anywhere",
                extra=_ref_ids(
                    order,
                    state=decision.settlement.state.value,
                    code=decision.settlement.code,
                    msg_id=decision.settlement.msg_id,
                ),
            )
            return self._retry(message, 0)

    def _carry_out(self, message: QueueMessage, order: ChunkMessage, settle: SettleOrder) -> Disposition:
        """A settle order: write what an earlier attempt decided, then do what it said."""
        try:
            chunk = self._store.chunks.get_chunk(order.ref)
            if chunk is None:
                return self._park(encode(replace(order, settle=None)), "chunk not found")
            written = self._store.chunks.settle(chunk, settle.settlement)
            if written and settle.settlement.settles and not self._after_settle(chunk, settle.settlement):
                raise RuntimeError("the settled chunk could not be counted")
            if written and settle.then is Then.PARK:
                self._announce_parked(chunk, settle.settlement)
        except Exception:
            logger.exception("a settle order could not be written yet", extra=_ref_ids(order))
            return self._retry(message, self._retry_policy.backoff(message.receive_count, self._rng))
        logger.info("settle order written", extra=_ref_ids(order, state=settle.settlement.state.value))
        decision = Decision(settle.settlement, settle.then, settle.seconds, settle.reason)
        # The chunk goes on as a plain chunk message of its own; this order is done.
        return self._then(message, replace(order, settle=None), decision, same_message=False)

    def _then(
        self, message: QueueMessage, order: ChunkMessage, decision: Decision, *, same_message: bool = True
    ) -> Disposition:
        if decision.then is Then.RETRY and same_message:
            # A failed attempt: the same message comes back (and counts toward the queue's
            # maxReceiveCount, the safety net behind max_attempts).
            return self._retry(message, decision.seconds)
        if decision.then in (Then.RETRY, Then.HOLD):
            if self._elsewhere(order.category):
                return self._move(message, order, order.category)
            return self._hold(message, order, decision.seconds)
        if decision.then is Then.PARK:
            return self._park(encode(replace(order, settle=None)), decision.reason)
        return Done()

    def _after_settle(self, chunk: Chunk, settlement: Settlement) -> bool:
        """Announce and count a chunk this worker settled; False when counting failed."""
        metrics.add_metric(
            name=f"Recipients{settlement.state.value.title()}",
            unit=MetricUnit.Count,
            value=len(chunk.mobiles),
        )
        if settlement.msg_id:
            self._announce_early_reports(chunk, settlement.msg_id)
        settled = replace(
            chunk,
            state=settlement.state,
            result_code=settlement.code,
            detail=settlement.detail,
            msg_id=settlement.msg_id,
        )
        return self._count_settled(settled)

    def _announce_parked(self, chunk: Chunk, settlement: Settlement) -> None:
        """A chunk went to the dead-letter queue: its recipients wait for a person."""
        self._publish([dead_lettered_event(chunk, settlement.code, settlement.detail)])

    # -- not now ----------------------------------------------------------------------------

    def _hold(self, message: QueueMessage, order: ChunkMessage, seconds: float) -> Disposition:
        """Queue a fresh copy due in ``seconds`` (plus jitter) and let this one go."""
        delay = seconds + self._rng() * max(1.0, seconds / 10) + 1 if seconds > 0 else 0
        try:
            self._queue.requeue(order, delay, now=self._clock())
        except Exception:
            logger.warning(
                "could not queue a fresh copy: keeping this one", extra=_ref_ids(order), exc_info=True
            )
            return self._retry(message, int(delay))
        return Done(f"held {delay:.0f} s")

    def _lane_pause(self, deadline: float) -> float:
        """While the lane is paused no worker submits: short pauses are waited out here;
        longer ones are returned, and the message is held until the pause ends."""
        try:
            pause = self._lane.pause.remaining()
        except Exception:
            logger.warning("could not read the lane's pause: going on", exc_info=True)
            return 0.0
        if pause and pause <= min(self._lane.max_hold_seconds, deadline - self._clock()):
            self._sleep(pause)
            return 0.0
        return pause

    def _quiet_hours_hold(self, chunk: Chunk, token: str, now: float) -> Decision | None:
        """Marketing due in quiet hours waits until they end: an immediate one is held
        until morning (its validity extended by the wait). A scheduled one goes with a
        SendTime moved to the morning (see ``_send_time``)."""
        quiet = self._lane.quiet_hours
        if quiet is None or chunk.category is not Category.MARKETING or self._send_time(chunk):
            return None
        moment = from_epoch(now)
        if not quiet.contains(moment):
            return None
        resume = quiet.end_after(moment)
        wait = int((resume - moment).total_seconds())
        metrics.add_metric(
            name="RecipientsHeldForQuietHours", unit=MetricUnit.Count, value=len(chunk.mobiles)
        )
        return Decision(
            Settlement(
                token,
                ChunkState.QUEUED,
                "quiet_hours",
                f"marketing held until {resume:%H:%M} Beijing time",
                attempt_counted=False,
                valid_until=chunk.valid_until + wait if chunk.valid_until else None,
            ),
            Then.HOLD,
            wait,
        )

    def _send_time(self, chunk: Chunk) -> datetime | None:
        """The chunk's send time while it lies ahead; None (at once) once it is due. A
        scheduled chunk that waited past its time (retries, a backlog) goes at once, as
        intake does with a send_at about now: the document provides no past SendTime.
        Scheduled marketing due in quiet hours is rescheduled to their end."""
        due = chunk.send_time
        now = from_epoch(self._clock())
        if due is None or due <= now + SEND_AT_ONCE_WITHIN:
            return None
        quiet = self._lane.quiet_hours
        if quiet is not None and chunk.category is Category.MARKETING and quiet.contains(due):
            return quiet.end_after(due)
        return due

    def _not_claimed(
        self, message: QueueMessage, order: ChunkMessage, chunk: Chunk, lease_until: int
    ) -> Disposition:
        if chunk.state is not ChunkState.SUBMITTING:
            logger.info("duplicate message for a settled chunk", extra=_ids(chunk, state=chunk.state.value))
            # The delivery that settled it may have stopped before counting it: count
            # again (a no-op if it was), so the request still completes and is announced.
            if chunk.state in SETTLED_STATES and not self._count_settled(chunk):
                return self._retry(message, 1)
            return Done("duplicate")
        if lease_until > self._clock():
            # Keep a copy until the claim is due: should the other worker die, this
            # message is what brings the chunk to a settled state.
            logger.info("chunk is being submitted by another worker", extra=_ids(chunk))
            return self._hold(message, order, lease_until - self._clock())
        # A worker claimed it and stopped (timeout, crash) while its request may have left.
        logger.warning("stale claim: the earlier attempt may have been sent", extra=_ids(chunk))
        if self._store.chunks.mark_stale(chunk):
            metrics.add_metric(name="SubmitsAmbiguous", unit=MetricUnit.Count, value=1)
            metrics.add_metric(name="RecipientsUnknown", unit=MetricUnit.Count, value=len(chunk.mobiles))
            stale = replace(
                chunk, state=ChunkState.UNKNOWN, result_code=STALE_CLAIM, detail="worker stopped mid-submit"
            )
            if not self._count_settled(stale):
                return self._retry(message, 1)
        return Done("stale claim")

    def _give_back_unanswered_claim(self, order: ChunkMessage, token: str, ends_at: float) -> None:
        """The claim's write failed, but may have been applied (its answer lost, botocore's
        retries used up): give it back, if it is ours, so it never reads "maybe sent"."""
        placeholder = Chunk(order.ref.request_id, order.ref.number, (), "", 0)
        release = Settlement(
            token, ChunkState.QUEUED, "internal", "claim not confirmed", attempt_counted=False
        )
        if self._write(placeholder, release, ends_at) is None:
            self._send_order(
                QueueMessage("", "", 0), replace(order, settle=None), Decision(release, Then.HOLD)
            )

    # -- bookkeeping ------------------------------------------------------------------------

    def _retry(self, message: QueueMessage, seconds: int) -> RetryAfter:
        try:
            if message.receipt_handle:
                self._queue.retry(message.receipt_handle, seconds)
        except Exception:
            logger.warning("could not set the retry delay: the queue's own applies", exc_info=True)
        return RetryAfter(seconds)

    def _park(self, body: str, reason: str) -> Disposition:
        try:
            self._queue.park(body, reason)
        except Exception:
            logger.exception("could not park the message", extra={"reason": reason})
            return RetryAfter(0)
        return Parked(reason)

    def _pace(self, verdict: SubmitVerdict) -> None:
        """The lane's pause: a help, never a reason to lose an answer (errors are logged)."""
        try:
            if verdict in (SubmitVerdict.TRANSIENT, SubmitVerdict.AMBIGUOUS, SubmitVerdict.ACCOUNT):
                pause = self._lane.pause.record_failure()
                if pause:
                    logger.warning(
                        "the platform keeps failing: the lane pauses", extra={"pause_seconds": pause}
                    )
                    metrics.add_metric(name="LanePaused", unit=MetricUnit.Count, value=1)
            elif verdict in (SubmitVerdict.ACCEPTED, SubmitVerdict.REJECTED):
                self._lane.pause.record_success()
        except Exception:
            logger.warning("could not update the lane's pause", exc_info=True)

    def _answered(self, chunk: Chunk, result: SubmitResult) -> None:
        # The platform's own time: not the rate limiter's wait before it (0 when none was made).
        metrics.add_metric(name="SubmitLatency", unit=MetricUnit.Milliseconds, value=result.seconds * 1000)
        self._addresses_tried(chunk, result)
        metrics.add_metric(name=f"SubmitResult_{result.code}", unit=MetricUnit.Count, value=1)
        logger.info(
            "submit answered",
            extra=_ids(
                chunk,
                outcome=result.verdict.value,
                code=result.code,
                numbers=len(chunk.mobiles),
                first=mask_mobile(chunk.mobiles[0]) if chunk.mobiles else None,
            ),
        )

    def _addresses_tried(self, chunk: Chunk, result: SubmitResult) -> None:
        """Per-address metrics (dimension ``address``), and ``PrimaryAddressBenched`` while
        the first address of the list is on the bench (its alarm)."""
        primary_benched = False
        for tried in result.tries:
            primary_benched |= 0 in tried.skipped_benched or (tried.rank == 0 and tried.benched)
            name = "AddressRequests" if tried.reached else "AddressUnreachable"
            with single_metric(name=name, unit=MetricUnit.Count, value=1) as metric:
                metric.add_dimension(name="address", value=tried.address)
            if not tried.reached:
                logger.warning(
                    "a platform address could not be reached: trying the next",
                    extra=_ids(chunk, address=tried.address, rank=tried.rank, benched=tried.benched),
                )
        if len(result.tries) > 1 or (result.tries and result.tries[0].rank):
            metrics.add_metric(name="SubmitsFailedOver", unit=MetricUnit.Count, value=1)
        if primary_benched:
            metrics.add_metric(name="PrimaryAddressBenched", unit=MetricUnit.Count, value=1)

    def _count_settled(self, chunk: Chunk) -> bool:
        """Announce the chunk's final state (once: only while it is not yet counted), count
        it in its request, and announce the request once every chunk has settled. False
        when DynamoDB failed: the message's next delivery does it again (idempotent), and
        the event, published before the count, goes out again under the same id."""
        try:
            return count_settled(self._store, self._publish, chunk)
        except Exception:
            logger.warning("could not count the settled chunk", extra=_ids(chunk), exc_info=True)
            return False

    def _announce_early_reports(self, chunk: Chunk, msg_id: str) -> None:
        """Reports that beat the submit's answer were stored unannounced (their MsgId had
        no request yet): now that the link exists, announce them with the request id. Step 3
        of the early-report handshake (``domain/reports.py``)."""
        try:
            link = self._store.links.link(msg_id, consistent=True)
        except Exception:
            logger.exception("could not read reports that came early", extra=_ids(chunk))
            metrics.add_metric(name="EventsFailed", unit=MetricUnit.Count, value=1)
            return
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


def _ref_ids(order: ChunkMessage, **extra: object) -> dict[str, object]:
    return {"request_id": order.ref.request_id, "chunk": order.ref.number, **extra}
