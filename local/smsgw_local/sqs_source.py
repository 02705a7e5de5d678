"""The SQS event source mapping: what Lambda's poller does for a function with ``Type: SQS``.

For each source one thread long-polls the queue (``WaitTimeSeconds`` short, so that a stop
is quick), builds the event Lambda builds, and hands batches to at most
``MaximumConcurrency`` invocations at a time. When an invocation ends:

- with ``ReportBatchItemFailures``, every message not named in ``batchItemFailures`` is
  deleted; a response Lambda cannot read (not an object, an item without a valid
  ``itemIdentifier`` or naming a message not in the batch), a function error or a timeout
  fails the whole batch and nothing is deleted;
- without it, all messages are deleted on success and none on error.

Failed messages are simply left on the queue, as Lambda leaves them: SQS hands them out
again when their visibility timeout ends (the queue's, or one the handler set with
``ChangeMessageVisibility``), and after ``maxReceiveCount`` receives the queue's redrive
policy moves them to the dead-letter queue. Moto does that move during ``ReceiveMessage``,
as SQS does.
"""

from __future__ import annotations

import base64
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from smsgw_local.provision import SqsSource
from smsgw_local.runtime import Invocation, RuntimeStopped

log = logging.getLogger("smsgw_local.sqs")

# The system attributes Lambda puts in a record's ``attributes``.
LAMBDA_RECORD_ATTRIBUTES = (
    "ApproximateReceiveCount",
    "SentTimestamp",
    "SenderId",
    "ApproximateFirstReceiveTimestamp",
    "SequenceNumber",
    "MessageGroupId",
    "MessageDeduplicationId",
    "AWSTraceHeader",
    "DeadLetterQueueSourceArn",
)
SQS_RECEIVE_LIMIT = 10
DEFAULT_WAIT_SECONDS = 1


def _b64(value: Any) -> str:
    data = value if isinstance(value, bytes) else str(value).encode("utf-8")
    return base64.b64encode(data).decode("ascii")


def lambda_message_attributes(attributes: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """SQS message attributes in the camelCase form of Lambda's SQS records."""
    converted: dict[str, dict[str, Any]] = {}
    for name, attribute in attributes.items():
        item: dict[str, Any] = {}
        if "StringValue" in attribute:
            item["stringValue"] = attribute["StringValue"]
        if "BinaryValue" in attribute:
            item["binaryValue"] = _b64(attribute["BinaryValue"])
        item["stringListValues"] = list(attribute.get("StringListValues", []))
        item["binaryListValues"] = [_b64(v) for v in attribute.get("BinaryListValues", [])]
        item["dataType"] = attribute["DataType"]
        converted[name] = item
    return converted


def sqs_record(message: Mapping[str, Any], *, queue_arn: str, region: str) -> dict[str, Any]:
    """One record of the event Lambda sends for ``message`` (a ``ReceiveMessage`` entry)."""
    attributes = message.get("Attributes", {})
    record: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message.get("Body", ""),
        "attributes": {k: str(attributes[k]) for k in LAMBDA_RECORD_ATTRIBUTES if k in attributes},
        "messageAttributes": lambda_message_attributes(message.get("MessageAttributes", {})),
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }
    if message.get("MD5OfMessageAttributes"):
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    return record


def failed_message_ids(response: Any, message_ids: Sequence[str]) -> set[str]:
    """The messages a ``ReportBatchItemFailures`` response marks as failed.

    Lambda's rules: a null or empty response, or an empty or null ``batchItemFailures``,
    is complete success; anything it cannot read, an empty or null ``itemIdentifier``, a
    wrong key or an identifier not in the batch is complete failure.
    """
    everything = set(message_ids)
    if response is None or response == {}:
        return set()
    if not isinstance(response, dict):
        return everything
    failures = response.get("batchItemFailures")
    if failures is None:
        return set()
    if not isinstance(failures, list):
        return everything
    failed: set[str] = set()
    for item in failures:
        identifier = item.get("itemIdentifier") if isinstance(item, dict) else None
        if not isinstance(identifier, str) or identifier not in everything:
            return everything
        failed.add(identifier)
    return failed


Invoker = Callable[[dict[str, Any]], Invocation]


class SqsEventSource:
    """One event source mapping: a queue feeding one function."""

    def __init__(
        self,
        function: str,
        source: SqsSource,
        invoke: Invoker,
        sqs_client: Any,
        *,
        region: str,
        wait_seconds: int = DEFAULT_WAIT_SECONDS,
    ) -> None:
        self.function = function
        self.source = source
        self._invoke = invoke
        self._sqs = sqs_client
        self._region = region
        self._wait = wait_seconds
        self._slots = threading.BoundedSemaphore(source.max_concurrency)
        self._executor = ThreadPoolExecutor(
            max_workers=source.max_concurrency, thread_name_prefix=f"sqs-{function}"
        )
        self._stopping = threading.Event()
        self._enabled = threading.Event()
        self._enabled.set()
        self._paused = threading.Event()  # set by the poller while it is disabled
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._in_flight = 0
        self.batches = 0
        self.deleted = 0
        self.failed = 0

    @property
    def enabled(self) -> bool:
        return self._enabled.is_set()

    def enable(self) -> None:
        self._paused.clear()
        self._enabled.set()

    def disable(self, timeout: float = 10.0) -> None:
        """Stop receiving (like ``UpdateEventSourceMapping Enabled=false``). Returns once
        the poller has paused: no receive is under way any more (batches already received
        are still processed)."""
        self._enabled.clear()
        if self._thread is not None and self._thread.is_alive():
            self._paused.wait(timeout)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._poll, name=f"sqs-poller-{self.function}", daemon=True)
        self._thread.start()

    def signal_stop(self) -> None:
        self._stopping.set()

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._executor.shutdown(wait=True, cancel_futures=True)

    def idle(self) -> bool:
        """True when no batch is being processed."""
        with self._lock:
            return self._in_flight == 0

    # -- polling ----------------------------------------------------------------------
    def _poll(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            if not self._enabled.is_set():
                self._paused.set()
                self._enabled.wait(0.2)
                continue
            if not self._slots.acquire(timeout=0.2):
                continue
            try:
                messages = self._receive_batch()
            except (BotoCoreError, ClientError) as err:
                self._slots.release()
                failures += 1
                if not self._stopping.is_set():
                    log.warning("%s: ReceiveMessage failed: %s", self.function, err)
                    self._stopping.wait(min(0.5 * failures, 5.0))
                continue
            failures = 0
            if not messages:
                self._slots.release()
                continue
            with self._lock:
                self._in_flight += 1
            try:
                self._executor.submit(self._process, messages)
            except RuntimeError:  # the executor is shutting down
                self._finished()
                return

    def _receive_batch(self) -> list[dict[str, Any]]:
        """Up to the batch size; with a batching window, keep receiving until it closes."""
        batch: list[dict[str, Any]] = []
        window_ends = 0.0
        while not self._stopping.is_set():
            wait = (
                self._wait
                if not batch
                else max(0, min(self._wait, math.ceil(window_ends - time.monotonic())))
            )
            response = self._sqs.receive_message(
                QueueUrl=self.source.queue_url,
                MaxNumberOfMessages=min(SQS_RECEIVE_LIMIT, self.source.batch_size - len(batch)),
                WaitTimeSeconds=wait,
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
            messages = response.get("Messages", [])
            if messages and not batch:
                window_ends = time.monotonic() + self.source.batching_window_seconds
            batch.extend(messages)
            if not batch or len(batch) >= self.source.batch_size or time.monotonic() >= window_ends:
                break
        return batch

    def _process(self, messages: list[dict[str, Any]]) -> None:
        try:
            self._process_batch(messages)
        except Exception:
            log.exception("%s: batch handling failed", self.function)
        finally:
            self._finished()

    def _finished(self) -> None:
        with self._lock:
            self._in_flight -= 1
        self._slots.release()

    def _process_batch(self, messages: list[dict[str, Any]]) -> None:
        records = [sqs_record(m, queue_arn=self.source.queue_arn, region=self._region) for m in messages]
        ids = [record["messageId"] for record in records]
        try:
            invocation = self._invoke({"Records": records})
        except RuntimeStopped:
            return  # shutting down: the messages come back after their visibility timeout
        if not invocation.ok:
            failed = set(ids)
            reason = invocation.error.get("errorType", "error") if invocation.error else "error"
        elif self.source.report_batch_item_failures:
            failed = failed_message_ids(invocation.payload, ids)
            reason = "reported" if failed else ""
            if failed == set(ids) and len(ids) > 1:
                reason = "reported (whole batch)"
        else:
            failed, reason = set(), ""
        done = [m for m in messages if m["MessageId"] not in failed]
        self._delete(done)
        with self._lock:
            self.batches += 1
            self.deleted += len(done)
            self.failed += len(failed)
        log.info(
            "%s: batch of %d, %d deleted, %d left on the queue%s, %.0f ms",
            self.function,
            len(messages),
            len(done),
            len(failed),
            f" ({reason})" if failed else "",
            invocation.duration_ms,
        )

    def _delete(self, messages: Sequence[Mapping[str, Any]]) -> None:
        for start in range(0, len(messages), SQS_RECEIVE_LIMIT):
            entries: Any = [
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                for i, m in enumerate(messages[start : start + SQS_RECEIVE_LIMIT])
            ]
            try:
                response = self._sqs.delete_message_batch(QueueUrl=self.source.queue_url, Entries=entries)
            except (BotoCoreError, ClientError) as err:
                log.warning("%s: DeleteMessageBatch failed: %s", self.function, err)
                continue
            for failure in response.get("Failed", []):
                log.warning("%s: a message was not deleted: %s", self.function, failure.get("Code"))
