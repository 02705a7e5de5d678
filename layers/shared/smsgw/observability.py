"""The one place for logging and metrics.

Powertools Logger writes JSON with the request id as correlation id; Metrics writes
CloudWatch EMF. Every log line passes through a formatter that masks anything that looks
like a mainland mobile number, so a number that slips into a message or a traceback is
still masked. Never log whole events: they hold numbers and, for pushes, the token.
"""

from __future__ import annotations

import warnings

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter
from aws_lambda_powertools.logging.types import LogRecord
from aws_lambda_powertools.metrics import MetricUnit

from smsgw.domain.numbers import mask_mobiles_in_text

__all__ = ["MetricUnit", "logger", "metrics"]


class MaskingFormatter(LambdaPowertoolsFormatter):
    def serialize(self, log: LogRecord) -> str:
        return mask_mobiles_in_text(super().serialize(log))


# A status read publishes no metric, which is fine: keep Powertools from warning each time.
warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)

logger = Logger(logger_formatter=MaskingFormatter())
metrics = Metrics()
