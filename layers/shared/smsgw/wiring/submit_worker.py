"""The submit worker's object graph: one Guodu client, rate limit and pause per account,
one ``SubmitService`` per lane (see ``smsgw.services.submit``)."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any

from aws_lambda_powertools.utilities.parameters import SecretsProvider

from smsgw.adapters.aws import client
from smsgw.adapters.events import EventPublisher
from smsgw.adapters.queue import LaneQueues, SendQueue
from smsgw.adapters.secrets import ProviderCredentials
from smsgw.adapters.table import MessageTable
from smsgw.adapters.throttle import LanePause, PausePolicy, RateLimit, SubmitRateLimiter, lookahead
from smsgw.domain.model import Category
from smsgw.domain.quiet import QuietHours
from smsgw.provider.client import GuoduClient
from smsgw.services.announce import SOURCE
from smsgw.services.submit import Lane, QueueMessage, RetryAfter, RetryPolicy, SubmitService
from smsgw.settings import Settings

# A claim must outlive the invocation that took it: a crashed worker's claim then
# expires before SQS hands the message to another worker.
LEASE_MARGIN_SECONDS = 5
# After the platform's answer: time to record it (retried in place), else to queue it.
SETTLE_BUDGET_SECONDS = 10


class KeepOnQueue(Exception):
    """Tells the batch processor to leave the message on the queue (SQS hands it out again)."""


@dataclass
class SubmitWorker:
    settings: Settings
    dynamodb: Any
    store: MessageTable
    limiters: dict[Category, SubmitRateLimiter]
    services: dict[Category, SubmitService]  # one per lane
    by_queue: dict[str, Category]  # an event source's queue name -> its lane
    submit_budget_seconds: float  # the latest start of a submit before the invocation ends

    def submit(
        self, body: str, receipt_handle: str, receive_count: int, *, queue_arn: str, remaining_seconds: float
    ) -> None:
        """One message of a lane's queue; ``KeepOnQueue`` when it must be retried."""
        ends_at = time.time() + remaining_seconds
        lane = self.by_queue.get(queue_arn.rsplit(":", 1)[-1], Category.TRANSACTIONAL)
        outcome = self.services[lane].handle(
            QueueMessage(body, receipt_handle, receive_count),
            lease_seconds=int(remaining_seconds) + LEASE_MARGIN_SECONDS,
            deadline=ends_at - self.submit_budget_seconds,
            ends_at=ends_at,
        )
        if isinstance(outcome, RetryAfter):
            raise KeepOnQueue(f"retry in {outcome.seconds} s")


def build(
    settings: Settings,
    *,
    dynamodb: Any = None,
    claims: Any = None,
    sqs: Any = None,
    events: Any = None,
    secretsmanager: Any = None,
) -> SubmitWorker:
    """``claims``: the DynamoDB client of the chunk claims (one attempt: no retries)."""
    settings.require(
        "send_queue_url", "send_dlq_url", "provider_secret_name", "guodu_submit_url", "event_bus_name"
    )
    limits = settings.aws_limits
    dynamodb = dynamodb or client("dynamodb", limits)
    sqs = sqs or client("sqs", limits)
    table = settings.messages_table
    secrets = SecretsProvider(boto3_client=secretsmanager or client("secretsmanager", limits))
    store = MessageTable(
        dynamodb,
        table,
        retention_days=settings.retention_days,
        report_timeout_seconds=settings.report_timeout_hours * 3600,
        claims=claims or client("dynamodb", replace(limits, max_attempts=1)),
    )
    publisher = EventPublisher(events or client("events", limits), settings.event_bus_name, source=SOURCE)
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
    limiters: dict[Category, SubmitRateLimiter] = {}
    services: dict[Category, SubmitService] = {}
    for account in settings.accounts().values():
        guodu = GuoduClient(
            account.submit_urls,
            ProviderCredentials(secrets, account.secret_name, max_age=settings.secret_max_age_seconds),
            connect_timeout=settings.provider_connect_timeout,
            read_timeout=settings.provider_read_timeout,
        )
        pause = LanePause(dynamodb, table, pause_policy, lane=account.name)
        rate = RateLimit(
            account.max_submits_per_second,
            account.max_recipients_per_second,
            shares={lane: p for lane, p in shares.items() if Category(lane) in account.lanes},
            margin_seconds=settings.rate_margin_ms / 1000,
        )
        names = tuple(c.value for c in account.lanes)
        hints: dict[str, int] = {}  # what this container last saw of the account's timelines
        for category in account.lanes:
            limiters[category] = SubmitRateLimiter(
                dynamodb,
                table,
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
                events=publisher,
                lane=Lane(
                    limiters[category], pause, QuietHours.parse(settings.quiet_hours), category=category
                ),
                retry=RetryPolicy(
                    settings.retry_base_seconds, settings.retry_max_seconds, settings.submit_max_attempts
                ),
                resend_ambiguous=settings.resend_ambiguous,
                lanes=lane_queues,
            )
    # The event source's queue (its name, the last part of its ARN and of its URL) -> its lane.
    # A lane without a queue of its own shares the transactional lane's: that queue is the
    # transactional lane's.
    by_queue = {
        lanes[Category.TRANSACTIONAL].queue_url.rstrip("/").rsplit("/", 1)[-1]: Category.TRANSACTIONAL
    }
    for category, lane in lanes.items():
        by_queue.setdefault(lane.queue_url.rstrip("/").rsplit("/", 1)[-1], category)
    # Every address may cost a connect timeout before the one that answers, then the read timeout.
    submit_budget = (
        settings.provider_connect_timeout * max(len(a.submit_urls) for a in settings.accounts().values())
        + settings.provider_read_timeout
        + SETTLE_BUDGET_SECONDS
    )
    return SubmitWorker(settings, dynamodb, store, limiters, services, by_queue, submit_budget)
