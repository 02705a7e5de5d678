"""Lambda (scheduled): read the Guodu account balance and publish it as ``AccountBalance``.

The ``balance-low`` alarm watches that metric, and treats a missing reading as low: a
balance that cannot be read is as alarming as one running out.
"""

from __future__ import annotations

from typing import Any

import requests
from aws_lambda_powertools.utilities.parameters import SecretsProvider
from aws_lambda_powertools.utilities.typing import LambdaContext

from smsgw.adapters.aws import client
from smsgw.adapters.secrets import ProviderCredentials
from smsgw.observability import MetricUnit, logger, metrics
from smsgw.provider.balance import BalanceError, balance_url, read_balance
from smsgw.settings import Settings

settings = Settings.from_env()
settings.require("provider_secret_name", "guodu_submit_url")
credentials = ProviderCredentials(
    SecretsProvider(boto3_client=client("secretsmanager", settings.aws_limits)),
    settings.provider_secret_name,
    max_age=settings.secret_max_age_seconds,
)
url = balance_url(settings.guodu_submit_url, settings.guodu_balance_url)
session = requests.Session()


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        balance = read_balance(session, url, credentials(), timeout=settings.provider_read_timeout)
    except BalanceError as err:
        logger.error("balance not read", extra={"reason": str(err)})
        metrics.add_metric(name="BalanceReadFailures", unit=MetricUnit.Count, value=1)
        raise
    metrics.add_metric(name="AccountBalance", unit=MetricUnit.Count, value=balance)
    logger.info("balance read", extra={"balance": balance})
    return {"balance": balance}
