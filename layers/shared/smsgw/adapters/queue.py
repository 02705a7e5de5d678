"""The SQS send queues (one per lane): what goes on them, and the few calls the gateway
makes to them."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from smsgw.domain.model import Category, ChunkRef, ChunkState, Settlement
from smsgw.provider.guodu import MAX_NUMBERS_PER_SUBMIT

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

BATCH_LIMIT = 10
MESSAGE_VERSION = 1
# SQS delays a new message by at most 15 minutes; a longer wait is made of several hops.
MAX_DELAY_SECONDS = 900
# ... and hides a received one for at most 12 hours.
MAX_VISIBILITY_SECONDS = 43_200
SEND_THREADS = 8
# Small chunks of one request travel together, up to this many a message and as many
# numbers as one submit holds: a personalised request of 1,000 messages is 100 messages
# on the queue, not 1,000 (SQS is billed, and moto slows down, per message).
GROUP_LIMIT = 10


class QueueUnavailable(RuntimeError):
    """SQS did not take the messages, even after retries."""


class BadMessage(ValueError):
    """A message on the send queue that is not a chunk reference."""


class Then(StrEnum):
    """What becomes of a chunk once a settle order is written."""

    DONE = "done"  # settled: nothing more
    RETRY = "retry"  # an attempt failed: submitted again after ``seconds``
    HOLD = "hold"  # given back without an attempt: submitted after ``seconds``
    PARK = "park"  # released: to the dead-letter queue, for a person


@dataclass(frozen=True)
class SettleOrder:
    """What an attempt made of its chunk, carried by the queue because DynamoDB would not
    take it in time: the answer of the platform is never left as a standing claim."""

    settlement: Settlement
    then: Then = Then.DONE
    seconds: int = 0  # how long the hold or retry waits (``delay`` in the message's JSON)
    reason: str = ""  # why it is parked (THEN park)


@dataclass(frozen=True)
class ChunkMessage:
    """A message of the send queue: a pointer to a stored chunk, and what the worker may
    know before it reads the chunk."""

    ref: ChunkRef
    recipients: int = MAX_NUMBERS_PER_SUBMIT  # for the rate limit; the most a chunk holds
    not_before: int = 0  # epoch seconds: a hold longer than SQS's longest delay
    settle: SettleOrder | None = None
    # The request's category: the lane it travels. None in messages queued before lanes.
    category: Category | None = None


def encode(message: ChunkMessage) -> str:
    data: dict[str, Any] = {
        "v": MESSAGE_VERSION,
        "request_id": message.ref.request_id,
        "chunk": message.ref.number,
        "n": message.recipients,
    }
    if message.not_before:
        data["not_before"] = message.not_before
    if message.category is not None:
        data["c"] = message.category.value
    if message.settle is not None:
        order = message.settle
        settlement = {k: v for k, v in asdict(order.settlement).items() if v is not None}
        data["settle"] = {
            "then": order.then.value,
            "delay": order.seconds,
            "reason": order.reason,
            **settlement,
        }
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def encode_group(messages: Sequence[ChunkMessage]) -> str:
    """Several plain chunk messages of one request as one message."""
    if len(messages) == 1:
        return encode(messages[0])
    data: dict[str, Any] = {
        "v": MESSAGE_VERSION,
        "request_id": messages[0].ref.request_id,
        "chunks": [[m.ref.number, m.recipients] for m in messages],
    }
    if messages[0].category is not None:
        data["c"] = messages[0].category.value
    return json.dumps(data, separators=(",", ":"))


def group(messages: Sequence[ChunkMessage]) -> list[list[ChunkMessage]]:
    """Consecutive chunks of one request, packed while they fit one submit's numbers."""
    groups: list[list[ChunkMessage]] = []
    for message in messages:
        last = groups[-1] if groups else None
        if (
            last is not None
            and len(last) < GROUP_LIMIT
            and last[0].ref.request_id == message.ref.request_id
            and sum(m.recipients for m in last) + message.recipients <= MAX_NUMBERS_PER_SUBMIT
            and message.settle is None
            and not message.not_before
            and last[0].settle is None
            and not last[0].not_before
        ):
            last.append(message)
        else:
            groups.append([message])
    return groups


def encode_ref(ref: ChunkRef) -> str:
    return encode(ChunkMessage(ref))


def decode_all(body: str) -> list[ChunkMessage]:
    """The chunk messages a message of the send queue carries (one, or a group)."""
    try:
        data = json.loads(body)
        if data.get("v") != MESSAGE_VERSION:
            raise BadMessage(f"unknown message version {data.get('v')!r}")
        request_id = data["request_id"]
        category = Category(data["c"]) if "c" in data else None
        if "chunks" in data:
            messages = [
                ChunkMessage(ChunkRef(request_id, _number(n)), int(k), category=category)
                for n, k in data["chunks"]
            ]
        else:
            messages = [
                ChunkMessage(
                    ChunkRef(request_id, _number(data["chunk"])),
                    int(data.get("n", MAX_NUMBERS_PER_SUBMIT)),
                    int(data.get("not_before", 0)),
                    _settle_order(data["settle"]) if "settle" in data else None,
                    category,
                )
            ]
    except (ValueError, TypeError, KeyError, AttributeError) as err:
        raise BadMessage("not a chunk reference") from err
    if not isinstance(request_id, str) or not messages:
        raise BadMessage("not a chunk reference")
    return messages


def _number(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError("a chunk number must be an integer")
    return value


def decode(body: str) -> ChunkMessage:
    """The (first) chunk message of a message."""
    return decode_all(body)[0]


def decode_ref(body: str) -> ChunkRef:
    return decode(body).ref


def _settle_order(data: dict[str, Any]) -> SettleOrder:
    settlement = Settlement(
        token=str(data["token"]),
        state=ChunkState(data["state"]),
        code=str(data["code"]),
        detail=str(data["detail"]),
        msg_id=data.get("msg_id"),
        attempt_counted=bool(data.get("attempt_counted", True)),
        valid_until=data.get("valid_until"),
        restart_attempts=bool(data.get("restart_attempts", False)),
    )
    return SettleOrder(settlement, Then(data["then"]), int(data.get("delay", 0)), str(data.get("reason", "")))


class SendQueue:
    def __init__(
        self,
        client: SQSClient,
        queue_url: str,
        *,
        dead_letter_url: str = "",
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._sqs = client
        self._url = queue_url
        self._dlq_url = dead_letter_url
        self._sleep = sleep

    @property
    def url(self) -> str:
        return self._url

    def enqueue(self, messages: Sequence[ChunkMessage], attempts: int = 6) -> None:
        """Put chunk messages on the queue, ten to a call and several calls at once,
        retrying entries SQS refused. Raises ``QueueUnavailable`` (or the client's error)
        when some could not be queued: the caller cannot tell which, and queues them all
        again later (a chunk queued twice is still claimed, and submitted, once)."""
        bodies = [encode_group(g) for g in group(messages)]
        batches = [bodies[i : i + BATCH_LIMIT] for i in range(0, len(bodies), BATCH_LIMIT)]
        if len(batches) <= 1:
            for batch in batches:
                self._send_batch(batch, attempts)
            return
        with ThreadPoolExecutor(max_workers=SEND_THREADS, thread_name_prefix="enqueue") as pool:
            for _ in pool.map(lambda batch: self._send_batch(batch, attempts), batches):
                pass

    def _send_batch(self, batch: Sequence[str], attempts: int) -> None:
        entries: list[Any] = [{"Id": str(i), "MessageBody": body} for i, body in enumerate(batch)]
        for attempt in range(attempts):
            failed = {
                f["Id"]
                for f in self._sqs.send_message_batch(QueueUrl=self._url, Entries=entries).get("Failed", [])
            }
            entries = [e for e in entries if e["Id"] in failed]
            if not entries:
                return
            self._sleep(min(0.05 * 2**attempt, 1.0))
        raise QueueUnavailable(f"{len(entries)} chunk messages refused by SQS")

    def requeue(self, message: ChunkMessage, seconds: float, *, now: float) -> None:
        """Queue a fresh copy of ``message`` due in ``seconds`` (the caller then lets the
        old one go). A fresh message starts its receive count afresh: a chunk held back
        (lane paused, rate limit full, quiet hours) never nears the dead-letter queue."""
        delay = max(0, int(seconds))
        not_before = int(now) + delay if delay > MAX_DELAY_SECONDS else 0
        self._sqs.send_message(
            QueueUrl=self._url,
            MessageBody=encode(
                ChunkMessage(
                    message.ref,
                    message.recipients,
                    not_before=not_before,
                    settle=message.settle,
                    category=message.category,
                )
            ),
            DelaySeconds=min(delay, MAX_DELAY_SECONDS),
        )

    def retry(self, receipt_handle: str, seconds: int) -> None:
        """Hide a message we failed on for ``seconds`` before SQS hands the same message
        out again (its receive count grows: a retry, not a hold)."""
        self._sqs.change_message_visibility(
            QueueUrl=self._url,
            ReceiptHandle=receipt_handle,
            VisibilityTimeout=max(0, min(seconds, MAX_VISIBILITY_SECONDS)),
        )

    def park(self, body: str, reason: str) -> None:
        """Move a message straight to the dead-letter queue, for a person to look at."""
        if not self._dlq_url:
            raise QueueUnavailable("no dead-letter queue configured")
        self._sqs.send_message(
            QueueUrl=self._dlq_url,
            MessageBody=body,
            MessageAttributes={"reason": {"DataType": "String", "StringValue": reason[:256]}},
        )


class LaneQueues:
    """The send queue of each lane: a chunk message goes on the queue of its category
    (a message without one, on the transactional lane's). What intake and the reconciler
    enqueue through; a category without a queue of its own uses the transactional one."""

    def __init__(self, queues: Mapping[Category, SendQueue]) -> None:
        if Category.TRANSACTIONAL not in queues:
            raise ValueError("the transactional lane needs a queue")
        self._queues = dict(queues)

    @classmethod
    def of_urls(cls, client: SQSClient, urls: Mapping[Category, str]) -> LaneQueues:
        """The lanes' queues at ``urls`` (lanes sharing a URL share the queue)."""
        made: dict[str, SendQueue] = {}
        return cls({c: made.setdefault(url, SendQueue(client, url)) for c, url in urls.items()})

    def of(self, category: Category | None) -> SendQueue:
        return self._queues.get(category or Category.TRANSACTIONAL, self._queues[Category.TRANSACTIONAL])

    def enqueue(self, messages: Sequence[ChunkMessage], attempts: int = 6) -> None:
        """``SendQueue.enqueue`` on each lane's queue for its messages (see there)."""
        by_queue: dict[str, tuple[SendQueue, list[ChunkMessage]]] = {}
        for message in messages:
            queue = self.of(message.category)
            by_queue.setdefault(queue.url, (queue, []))[1].append(message)
        for queue, mine in by_queue.values():
            queue.enqueue(mine, attempts)
