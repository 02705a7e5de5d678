"""The submit worker's decision table, through in-memory adapters: what is sent, and the
state each recipient's chunk ends in, for every kind of answer and every reason not to
send now."""

from __future__ import annotations

from datetime import datetime

import pytest
from botocore.exceptions import ClientError

from smsgw.adapters.queue import ChunkMessage, encode
from smsgw.domain.model import (
    STALE_CLAIM,
    Category,
    Chunk,
    ChunkRef,
    ChunkState,
    RequestRecord,
    RequestStatus,
    SubmitVerdict,
)
from smsgw.domain.quiet import QuietHours
from smsgw.domain.reports import StoredReport
from smsgw.domain.times import BEIJING
from smsgw.provider.client import SubmitResult
from smsgw.services.announce import DEAD_LETTERED, DELIVERED, FAILED, SUBMITTED, UNKNOWN
from smsgw.services.submit import (
    AWS_HOLD_SECONDS,
    Done,
    Lane,
    Parked,
    QueueMessage,
    RetryAfter,
    RetryPolicy,
    SubmitService,
)
from tests.unit.fakes import (
    Clock,
    FakeEvents,
    FakeGuodu,
    FakeLimiter,
    FakePause,
    FakeQueue,
    FakeTable,
    as_any,
)

REQUEST = "req-1"
ALICE, BOB = "13800138000", "13900139000"
# A weekday afternoon in Beijing: no quiet hours.
AFTERNOON = datetime(2026, 11, 24, 15, 0, tzinfo=BEIJING).timestamp()
LATE_EVENING = datetime(2026, 11, 24, 23, 0, tzinfo=BEIJING).timestamp()
MAX_ATTEMPTS = 3


class World:
    """A request of one chunk, stored and queued; the worker's adapters, in memory."""

    def __init__(
        self,
        *answers: SubmitResult | Exception,
        now: float = AFTERNOON,
        category: Category = Category.TRANSACTIONAL,
        attempts: int = 0,
        state: ChunkState = ChunkState.QUEUED,
        valid_for: int = 3_600,
        pause: float = 0.0,
        full_for: float = 0.0,
        quiet: str = "",
        resend_ambiguous: bool = False,
    ) -> None:
        self.clock = Clock(now)
        self.table = FakeTable(self.clock)
        self.queue = FakeQueue()
        self.events = FakeEvents()
        self.guodu = FakeGuodu(*answers)
        self.pause = FakePause(pause)
        self.table.requests.create_request(
            RequestRecord(
                id=REQUEST,
                created_at="2026-11-24T07:00:00Z",
                recipients=2,
                segments=1,
                total_segments=2,
                chunk_count=1,
                category=category,
                status=RequestStatus.ACCEPTED,
            )
        )
        self.table.chunks.add(
            Chunk(
                REQUEST,
                0,
                (ALICE, BOB),
                "【示例】您好",
                1,
                category=category,
                valid_until=int(now) + valid_for,
                state=state,
                attempts=attempts,
            )
        )
        self.service = SubmitService(
            as_any(self.table),
            as_any(self.queue),
            as_any(self.guodu),
            events=as_any(self.events),
            lane=Lane(as_any(FakeLimiter(full_for)), as_any(self.pause), QuietHours.parse(quiet)),
            retry=RetryPolicy(base_seconds=10, max_seconds=900, max_attempts=MAX_ATTEMPTS),
            resend_ambiguous=resend_ambiguous,
            clock=self.clock,
            sleep=self.clock.sleep,
            rng=lambda: 0.0,
            new_token=lambda: "attempt-1",
        )

    def deliver(self) -> Done | RetryAfter | Parked:
        body = encode(ChunkMessage(ChunkRef(REQUEST, 0), 2))
        now = self.clock()
        return self.service.handle(
            QueueMessage(body, "receipt-1", 1), lease_seconds=60, deadline=now + 20, ends_at=now + 30
        )

    @property
    def chunk(self) -> Chunk:
        chunk = self.table.chunks.get_chunk(ChunkRef(REQUEST, 0))
        assert chunk is not None
        return chunk

    @property
    def request_status(self) -> RequestStatus:
        record = self.table.requests.get_request(REQUEST)
        assert record is not None
        return record.status


def answer(verdict: SubmitVerdict, code: str, msg_id: str | None = None) -> SubmitResult:
    return SubmitResult(verdict, code, msg_id, detail=f"the platform said {code}")


# -- the platform answered -------------------------------------------------------------


def test_an_accepted_submit_sends_both_numbers_once_and_links_the_msg_id() -> None:
    # Given a queued chunk of two numbers and a platform that accepts
    world = World(answer(SubmitVerdict.ACCEPTED, "03", "msg-1"))
    # When its message is delivered
    outcome = world.deliver()
    # Then both numbers went out in one submit, with the content as written
    assert [(s.mobiles, s.content, s.send_time) for s in world.guodu.sent] == [
        ((ALICE, BOB), "【示例】您好", "")
    ]
    # And the chunk is submitted with the MsgId a report will carry, linked to the request
    assert isinstance(outcome, Done)
    assert (world.chunk.state, world.chunk.msg_id, world.chunk.attempts) == (ChunkState.SUBMITTED, "msg-1", 1)
    link = world.table.links.link("msg-1")
    assert link is not None
    assert (link.request_id, link.chunk) == (REQUEST, 0)
    # And the request, all of whose chunks settled, is submitted and announced so
    assert world.request_status is RequestStatus.SUBMITTED
    assert world.events.types == [SUBMITTED]
    assert world.pause.successes == 1


def test_reports_that_beat_the_submits_answer_are_announced_when_it_is_recorded() -> None:
    # Given a report of Alice's that arrived before the platform's answer was recorded
    world = World(answer(SubmitVerdict.ACCEPTED, "03", "msg-1"))
    world.table.links.add_early_report("msg-1", StoredReport(ALICE, "0", "发送成功", "2026-11-24 15:00:02"))
    # When the worker records the accepted submit
    world.deliver()
    # Then Alice's delivery is announced with her request, and the early report is kept
    delivered = [e for e in world.events.published if e.detail_type == DELIVERED]
    assert [(e.payload["request_id"], [r["to"] for r in e.payload["recipients"]]) for e in delivered] == [
        (REQUEST, [ALICE])
    ]
    link = world.table.links.link("msg-1")
    assert link is not None
    assert set(link.reports) == {ALICE}


@pytest.mark.parametrize("code", ["06", "07", "08", "09", "10"])
def test_a_rejected_submit_fails_its_recipients_and_is_never_retried(code: str) -> None:
    # Given a platform that refuses the request itself
    world = World(answer(SubmitVerdict.REJECTED, code))
    # When the message is delivered
    outcome = world.deliver()
    # Then the recipients have failed with the platform's code, and nothing comes back
    assert isinstance(outcome, Done)
    assert (world.chunk.state, world.chunk.result_code) == (ChunkState.FAILED, code)
    assert world.queue.retried == world.queue.requeued == world.queue.parked == []
    assert world.events.types == [FAILED, SUBMITTED]


def test_an_ambiguous_submit_reads_unknown_and_is_not_sent_again() -> None:
    # Given a submit that left and whose answer never came
    world = World(answer(SubmitVerdict.AMBIGUOUS, "read_timeout"))
    # When the message is delivered
    outcome = world.deliver()
    # Then the recipients read unknown (it may have been sent): no second SMS
    assert isinstance(outcome, Done)
    assert (world.chunk.state, world.chunk.result_code) == (ChunkState.UNKNOWN, "read_timeout")
    assert world.queue.retried == []
    assert world.events.types == [UNKNOWN, SUBMITTED]
    assert world.pause.failures == 1


def test_an_ambiguous_submit_is_retried_when_resending_is_on() -> None:
    # Given resending ambiguous submits turned on
    world = World(answer(SubmitVerdict.AMBIGUOUS, "http_502"), resend_ambiguous=True)
    # When the message is delivered
    outcome = world.deliver()
    # Then the same message comes back after the first backoff step
    assert outcome == RetryAfter(5)
    assert world.queue.retried == [("receipt-1", 5)]
    assert (world.chunk.state, world.chunk.attempts) == (ChunkState.RETRYING, 1)


@pytest.mark.parametrize(
    ("verdict", "code"),
    [(SubmitVerdict.TRANSIENT, "-1"), (SubmitVerdict.TRANSIENT, "http_503"), (SubmitVerdict.ACCOUNT, "11")],
)
def test_a_failed_attempt_with_attempts_left_is_retried_with_backoff(
    verdict: SubmitVerdict, code: str
) -> None:
    # Given a chunk that has failed once already, and a platform failing again
    world = World(answer(verdict, code), attempts=1)
    # When the message is delivered
    outcome = world.deliver()
    # Then the attempt counts (2 of 3) and the same message comes back after 10 s
    assert outcome == RetryAfter(10)
    assert world.queue.retried == [("receipt-1", 10)]
    assert (world.chunk.state, world.chunk.result_code, world.chunk.attempts) == (
        ChunkState.RETRYING,
        code,
        2,
    )
    assert world.queue.parked == []
    assert world.request_status is RequestStatus.ACCEPTED  # its recipients still queued


def test_a_failed_attempt_with_no_attempts_left_is_parked_for_a_person() -> None:
    # Given a chunk on its last attempt
    world = World(answer(SubmitVerdict.TRANSIENT, "-1"), attempts=MAX_ATTEMPTS - 1)
    # When that attempt fails too
    outcome = world.deliver()
    # Then the message is in the dead-letter queue, saying why, and announced
    assert isinstance(outcome, Parked)
    assert [reason for _, reason in world.queue.parked] == [
        "gave up after 3 attempts: -1 the platform said -1"
    ]
    assert world.queue.retried == []
    # And the chunk waits, retrying, with its attempts counted afresh after a redrive
    assert (world.chunk.state, world.chunk.attempt_base) == (ChunkState.RETRYING, MAX_ATTEMPTS)
    assert world.events.types == [DEAD_LETTERED]


def test_an_unknown_result_code_is_parked_at_once() -> None:
    # Given a code the table does not know, on the first attempt
    world = World(answer(SubmitVerdict.UNKNOWN, "99"))
    # When the message is delivered
    outcome = world.deliver()
    # Then it is not retried blindly: a person looks at it
    assert outcome == Parked("unknown ResultCode 99")
    assert world.chunk.state is ChunkState.RETRYING
    assert world.queue.retried == []


# -- reasons not to send now -----------------------------------------------------------


def test_a_chunk_past_its_validity_expires_unsent() -> None:
    # Given a chunk whose validity ended a minute ago
    world = World(valid_for=-60)
    # When its message is delivered
    outcome = world.deliver()
    # Then nothing is sent and its recipients have expired
    assert isinstance(outcome, Done)
    assert world.guodu.sent == []
    assert (world.chunk.state, world.chunk.result_code) == (ChunkState.EXPIRED, "expired")


def test_marketing_in_quiet_hours_is_held_until_morning_without_using_an_attempt() -> None:
    # Given marketing due at 23:00 Beijing time, quiet hours 21:00-08:00
    world = World(category=Category.MARKETING, now=LATE_EVENING, quiet="21:00-08:00", valid_for=3_600)
    # When its message is delivered
    outcome = world.deliver()
    # Then nothing is sent; a fresh copy is due at 08:00 (9 hours, plus jitter)
    assert isinstance(outcome, Done)
    assert world.guodu.sent == []
    [(_, seconds)] = world.queue.requeued
    assert 9 * 3_600 <= seconds <= 9 * 3_600 + 3_300
    # And the chunk is queued again, its attempt given back, its validity extended by the wait
    assert (world.chunk.state, world.chunk.attempts, world.chunk.result_code) == (
        ChunkState.QUEUED,
        0,
        "quiet_hours",
    )
    assert world.chunk.valid_until == int(LATE_EVENING) + 3_600 + 9 * 3_600
    assert world.queue.retried == []  # a hold uses no receive


def test_transactional_messages_go_out_in_quiet_hours() -> None:
    # Given a one-time notice at 23:00 with quiet hours on
    world = World(answer(SubmitVerdict.ACCEPTED, "03", "msg-1"), now=LATE_EVENING, quiet="21:00-08:00")
    # When its message is delivered
    world.deliver()
    # Then it is sent at once
    assert [s.mobiles for s in world.guodu.sent] == [(ALICE, BOB)]


def test_aws_failing_before_the_submit_holds_the_chunk() -> None:
    # Given DynamoDB failing when the worker reads the chunk
    world = World(answer(SubmitVerdict.ACCEPTED, "03", "msg-1"))

    def failing(*_: object, **__: object) -> None:
        raise ClientError({"Error": {"Code": "InternalServerError", "Message": "x"}}, "GetItem")

    world.table.chunks.get_chunk = failing  # type: ignore[method-assign,assignment]
    # When the message is delivered
    outcome = world.deliver()
    # Then nothing is sent: a fresh copy waits a few seconds, no receive or attempt is used
    assert isinstance(outcome, Done)
    assert world.guodu.sent == []
    [(_, seconds)] = world.queue.requeued
    assert AWS_HOLD_SECONDS <= seconds <= 2 * AWS_HOLD_SECONDS + 2
    assert world.queue.retried == []
    assert world.table.chunks.items[(REQUEST, 0)].chunk.attempts == 0


def test_a_paused_lane_holds_the_chunk_until_the_pause_ends() -> None:
    # Given the lane paused for a minute (the platform kept failing)
    world = World(answer(SubmitVerdict.ACCEPTED, "03", "msg-1"), pause=60.0)
    # When the message is delivered
    outcome = world.deliver()
    # Then nothing is sent and a fresh copy is due after the pause
    assert isinstance(outcome, Done)
    assert world.guodu.sent == []
    [(_, seconds)] = world.queue.requeued
    assert 60 <= seconds <= 68
    assert (world.chunk.state, world.chunk.attempts) == (ChunkState.QUEUED, 0)


def test_a_full_rate_limit_holds_the_chunk() -> None:
    # Given no slot of the rate limit for 3 seconds
    world = World(answer(SubmitVerdict.ACCEPTED, "03", "msg-1"), full_for=3.0)
    # When the message is delivered
    outcome = world.deliver()
    # Then nothing is sent and a fresh copy waits for the slot
    assert isinstance(outcome, Done)
    assert world.guodu.sent == []
    assert [round(seconds) for _, seconds in world.queue.requeued] == [3 + 1]  # and a margin
    assert world.chunk.state is ChunkState.QUEUED


# -- claims ----------------------------------------------------------------------------


def test_a_chunk_another_worker_holds_is_not_sent_again() -> None:
    # Given a chunk another worker claimed a moment ago (its lease runs 50 s more)
    world = World(answer(SubmitVerdict.ACCEPTED, "03", "msg-1"))
    world.table.chunks.claim_chunk(ChunkRef(REQUEST, 0), token="another-worker", lease_seconds=50)
    # When a duplicate of its message is delivered
    outcome = world.deliver()
    # Then nothing is sent; a copy waits out the other worker's lease, in case it dies
    assert isinstance(outcome, Done)
    assert world.guodu.sent == []
    [(_, seconds)] = world.queue.requeued
    assert 50 <= seconds <= 57
    assert (world.chunk.state, world.chunk.claim) == (ChunkState.SUBMITTING, "another-worker")


def test_a_claim_lost_between_the_read_and_the_claim_sends_nothing() -> None:
    # Given another worker claiming the chunk right after this one read it
    world = World(answer(SubmitVerdict.ACCEPTED, "03", "msg-1"))
    claim = world.table.chunks.claim_chunk

    def beaten(ref: ChunkRef, *, token: str, lease_seconds: int) -> object:
        claim(ref, token="quicker-worker", lease_seconds=lease_seconds)
        return claim(ref, token=token, lease_seconds=lease_seconds)

    world.table.chunks.claim_chunk = beaten  # type: ignore[method-assign,assignment]
    # When the message is delivered
    world.deliver()
    # Then only the quicker worker's attempt stands: nothing was sent by this one
    assert world.guodu.sent == []
    assert (world.chunk.claim, world.chunk.attempts) == ("quicker-worker", 1)


def test_a_claim_left_by_a_stopped_worker_becomes_unknown_and_is_not_resent() -> None:
    # Given a chunk claimed by a worker whose lease is over (it stopped mid-submit)
    world = World(answer(SubmitVerdict.ACCEPTED, "03", "msg-1"))
    world.table.chunks.claim_chunk(ChunkRef(REQUEST, 0), token="dead-worker", lease_seconds=-1)
    # When its message is delivered again
    outcome = world.deliver()
    # Then its recipients read unknown (that submit may have left), and nothing is resent
    assert outcome == Done("stale claim")
    assert world.guodu.sent == []
    assert (world.chunk.state, world.chunk.result_code) == (ChunkState.UNKNOWN, STALE_CLAIM)
    assert world.events.types == [UNKNOWN, SUBMITTED]


def test_a_duplicate_message_of_a_settled_chunk_sends_nothing() -> None:
    # Given a chunk submitted by an earlier delivery
    world = World(answer(SubmitVerdict.ACCEPTED, "03", "msg-1"))
    world.deliver()
    # When SQS delivers its message again
    outcome = world.deliver()
    # Then it is dropped: one SMS per number
    assert outcome == Done("duplicate")
    assert len(world.guodu.sent) == 1
