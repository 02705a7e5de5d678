"""Lambda (scheduled): read the balance of every Guodu account the gateway uses and publish
it as ``AccountBalance`` (see ``smsgw.services.balance``; built by ``smsgw.wiring.balance_check``).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from smsgw.observability import logger, metrics
from smsgw.settings import Settings
from smsgw.wiring.balance_check import build

graph = build(Settings.from_env())


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return graph.service.check()
