"""Lambda: the push receiver. ``POST /v1/guodu/push/{token}``, the URL registered with Guodu.

The route is ``smsgw.wiring.routes.push``; the services behind it are built by
``smsgw.wiring.push_receiver``.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from smsgw.observability import MetricUnit, logger, metrics
from smsgw.settings import Settings
from smsgw.wiring.push_receiver import build

graph = build(Settings.from_env())


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    response = graph.app.resolve(event, context)
    if response["statusCode"] >= 500:
        # Answered 5xx (the platform will push again), so Lambda sees no error: count it.
        metrics.add_metric(name="PushFailures", unit=MetricUnit.Count, value=1)
    return response
