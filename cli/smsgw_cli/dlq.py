"""Move chunk messages from the send dead-letter queue back to the send queue.

SQS's own ``StartMessageMoveTask`` is missing from moto and from some regions, so this
is receive / send / delete, ten at a time:

1. receive from the dead-letter queue, holding each message invisible for
   ``hold_seconds`` so the scan does not see it twice;
2. choose: a chunk reference (``{"v": 1, "request_id", "chunk"}``, the format of
   ``smsgw.adapters.queue``) of the wanted request, not yet moved in this run;
3. **copy** it to the send queue (same body, the worker's ``reason`` attribute dropped),
   **then** delete it from the dead-letter queue. A crash in between leaves a message in
   both queues, never in neither: a duplicate is harmless, because the worker claims a
   chunk with one conditional write and submits it once;
4. at the end, make every message this run held but did not move (skipped, failed, or
   all of them in a dry run) visible again at once.

A run ends when a receive brings nothing it has not seen (message ids and chunks are
remembered for the run), so it cannot loop forever, even while the worker parks new
copies of a chunk this run just moved.

Nothing here reads the messages table: a message holds ids only.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from smsgw.adapters.queue import BATCH_LIMIT, BadMessage, decode_ref

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

# Long enough for a batch to be copied and deleted; a message whose hold runs out is
# simply received again, recognised by its id, and held anew.
HOLD_SECONDS = 120
# Long polling asks every SQS server: one empty answer means the queue has nothing more.
WAIT_SECONDS = 2
# With short polling (wait 0) an empty answer may be false: stop after this many.
SHORT_POLL_IDLE_RECEIVES = 3
ATTEMPTS = 5
REASON_ATTRIBUTE = "reason"  # set by SendQueue.park() in the worker

SKIP_OTHER_REQUEST = "other request"
SKIP_NOT_A_CHUNK = "not a chunk message"
SKIP_ALREADY_MOVED = "chunk already moved in this run"
SKIP_OVER_MAX = "over --max"


@dataclass(frozen=True)
class DeadLetter:
    """One message of the dead-letter queue, as much as an operator needs to see."""

    message_id: str
    receipt_handle: str = field(repr=False)
    body: str = field(repr=False)
    attributes: dict[str, Any] = field(repr=False)  # message attributes, as received
    request_id: str | None
    chunk: int | None
    receive_count: int
    first_received: str | None  # ISO 8601, UTC
    reason: str | None  # why the worker parked it; None: SQS moved it after maxReceiveCount

    @classmethod
    def from_message(cls, message: Any) -> DeadLetter:
        system = message.get("Attributes", {})
        attributes = dict(message.get("MessageAttributes", {}))
        reason = attributes.get(REASON_ATTRIBUTE, {}).get("StringValue")
        body = message.get("Body", "")
        try:
            ref = decode_ref(body)
        except BadMessage:
            request_id, chunk = None, None
        else:
            request_id, chunk = ref.request_id, ref.number
        return cls(
            message_id=message["MessageId"],
            receipt_handle=message["ReceiptHandle"],
            body=body,
            attributes=attributes,
            request_id=request_id,
            chunk=chunk,
            receive_count=int(system.get("ApproximateReceiveCount", 0)),
            first_received=_iso_millis(system.get("ApproximateFirstReceiveTimestamp")),
            reason=reason,
        )

    @property
    def chunk_key(self) -> tuple[str, int] | None:
        return None if self.request_id is None or self.chunk is None else (self.request_id, self.chunk)

    def copy_attributes(self) -> dict[str, Any]:
        """The message attributes for the copy: all but ``reason``, in the form SendMessage takes."""
        copied: dict[str, Any] = {}
        for name, value in self.attributes.items():
            if name == REASON_ATTRIBUTE:
                continue
            kept = {"DataType": value["DataType"]}
            for part in ("StringValue", "BinaryValue"):
                if part in value:
                    kept[part] = value[part]
            copied[name] = kept
        return copied

    def as_json(self) -> dict[str, Any]:
        return {
            "message_id": self.message_id,
            "request_id": self.request_id,
            "chunk": self.chunk,
            "receive_count": self.receive_count,
            "first_received": self.first_received,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class Skipped:
    letter: DeadLetter
    why: str


@dataclass(frozen=True)
class Failed:
    """A message that could not be moved. ``step`` "send": it stays in the dead-letter
    queue only. ``step`` "delete": it was copied to the send queue but is still in the
    dead-letter queue too (a harmless duplicate)."""

    letter: DeadLetter
    step: str
    error: str


@dataclass
class RedriveReport:
    dry_run: bool
    chosen: list[DeadLetter] = field(default_factory=list)  # moved (or, in a dry run, would be)
    skipped: list[Skipped] = field(default_factory=list)
    failed: list[Failed] = field(default_factory=list)
    # Held messages we could not make visible again: they reappear after the hold.
    unreleased: int = 0
    aborted: str | None = None  # a call failed outright; the run stopped there

    @property
    def ok(self) -> bool:
        return not self.failed and self.aborted is None


def _iso_millis(value: Any) -> str | None:
    try:
        millis = int(value)
    except (TypeError, ValueError):
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(millis / 1000))


def _error_text(entry: Any) -> str:
    code, message = entry.get("Code", "error"), entry.get("Message", "")
    return f"{code}: {message}" if message else str(code)


def _batches(items: list[DeadLetter]) -> Iterable[list[DeadLetter]]:
    for start in range(0, len(items), BATCH_LIMIT):
        yield items[start : start + BATCH_LIMIT]


class Redrive:
    def __init__(
        self,
        sqs: SQSClient,
        *,
        dead_letter_url: str,
        queue_url: str,
        hold_seconds: int = HOLD_SECONDS,
        wait_seconds: int = WAIT_SECONDS,
        attempts: int = ATTEMPTS,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._sqs = sqs
        self._dlq = dead_letter_url
        self._queue = queue_url
        self._hold = hold_seconds
        self._wait = wait_seconds
        self._attempts = attempts
        self._sleep = sleep

    def approximate_count(self) -> int:
        attributes = self._sqs.get_queue_attributes(
            QueueUrl=self._dlq, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        return int(attributes.get("ApproximateNumberOfMessages", 0))

    def run(self, *, dry_run: bool, limit: int | None = None, request_id: str | None = None) -> RedriveReport:
        """Move (or with ``dry_run`` only list) at most ``limit`` messages, of ``request_id``
        only when given. Every message held and not moved is visible again on return."""
        from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415 - keep CLI start lean

        outcome = RedriveReport(dry_run=dry_run)
        held: dict[str, DeadLetter] = {}  # received and not deleted: released at the end
        try:
            self._scan(outcome, held, limit, request_id)
        except (BotoCoreError, ClientError) as err:
            outcome.aborted = f"{type(err).__name__}: {err}"
        finally:
            outcome.unreleased = self._release(list(held.values()))
        return outcome

    # -- the scan ---------------------------------------------------------------------
    def _scan(
        self, outcome: RedriveReport, held: dict[str, DeadLetter], limit: int | None, request_id: str | None
    ) -> None:
        seen: set[str] = set()
        chunks: set[tuple[str, int]] = set()
        picked = 0  # chosen to move, whether or not the move then succeeds: what --max counts
        idle = 0
        idle_limit = 1 if self._wait > 0 else SHORT_POLL_IDLE_RECEIVES
        while limit is None or picked < limit:
            room = None if limit is None else limit - picked
            # Without a filter, ask for no more than --max still allows.
            batch = self._receive(BATCH_LIMIT if room is None or request_id else min(BATCH_LIMIT, room))
            new: list[DeadLetter] = []
            for letter in batch:
                held[letter.message_id] = letter  # the latest receipt handle is the one that counts
                if letter.message_id not in seen:
                    seen.add(letter.message_id)
                    new.append(letter)
            if not new:
                idle += 1
                if idle >= idle_limit:
                    return
                continue
            idle = 0
            chosen = self._choose(new, outcome, chunks, room, request_id)
            picked += len(chosen)
            if outcome.dry_run:
                outcome.chosen.extend(chosen)
            elif chosen:
                self._move(chosen, outcome, held)

    def _receive(self, count: int) -> list[DeadLetter]:
        reply = self._sqs.receive_message(
            QueueUrl=self._dlq,
            MaxNumberOfMessages=count,
            VisibilityTimeout=self._hold,
            WaitTimeSeconds=self._wait,
            MessageAttributeNames=["All"],
            MessageSystemAttributeNames=["ApproximateReceiveCount", "ApproximateFirstReceiveTimestamp"],
        )
        return [DeadLetter.from_message(m) for m in reply.get("Messages", [])]

    @staticmethod
    def _choose(
        new: list[DeadLetter],
        outcome: RedriveReport,
        chunks: set[tuple[str, int]],
        room: int | None,
        request_id: str | None,
    ) -> list[DeadLetter]:
        """The new messages to move; the others are recorded as skipped, with why."""
        chosen: list[DeadLetter] = []
        for letter in new:
            key = letter.chunk_key
            if key is None:
                outcome.skipped.append(Skipped(letter, SKIP_NOT_A_CHUNK))
            elif request_id is not None and letter.request_id != request_id:
                outcome.skipped.append(Skipped(letter, SKIP_OTHER_REQUEST))
            elif key in chunks:
                outcome.skipped.append(Skipped(letter, SKIP_ALREADY_MOVED))
            elif room is not None and len(chosen) >= room:
                outcome.skipped.append(Skipped(letter, SKIP_OVER_MAX))
            else:
                chunks.add(key)
                chosen.append(letter)
        return chosen

    # -- moving: copy, then delete ----------------------------------------------------
    def _move(self, letters: list[DeadLetter], outcome: RedriveReport, held: dict[str, DeadLetter]) -> None:
        copied = self._copy(letters, outcome)
        for letter in self._delete(copied, outcome):
            held.pop(letter.message_id, None)
            outcome.chosen.append(letter)

    def _copy(self, letters: list[DeadLetter], outcome: RedriveReport) -> list[DeadLetter]:
        """SendMessageBatch to the send queue, retrying refused entries; the copied ones."""

        def send(pending: dict[str, DeadLetter]) -> Any:
            entries: list[Any] = [
                {"Id": entry_id, "MessageBody": letter.body, "MessageAttributes": letter.copy_attributes()}
                for entry_id, letter in pending.items()
            ]
            return self._sqs.send_message_batch(QueueUrl=self._queue, Entries=entries)

        return self._batch_call(letters, send, "send", outcome)

    def _delete(self, letters: list[DeadLetter], outcome: RedriveReport) -> list[DeadLetter]:
        """DeleteMessageBatch from the dead-letter queue, retrying refused entries."""

        def delete(pending: dict[str, DeadLetter]) -> Any:
            entries: list[Any] = [
                {"Id": entry_id, "ReceiptHandle": letter.receipt_handle}
                for entry_id, letter in pending.items()
            ]
            return self._sqs.delete_message_batch(QueueUrl=self._dlq, Entries=entries)

        return self._batch_call(letters, delete, "delete", outcome) if letters else []

    def _batch_call(
        self,
        letters: list[DeadLetter],
        call: Callable[[dict[str, DeadLetter]], Any],
        step: str,
        outcome: RedriveReport,
    ) -> list[DeadLetter]:
        """Call ``call`` with ten entries at a time; retry the entries SQS reports failed
        (unless SQS says the fault is ours: retrying those cannot help). Returns the
        letters that succeeded; the others are recorded in ``outcome.failed``."""
        done: list[DeadLetter] = []
        for batch in _batches(letters):
            pending = {str(i): letter for i, letter in enumerate(batch)}
            errors: dict[str, str] = {}
            for attempt in range(self._attempts):
                try:
                    reply = call(pending)
                except Exception as err:
                    # The call failed outright (after botocore's own retries): give up on
                    # what is pending, and stop the run.
                    outcome.failed += [
                        Failed(p, step, f"{type(err).__name__}: {err}") for p in pending.values()
                    ]
                    raise
                for ok in reply.get("Successful", []):
                    done.append(pending.pop(ok["Id"]))
                for failure in reply.get("Failed", []):
                    errors[failure["Id"]] = _error_text(failure)
                    if failure.get("SenderFault") and failure["Id"] in pending:
                        outcome.failed.append(Failed(pending.pop(failure["Id"]), step, errors[failure["Id"]]))
                if not pending:
                    break
                if attempt + 1 < self._attempts:
                    self._sleep(min(0.1 * 2**attempt, 2.0))
            outcome.failed += [
                Failed(letter, step, errors.get(entry_id, "no answer for this entry"))
                for entry_id, letter in pending.items()
            ]
        return done

    # -- the end ----------------------------------------------------------------------
    def _release(self, letters: list[DeadLetter]) -> int:
        """Make held messages visible again at once; how many could not be."""
        unreleased = 0
        for batch in _batches(letters):
            entries: list[Any] = [
                {"Id": str(i), "ReceiptHandle": letter.receipt_handle, "VisibilityTimeout": 0}
                for i, letter in enumerate(batch)
            ]
            try:
                reply = self._sqs.change_message_visibility_batch(QueueUrl=self._dlq, Entries=entries)
            except Exception:  # they reappear after the hold anyway; counted and reported
                unreleased += len(batch)
                continue
            unreleased += len(reply.get("Failed", []))
        return unreleased
