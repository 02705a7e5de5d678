"""Read the balance of every Guodu account the gateway uses and publish it as ``AccountBalance``.

One account for all lanes by default; a lane with an account of its own adds one. Each
account's balance is published with the dimension ``account``; ``AccountBalance`` without
it is the lowest of them, published only when every account was read. The ``balance-low``
alarm watches that one and treats a missing reading as low: a balance that cannot be read
is as alarming as one running out. The platform's addresses are tried in order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from smsgw.observability import MetricUnit, logger, metrics, single_metric
from smsgw.provider.balance import BalanceError, read_balance
from smsgw.provider.guodu import Credentials


@dataclass(frozen=True)
class BalanceAccount:
    name: str
    credentials: Callable[[], Credentials]
    urls: Sequence[str]  # its balance addresses, in order of preference


class BalanceService:
    def __init__(self, accounts: Sequence[BalanceAccount], session: Any, *, read_timeout: float) -> None:
        self._accounts = accounts
        self._session = session  # a requests.Session
        self._read_timeout = read_timeout

    def _read(self, account: BalanceAccount) -> int:
        """The balance from the first address that answers (a read is safe to repeat anywhere)."""
        failure = BalanceError("no address")
        for url in dict.fromkeys(account.urls):
            try:
                return read_balance(self._session, url, account.credentials(), timeout=self._read_timeout)
            except BalanceError as err:
                failure = err
        raise failure

    def check(self) -> dict[str, Any]:
        """Every account's balance, published; ``BalanceError`` when one could not be read."""
        balances: dict[str, int] = {}
        failed: list[str] = []  # "account: why"
        for account in self._accounts:
            name = account.name
            try:
                balances[name] = self._read(account)
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
