"""The shared rate limit (one timeline per account, GCRA) and the pause, against moto, with
a clock the test controls. The limit across real concurrent processes is in
tests/integration/test_rate_window.py; across the lanes of the local stack in tests/e2e."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import cast

import boto3
import pytest

from smsgw.adapters.throttle import (
    MAX_MISSED_SLOTS,
    SLACK_SECONDS,
    LanePause,
    PausePolicy,
    Permit,
    RateLimit,
    SubmitRateLimiter,
    Throttled,
    lookahead,
    timelines,
)
from smsgw_local.provision import Provisioned

LANES = ("verification", "transactional", "marketing")


class Clock:
    def __init__(self, now: float = 1_000.0, oversleep: float = 0.0) -> None:
        self.now = now
        self.oversleep = oversleep

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds + self.oversleep
        self.oversleep = 0.0  # a busy host, once


def limiter(
    stack: Provisioned, clock: Clock, *, lane: str = "transactional", account: str = "guodu", **limit: object
) -> SubmitRateLimiter:
    rate = RateLimit(**limit)  # type: ignore[arg-type]
    return SubmitRateLimiter(
        boto3.client("dynamodb"),
        stack.ref("MessagesTable"),
        rate,
        account=account,
        lane=lane,
        lookahead_seconds=lookahead(lane, LANES, rate.max_wait_seconds),
        clock=clock,
        sleep=clock.sleep,
        rng=lambda: 0.0,
    )


def reserve(worker: SubmitRateLimiter, clock: Clock, recipients: int = 200) -> float | None:
    """One round of reservation at the clock's moment, without waiting for the slot (the
    rule ``acquire`` applies each round): the slot, or None when nothing is in reach."""
    return worker.reserve(recipients, clock.now, clock.now)


def busiest_window(starts: Sequence[float], window: float = 1.0) -> int:
    """The most starts in any half-open window of ``window`` seconds, wherever it begins."""
    ordered = sorted(starts)
    return max((sum(1 for t in ordered if s <= t < s + window) for s in ordered), default=0)


def test_no_sliding_second_holds_more_than_the_limit_even_across_a_boundary(stack: Provisioned) -> None:
    # Given a limit of 2 submits a second and two workers taking turns, starting late in a
    # second (where per-second windows let 2 in at its end and 2 more at the next's start)
    clock = Clock(now=1_000.9)
    first, second = limiter(stack, clock, submits_per_second=2), limiter(stack, clock, submits_per_second=2)
    starts = []
    for worker in (first, second) * 5:
        permit = worker.acquire(200, deadline=clock.now + 30)
        permit.use()
        starts.append(clock.now)
    # Then no one-second window, wherever it begins, holds more than 2 starts
    assert busiest_window(starts) == 2
    # And they were spaced evenly: (1 + slack + margin) / 2 apart, (1 + 0.03 + 0.02) / 2
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert min(gaps) == pytest.approx(0.525, abs=1e-5)


def test_recipients_per_second_are_limited_too(stack: Provisioned) -> None:
    # Given a limit of 300 numbers a second and submits of 200
    clock = Clock()
    worker = limiter(stack, clock, recipients_per_second=300)
    starts = []
    for _ in range(6):
        worker.acquire(200, deadline=clock.now + 30).use()
        starts.append(clock.now)
    # Then one window holds at most the limit and one submit's numbers (the slot after a
    # submit is pushed back by its numbers): 2 submits, never 3 (600 numbers)
    assert busiest_window(starts) * 200 <= 300 + 200


def test_a_worker_that_wakes_too_late_takes_another_slot_rather_than_overrun(stack: Provisioned) -> None:
    # Given a limit of 1 a second, a slot reserved ahead, and a worker that oversleeps
    clock = Clock(now=1_000.0)
    busy = limiter(stack, clock, submits_per_second=1)
    busy.acquire(1, deadline=clock.now + 30).use()  # the slot at 1000
    permit = busy.acquire(1, deadline=clock.now + 30, lead=0.5)  # the slot at 1001.05, woken at 1000.55
    clock.oversleep = 0.9
    permit.use()  # sleeps until 1001.05, wakes at 1001.95: past the slot's slack
    # Then it gave that slot up and started in the next one, never late in its own
    assert permit.missed == 1
    assert permit.at == pytest.approx(1_002.1, abs=1e-5)
    assert clock.now == pytest.approx(permit.at, abs=1e-5)


class LateEveryTime:
    """A limiter on a host so busy that every slot it hands out is already past its slack
    by the time the submit could start."""

    slack = SLACK_SECONDS

    def __init__(self) -> None:
        self.now = 1_000.0
        self.slots = 0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    def acquire(self, recipients: int, *, deadline: float) -> Permit:
        self.slots += 1
        self.now += 0.2  # the reservation itself answered this late
        return Permit(cast(SubmitRateLimiter, self), recipients, deadline, self.now - 0.2)


def test_a_host_that_misses_slot_after_slot_gives_up_and_sends_nothing() -> None:
    # Given a submit whose host wakes too late for every slot it reserves
    host = LateEveryTime()
    permit = host.acquire(1, deadline=host.now + 30)
    # When it waits for its slot
    with pytest.raises(Throttled):
        permit.use()
    # Then it gave up after a few missed slots (the chunk waits and tries again), rather
    # than burning the account's slots for as long as the host stays busy
    assert permit.missed == MAX_MISSED_SLOTS
    assert host.slots == MAX_MISSED_SLOTS


def test_no_room_within_reach_is_throttled(stack: Provisioned) -> None:
    # Given a limit of 1 a second whose slot now is taken
    clock = Clock()
    limiter(stack, clock, submits_per_second=1).acquire(1, deadline=2_000)
    worker = limiter(stack, clock, submits_per_second=1)
    # Then a worker that must be done within 0.3 s gets none (the next is 1.05 s away)
    with pytest.raises(Throttled):
        worker.acquire(1, deadline=clock.now + 0.3)
    # And one with time waits for it
    assert worker.acquire(1, deadline=clock.now + 30).at == pytest.approx(1_001.05, abs=1e-5)


def test_a_code_takes_a_slot_within_bulks_look_ahead_however_far_bulk_would_reserve(
    stack: Provisioned,
) -> None:
    # Given transactional bulk that reserves every slot it may, without waiting for them
    clock = Clock()
    bulk = limiter(stack, clock, lane="transactional", submits_per_second=20)
    code = limiter(stack, clock, lane="verification", submits_per_second=20)
    bulk_slots = []
    while (slot := reserve(bulk, clock)) is not None:
        bulk_slots.append(slot)
    # Then bulk never reserved more than its look-ahead (0.3 s) ahead
    assert len(bulk_slots) == 6
    assert max(bulk_slots) <= clock.now + 0.3
    # And a code arriving now gets a slot within that look-ahead (plus one slot)
    slot = reserve(code, clock, 1)
    assert slot is not None
    assert slot <= clock.now + 0.3 + 0.055 + 1e-6
    # And it may reserve far further ahead than bulk: codes go first
    far = [reserve(code, clock, 1) for _ in range(60)]
    assert None not in far
    assert max(s for s in far if s is not None) > clock.now + 2
    marketing = limiter(stack, clock, lane="marketing", submits_per_second=20)
    assert reserve(marketing, clock) is None
    with pytest.raises(Throttled):
        marketing.acquire(200, deadline=clock.now + 1)


def test_an_unused_reserved_share_is_borrowed_not_wasted(stack: Provisioned) -> None:
    # Given a limit of 8 a second of which verification reserves 25 % (2 a second), and no
    # codes at all
    shares = {"verification": 25}
    assert {name: sum(t.submits) for name, t in timelines(RateLimit(8, shares=shares)).items()} == {
        "verification": 2,
        "pool": 6,
    }
    clock = Clock()
    bulk = limiter(stack, clock, lane="transactional", submits_per_second=8, shares=shares)
    starts = []
    for _ in range(60):
        bulk.acquire(200, deadline=clock.now + 60).use()
        starts.append(clock.now)
    # Then bulk alone gets nearly the whole limit (more than the pool's 6 a second), and
    # still never more than the limit in any second
    rate = (len(starts) - 1) / (starts[-1] - starts[0])
    assert rate > 7.0, rate
    assert busiest_window(starts) <= 8


def test_a_reserved_share_goes_to_its_lane_first(stack: Provisioned) -> None:
    # Given verification's reserved share and bulk that reserved all of the pool it may
    clock = Clock()
    shares = {"verification": 25}
    bulk = limiter(stack, clock, lane="transactional", submits_per_second=8, shares=shares)
    code = limiter(stack, clock, lane="verification", submits_per_second=8, shares=shares)
    while reserve(bulk, clock) is not None:
        pass
    # Then a code still gets a slot at once: of its own share, which bulk may only have
    # borrowed up to its short look-ahead for others' shares (0.15 s) and one slot of it
    slot = reserve(code, clock, 1)
    assert slot is not None
    assert slot <= clock.now + 0.15 + 0.525 + 1e-6  # a slot of 2/s: (1 + 0.03 + 0.02) / 2


class SlowWrites:
    """A DynamoDB client whose writes take ``seconds`` of the test's clock."""

    def __init__(self, clock: Clock, seconds: float) -> None:
        self._db, self._clock, self._seconds = boto3.client("dynamodb"), clock, seconds

    def update_item(self, **kwargs: object) -> object:
        self._clock.now += self._seconds
        return self._db.update_item(**kwargs)


def test_a_slot_is_never_taken_sooner_than_the_reservation_can_answer(stack: Provisioned) -> None:
    # Given a host where the limiter's writes take 0.2 s, and an idle timeline
    clock = Clock()
    worker = SubmitRateLimiter(
        SlowWrites(clock, 0.2),  # type: ignore[arg-type]
        stack.ref("MessagesTable"),
        RateLimit(20),
        clock=clock,
        sleep=clock.sleep,
        rng=lambda: 0.0,
    )
    first = worker.acquire(1, deadline=clock.now + 30)
    # Then the first slot ("now", its write's time not yet known) was past when the write
    # answered: it is given up, never overrun, and the next one is past the write's answer
    first.use()
    assert first.missed == 1
    # And once the worker knows its writes are slow, its slot lies past the write's answer
    second = worker.acquire(1, deadline=clock.now + 30)
    second.use()
    assert second.missed == 0
    assert second.at >= clock.now - 0.05


def test_a_rate_one_item_cannot_take_is_split_across_items_each_with_its_part(stack: Provisioned) -> None:
    # Given 1,000 a second and items of at most 250 a second
    lines = timelines(RateLimit(1_000))
    assert lines["pool"].submits == (250, 250, 250, 250)
    # When workers take 400 slots
    clock = Clock()
    workers = [limiter(stack, clock, lane="verification", submits_per_second=1_000) for _ in range(8)]
    starts = []
    for n in range(400):
        slot = reserve(workers[n % 8], clock, 1)
        assert slot is not None
        starts.append(slot)
    # Then they used every item, and no second holds more than 1,000 of them
    items = boto3.client("dynamodb").scan(TableName=stack.ref("MessagesTable"))["Items"]
    assert sorted(i["pk"]["S"] for i in items if i["pk"]["S"].startswith("RATE#guodu#pool#")) == [
        f"RATE#guodu#pool#{k}" for k in range(4)
    ]
    assert busiest_window(starts) <= 1_000


def test_lanes_with_accounts_of_their_own_do_not_share_a_limit(stack: Provisioned) -> None:
    clock = Clock()
    shared = limiter(stack, clock, submits_per_second=1)
    own = limiter(stack, clock, lane="marketing", account="marketing", submits_per_second=1)
    assert reserve(shared, clock) == clock.now
    # The shared account is full for the next second; the marketing account is not
    assert reserve(limiter(stack, clock, submits_per_second=1), clock) is None
    assert reserve(own, clock) == clock.now


def test_the_lane_pauses_after_repeated_failures_and_doubles_while_they_go_on(stack: Provisioned) -> None:
    clock = Clock()
    pause = LanePause(
        boto3.client("dynamodb"),
        stack.ref("MessagesTable"),
        PausePolicy(failures=3, window_seconds=10, base_seconds=5, max_seconds=300),
        clock=clock,
        cache_seconds=0,
    )
    assert [pause.record_failure() for _ in range(3)] == [0, 0, 5]
    other_worker = LanePause(
        boto3.client("dynamodb"), stack.ref("MessagesTable"), PausePolicy(), clock=clock, cache_seconds=0
    )
    assert other_worker.remaining() == 5
    clock.now += 6
    assert other_worker.remaining() == 0
    assert [pause.record_failure() for _ in range(3)][-1] == 10  # still failing: twice as long
    clock.now += 11
    pause.record_success()
    assert [pause.record_failure() for _ in range(3)][-1] == 5  # recovered: short again
