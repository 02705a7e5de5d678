"""The push receiver's object graph: the service behind ``smsgw.wiring.routes.push``."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver

from smsgw.adapters.aws import client
from smsgw.adapters.events import EventPublisher
from smsgw.adapters.inbound import InboundStore
from smsgw.adapters.optouts import OptOutStore
from smsgw.adapters.packets import RawPacketStore
from smsgw.adapters.secrets import PushTokens
from smsgw.adapters.table import MessageTable
from smsgw.api.guard import SourceAllowList, TokenGuard
from smsgw.domain.optout import OptOutKeywords
from smsgw.services.announce import SOURCE
from smsgw.services.push import PushService
from smsgw.settings import Settings
from smsgw.wiring.routes.push import register


@dataclass
class PushReceiver:
    settings: Settings
    dynamodb: Any
    events: EventPublisher
    token: TokenGuard
    sources: SourceAllowList
    service: PushService
    app: APIGatewayRestResolver  # the route (smsgw.wiring.routes.push) over the above


def build(
    settings: Settings,
    *,
    dynamodb: Any = None,
    events: Any = None,
    secretsmanager: Any = None,
    sleep: Callable[[float], None] = time.sleep,
) -> PushReceiver:
    """``sleep``: how the event publisher waits between its retries."""
    settings.require("push_token_secret_name", "event_bus_name")
    limits = settings.aws_limits
    dynamodb = dynamodb or client("dynamodb", limits)
    table, retention = settings.messages_table, settings.retention_days
    publisher = EventPublisher(
        events or client("events", limits), settings.event_bus_name, source=SOURCE, sleep=sleep
    )
    tokens = PushTokens(
        secretsmanager or client("secretsmanager", limits),
        settings.push_token_secret_name,
        max_age=settings.secret_max_age_seconds,
    )
    service = PushService(
        MessageTable(dynamodb, table, retention_days=retention).links,
        RawPacketStore(dynamodb, table, raw_retention_days=settings.raw_packet_retention_days),
        InboundStore(dynamodb, table, retention_days=retention),
        OptOutStore(dynamodb, table, retention_days=retention),
        publisher,
        keywords=OptOutKeywords.parse(settings.opt_out_keywords),
    )
    graph = PushReceiver(
        settings=settings,
        dynamodb=dynamodb,
        events=publisher,
        token=TokenGuard(tokens),
        sources=SourceAllowList(settings.push_allowed_ips),
        service=service,
        app=APIGatewayRestResolver(),
    )
    register(graph.app, graph)
    return graph
