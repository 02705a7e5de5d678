"""The SQS send queue: what goes on it, and the few calls the gateway makes to it."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from smsgw.domain.model import ChunkRef

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

BATCH_LIMIT = 10
MESSAGE_VERSION = 1


class QueueUnavailable(RuntimeError):
    """SQS did not take the messages, even after retries."""


class BadMessage(ValueError):
    """A message on the send queue that is not a chunk reference."""


def encode_ref(ref: ChunkRef) -> str:
    return json.dumps({"v": MESSAGE_VERSION, "request_id": ref.request_id, "chunk": ref.number})


def decode_ref(body: str) -> ChunkRef:
    try:
        data = json.loads(body)
        if data.get("v") != MESSAGE_VERSION:
            raise BadMessage(f"unknown message version {data.get('v')!r}")
        request_id, number = data["request_id"], data["chunk"]
    except (ValueError, TypeError, KeyError, AttributeError) as err:
        raise BadMessage("not a chunk reference") from err
    if not isinstance(request_id, str) or not isinstance(number, int) or isinstance(number, bool):
        raise BadMessage("not a chunk reference")
    return ChunkRef(request_id=request_id, number=number)


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

    def enqueue(self, refs: Sequence[ChunkRef], attempts: int = 6) -> None:
        """Put chunk references on the queue, ten to a call, retrying entries SQS refused."""
        for start in range(0, len(refs), BATCH_LIMIT):
            entries: list[Any] = [
                {"Id": str(i), "MessageBody": encode_ref(ref)}
                for i, ref in enumerate(refs[start : start + BATCH_LIMIT])
            ]
            for attempt in range(attempts):
                failed = {
                    f["Id"]
                    for f in self._sqs.send_message_batch(QueueUrl=self._url, Entries=entries).get(
                        "Failed", []
                    )
                }
                entries = [e for e in entries if e["Id"] in failed]
                if not entries:
                    break
                self._sleep(min(0.05 * 2**attempt, 1.0))
            if entries:
                raise QueueUnavailable(f"{len(entries)} chunk messages refused by SQS")

    def delay(self, receipt_handle: str, seconds: int) -> None:
        """Hide a message we failed on for ``seconds`` before SQS hands it out again."""
        self._sqs.change_message_visibility(
            QueueUrl=self._url, ReceiptHandle=receipt_handle, VisibilityTimeout=max(0, min(seconds, 43_200))
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
