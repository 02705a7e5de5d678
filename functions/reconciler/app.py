"""Lambda: the reconciler, on a schedule. Finishes intakes that stopped half-way, releases
held scheduled sends, ends recipients whose report never came and completes requests
(see ``smsgw.services.reconcile``; built by ``smsgw.wiring.reconciler``)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from smsgw.observability import logger, metrics
from smsgw.settings import Settings
from smsgw.wiring.reconciler import build

graph = build(Settings.from_env())


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, int]:
    return vars(graph.sweep(context.get_remaining_time_in_millis()))
