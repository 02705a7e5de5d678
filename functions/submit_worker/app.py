"""Lambda: the submit worker. SQS send queue -> Guodu ``submitJson``.

Reports partial batch failures: a message that must be retried is left on the queue
(with a growing visibility timeout), the others are deleted.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.parameters import SecretsProvider
from aws_lambda_powertools.utilities.typing import LambdaContext

from smsgw.adapters.aws import client
from smsgw.adapters.events import EventPublisher
from smsgw.adapters.queue import SendQueue
from smsgw.adapters.reports import ReportStore
from smsgw.adapters.secrets import ProviderCredentials
from smsgw.adapters.store import MessageStore
from smsgw.adapters.throttle import LanePause, PausePolicy, RateLimit, SubmitRateLimiter
from smsgw.domain.quiet import QuietHours
from smsgw.observability import logger, metrics
from smsgw.provider.client import GuoduClient
from smsgw.services.announce import SOURCE
from smsgw.services.submit import Lane, QueueMessage, RetryAfter, RetryPolicy, SubmitService
from smsgw.settings import Settings

settings = Settings.from_env()
settings.require(
    "send_queue_url", "send_dlq_url", "provider_secret_name", "guodu_submit_url", "event_bus_name"
)
limits = settings.aws_limits
dynamodb = client("dynamodb", limits)
credentials = ProviderCredentials(
    SecretsProvider(boto3_client=client("secretsmanager", limits)),
    settings.provider_secret_name,
    max_age=settings.secret_max_age_seconds,
)
service = SubmitService(
    MessageStore(
        dynamodb,
        settings.messages_table,
        retention_days=settings.retention_days,
        report_timeout_seconds=settings.report_timeout_hours * 3600,
        claims=client("dynamodb", replace(limits, max_attempts=1)),
    ),
    SendQueue(client("sqs", limits), settings.send_queue_url, dead_letter_url=settings.send_dlq_url),
    GuoduClient(
        settings.guodu_submit_url,
        credentials,
        connect_timeout=settings.provider_connect_timeout,
        read_timeout=settings.provider_read_timeout,
    ),
    reports=ReportStore(dynamodb, settings.messages_table, retention_days=settings.retention_days),
    events=EventPublisher(client("events", limits), settings.event_bus_name, source=SOURCE),
    lane=Lane(
        SubmitRateLimiter(
            dynamodb,
            settings.messages_table,
            RateLimit(settings.max_submits_per_second, settings.max_recipients_per_second),
        ),
        LanePause(
            dynamodb,
            settings.messages_table,
            PausePolicy(
                settings.lane_pause_failures,
                settings.lane_pause_window_seconds,
                settings.lane_pause_base_seconds,
                settings.lane_pause_max_seconds,
            ),
        ),
        QuietHours.parse(settings.quiet_hours),
    ),
    retry=RetryPolicy(settings.retry_base_seconds, settings.retry_max_seconds, settings.submit_max_attempts),
    resend_ambiguous=settings.resend_ambiguous,
)
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)

# A claim must outlive the invocation that took it: a crashed worker's claim then
# expires before SQS hands the message to another worker.
LEASE_MARGIN_SECONDS = 5
# After the platform's answer: time to record it (retried in place), else to queue it.
SETTLE_BUDGET_SECONDS = 10
SUBMIT_BUDGET_SECONDS = (
    settings.provider_connect_timeout + settings.provider_read_timeout + SETTLE_BUDGET_SECONDS
)


class KeepOnQueue(Exception):
    """Tells the batch processor to leave the message on the queue (SQS hands it out again)."""


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    def submit(record: SQSRecord) -> None:
        remaining = context.get_remaining_time_in_millis() / 1000
        lease = int(remaining) + LEASE_MARGIN_SECONDS
        ends_at = time.time() + remaining
        message = QueueMessage(
            record.body, record.receipt_handle, int(record.attributes.approximate_receive_count)
        )
        outcome = service.handle(
            message, lease_seconds=lease, deadline=ends_at - SUBMIT_BUDGET_SECONDS, ends_at=ends_at
        )
        if isinstance(outcome, RetryAfter):
            raise KeepOnQueue(f"retry in {outcome.seconds} s")

    return process_partial_response(event=event, record_handler=submit, processor=processor, context=context)
