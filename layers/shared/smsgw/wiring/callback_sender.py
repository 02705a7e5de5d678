"""The callback sender's object graph (see ``smsgw.services.callbacks``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from smsgw.adapters.aws import client
from smsgw.adapters.callers import CallerStore
from smsgw.adapters.queue import SendQueue
from smsgw.adapters.table import MessageTable
from smsgw.adapters.webhook import WebhookPoster
from smsgw.observability import logger
from smsgw.services.callbacks import CallbackService, Retry
from smsgw.settings import Settings


class TryAgainLater(Exception):
    """Leaves the message on the queue (hidden for its retry delay)."""


@dataclass
class CallbackSender:
    settings: Settings
    queue: SendQueue
    service: CallbackService

    def deliver(self, body: str, receipt_handle: str, receive_count: int) -> None:
        """One event to its callback URL; ``TryAgainLater`` leaves it on the queue."""
        outcome = self.service.deliver(body, receive_count=receive_count)
        if isinstance(outcome, Retry):
            try:
                self.queue.retry(receipt_handle, outcome.seconds)
            except Exception:
                logger.warning("could not set the retry delay: the queue's own applies", exc_info=True)
            raise TryAgainLater(outcome.reason)


def build(
    settings: Settings,
    *,
    dynamodb: Any = None,
    sqs: Any = None,
    clock: Callable[[], float] = time.time,
) -> CallbackSender:
    settings.require("callback_queue_url")
    limits = settings.aws_limits
    dynamodb = dynamodb or client("dynamodb", limits)
    service = CallbackService(
        MessageTable(dynamodb, settings.messages_table, retention_days=settings.retention_days),
        CallerStore(dynamodb, settings.messages_table),
        WebhookPoster(allow_loopback=settings.callback_allow_loopback),
        retry_base_seconds=settings.callback_retry_base_seconds,
        clock=clock,
    )
    return CallbackSender(
        settings, SendQueue(sqs or client("sqs", limits), settings.callback_queue_url), service
    )
