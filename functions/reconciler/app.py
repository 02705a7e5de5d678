"""Lambda: the reconciler, on a schedule. Finishes intakes that stopped half-way, releases
held scheduled sends, ends recipients whose report never came and completes requests
(see ``smsgw.services.reconcile``)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from smsgw.adapters.aws import client
from smsgw.adapters.events import EventPublisher
from smsgw.adapters.frequency import FrequencyStore
from smsgw.adapters.optouts import OptOutStore
from smsgw.adapters.queue import LaneQueues
from smsgw.adapters.table import MessageTable
from smsgw.domain.caps import FrequencyCaps
from smsgw.observability import logger, metrics
from smsgw.services.announce import SOURCE
from smsgw.services.reconcile import ReconcileService, Screen
from smsgw.services.send import IntakeFinisher
from smsgw.settings import Settings

settings = Settings.from_env()
settings.require("send_queue_url", "event_bus_name")
dynamodb = client("dynamodb", settings.aws_limits)
store = MessageTable(dynamodb, settings.messages_table, retention_days=settings.retention_days)
# Each chunk goes on the queue of its request's lane.
queue = LaneQueues.of_urls(
    client("sqs", settings.aws_limits), {c: lane.queue_url for c, lane in settings.lanes().items()}
)
service = ReconcileService(
    store,
    IntakeFinisher(store, queue),
    EventPublisher(client("events", settings.aws_limits), settings.event_bus_name, source=SOURCE),
    queue=queue,
    screen=Screen(
        OptOutStore(dynamodb, settings.messages_table, retention_days=settings.retention_days),
        FrequencyStore(dynamodb, settings.messages_table),
        FrequencyCaps.parse(
            verification=settings.frequency_caps_verification,
            transactional=settings.frequency_caps_transactional,
            marketing=settings.frequency_caps_marketing,
        ),
    ),
)
# Room left at the end of a run for the item under way.
END_MARGIN_SECONDS = 10


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, int]:
    budget = context.get_remaining_time_in_millis() / 1000 - END_MARGIN_SECONDS
    return vars(service.sweep(budget_seconds=budget))
