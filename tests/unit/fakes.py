"""In-memory fakes of the adapters the services use, behaving as the adapters do.

Each fake keeps what its adapter would keep in DynamoDB or SQS and honours the same
conditions (a claim only of a claimable chunk, a settlement only by the claim's holder, a
request header created once, a chunk counted once), so a service driven through them
makes the same decisions it makes against moto. No network, no AWS.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from smsgw.adapters.chunks import Claim
from smsgw.adapters.queue import ChunkMessage
from smsgw.adapters.throttle import Permit, Throttled
from smsgw.domain.caps import Cap
from smsgw.domain.events import Event
from smsgw.domain.model import (
    STALE_CLAIM,
    Category,
    Chunk,
    ChunkRef,
    ChunkState,
    RequestRecord,
    RequestStatus,
    Settlement,
)
from smsgw.domain.reports import Link, StoredReport
from smsgw.provider.client import PreparedSubmit, SubmitResult
from smsgw.provider.guodu import Credentials, SubmitRequest


class Clock:
    """A clock the test moves; ``sleep`` moves it too."""

    def __init__(self, now: float = 1_790_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


# -- the messages table ------------------------------------------------------------------


class FakeRequests:
    """``RequestStore``: headers created once; settled chunks counted once."""

    def __init__(self) -> None:
        self.items: dict[str, RequestRecord] = {}
        self.counted: set[tuple[str, int]] = set()
        self.release_at: dict[str, int | None] = {}

    def create_request(self, request: RequestRecord, *, release_at: int | None = None) -> bool:
        if request.id in self.items:
            return False
        self.items[request.id] = request
        self.release_at[request.id] = release_at
        return True

    def get_request(self, request_id: str, *, consistent: bool = False) -> RequestRecord | None:
        return self.items.get(request_id)

    def get_requests(self, request_ids: Sequence[str]) -> dict[str, RequestRecord]:
        return {r: self.items[r] for r in request_ids if r in self.items}

    def expires_at_of(self, record: RequestRecord) -> int:
        return 0

    def _move(self, request_id: str, to: RequestStatus, *, when: Iterable[RequestStatus]) -> bool:
        record = self.items.get(request_id)
        if record is None or record.status not in set(when):
            return False
        self.items[request_id] = replace(record, status=to)
        return True

    def mark_accepted(self, request_id: str) -> bool:
        return self._move(request_id, RequestStatus.ACCEPTED, when=[RequestStatus.ACCEPTING])

    def mark_submitted(self, request_id: str) -> bool:
        return self._move(
            request_id, RequestStatus.SUBMITTED, when=[RequestStatus.ACCEPTING, RequestStatus.ACCEPTED]
        )

    def is_counted(self, chunk: Chunk) -> bool:
        return (chunk.request_id, chunk.number) in self.counted

    def count_settled_chunk(self, chunk: Chunk) -> RequestRecord:
        record = self.items.get(chunk.request_id)
        if record is None:
            raise LookupError(f"request {chunk.request_id} is gone")
        if (chunk.request_id, chunk.number) not in self.counted:
            self.counted.add((chunk.request_id, chunk.number))
            record = replace(record, settled_chunks=record.settled_chunks + 1)
            self.items[chunk.request_id] = record
        return record


class FakeLinks:
    """``LinkStore``: a MsgId's link and the reports of its numbers, on one item."""

    def __init__(self) -> None:
        self.items: dict[str, Link] = {}

    def write_link(self, chunk: Chunk, msg_id: str) -> None:
        old = self.items.get(msg_id)
        reports = old.reports if old else {}  # an update: early reports stay
        self.items[msg_id] = Link(msg_id, chunk.request_id, chunk.number, chunk.reference, reports)

    def add_early_report(self, msg_id: str, report: StoredReport) -> None:
        old = self.items.get(msg_id) or Link(msg_id, None, None, None)
        self.items[msg_id] = replace(old, reports={**old.reports, report.mobile: report})

    def link(self, msg_id: str, *, consistent: bool = False) -> Link | None:
        return self.items.get(msg_id)

    def get_links(self, msg_ids: Sequence[str]) -> dict[str, Link]:
        return {m: self.items[m] for m in msg_ids if m in self.items}


@dataclass
class _StoredChunk:
    chunk: Chunk
    fingerprint: str


class FakeChunks:
    """``ChunkStore``: the same conditions on claims and settlements as the real one."""

    def __init__(self, links: FakeLinks, clock: Callable[[], float]) -> None:
        self.items: dict[tuple[str, int], _StoredChunk] = {}
        self._links = links
        self._clock = clock

    def put_chunks(self, chunks: Sequence[Chunk], *, fingerprint: str, retry: bool = False) -> bool:
        for chunk in chunks:
            old = self.items.get((chunk.request_id, chunk.number))
            if retry and old is not None:
                if old.fingerprint != fingerprint:
                    return False
                if old.chunk.state is not ChunkState.QUEUED or old.chunk.attempts:
                    continue  # claimed: left to its worker
            self.items[(chunk.request_id, chunk.number)] = _StoredChunk(chunk, fingerprint)
        return True

    def add(self, chunk: Chunk) -> Chunk:
        self.items[(chunk.request_id, chunk.number)] = _StoredChunk(chunk, "")
        return chunk

    def list_chunks(self, request_id: str, *, consistent: bool = False) -> list[Chunk]:
        return [s.chunk for (r, _), s in sorted(self.items.items()) if r == request_id]

    def get_chunk(self, ref: ChunkRef, *, consistent: bool = True) -> Chunk | None:
        stored = self.items.get((ref.request_id, ref.number))
        return stored.chunk if stored else None

    def _put(self, chunk: Chunk) -> None:
        self.items[(chunk.request_id, chunk.number)].chunk = chunk

    def claim_chunk(self, ref: ChunkRef, *, token: str, lease_seconds: int) -> Claim:
        chunk = self.get_chunk(ref)
        if chunk is None:
            return Claim(None, False)
        if chunk.state not in (ChunkState.QUEUED, ChunkState.RETRYING):
            mine = chunk.claim == token and chunk.state is ChunkState.SUBMITTING
            return Claim(chunk, mine, chunk.lease_until)
        lease_until = int(self._clock()) + lease_seconds
        claimed = replace(
            chunk,
            state=ChunkState.SUBMITTING,
            claim=token,
            lease_until=lease_until,
            attempts=chunk.attempts + 1,
        )
        self._put(claimed)
        return Claim(claimed, True, lease_until)

    def settle(self, chunk: Chunk, settlement: Settlement) -> bool:
        if settlement.state is ChunkState.SUBMITTED and settlement.msg_id:
            self._links.write_link(chunk, settlement.msg_id)
        now = self.get_chunk(ChunkRef(chunk.request_id, chunk.number))
        if now is None:
            return False
        holder = now.claim == settlement.token if settlement.token else not now.claim
        claimed = now.state is ChunkState.SUBMITTING or (
            now.state is ChunkState.UNKNOWN and now.result_code == STALE_CLAIM
        )
        if not (holder and claimed):
            return (now.claim, now.state, now.result_code) == (
                settlement.token,
                settlement.state,
                settlement.code,
            )
        self._put(
            replace(
                now,
                state=settlement.state,
                result_code=settlement.code,
                detail=settlement.detail,
                msg_id=settlement.msg_id or now.msg_id,
                valid_until=settlement.valid_until if settlement.valid_until is not None else now.valid_until,
                attempts=now.attempts - (0 if settlement.attempt_counted else 1),
                attempt_base=chunk.attempts if settlement.restart_attempts else now.attempt_base,
                lease_until=0,
            )
        )
        return True

    def mark_stale(self, chunk: Chunk) -> bool:
        return self.settle(
            chunk, Settlement(chunk.claim, ChunkState.UNKNOWN, STALE_CLAIM, "worker stopped mid-submit")
        )


class FakeTable:
    """``MessageTable``: the owners of a request's items, over one in-memory table."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.requests = FakeRequests()
        self.links = FakeLinks()
        self.chunks = FakeChunks(self.links, clock)


# -- the queues, the bus, the other lists ------------------------------------------------


@dataclass
class FakeQueue:
    """``SendQueue`` and ``LaneQueues``: what was queued, held, retried or parked."""

    url: str = "https://sqs.local/send"
    enqueued: list[ChunkMessage] = field(default_factory=list)
    requeued: list[tuple[ChunkMessage, float]] = field(default_factory=list)
    retried: list[tuple[str, int]] = field(default_factory=list)
    parked: list[tuple[str, str]] = field(default_factory=list)

    def enqueue(self, messages: Sequence[ChunkMessage], attempts: int = 6) -> None:
        self.enqueued.extend(messages)

    def requeue(self, message: ChunkMessage, seconds: float, *, now: float) -> None:
        self.requeued.append((message, seconds))

    def retry(self, receipt_handle: str, seconds: int) -> None:
        self.retried.append((receipt_handle, seconds))

    def park(self, body: str, reason: str) -> None:
        self.parked.append((body, reason))


@dataclass
class FakeEvents:
    published: list[Event] = field(default_factory=list)

    def publish(self, events: Sequence[Event]) -> None:
        self.published.extend(events)

    @property
    def types(self) -> list[str]:
        return [e.detail_type for e in self.published]


@dataclass
class FakeOptOuts:
    """``OptOutStore``: the numbers on the opt-out list."""

    numbers: set[str] = field(default_factory=set)

    def opted_out(self, mobiles: Iterable[str]) -> set[str]:
        return set(mobiles) & self.numbers


@dataclass
class FakeFrequency:
    """``FrequencyStore``: one window per cap (the test's "now" never leaves it); all of a
    number's messages or none; a holder's numbers are not counted again."""

    counts: Counter[tuple[str, Category, int]] = field(default_factory=Counter)
    holders: dict[tuple[str, Category], set[str]] = field(default_factory=lambda: defaultdict(set))

    def take(
        self,
        mobiles: Mapping[str, int],
        category: Category,
        caps: Sequence[Cap],
        *,
        holder: str | None = None,
    ) -> dict[str, Cap]:
        refused: dict[str, Cap] = {}
        for mobile, count in mobiles.items():
            if holder and holder in self.holders[(mobile, category)]:
                continue
            over = [c for c in caps if self.counts[(mobile, category, c.window_seconds)] + count > c.limit]
            if over:
                refused[mobile] = over[0]
                continue
            for cap in caps:
                self.counts[(mobile, category, cap.window_seconds)] += count
            if holder:
                self.holders[(mobile, category)].add(holder)
        return refused


# -- the platform and the lane ----------------------------------------------------------


class FakeGuodu:
    """``GuoduClient``: answers each submit with the next scripted result (or raises it)."""

    def __init__(self, *answers: SubmitResult | Exception) -> None:
        self.answers = list(answers)
        self.sent: list[SubmitRequest] = []
        self._prepared: dict[bytes, SubmitRequest] = {}

    def credentials(self) -> Credentials:
        return Credentials("account", "secret")

    def prepare(self, request: SubmitRequest, credentials: Credentials) -> PreparedSubmit:
        prepared = PreparedSubmit(request.body(credentials))
        self._prepared[prepared.body] = request
        return prepared

    def send(
        self, prepared: PreparedSubmit, *, before_send: Callable[[], None] | None = None
    ) -> SubmitResult:
        if before_send is not None:
            before_send()
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        self.sent.append(self._prepared[prepared.body])
        return answer


class FakeLimiter:
    """``SubmitRateLimiter``: a slot at once, or ``Throttled`` while ``full``."""

    def __init__(self, full_for: float = 0.0) -> None:
        self.full_for = full_for

    def acquire(self, recipients: int, *, deadline: float, lead: float = 0.0) -> Permit:
        if self.full_for:
            raise Throttled(self.full_for)
        return Permit(None, recipients, deadline, 0.0)


class FakePause:
    """``LanePause``: paused for ``seconds``; counts what the worker told it."""

    def __init__(self, seconds: float = 0.0) -> None:
        self.seconds = seconds
        self.failures = 0
        self.successes = 0

    def remaining(self) -> float:
        return self.seconds

    def record_failure(self) -> float:
        self.failures += 1
        return 0.0

    def record_success(self) -> None:
        self.successes += 1


def as_any(value: object) -> Any:
    """A fake where the service's signature names the real adapter."""
    return value
