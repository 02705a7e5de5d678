"""Lambda: the callback sender. Callback queue (the bus's request events) -> each request's
callback URL, signed (see ``smsgw.services.callbacks``).

Reports partial batch failures: an event whose delivery failed stays on the queue, hidden
for its retry delay; after the last try the queue dead-letters it (an alarm watches).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from smsgw.adapters.aws import client
from smsgw.adapters.callers import CallerStore
from smsgw.adapters.queue import SendQueue
from smsgw.adapters.table import MessageTable
from smsgw.adapters.webhook import WebhookPoster
from smsgw.observability import logger, metrics
from smsgw.services.callbacks import CallbackService, Retry
from smsgw.settings import Settings

settings = Settings.from_env()
settings.require("callback_queue_url")
dynamodb = client("dynamodb", settings.aws_limits)
queue = SendQueue(client("sqs", settings.aws_limits), settings.callback_queue_url)
service = CallbackService(
    MessageTable(dynamodb, settings.messages_table, retention_days=settings.retention_days),
    CallerStore(dynamodb, settings.messages_table),
    WebhookPoster(allow_loopback=settings.callback_allow_loopback),
    retry_base_seconds=settings.callback_retry_base_seconds,
)
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


class TryAgainLater(Exception):
    """Leaves the message on the queue (hidden for its retry delay)."""


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    def deliver(record: SQSRecord) -> None:
        outcome = service.deliver(record.body, receive_count=int(record.attributes.approximate_receive_count))
        if isinstance(outcome, Retry):
            try:
                queue.retry(record.receipt_handle, outcome.seconds)
            except Exception:
                logger.warning("could not set the retry delay: the queue's own applies", exc_info=True)
            raise TryAgainLater(outcome.reason)

    return process_partial_response(event=event, record_handler=deliver, processor=processor, context=context)
