"""The provider's rate limit and the lane's pause, shared by every worker instance.

Both live in the gateway's table, so they hold across all concurrent Lambda containers,
not only inside one.

**Rate limit: one timeline per account (GCRA).** The platform limits an *account*: every
lane that submits with it shares one limit of N submits a second. The limit is kept as a
*theoretical arrival time* (``tat``, epoch microseconds) in a small item: a submit takes
the slot at ``tat`` (or *now*, when ``tat`` lies in the past) and moves ``tat`` on by
``T = (1 + slack + margin) / N`` (below), with one conditional write (``ADD`` when the timeline is busy,
``SET`` when it is idle: no read, no read-then-write race). ``tat`` only ever grows, so a
worker's last sight of it is a safe lower bound, and a write that cannot succeed is not
even tried.

A submit must *start* within ``slack`` of its slot, or the slot is given up (never
overrun) and another taken, and the request is written right when it starts (the
connection is opened before, see ``provider.client``). The platform then sees it within
``slack + margin`` of its slot, ``margin`` being what the way there may add (a busy
small Lambda, the network). Slots are ``T = (1 + slack + margin) / N`` apart, so any
one-second window of the platform's clock, wherever it begins, holds at most N submits:
their slots lie in a span of ``1 + slack + margin`` s, which holds N of them. The old
per-second windows allowed up to 2N in a second straddling a boundary. The price:
at most ``N / (1 + slack + margin)`` a second on average (95.2 % with 30 + 20 ms;
``GuoduRateMarginMs=0`` gives 97.1 % where the way to the platform is steady).

**Split across items.** One DynamoDB item takes about 1,000 writes a second; a timeline
faster than ``item_rate`` is split into K items of their own partition, each limiting
its share (the shares sum to N, whole numbers each), and a worker takes whichever has
room. Any window then holds at most the sum of the shares, N.

**Lanes: verification first, bulk takes the rest, nothing is wasted.** How far ahead a
lane may reserve on the account's shared timeline (the *pool*) is its priority:
one-time codes up to ``max_wait_seconds``, transactional bulk ``0.3`` s, marketing
``0.15`` s (a lane with no lane above it on its account: ``max_wait_seconds``). Bulk
therefore keeps the timeline filled only a fraction of a second ahead, and a code finds
a slot within that fraction, however large the backlog; bulk takes every slot codes do
not. A lane may also *reserve a share* (``LaneReservedShares``): that share becomes a
timeline of its own, which the lane takes first, and other lanes borrow it when it is
idle (within their own short look-ahead), so an unused share is not wasted either.

**Pause.** When the platform answers ``-1``, times out or refuses our account several
times within a short window, the whole account stops for a while, doubling while the
failures go on: every worker sees the pause and holds its messages, instead of each
message bouncing through the queue on its own schedule.
"""

from __future__ import annotations

import math
import random
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from smsgw.adapters.dynamo import attempt_write, from_item, key

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

MICROS = 1_000_000
# An idle timeline's items vanish (TTL) a day after their last slot.
TIMELINE_TTL_SECONDS = 86_400
# The lanes, highest priority first, and how far ahead each may reserve on a timeline
# shared with a lane above it (seconds).
PRIORITY = ("verification", "transactional", "marketing")
LOOKAHEAD = {"transactional": 0.3, "marketing": 0.15}
POOL = "pool"
WRITES_KEPT = 16  # reservation writes whose duration sets how far ahead a slot is taken
# A submit starts within this of its slot, or takes another; and the platform may see it
# this much later again (the way there). Slots are (1 + slack + margin) / N apart.
SLACK_SECONDS = 0.03
MARGIN_SECONDS = 0.02
# Slots a submit may miss (woken too late for each) before it gives up and waits.
MAX_MISSED_SLOTS = 3
# A worker that finds every timeline full sleeps until one may have room, plus a random
# part that doubles with each round it finds no room (from one slot's spacing up to half
# of max_wait): waiting workers spread out instead of all waking for the same slot, so
# each slot costs about one refused write however many workers wait.


class Throttled(Exception):
    """No slot within reach: try again a little later."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"rate limit: retry in {retry_after:.0f} s")
        self.retry_after = retry_after


@dataclass(frozen=True)
class RateLimit:
    """One account's limit: N submits (and R recipients) in any one-second window."""

    submits_per_second: int = 0  # 0: no limit
    recipients_per_second: int = 0  # 0: no limit
    max_wait_seconds: int = 5  # how far ahead a worker may reserve (and then wait)
    slack_seconds: float = SLACK_SECONDS  # a submit starts within this of its slot, or takes another
    margin_seconds: float = MARGIN_SECONDS  # what the way to the platform may add
    # Shares of the limit reserved by lanes, in percent (lane -> percent).
    shares: Mapping[str, int] = field(default_factory=dict)
    item_rate: int = 250  # the most slots one item hands out a second

    @property
    def enabled(self) -> bool:
        return self.submits_per_second > 0 or self.recipients_per_second > 0


@dataclass(frozen=True)
class Timeline:
    """The pool, or the share a lane reserved: split into items of their own partition."""

    name: str
    submits: tuple[int, ...]  # the submits a second of each item
    recipients: tuple[int, ...]  # the recipients a second of each item (0: no limit)


def _split(total: int, parts: int) -> tuple[int, ...]:
    """``total`` in ``parts`` whole numbers that differ by at most one."""
    return tuple(total // parts + (1 if n < total % parts else 0) for n in range(parts))


def timelines(limit: RateLimit) -> dict[str, Timeline]:
    """The timelines of an account: a reserved share per lane that asked for one, and the
    pool with what is left. Their submits (and recipients) add up to the limit."""
    n, r = limit.submits_per_second, limit.recipients_per_second
    if sum(limit.shares.values()) > 100:
        raise ValueError("the lanes' reserved shares add up to more than 100 %")
    reserved: dict[str, tuple[int, int]] = {}
    for lane, percent in limit.shares.items():
        if percent > 0 and n > 0:
            submits = max(1, n * percent // 100)
            reserved[lane] = (submits, r * submits // n)
    left_n = n - sum(s for s, _ in reserved.values())
    left_r = r - sum(k for _, k in reserved.values())
    if left_n < 0:
        raise ValueError("the lanes' reserved shares leave nothing of the limit")
    found: dict[str, Timeline] = {}
    for name, (submits, recipients) in [*reserved.items(), (POOL, (left_n, left_r))]:
        if submits <= 0 and (n > 0 or recipients <= 0):
            continue
        parts = max(1, math.ceil(max(submits, recipients // 200) / limit.item_rate))
        found[name] = Timeline(name, _split(submits, parts), _split(recipients, parts))
    return found


def lookahead(lane: str, lanes_of_account: tuple[str, ...], max_wait_seconds: float) -> float:
    """How far ahead ``lane`` may reserve on its account's pool: as far as it likes when no
    lane of higher priority shares the account, else a fraction of a second."""
    rank = PRIORITY.index(lane) if lane in PRIORITY else len(PRIORITY)
    above = [other for other in lanes_of_account if other in PRIORITY and PRIORITY.index(other) < rank]
    if not above:
        return float(max_wait_seconds)
    return min(float(max_wait_seconds), LOOKAHEAD.get(lane, min(LOOKAHEAD.values())))


class Permit:
    """A reserved slot: the submit may start at ``at`` and must start by ``at + slack``."""

    def __init__(
        self, limiter: SubmitRateLimiter | None, recipients: int, deadline: float, at: float
    ) -> None:
        self._limiter = limiter
        self._recipients = recipients
        self._deadline = deadline
        self.at = at
        self.missed = 0  # slots given up because the submit could not start in time

    def use(self) -> None:
        """Wait for the slot; call it right before the request is sent. Woken too late (a
        busy host, a failover that took its time), the slot is given up, never overrun,
        and another is taken. Raises ``Throttled`` when none is within reach."""
        limiter = self._limiter
        if limiter is None:
            return
        while True:
            wait = self.at - limiter.clock()
            if wait > 0:
                limiter.sleep(wait)
            if limiter.clock() <= self.at + limiter.slack:
                return
            self.missed += 1
            if self.missed >= MAX_MISSED_SLOTS or limiter.clock() > self._deadline:
                # A host this busy misses slot after slot: each one missed is a slot of the
                # account lost. Nothing was sent: the chunk waits and tries again.
                raise Throttled(retry_after=1.0)
            self.at = limiter.acquire(self._recipients, deadline=self._deadline).at


class SubmitRateLimiter:
    """One lane's view of its account's timelines (see the module's docstring)."""

    def __init__(
        self,
        client: DynamoDBClient,
        table_name: str,
        limit: RateLimit,
        *,
        account: str = "guodu",
        lane: str = "transactional",
        lookahead_seconds: float | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        rng: Callable[[], float] = random.random,
        hints: dict[str, int] | None = None,
    ) -> None:
        self._db = client
        self._table = table_name
        self._limit = limit
        self._account = account
        self.clock = clock
        self.sleep = sleep
        self._rng = rng
        self.slack = limit.slack_seconds
        # What this container last saw of each item's tat (a lower bound: tat only grows).
        # Shared by the lanes of one account in a container.
        self._hints: dict[str, int] = {} if hints is None else hints
        self._candidates: list[tuple[str, int, int, float]] = []  # (key, submits, recipients, horizon)
        # Per item, whether the last slot this container took there found it idle.
        self._idle_last: dict[str, bool] = {}
        # How long the last reservation writes took (the slot is taken at least that far ahead).
        self._writes: deque[float] = deque([0.0], maxlen=WRITES_KEPT)
        if limit.enabled:
            mine = limit.max_wait_seconds if lookahead_seconds is None else lookahead_seconds
            lines = timelines(limit)
            ordered = [lines[lane]] if lane in lines else []
            ordered += [lines[POOL]] if POOL in lines else []
            ordered += [t for name, t in lines.items() if name not in (lane, POOL)]
            for line in ordered:
                if line.name == lane:
                    horizon = float(limit.max_wait_seconds)  # its own share
                elif line.name == POOL:
                    horizon = mine
                else:  # another lane's share: only while that lane leaves it idle
                    horizon = min(mine, *LOOKAHEAD.values())
                shards = zip(line.submits, line.recipients, strict=True)
                for shard, (submits, recipients) in enumerate(shards):
                    item = f"RATE#{account}#{line.name}#{shard}"
                    self._candidates.append((item, submits, recipients, horizon))

    @property
    def enabled(self) -> bool:
        return self._limit.enabled

    def acquire(self, recipients: int, *, deadline: float, lead: float = 0.0) -> Permit:
        """Reserve a slot for a submit of ``recipients`` numbers; sleep until ``lead``
        seconds before it (the time the caller needs before the request can start).

        The slot is never earlier than the reservation's own write can answer (now, plus
        what those writes lately took): a slot taken "now" on an idle timeline would lie in
        the past by the time the write answers, on a busy host, and be given up (a slot of
        the limit lost). ``lead`` is not added: a busy timeline's next slot is kept, not
        skipped over, and the worker claims at once when it is that near."""
        if not self._limit.enabled:
            return Permit(None, recipients, deadline, 0.0)
        started = self.clock()
        give_up = min(started + self._limit.max_wait_seconds, deadline)
        spacing = min(self._cost(s, rs, recipients) for _, s, rs, _ in self._candidates) / MICROS
        rounds = 0
        while True:
            now = self.clock()
            ahead = 1.25 * max(self._writes)  # the soonest a slot can be taken
            at = self.reserve(recipients, now, now + ahead)
            if at is not None:
                wait = at - lead - self.clock()
                if wait > 0:
                    self.sleep(wait)
                return Permit(self, recipients, deadline, at)
            chance = self._next_chance() - ahead
            if chance > give_up:
                raise Throttled(retry_after=max(1.0, chance - now))
            if chance <= self.clock():
                # There was room: other workers took it first. Try again at once, spread
                # over a slot's spacing.
                self.sleep(self._rng() * spacing)
                continue
            # Full within reach: wait until there may be room, spread more the more often
            # this worker found none.
            spread = min(self._limit.max_wait_seconds / 2, spacing * 2 ** min(rounds, 12))
            self.sleep(max(0.001, chance - now) + self._rng() * spread)
            rounds += 1

    # -- the timelines ----------------------------------------------------------------
    def _cost(self, submits: int, recipients_limit: int, recipients: int) -> int:
        """How far one submit moves an item's tat (microseconds, rounded up)."""
        span = (1 + self.slack + self._limit.margin_seconds) * MICROS
        cost = math.ceil(span / submits) if submits else 0
        if recipients_limit:
            cost = max(cost, math.ceil(span * recipients / recipients_limit))
        return cost

    def reserve(self, recipients: int, now: float, earliest: float) -> float | None:
        """A slot on the first timeline with room within its horizon, or None. Items are
        tried earliest slot first (by what was last seen of them), then in the lane's order
        (its own share, the pool, other lanes' shares): an idle share is taken before a
        later slot of the pool, and nothing is left unused that could go now."""
        earliest_us = int(earliest * MICROS)
        lines = [candidate[0].rsplit("#", 1)[0] for candidate in self._candidates]
        place = {line: lines.index(line) for line in lines}  # the timeline's place in the order
        items = {line: lines.count(line) for line in lines}
        costs = [self._cost(s, rs, recipients) for _, s, rs, _ in self._candidates]

        def next_slot(i: int) -> tuple[float, int]:
            # The item's next slot as last seen, give or take a round of its timeline's
            # items (so that workers spread over them instead of all taking the same one).
            seen = max(self._hints.get(self._candidates[i][0], 0), earliest_us)
            return seen + self._rng() * costs[i] * (items[lines[i]] - 1), place[lines[i]]

        order = sorted(range(len(self._candidates)), key=next_slot)
        for index in order:
            item, _, _, horizon = self._candidates[index]
            limit_us = earliest_us + int(horizon * MICROS)  # the look-ahead, from when it can send
            cost = costs[index]
            for attempt in range(2):  # the second try, when the first learnt the item's state
                known = self._hints.get(item, 0)
                if known > limit_us:
                    break
                # Seen busy: busy. Seen idle, which may be stale: the form that last worked
                # here (other workers keep a busy timeline moving), then what the refusal says.
                idle = known <= earliest_us and (attempt > 0 or self._idle_last.get(item, True))
                slot = self._take(item, cost, earliest_us, limit_us, idle=idle)
                if slot is not None:
                    self._idle_last[item] = idle
                    return slot / MICROS
        return None

    def _take(self, item: str, cost: int, earliest_us: int, limit_us: int, *, idle: bool) -> int | None:
        """One conditional write on one item: the slot (microseconds, never before
        ``earliest_us``), or None (the item's tat, learnt from the refusal, is kept as the
        hint)."""
        now_us = earliest_us
        expires = {"N": str(now_us // MICROS + TIMELINE_TTL_SECONDS)}
        request: dict[str, Any] = {
            "TableName": self._table,
            "Key": key(item, "GCRA"),
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
        if idle:
            # Idle: the slot is now, and the timeline starts again from it.
            request |= {
                "UpdateExpression": "SET tat = :tat, expires_at = :exp",
                "ConditionExpression": "attribute_not_exists(tat) OR tat <= :now",
                "ExpressionAttributeValues": {
                    ":tat": {"N": str(now_us + cost)},
                    ":now": {"N": str(now_us)},
                    ":exp": expires,
                },
            }
        else:
            # Busy: the slot is tat, if it lies within the horizon.
            request |= {
                "UpdateExpression": "ADD tat :cost SET expires_at = :exp",
                "ConditionExpression": "tat > :now AND tat <= :limit",
                "ExpressionAttributeValues": {
                    ":cost": {"N": str(cost)},
                    ":now": {"N": str(now_us)},
                    ":limit": {"N": str(limit_us)},
                    ":exp": expires,
                },
                "ReturnValues": "UPDATED_NEW",
            }
        began = self.clock()
        written = attempt_write(lambda: self._db.update_item(**request))
        self._writes.append(max(0.0, self.clock() - began))
        if not written.ok:
            tat = int(written.old.get("tat", {}).get("N", "0"))
            self._hints[item] = max(self._hints.get(item, 0), tat)
            return None
        answer = written.answer
        if idle:
            self._hints[item] = now_us + cost
            return now_us
        tat = int(answer["Attributes"]["tat"]["N"])
        self._hints[item] = tat
        return tat - cost

    def _next_chance(self) -> float:
        """The earliest moment a timeline may have room again, by what was last seen."""
        return min((self._hints.get(item, 0) / MICROS - horizon for item, _, _, horizon in self._candidates))


@dataclass(frozen=True)
class PausePolicy:
    failures: int = 3  # this many failures ...
    window_seconds: int = 10  # ... within this window pause the lane
    base_seconds: int = 5  # for this long, doubling while it goes on,
    max_seconds: int = 300  # up to this


class LanePause:
    """The pause of every lane that submits with one account (``RATE#<account>``)."""

    def __init__(
        self,
        client: DynamoDBClient,
        table_name: str,
        policy: PausePolicy,
        *,
        lane: str = "guodu",
        clock: Callable[[], float] = time.time,
        cache_seconds: float = 1.0,
    ) -> None:
        self._db = client
        self._table = table_name
        self._policy = policy
        self._key = key(f"RATE#{lane}", "PAUSE")
        self._clock = clock
        self._cache_seconds = cache_seconds
        self._cached: tuple[float, float, int] = (-1.0, 0.0, 0)  # (read at, until, step)

    def remaining(self) -> float:
        """Seconds the lane stays paused (0 when it runs); read at most once a second."""
        now = self._clock()
        read_at, until, _ = self._cached
        if now - read_at > self._cache_seconds:
            item = self._db.get_item(TableName=self._table, Key=self._key).get("Item")
            data = from_item(item) if item else {}
            until, step = float(data.get("until", 0)), int(data.get("step", 0))
            self._cached = (now, until, step)
        return max(0.0, self._cached[1] - now)

    def record_failure(self) -> float:
        """Count a failure of the platform; returns the pause it started (0 if none)."""
        now = self._clock()
        cutoff = now - self._policy.window_seconds
        written = attempt_write(
            lambda: self._db.update_item(
                TableName=self._table,
                Key=self._key,
                UpdateExpression="ADD failures :one",
                ConditionExpression="window_start > :cutoff",
                ExpressionAttributeValues={":one": {"N": "1"}, ":cutoff": {"N": f"{cutoff:.3f}"}},
                ReturnValues="ALL_NEW",
            )
        )
        if written.ok:
            data = from_item(written.answer["Attributes"])
        else:
            # A new window: start counting again.
            self._db.update_item(
                TableName=self._table,
                Key=self._key,
                UpdateExpression="SET failures = :one, window_start = :now",
                ExpressionAttributeValues={":one": {"N": "1"}, ":now": {"N": f"{now:.3f}"}},
            )
            data = {"failures": 1}
        if int(data.get("failures", 0)) < self._policy.failures:
            return 0.0
        return self._trip(now, int(data.get("step", 0)))

    def _trip(self, now: float, step: int) -> float:
        pause: float = min(self._policy.max_seconds, self._policy.base_seconds * 2**step)
        values: dict[str, Any] = {
            ":until": {"N": f"{now + pause:.3f}"},
            ":now": {"N": f"{now:.3f}"},
            ":zero": {"N": "0"},
            ":one": {"N": "1"},
        }
        # Only one worker trips it: the others see a pause already running.
        written = attempt_write(
            lambda: self._db.update_item(
                TableName=self._table,
                Key=self._key,
                UpdateExpression="SET #until = :until, failures = :zero, window_start = :now ADD step :one",
                ConditionExpression="attribute_not_exists(#until) OR #until < :now",
                ExpressionAttributeNames={"#until": "until"},
                ExpressionAttributeValues=values,
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        )
        if not written.ok:
            # Someone else paused the lane: hold to it now, not at the next read.
            running = written.old
            until = float(running.get("until", {}).get("N", "0"))
            self._cached = (now, until, int(running.get("step", {}).get("N", "0")))
            return 0.0
        self._cached = (now, now + pause, step + 1)
        return pause

    def record_success(self) -> None:
        """The platform answers again: the next pause starts short."""
        if self._cached[2] == 0:
            return
        self._db.update_item(
            TableName=self._table,
            Key=self._key,
            UpdateExpression="SET step = :zero, failures = :zero",
            ExpressionAttributeValues={":zero": {"N": "0"}},
        )
        self._cached = (self._cached[0], self._cached[1], 0)
