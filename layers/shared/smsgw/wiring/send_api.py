"""The send API's object graph: the services behind ``smsgw.wiring.routes.messages``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.utilities.parameters import SecretsProvider

from smsgw.adapters.aws import LazyClient, client
from smsgw.adapters.callers import CallerStore
from smsgw.adapters.events import EventPublisher
from smsgw.adapters.frequency import FrequencyStore
from smsgw.adapters.optouts import OptOutStore
from smsgw.adapters.queue import LaneQueues
from smsgw.adapters.search import SearchStore
from smsgw.adapters.secrets import RequestIdKey
from smsgw.adapters.table import MessageTable
from smsgw.domain.callers import RequestIds
from smsgw.domain.caps import FrequencyCaps
from smsgw.services.announce import SOURCE
from smsgw.services.cancel import CancelService
from smsgw.services.optouts import OptOutService
from smsgw.services.search import SearchService
from smsgw.services.send import SendService
from smsgw.services.status import StatusService
from smsgw.settings import Settings
from smsgw.wiring.routes.messages import register


@dataclass
class SendApi:
    settings: Settings
    dynamodb: Any
    sqs: Any
    store: MessageTable
    queue: LaneQueues
    request_ids: RequestIds
    caps: FrequencyCaps
    sender: SendService
    statuses: StatusService
    opt_outs: OptOutService
    finder: SearchService
    cancels: CancelService
    callers: CallerStore
    app: APIGatewayRestResolver  # the route table (smsgw.wiring.routes.messages) over the above


def build(
    settings: Settings,
    *,
    dynamodb: Any = None,
    sqs: Any = None,
    events: Any = None,
    secretsmanager: Any = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> SendApi:
    settings.require("send_queue_url", "request_id_secret_name", "event_bus_name")
    limits = settings.aws_limits
    dynamodb = dynamodb or client("dynamodb", limits)
    sqs = sqs or client("sqs", limits)
    table = settings.messages_table
    # The secret (and its client) only when a request with an Idempotency-Key first needs it.
    request_ids = RequestIds(
        RequestIdKey(
            lambda: SecretsProvider(boto3_client=secretsmanager or client("secretsmanager", limits)),
            settings.request_id_secret_name,
        )
    )
    store = MessageTable(
        dynamodb,
        table,
        retention_days=settings.retention_days,
        accepting_grace_seconds=settings.intake_grace_seconds,
    )
    queue = LaneQueues.of_urls(sqs, {c: lane.queue_url for c, lane in settings.lanes().items()})
    opt_out_list = OptOutStore(dynamodb, table, retention_days=settings.retention_days)
    search = SearchStore(dynamodb, table)
    caps = FrequencyCaps.parse(
        verification=settings.frequency_caps_verification,
        transactional=settings.frequency_caps_transactional,
        marketing=settings.frequency_caps_marketing,
    )
    sender = SendService(
        store,
        queue,
        opt_out_list,
        FrequencyStore(dynamodb, table),
        caps=caps,
        per_submit=settings.numbers_per_submit,
        default_validity_seconds=settings.default_validity_seconds,
        search=search,
        hold_after_seconds=settings.scheduled_hold_seconds,
        release_lead_seconds=settings.scheduled_release_lead_seconds,
        clock=clock,
    )
    # Only a cancel (DELETE) announces anything: its client is made when one first does.
    events_client: Any = events or LazyClient("events", limits)
    cancels = CancelService(store, EventPublisher(events_client, settings.event_bus_name, source=SOURCE))
    graph = SendApi(
        settings=settings,
        dynamodb=dynamodb,
        sqs=sqs,
        store=store,
        queue=queue,
        request_ids=request_ids,
        caps=caps,
        sender=sender,
        statuses=StatusService(store),
        opt_outs=OptOutService(opt_out_list),
        finder=SearchService(store, search),
        cancels=cancels,
        callers=CallerStore(dynamodb, table),
        app=APIGatewayRestResolver(),
    )
    register(graph.app, graph)
    return graph
