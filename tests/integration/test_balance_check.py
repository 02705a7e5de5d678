"""The scheduled balance check against the simulator's surplus interface."""

from __future__ import annotations

import json
from collections.abc import Callable
from types import ModuleType

import pytest

from guodu_simulator import Simulator
from smsgw.provider.balance import BalanceError, balance_url, parse_balance
from smsgw_local.provision import Provisioned
from tests.conftest import FakeContext
from tests.integration.conftest import make_stack


@pytest.fixture
def balance_check(aws: None, simulator: Simulator, load_handler: Callable[..., ModuleType]) -> ModuleType:
    stack: Provisioned = make_stack(simulator.submit_url)
    spec = stack.functions["BalanceCheckFunction"]
    return load_handler(spec.code_dir, spec.environment)


def test_the_balance_is_read_and_published_as_a_metric(
    balance_check: ModuleType, simulator: Simulator, capsys: pytest.CaptureFixture[str]
) -> None:
    expected = simulator.balance("acct")
    result = balance_check.handler({"source": "aws.events"}, FakeContext("smsgw-balance-check"))
    assert result == {"balance": expected, "accounts": {"guodu": expected}}
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    # once for the account, and once as the lowest of all accounts (what the alarm watches)
    assert sorted((m.get("account", "-"), m["AccountBalance"]) for m in emf if "AccountBalance" in m) == [
        ("-", [float(expected)]),
        ("guodu", [float(expected)]),
    ]


def test_a_refused_query_fails_loudly_without_the_password(
    balance_check: ModuleType, simulator: Simulator, capsys: pytest.CaptureFixture[str]
) -> None:
    simulator.configure({"accounts": {"acct": {"password": "another-password"}}})
    with pytest.raises(BalanceError, match="rcode -1"):
        balance_check.handler({}, FakeContext("smsgw-balance-check"))
    out = capsys.readouterr().out
    assert "BalanceReadFailures" in out
    assert "test-only-password" not in out


def test_the_balance_url_defaults_to_the_submit_host() -> None:
    assert (
        balance_url("http://qxtsms.guodulink.net:8000/HttpQuickProcess/submitJson")
        == "http://qxtsms.guodulink.net:8000/QxtSms_surplus/surplus"
    )
    assert balance_url("http://a/b", "https://other/x") == "https://other/x"


@pytest.mark.parametrize(
    ("body", "balance"),
    [('<?xml version="1.0" encoding="GBK"?><resRoot><rcode>12345</rcode></resRoot>'.encode("gbk"), 12345)],
)
def test_the_gbk_xml_answer_is_read(body: bytes, balance: int) -> None:
    assert parse_balance(body) == balance
    with pytest.raises(BalanceError):
        parse_balance(b"<resRoot></resRoot>")


def test_every_accounts_balance_is_read_and_the_alarm_sees_the_lowest(
    aws: None,
    simulator: Simulator,
    load_handler: Callable[..., ModuleType],
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given marketing on an account of its own with 500 messages left, behind a first
    # address that refuses connections
    simulator.configure({"accounts": {"mkt": {"password": "mkt-password", "balance": 500}}})
    stack = make_stack(
        simulator.submit_url,
        lane_accounts={"marketing": ("mkt", "mkt-password")},
        MarketingGuoduSubmitUrls=f"http://127.0.0.1:9/x,{simulator.submit_url}",
    )
    spec = stack.functions["BalanceCheckFunction"]
    handler = load_handler(spec.code_dir, spec.environment)
    # When the balance check runs
    result = handler.handler({}, FakeContext("smsgw-balance-check"))
    # Then it read both accounts, each through an address that answers
    assert result["accounts"] == {"guodu": simulator.balance("acct"), "marketing": 500}
    # And the alarm's metric is the lower of the two
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert [m["AccountBalance"] for m in emf if "AccountBalance" in m and "account" not in m] == [[500.0]]
