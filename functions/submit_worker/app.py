"""Lambda: the submit worker. The lanes' send queues -> Guodu ``submitJson``
(see ``smsgw.services.submit``; built by ``smsgw.wiring.submit_worker``).

One function serves every lane: each lane's queue is an event source of its own (with its
own ``MaximumConcurrency``), and a record's queue says which lane's service handles it.
Reports partial batch failures: a message that must be retried is left on the queue
(with a growing visibility timeout), the others are deleted.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from smsgw.observability import logger, metrics
from smsgw.settings import Settings
from smsgw.wiring.submit_worker import build

graph = build(Settings.from_env())
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    def submit(record: SQSRecord) -> None:
        graph.submit(
            record.body,
            record.receipt_handle,
            int(record.attributes.approximate_receive_count),
            queue_arn=record.event_source_arn,
            remaining_seconds=context.get_remaining_time_in_millis() / 1000,
        )

    return process_partial_response(event=event, record_handler=submit, processor=processor, context=context)
