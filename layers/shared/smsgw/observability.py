"""The one place for logging and metrics.

Powertools Logger writes JSON with the request id as correlation id; Metrics writes
CloudWatch EMF. Every log line passes through a formatter that masks every mainland mobile
number in every form the gateway accepts (``domain.numbers.mask_mobiles_in_text``), so a
number that slips into a message or a traceback is still masked. It masks each value
before the line is serialised (JSON would turn a newline between digits into ``\n``) and
the serialised line once more. Never log whole events: they hold numbers and, for
pushes, the token.
"""

from __future__ import annotations

import warnings
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter
from aws_lambda_powertools.logging.types import LogRecord
from aws_lambda_powertools.metrics import MetricUnit, single_metric

from smsgw.domain.numbers import mask_mobiles_in_text

__all__ = ["MetricUnit", "logger", "metrics", "single_metric"]


def _masked(value: Any) -> Any:
    if isinstance(value, str):
        return mask_mobiles_in_text(value)
    if isinstance(value, dict):
        return {_masked(key): _masked(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_masked(item) for item in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    return mask_mobiles_in_text(str(value))  # what the JSON serialiser would write: str(value)


class MaskingFormatter(LambdaPowertoolsFormatter):
    def serialize(self, log: LogRecord) -> str:
        return mask_mobiles_in_text(super().serialize(_masked(log)))


# A status read publishes no metric, which is fine: keep Powertools from warning each time.
warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)

logger = Logger(logger_formatter=MaskingFormatter())
metrics = Metrics()
