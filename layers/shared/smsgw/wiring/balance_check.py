"""The balance check's object graph (see ``smsgw.services.balance``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import requests
from aws_lambda_powertools.utilities.parameters import SecretsProvider

from smsgw.adapters.aws import client
from smsgw.adapters.secrets import ProviderCredentials
from smsgw.provider.balance import balance_url
from smsgw.services.balance import BalanceAccount, BalanceService
from smsgw.settings import SHARED_ACCOUNT, Settings


@dataclass
class BalanceCheck:
    settings: Settings
    service: BalanceService


def build(settings: Settings, *, secretsmanager: Any = None, session: Any = None) -> BalanceCheck:
    """``session``: the provider's HTTP session (a ``requests.Session``)."""
    settings.require("provider_secret_name", "guodu_submit_url")
    secrets = SecretsProvider(boto3_client=secretsmanager or client("secretsmanager", settings.aws_limits))
    accounts = [
        BalanceAccount(
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
    service = BalanceService(
        accounts, session or requests.Session(), read_timeout=settings.provider_read_timeout
    )
    return BalanceCheck(settings, service)
