"""The reconciler's object graph (see ``smsgw.services.reconcile``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from smsgw.adapters.aws import client
from smsgw.adapters.events import EventPublisher
from smsgw.adapters.frequency import FrequencyStore
from smsgw.adapters.optouts import OptOutStore
from smsgw.adapters.queue import LaneQueues
from smsgw.adapters.table import MessageTable
from smsgw.domain.caps import FrequencyCaps
from smsgw.services.announce import SOURCE
from smsgw.services.reconcile import ReconcileService, Screen, Swept
from smsgw.services.send import IntakeFinisher
from smsgw.settings import Settings

# Room left at the end of a run for the item under way.
END_MARGIN_SECONDS = 10


@dataclass
class Reconciler:
    settings: Settings
    store: MessageTable
    queue: LaneQueues
    service: ReconcileService

    def sweep(self, remaining_ms: int) -> Swept:
        """One run, within the invocation's remaining time."""
        return self.service.sweep(budget_seconds=remaining_ms / 1000 - END_MARGIN_SECONDS)


def build(
    settings: Settings,
    *,
    dynamodb: Any = None,
    sqs: Any = None,
    events: Any = None,
    clock: Callable[[], float] = time.time,
) -> Reconciler:
    settings.require("send_queue_url", "event_bus_name")
    limits = settings.aws_limits
    dynamodb = dynamodb or client("dynamodb", limits)
    table, retention = settings.messages_table, settings.retention_days
    store = MessageTable(dynamodb, table, retention_days=retention)
    # Each chunk goes on the queue of its request's lane.
    queue = LaneQueues.of_urls(
        sqs or client("sqs", limits), {c: lane.queue_url for c, lane in settings.lanes().items()}
    )
    service = ReconcileService(
        store,
        IntakeFinisher(store, queue),
        EventPublisher(events or client("events", limits), settings.event_bus_name, source=SOURCE),
        queue=queue,
        screen=Screen(
            OptOutStore(dynamodb, table, retention_days=retention),
            FrequencyStore(dynamodb, table),
            FrequencyCaps.parse(
                verification=settings.frequency_caps_verification,
                transactional=settings.frequency_caps_transactional,
                marketing=settings.frequency_caps_marketing,
            ),
        ),
        clock=clock,
    )
    return Reconciler(settings, store, queue, service)
