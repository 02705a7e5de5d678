"""Per-number frequency caps: one-time codes at most 1 a minute, 5 an hour, 10 a day."""

from __future__ import annotations

import pytest

from smsgw.domain.caps import Cap, CapsError, parse_caps
from smsgw_local.provision import Provisioned
from tests.integration.conftest import Api, queued_messages, stopping_before_the_header


def code(to: list[str], n: int = 1) -> dict[str, object]:
    return {"to": to, "content": f"【示例】验证码 {n:06d}", "category": "verification"}


def test_a_second_code_within_a_minute_is_refused_with_a_reason(api: Api, stack: Provisioned) -> None:
    assert api.post(code(["13800138000"]))[0] == 202
    # When the same number asks for another code straight away
    status, reply = api.post(code(["13800138000"], 2))
    # Then it is refused: 429, naming the number and the cap
    assert status == 429
    assert reply["error"]["code"] == "frequency_capped"
    assert reply["error"]["details"] == [
        {"field": "to", "message": "at most 1 per 1m for this number", "value": "13800138000"}
    ]
    assert len(queued_messages(stack, "VerificationQueue")) == 1


def test_only_the_capped_numbers_of_a_request_are_refused(api: Api) -> None:
    api.post(code(["13800138000"]))
    status, reply = api.post(code(["13800138000", "13900139000"], 2))
    assert status == 202
    assert reply["recipients"] == 1
    assert reply["rejected"] == [
        {"to": "13800138000", "reason": "frequency_capped", "detail": "at most 1 per 1m"}
    ]


def test_capped_numbers_are_counted_when_the_rejected_list_is_full(api: Api) -> None:
    api.post(code(["13800138000"]))
    # When a request holds 1,000 junk numbers (the most listed) and a capped number
    junk = [f"12{i:05d}" for i in range(1_000)]
    status, reply = api.post(code(["13800138000", "13900139000", *junk], 2))
    # Then every rejection is counted, in the reply and in the status, though not all listed
    assert (status, reply["recipients"], len(reply["rejected"])) == (202, 1, 1_000)
    assert reply["rejected_count"] == 1_001
    assert api.get(reply["id"])[1]["counts"]["rejected"] == 1_001


def test_each_message_of_a_personalised_request_counts_against_the_cap(api: Api) -> None:
    # Given codes are capped at 1 a minute, When one request sends a number two codes
    two = {
        "category": "verification",
        "messages": [
            {"to": "13800138000", "content": "【示例】验证码 111111"},
            {"to": "+86 138-0013-8000", "content": "【示例】验证码 222222"},
            {"to": "13900139000", "content": "【示例】验证码 333333"},
        ],
    }
    status, reply = api.post(two)
    # Then that number gets neither (all of a number's messages or none), the other its one
    assert (status, reply["recipients"]) == (202, 1)
    assert reply["rejected"] == [
        {"to": "13800138000", "reason": "frequency_capped", "detail": "at most 1 per 1m"}
    ]
    # And a number whose one message was refused has used none of its cap
    assert api.post(code(["13800138000"]))[0] == 202


def test_transactional_and_marketing_are_not_capped_by_default(api: Api) -> None:
    for _ in range(3):
        assert api.post({"to": ["13800138000"], "content": "您的订单已发货"})[0] == 202


def test_an_idempotent_retry_does_not_spend_the_cap(api: Api) -> None:
    first = api.post(code(["13800138000"]), key="login-77")
    again = api.post(code(["13800138000"]), key="login-77")
    assert first == again
    assert first[0] == 202


def test_a_keyed_retry_after_a_call_that_failed_half_way_is_not_refused_by_it(
    api: Api, stack: Provisioned, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a first call that took the number's cap, then failed before storing the request
    stopping_before_the_header(api, monkeypatch)
    assert api.post(code(["13800138000"]), key="login-78")[0] >= 500
    # When the client retries with the same key, as the contract invites
    status, reply = api.post(code(["13800138000"]), key="login-78")
    # Then the code goes out once; the cap still holds against another request
    assert (status, reply["recipients"]) == (202, 1)
    assert len(queued_messages(stack, "VerificationQueue")) == 1
    assert api.post(code(["13800138000"], 2), key="login-79")[0] == 429
    assert api.post(code(["13800138000"], 3))[0] == 429


@pytest.mark.parametrize(
    ("setting", "caps"),
    [
        ("1/1m,5/1h,10/1d", (Cap(1, 60), Cap(5, 3600), Cap(10, 86400))),
        ("10/1d, 1/30s", (Cap(1, 30), Cap(10, 86400))),
        ("", ()),
    ],
)
def test_caps_are_read_from_their_setting(setting: str, caps: tuple[Cap, ...]) -> None:
    assert parse_caps(setting) == caps


@pytest.mark.parametrize("setting", ["1/7m", "0/1m", "x/1m", "5 per hour", "1/25h"])
def test_caps_that_do_not_divide_a_day_are_refused(setting: str) -> None:
    with pytest.raises(CapsError):
        parse_caps(setting)
