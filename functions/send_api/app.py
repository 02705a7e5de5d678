"""Lambda: the gateway's authenticated API (``/v1/messages``, ``/v1/inbound``, ``/v1/callback``,
``/v1/opt-outs``). The route table is ``smsgw.wiring.routes.messages``; the services behind it
are built by ``smsgw.wiring.send_api``."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from smsgw.observability import logger, metrics
from smsgw.settings import Settings
from smsgw.wiring.send_api import build

graph = build(Settings.from_env())


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return graph.app.resolve(event, context)
