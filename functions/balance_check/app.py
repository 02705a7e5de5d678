"""Lambda (scheduled): read the balance of every Guodu account the gateway uses and publish
it as ``AccountBalance``.

One account for all lanes by default; a lane with an account of its own adds one. Each
account's balance is published with the dimension ``account``; ``AccountBalance`` without
it is the lowest of them, published only when every account was read. The ``balance-low``
alarm watches that one and treats a missing reading as low: a balance that cannot be read
is as alarming as one running out. The platform's addresses are tried in order.
"""

from __future__ import annotations

from typing import Any

import requests
from aws_lambda_powertools.utilities.parameters import SecretsProvider
from aws_lambda_powertools.utilities.typing import LambdaContext

from smsgw.adapters.aws import client
from smsgw.adapters.secrets import ProviderCredentials
from smsgw.observability import MetricUnit, logger, metrics, single_metric
from smsgw.provider.balance import BalanceError, balance_url, read_balance
from smsgw.settings import SHARED_ACCOUNT, Settings

settings = Settings.from_env()
settings.require("provider_secret_name", "guodu_submit_url")
secrets = SecretsProvider(boto3_client=client("secretsmanager", settings.aws_limits))
accounts = [
    (
        account.name,
        ProviderCredentials(secrets, account.secret_name, max_age=settings.secret_max_age_seconds),
        # GuoduBalanceUrl is the shared account's; an account of a lane's own uses its addresses.
        [
            balance_url(url, settings.guodu_balance_url if account.name == SHARED_ACCOUNT else "")
            for url in account.submit_urls
        ],
    )
    for account in settings.accounts().values()
]
session = requests.Session()


def _read(urls: list[str], credentials: ProviderCredentials) -> int:
    """The balance from the first address that answers (a read is safe to repeat anywhere)."""
    failure = BalanceError("no address")
    for url in dict.fromkeys(urls):
        try:
            return read_balance(session, url, credentials(), timeout=settings.provider_read_timeout)
        except BalanceError as err:
            failure = err
    raise failure


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    balances: dict[str, int] = {}
    failed: list[str] = []  # "account: why"
    for name, credentials, urls in accounts:
        try:
            balances[name] = _read(urls, credentials)
        except BalanceError as err:
            logger.error("balance not read", extra={"account": name, "reason": str(err)})
            metrics.add_metric(name="BalanceReadFailures", unit=MetricUnit.Count, value=1)
            failed.append(f"{name}: {err}")
            continue
        with single_metric(name="AccountBalance", unit=MetricUnit.Count, value=balances[name]) as metric:
            metric.add_dimension(name="account", value=name)
        logger.info("balance read", extra={"account": name, "balance": balances[name]})
    if failed:
        raise BalanceError(f"balance not read for {'; '.join(failed)}")
    lowest = min(balances.values())
    metrics.add_metric(name="AccountBalance", unit=MetricUnit.Count, value=lowest)
    return {"balance": lowest, "accounts": balances}
