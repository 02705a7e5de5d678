"""Lambda: the push receiver. ``POST /v1/guodu/push/{token}``, the URL registered with Guodu.

Status reports and MO messages arrive here. A wrong token or source address gets 403
with nothing stored; a packet is acknowledged (200, body configurable) only once it is
stored and announced; any failure before that is a 5xx so that the platform pushes again.
"""

from __future__ import annotations

import base64
import time
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from smsgw.adapters.aws import client
from smsgw.adapters.events import EventPublisher
from smsgw.adapters.inbound import InboundStore
from smsgw.adapters.optouts import OptOutStore
from smsgw.adapters.packets import RawPacketStore
from smsgw.adapters.secrets import PushTokens
from smsgw.adapters.table import MessageTable
from smsgw.api.errors import register_error_handlers
from smsgw.api.guard import SourceAllowList, TokenGuard
from smsgw.domain.errors import PayloadTooLarge
from smsgw.domain.optout import OptOutKeywords
from smsgw.observability import MetricUnit, logger, metrics
from smsgw.provider.push import PacketError
from smsgw.services.announce import SOURCE
from smsgw.services.push import PushService
from smsgw.settings import Settings

settings = Settings.from_env()
settings.require("push_token_secret_name", "event_bus_name")
dynamodb = client("dynamodb", settings.aws_limits)
token = TokenGuard(
    PushTokens(
        client("secretsmanager", settings.aws_limits),
        settings.push_token_secret_name,
        max_age=settings.secret_max_age_seconds,
    )
)
sources = SourceAllowList(settings.push_allowed_ips)
service = PushService(
    MessageTable(dynamodb, settings.messages_table, retention_days=settings.retention_days).links,
    RawPacketStore(dynamodb, settings.messages_table, raw_retention_days=settings.raw_packet_retention_days),
    InboundStore(dynamodb, settings.messages_table, retention_days=settings.retention_days),
    OptOutStore(dynamodb, settings.messages_table, retention_days=settings.retention_days),
    EventPublisher(client("events", settings.aws_limits), settings.event_bus_name, source=SOURCE),
    keywords=OptOutKeywords.parse(settings.opt_out_keywords),
)

app = APIGatewayRestResolver()
register_error_handlers(app)


def _body() -> bytes:
    event = app.current_event
    raw = event.body or ""
    if event.is_base64_encoded:
        try:
            body = base64.b64decode(raw, validate=True)
        except ValueError as err:  # binascii.Error: not base64 at all
            raise PacketError("the body is marked base64-encoded but is not base64") from err
    else:
        body = raw.encode("utf-8")
    if len(body) > settings.push_max_body_bytes:
        raise PayloadTooLarge(f"a push body holds at most {settings.push_max_body_bytes} bytes")
    return body


@app.post("/v1/guodu/push/<push_token>")
def push(push_token: str) -> Response[str]:
    started = time.perf_counter()
    source_ip = app.current_event.request_context.identity.source_ip
    sources.check(source_ip)
    token.check(push_token)
    outcome = service.handle(
        _body(),
        content_type=app.current_event.headers.get("Content-Type")
        or app.current_event.headers.get("content-type")
        or "",
        source_ip=source_ip or "",
    )
    metrics.add_metric(
        name=f"Push{outcome.kind.value.title()}Items", unit=MetricUnit.Count, value=outcome.items
    )
    metrics.add_metric(
        name="PushHandlingTime", unit=MetricUnit.Milliseconds, value=(time.perf_counter() - started) * 1000
    )
    return Response(200, "text/plain; charset=utf-8", settings.push_ack_body)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    response = app.resolve(event, context)
    if response["statusCode"] >= 500:
        # Answered 5xx (the platform will push again), so Lambda sees no error: count it.
        metrics.add_metric(name="PushFailures", unit=MetricUnit.Count, value=1)
    return response
