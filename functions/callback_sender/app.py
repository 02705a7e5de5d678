"""Lambda: the callback sender. Callback queue (the bus's request events) -> each request's
callback URL, signed (see ``smsgw.services.callbacks``; built by ``smsgw.wiring.callback_sender``).

Reports partial batch failures: an event whose delivery failed stays on the queue, hidden
for its retry delay; after the last try the queue dead-letters it (an alarm watches).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from smsgw.observability import logger, metrics
from smsgw.settings import Settings
from smsgw.wiring.callback_sender import build

graph = build(Settings.from_env())
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def deliver(record: SQSRecord) -> None:
    graph.deliver(record.body, record.receipt_handle, int(record.attributes.approximate_receive_count))


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=deliver, processor=processor, context=context)
