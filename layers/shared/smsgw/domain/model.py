"""Records of the gateway and the states they move through.

A *request* (one POST) is split into *chunks*: recipients of the same content, at most
200 of them (one provider submit each). A chunk moves through the submission states
below; each recipient's public status is derived from its chunk and, later, from the
delivery report the platform pushes for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from smsgw.domain.numbers import Rejection

# A chunk holds at most this many numbers: one submit's worth. The platform's document says
# 500 in one place and 200 in another; 200 is the safe reading
# (``provider.guodu.MAX_NUMBERS_PER_SUBMIT`` says the same, and a test keeps them equal).
MAX_NUMBERS_PER_CHUNK = 200


class ChunkState(StrEnum):
    QUEUED = "queued"  # stored and on the send queue
    SUBMITTING = "submitting"  # claimed by a worker, the submit is under way
    RETRYING = "retrying"  # the last attempt failed in a way worth retrying
    SUBMITTED = "submitted"  # the platform accepted it and gave a MsgId
    FAILED = "failed"  # the platform refused it (a request error); never retried
    UNKNOWN = "unknown"  # the request left but no answer came: it may have been sent
    EXPIRED = "expired"  # not submitted within its validity
    HELD = "held"  # scheduled far ahead: kept by the gateway until shortly before send_at
    CANCELLED = "cancelled"  # called off (DELETE) before it was handed to the platform


CLAIMABLE_STATES = frozenset({ChunkState.QUEUED, ChunkState.RETRYING})
# What DELETE /v1/messages/{id} may still call off: nothing of it has left.
CANCELLABLE_STATES = frozenset({ChunkState.HELD, ChunkState.QUEUED, ChunkState.RETRYING})
SETTLED_STATES = frozenset(
    {ChunkState.SUBMITTED, ChunkState.FAILED, ChunkState.UNKNOWN, ChunkState.EXPIRED, ChunkState.CANCELLED}
)
# A chunk in one of these may have reached the platform (or is on its way there).
LEFT_STATES = frozenset({ChunkState.SUBMITTING, ChunkState.SUBMITTED, ChunkState.UNKNOWN})


class RecipientStatus(StrEnum):
    """What the public API shows for one recipient; it only ever moves forward."""

    QUEUED = "queued"
    SUBMITTED = "submitted"
    DELIVERED = "delivered"
    FAILED = "failed"
    UNKNOWN = "unknown"
    EXPIRED = "expired"
    REJECTED = "rejected"
    OPTED_OUT = "opted_out"
    CANCELLED = "cancelled"


# A recipient in one of these states never changes again.
FINAL_RECIPIENT_STATES = frozenset(
    {
        RecipientStatus.DELIVERED,
        RecipientStatus.FAILED,
        RecipientStatus.UNKNOWN,
        RecipientStatus.EXPIRED,
        RecipientStatus.REJECTED,
        RecipientStatus.OPTED_OUT,
        RecipientStatus.CANCELLED,
    }
)


# Lists echoed in replies and kept on the request item stop here (an item holds 400 KB).
MAX_LISTED = 1_000


CHUNK_TO_RECIPIENT = {
    ChunkState.QUEUED: RecipientStatus.QUEUED,
    ChunkState.SUBMITTING: RecipientStatus.QUEUED,
    ChunkState.RETRYING: RecipientStatus.QUEUED,
    ChunkState.SUBMITTED: RecipientStatus.SUBMITTED,
    ChunkState.FAILED: RecipientStatus.FAILED,
    ChunkState.UNKNOWN: RecipientStatus.UNKNOWN,
    ChunkState.EXPIRED: RecipientStatus.EXPIRED,
    ChunkState.HELD: RecipientStatus.QUEUED,
    ChunkState.CANCELLED: RecipientStatus.CANCELLED,
}


class RequestStatus(StrEnum):
    ACCEPTING = "accepting"  # stored, not yet wholly on the queue
    ACCEPTED = "accepted"  # every chunk is on the queue
    SUBMITTED = "submitted"  # every chunk has settled
    COMPLETED = "completed"  # every recipient is final (its report, or no_report, included)


class Category(StrEnum):
    VERIFICATION = "verification"  # one-time codes: frequency caps apply by default
    TRANSACTIONAL = "transactional"  # notices: not held, not capped by default
    MARKETING = "marketing"  # skips opted-out numbers, held in quiet hours


@dataclass(frozen=True)
class MessageGroup:
    """One content and the numbers that receive exactly that content."""

    content: str
    mobiles: tuple[str, ...]
    segments: int


@dataclass(frozen=True)
class SendCommand:
    """A validated, normalised send request, ready to be stored and queued."""

    groups: tuple[MessageGroup, ...]
    rejected: tuple[Rejection, ...] = ()
    send_time: datetime | None = None  # when the platform is to send it (Beijing); None: now
    append_id: str = ""
    reference: str | None = None
    category: Category = Category.TRANSACTIONAL
    caller: str = ""
    opted_out: tuple[str, ...] = ()  # marketing recipients skipped: on the opt-out list
    valid_for: int = 0  # seconds a chunk may wait to be submitted; 0: the default
    callback_url: str | None = None

    @property
    def recipients(self) -> int:
        return sum(len(group.mobiles) for group in self.groups)

    @property
    def segments(self) -> int:
        """Segments of one message: the longest, when contents differ."""
        return max((group.segments for group in self.groups), default=0)

    @property
    def total_segments(self) -> int:
        """What the whole request costs: segments summed over every recipient."""
        return sum(group.segments * len(group.mobiles) for group in self.groups)


@dataclass(frozen=True)
class Chunk:
    request_id: str
    number: int
    mobiles: tuple[str, ...]
    content: str
    segments: int
    send_time: datetime | None = None  # as the request's
    append_id: str = ""
    reference: str | None = None
    category: Category = Category.TRANSACTIONAL
    valid_until: int = 0  # epoch seconds; not submitted after this, it ends expired
    state: ChunkState = ChunkState.QUEUED
    attempts: int = 0
    attempt_base: int = 0  # attempts before the last redrive: they no longer count
    msg_id: str | None = None
    result_code: str | None = None
    detail: str | None = None
    updated_at: str | None = None
    claim: str = ""  # the token of the attempt that last claimed it
    lease_until: int = 0  # epoch seconds: while claimed, the claim holds until then
    no_report: bool = False  # submitted, and no report came in time for some of its numbers
    # Numbers taken out when a held chunk was released: opted out, or over a frequency cap
    # recorded in between (mobile -> reason).
    skipped: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class RequestRecord:
    id: str
    created_at: str
    recipients: int
    segments: int
    total_segments: int
    chunk_count: int
    rejected: tuple[Rejection, ...] = ()  # the first MAX_LISTED of them
    reference: str | None = None
    category: Category = Category.TRANSACTIONAL
    send_time: datetime | None = None  # when the platform is to send it (Beijing); None: now
    append_id: str = ""
    caller: str = ""
    status: RequestStatus = RequestStatus.ACCEPTING
    settled_chunks: int = 0
    fingerprint: str = ""  # of the request body, to tell a replay from a reused key
    opted_out: tuple[str, ...] = ()  # the first MAX_LISTED of them
    opted_out_count: int = 0
    rejected_count: int = 0  # all of them, listed or not
    valid_until: int = 0  # epoch seconds: its chunks are not submitted after this
    callback_url: str | None = None  # where its events are POSTed (else the caller's default)
    completed_at: str | None = None
    due_checks: int = 0  # completion checks made so far (they back off)


@dataclass(frozen=True)
class ChunkRef:
    """What travels on the send queue: a pointer to a stored chunk."""

    request_id: str
    number: int


class SubmitVerdict(StrEnum):
    """What the platform's answer to one submit means for the chunk (the one table that
    maps every ResultCode to a verdict is ``provider.guodu.RESULT_CODES``)."""

    ACCEPTED = "accepted"  # the platform took it; keep the MsgId
    REJECTED = "rejected"  # this request is wrong: fail it, never retry
    TRANSIENT = "transient"  # the platform had a problem: retry with growing delays
    ACCOUNT = "account"  # our account has a problem: retry, alarm, then dead-letter
    UNKNOWN = "unknown"  # a code we do not know: keep it, fail safe, alarm
    AMBIGUOUS = "ambiguous"  # the request left and no answer came: it may have been sent


@dataclass(frozen=True)
class Settlement:
    """What one attempt (claim ``token``) makes of its chunk, in one conditional write.

    ``state`` SUBMITTED/FAILED/UNKNOWN/EXPIRED settle the chunk; RETRYING releases it
    after a failed attempt; QUEUED gives it back without counting an attempt (held: the
    lane, the deadline, quiet hours). Only the attempt holding the claim may write it."""

    token: str
    state: ChunkState
    code: str
    detail: str
    msg_id: str | None = None
    attempt_counted: bool = True  # False: the claim's attempt is taken back (a hold)
    valid_until: int | None = None  # a new validity (quiet hours extend it by the wait)
    restart_attempts: bool = False  # parked: after a redrive its attempts count afresh

    @property
    def settles(self) -> bool:
        return self.state in SETTLED_STATES


# What a chunk's stale claim becomes: its worker stopped while the submit may have left.
STALE_CLAIM = "stale_claim"


def plan_chunks(
    request_id: str,
    command: SendCommand,
    per_submit: int,
    *,
    valid_until: int = 0,
    state: ChunkState = ChunkState.QUEUED,
) -> list[Chunk]:
    """Split every content group into chunks of at most ``per_submit`` numbers."""
    chunks: list[Chunk] = []
    for group in command.groups:
        for start in range(0, len(group.mobiles), per_submit):
            chunks.append(
                Chunk(
                    request_id=request_id,
                    number=len(chunks),
                    mobiles=group.mobiles[start : start + per_submit],
                    content=group.content,
                    segments=group.segments,
                    send_time=command.send_time,
                    append_id=command.append_id,
                    reference=command.reference,
                    category=command.category,
                    valid_until=valid_until,
                    state=state,
                )
            )
    return chunks
