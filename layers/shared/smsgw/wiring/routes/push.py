"""The push receiver's route: ``POST /v1/guodu/push/{token}``, the URL registered with Guodu.

Status reports and MO messages arrive here. A wrong token or source address gets 403
with nothing stored; a packet is acknowledged (200, body configurable) only once it is
stored and announced; any failure before that is a 5xx so that the platform pushes again.
"""

from __future__ import annotations

import base64
import time
from typing import TYPE_CHECKING

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response

from smsgw.api.errors import register_error_handlers
from smsgw.domain.errors import PayloadTooLarge
from smsgw.observability import MetricUnit, metrics
from smsgw.provider.push import PacketError

if TYPE_CHECKING:
    from smsgw.wiring.push_receiver import PushReceiver


def register(app: APIGatewayRestResolver, graph: PushReceiver) -> None:
    """The push route on ``app``, over the service of ``graph``."""
    register_error_handlers(app, request_models=False)  # a packet is parsed by provider.push
    settings = graph.settings

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
        headers = app.current_event.headers
        source_ip = app.current_event.request_context.identity.source_ip
        graph.sources.check(source_ip)
        graph.token.check(push_token)
        outcome = graph.service.handle(
            _body(),
            content_type=headers.get("Content-Type") or headers.get("content-type") or "",
            source_ip=source_ip or "",
        )
        metrics.add_metric(
            name=f"Push{outcome.kind.value.title()}Items", unit=MetricUnit.Count, value=outcome.items
        )
        metrics.add_metric(
            name="PushHandlingTime",
            unit=MetricUnit.Milliseconds,
            value=(time.perf_counter() - started) * 1000,
        )
        return Response(200, "text/plain; charset=utf-8", settings.push_ack_body)
