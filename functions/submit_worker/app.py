"""Lambda: the submit worker. The lanes' send queues -> Guodu ``submitJson``.

One function serves every lane: each lane's queue is an event source of its own (with its
own ``MaximumConcurrency``), and a record's queue says which lane's service handles it.
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
from smsgw.adapters.queue import LaneQueues, SendQueue
from smsgw.adapters.secrets import ProviderCredentials
from smsgw.adapters.table import MessageTable
from smsgw.adapters.throttle import LanePause, PausePolicy, RateLimit, SubmitRateLimiter, lookahead
from smsgw.domain.model import Category
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
sqs = client("sqs", limits)
secrets = SecretsProvider(boto3_client=client("secretsmanager", limits))
store = MessageTable(
    dynamodb,
    settings.messages_table,
    retention_days=settings.retention_days,
    report_timeout_seconds=settings.report_timeout_hours * 3600,
    claims=client("dynamodb", replace(limits, max_attempts=1)),
)
events = EventPublisher(client("events", limits), settings.event_bus_name, source=SOURCE)
pause_policy = PausePolicy(
    settings.lane_pause_failures,
    settings.lane_pause_window_seconds,
    settings.lane_pause_base_seconds,
    settings.lane_pause_max_seconds,
)
lanes = settings.lanes()
queues = {c: SendQueue(sqs, lane.queue_url, dead_letter_url=lane.dlq_url) for c, lane in lanes.items()}
lane_queues = LaneQueues(queues)
shares = dict(settings.lane_reserved_shares)

# One client, rate limit and pause per Guodu account; one service per lane.
services: dict[Category, SubmitService] = {}
for account in settings.accounts().values():
    guodu = GuoduClient(
        account.submit_urls,
        ProviderCredentials(secrets, account.secret_name, max_age=settings.secret_max_age_seconds),
        connect_timeout=settings.provider_connect_timeout,
        read_timeout=settings.provider_read_timeout,
    )
    pause = LanePause(dynamodb, settings.messages_table, pause_policy, lane=account.name)
    rate = RateLimit(
        account.max_submits_per_second,
        account.max_recipients_per_second,
        shares={lane: p for lane, p in shares.items() if Category(lane) in account.lanes},
        margin_seconds=settings.rate_margin_ms / 1000,
    )
    names = tuple(c.value for c in account.lanes)
    hints: dict[str, int] = {}  # what this container last saw of the account's timelines
    for category in account.lanes:
        limiter = SubmitRateLimiter(
            dynamodb,
            settings.messages_table,
            rate,
            account=account.name,
            lane=category.value,
            lookahead_seconds=lookahead(category.value, names, rate.max_wait_seconds),
            hints=hints,
        )
        services[category] = SubmitService(
            store,
            queues[category],
            guodu,
            events=events,
            lane=Lane(limiter, pause, QuietHours.parse(settings.quiet_hours), category=category),
            retry=RetryPolicy(
                settings.retry_base_seconds, settings.retry_max_seconds, settings.submit_max_attempts
            ),
            resend_ambiguous=settings.resend_ambiguous,
            lanes=lane_queues,
        )
# The event source's queue (its name, the last part of its ARN and of its URL) -> its lane.
# A lane without a queue of its own shares the transactional lane's: that queue is the
# transactional lane's.
by_queue = {lanes[Category.TRANSACTIONAL].queue_url.rstrip("/").rsplit("/", 1)[-1]: Category.TRANSACTIONAL}
for category, lane in lanes.items():
    by_queue.setdefault(lane.queue_url.rstrip("/").rsplit("/", 1)[-1], category)
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)

# A claim must outlive the invocation that took it: a crashed worker's claim then
# expires before SQS hands the message to another worker.
LEASE_MARGIN_SECONDS = 5
# After the platform's answer: time to record it (retried in place), else to queue it.
SETTLE_BUDGET_SECONDS = 10
# The latest start of a submit: every address may cost a connect timeout before the one
# that answers, and then the read timeout.
SUBMIT_BUDGET_SECONDS = (
    settings.provider_connect_timeout * max(len(a.submit_urls) for a in settings.accounts().values())
    + settings.provider_read_timeout
    + SETTLE_BUDGET_SECONDS
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
        lane = by_queue.get(record.event_source_arn.rsplit(":", 1)[-1], Category.TRANSACTIONAL)
        outcome = services[lane].handle(
            message, lease_seconds=lease, deadline=ends_at - SUBMIT_BUDGET_SECONDS, ends_at=ends_at
        )
        if isinstance(outcome, RetryAfter):
            raise KeepOnQueue(f"retry in {outcome.seconds} s")

    return process_partial_response(event=event, record_handler=submit, processor=processor, context=context)
