"""``POST /v1/guodu/push/{token}`` against anything the platform, or someone else, can send.

The contract: 200 once a packet is stored, 400 (malformed_packet), 403 (forbidden), 413
(too_many_items, payload_too_large); never a 5xx for a bad packet. A refused packet
stores nothing but its raw copy, which the receiver keeps on purpose for a caller with
the right token (what an authenticated platform sent, even unreadable); with a wrong
token not even that.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import event, given, settings

from tests.fuzz.conftest import PUSH_ANSWERS, Answer, FuzzedGateway, error_problems
from tests.fuzz.strategies import push_bodies, push_tokens
from tests.integration.conftest import PUSH_TOKEN

MAX_BODY_BYTES = 1_048_576  # the receiver's default PUSH_MAX_BODY_BYTES


def push_and_check(
    fuzzed: FuzzedGateway, body: bytes, content_type: str | None, token: str = PUSH_TOKEN
) -> tuple[Answer, list[str]]:
    answer, effects = fuzzed.push(body, token=token, content_type=content_type)
    problems = error_problems(answer, PUSH_ANSWERS)
    if token != PUSH_TOKEN:
        if answer.status != 403:
            problems.append(f"a wrong token got HTTP {answer.status}, not 403")
        problems += [f"stored for a wrong token: {change}" for change in effects.stored()[:5]]
    elif answer.status != 200:
        problems += [
            f"stored by a refused packet: {change}" for change in effects.stored(raw_allowed=True)[:5]
        ]
    return answer, problems


@settings(settings.get_profile("fuzz"), max_examples=250)
@given(body=push_bodies(), token=push_tokens)
def test_the_push_receiver_answers_only_what_the_contract_documents(
    fuzzed: FuzzedGateway, body: tuple[bytes, str | None], token: str
) -> None:
    """Given any packet (near-valid reports or MO, hostile JSON, GBK, form-encoded, raw
    bytes, up to 251 items) under the right or a wrong token,
    when it is pushed,
    then the answer is 200 or a documented 4xx with the contract's error body; a wrong
    token gets 403 with nothing stored at all; any other refusal stores only the raw copy."""
    data, content_type = body

    answer, problems = push_and_check(fuzzed, data, content_type, token)

    event(f"HTTP {answer.status} {answer.code}")
    assert not problems, f"HTTP {answer.status} for {data[:300]!r}:\n" + "\n".join(problems)


def _report(**fields: object) -> dict[str, object]:
    return {
        "msg": "发送成功",
        "mobile": "13800138000",
        "msgId": "1",
        "reportTime": "2026-11-24 12:00:00",
        "status": 0,
    } | fields


HOSTILE_PACKETS: dict[str, tuple[bytes, str | None, str]] = {
    # Boundaries and traps that must get a documented answer.
    "251 items": (json.dumps([_report()] * 251).encode(), "application/json", PUSH_TOKEN),
    "over 1 MB": (b"[" + b" " * MAX_BODY_BYTES + b"]", "application/json", PUSH_TOKEN),
    "a wrong token": (json.dumps([_report()]).encode(), "application/json", "not-the-token"),
    "GBK, not UTF-8": (
        '[{"SrcMobile":"13800138000","Content":"你好"}]'.encode("gbk"),
        "application/json",
        PUSH_TOKEN,
    ),
    "reports and MO mixed": (
        json.dumps([_report(), {"SrcMobile": "13800138000", "Content": "TD"}]).encode(),
        "application/json",
        PUSH_TOKEN,
    ),
    # Found by the fuzzer (see the report): answered 5xx, so the platform would push
    # the same packet again and again.
    "nested 100000 deep": (b"[" * 100_000 + b"]" * 100_000, "application/json", PUSH_TOKEN),
    "a report with half an emoji": (
        b'[{"msgId":"1","mobile":"13800138000","status":0,"msg":"\\ud83d","reportTime":"x"}]',
        "application/json",
        PUSH_TOKEN,
    ),
    "a 3000-digit msgId": (json.dumps([_report(msgId="9" * 3000)]).encode(), "application/json", PUSH_TOKEN),
    "a 500 KB report msg": (
        json.dumps([_report(msg="m" * 500_000)]).encode(),
        "application/json",
        PUSH_TOKEN,
    ),
    "a 500 KB MO content": (
        json.dumps([{"SrcMobile": "13800138000", "Content": "m" * 500_000}]).encode(),
        "application/json",
        PUSH_TOKEN,
    ),
    "a 2000-character MO RecvTime": (
        json.dumps([{"SrcMobile": "13800138000", "Content": "hi", "RecvTime": "9" * 2000}]).encode(),
        "application/json",
        PUSH_TOKEN,
    ),
}


@pytest.mark.parametrize("packet", HOSTILE_PACKETS.values(), ids=HOSTILE_PACKETS.keys())
def test_a_hostile_packet_gets_a_documented_answer(
    fuzzed: FuzzedGateway, packet: tuple[bytes, str | None, str]
) -> None:
    """Given a packet built to hit a boundary or a trap,
    when it is pushed,
    then the answer is a documented one, and a refusal stores nothing but the raw copy
    (and not even that for a wrong token)."""
    body, content_type, token = packet

    answer, problems = push_and_check(fuzzed, body, content_type, token)

    assert not problems, f"HTTP {answer.status}: {answer.body[:200]}\n" + "\n".join(problems)
