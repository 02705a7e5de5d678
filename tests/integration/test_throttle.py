"""The shared rate limit and the lane pause, with a clock the test controls."""

from __future__ import annotations

import boto3
import pytest

from smsgw.adapters.throttle import LanePause, PausePolicy, RateLimit, SubmitRateLimiter, Throttled
from smsgw_local.provision import Provisioned


class Clock:
    def __init__(self, now: float = 1_000.0, oversleep: float = 0.0) -> None:
        self.now = now
        self.oversleep = oversleep

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds + self.oversleep
        self.oversleep = 0.0  # a busy host, once


def limiter(stack: Provisioned, clock: Clock, **limit: int) -> SubmitRateLimiter:
    return SubmitRateLimiter(
        boto3.client("dynamodb"),
        stack.ref("MessagesTable"),
        RateLimit(**limit),
        clock=clock,
        sleep=clock.sleep,
    )


def test_submits_fill_each_second_up_to_the_limit_then_wait_for_the_next(stack: Provisioned) -> None:
    clock = Clock()
    first, second = limiter(stack, clock, submits_per_second=2), limiter(stack, clock, submits_per_second=2)
    seconds = []
    for worker in (first, second, first, second, first):
        worker.acquire(200, deadline=clock.now + 30)
        seconds.append(int(clock.now))
    assert seconds == [1000, 1000, 1001, 1001, 1002]


def test_recipients_per_second_are_limited_too(stack: Provisioned) -> None:
    clock = Clock()
    worker = limiter(stack, clock, recipients_per_second=300)
    seconds = []
    for _ in range(3):
        worker.acquire(200, deadline=clock.now + 30)
        seconds.append(int(clock.now))
    assert seconds == [1000, 1001, 1002]  # 200 + 200 would be 400 > 300


def test_a_worker_that_wakes_too_late_takes_another_slot_rather_than_overrun(stack: Provisioned) -> None:
    clock = Clock(now=1_000.5, oversleep=0.9)
    busy = limiter(stack, clock, submits_per_second=1)
    busy.acquire(1, deadline=clock.now + 30)  # second 1000, no sleep needed
    busy.acquire(1, deadline=clock.now + 30)  # reserved 1001, woke at 1001.9: too late
    assert int(clock.now) == 1002  # it went out in a second it holds


def test_no_room_within_reach_is_throttled(stack: Provisioned) -> None:
    clock = Clock()
    worker = limiter(stack, clock, submits_per_second=1, max_wait_seconds=1)
    hog = limiter(stack, Clock(), submits_per_second=1, max_wait_seconds=1)
    hog.acquire(1, deadline=2_000)
    hog.acquire(1, deadline=2_000)
    with pytest.raises(Throttled):
        worker.acquire(1, deadline=2_000)


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
