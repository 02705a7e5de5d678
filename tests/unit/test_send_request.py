"""From what a client POSTs to what the gateway will send: the request rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from smsgw.api.models import SendBody, to_command
from smsgw.domain.errors import InputError
from smsgw.domain.model import Category, SendCommand, plan_chunks
from smsgw.provider.guodu import format_send_time

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)  # 20:00 in Beijing


def command(body: dict[str, Any], **kwargs: Any) -> SendCommand:
    options: dict[str, Any] = {"now": NOW, "max_recipients": 100_000, **kwargs}
    return to_command(SendBody.model_validate(body), **options)


def problems(body: dict[str, Any], **kwargs: Any) -> dict[str, str]:
    with pytest.raises(InputError) as caught:
        command(body, **kwargs)
    return {p.field: p.message for p in caught.value.problems}


def test_one_content_to_many_normalised_and_deduplicated() -> None:
    # Given numbers in several spellings, a duplicate and junk
    cmd = command(
        {"to": ["13800138000", "+86 139-0013-9000", "0086 13800138000", "12345"], "content": "【示例】您好"}
    )
    # Then two recipients get one message of one segment, and the junk is reported
    assert [g.mobiles for g in cmd.groups] == [("13800138000", "13900139000")]
    assert (cmd.recipients, cmd.segments, cmd.total_segments) == (2, 1, 2)
    assert [(r.to, r.reason) for r in cmd.rejected] == [("12345", "invalid_mobile")]


def test_to_may_be_a_comma_separated_string() -> None:
    cmd = command({"to": "13800138000,13900139000", "content": "hi"})
    assert cmd.groups[0].mobiles == ("13800138000", "13900139000")


def test_personalised_messages_group_equal_contents() -> None:
    # Given three messages, two of them with the same text
    cmd = command(
        {
            "messages": [
                {"to": "13800138000", "content": "您好，张三"},
                {"to": "13900139000", "content": "通知"},
                {"to": "13700137000", "content": "通知"},
            ]
        }
    )
    # Then there are two contents, each with exactly its own numbers
    assert {g.content: g.mobiles for g in cmd.groups} == {
        "您好，张三": ("13800138000",),
        "通知": ("13900139000", "13700137000"),
    }


def test_send_at_with_a_zone_becomes_beijing_send_time() -> None:
    cmd = command({"to": ["13800138000"], "content": "x", "send_at": "2026-12-01T01:30:00Z"})
    assert format_send_time(cmd.send_time) == "20261201093000"
    cmd = command({"to": ["13800138000"], "content": "x", "send_at": "2026-12-01T09:30:00+08:00"})
    assert format_send_time(cmd.send_time) == "20261201093000"


def test_send_at_without_a_zone_is_beijing_time() -> None:
    cmd = command({"to": ["13800138000"], "content": "x", "send_at": "2026-12-01T09:30:00"})
    assert format_send_time(cmd.send_time) == "20261201093000"


def test_send_at_now_or_a_moment_ago_sends_at_once() -> None:
    for moment in (NOW, NOW - timedelta(minutes=2), NOW + timedelta(seconds=30)):
        assert (
            command({"to": ["13800138000"], "content": "x", "send_at": moment.isoformat()}).send_time is None
        )


def test_send_at_far_in_the_past_or_future_is_refused() -> None:
    assert "send_at" in problems(
        {"to": ["13800138000"], "content": "x", "send_at": "2026-01-01T00:00:00+08:00"}
    )
    assert "send_at" in problems(
        {"to": ["13800138000"], "content": "x", "send_at": "2027-06-01T00:00:00+08:00"}
    )


def test_extension_becomes_append_id_within_the_account_prefix() -> None:
    assert command({"to": ["13800138000"], "content": "x", "extension": "0001"}).append_id == "0001"
    found = problems(
        {"to": ["13800138000"], "content": "x", "extension": "1" * 13}, account_prefix="10690013"
    )
    assert "at most 12" in found["extension"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"to": ["13800138000"], "content": "   "}, "content"),
        ({"to": ["13800138000"], "content": "好" * 501}, "content"),
        ({"to": ["13800138000"], "content": b"\xff\xfe hi".decode("utf-8", "replace")}, "content"),
        ({"messages": [{"to": "13800138000", "content": "a\ufffd"}]}, "messages[0].content"),
        ({"to": ["13800138000"]}, "content"),
        ({"content": "hi"}, "to"),
        ({"to": ["12345", "abc"], "content": "hi"}, "to"),
        ({"messages": [{"to": "13800138000", "content": ""}]}, "messages[0].content"),
        ({"messages": [{"to": "13800138000", "content": "a"}], "to": ["13800138000"]}, "messages"),
    ],
)
def test_bad_requests_name_the_field(body: dict[str, Any], field: str) -> None:
    assert field in problems(body)


@pytest.mark.parametrize(
    "body",
    [
        {"to": [13800138000], "content": "hi"},  # numbers must be strings: no silent float rounding
        {"to": ["13800138000"], "content": "hi", "extension": "0a"},
        {"to": ["13800138000"], "content": "hi", "colour": "blue"},
        {"to": ["13800138000"], "content": "hi", "category": "spam"},
        {"to": ["13800138000"], "content": "hi", "reference": "r" * 129},
        {"to": ["13800138000"], "content": "hi", "send_at": "tomorrow"},
        {"messages": []},
    ],
)
def test_wrong_types_and_unknown_fields_fail_validation(body: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        SendBody.model_validate(body)


def test_too_many_recipients_is_refused_before_anything_is_stored() -> None:
    numbers = [f"138{i:08d}" for i in range(101)]
    assert "at most 100" in problems({"to": numbers, "content": "x"}, max_recipients=100)["to"]


def test_a_thousand_rejected_numbers_is_a_broken_client() -> None:
    found = problems({"to": ["13800138000"] + ["1"] * 1001, "content": "x"})
    assert "more than 1000" in found["to"]


def test_category_and_reference_are_kept() -> None:
    cmd = command({"to": ["13800138000"], "content": "x", "category": "marketing", "reference": "order-42"})
    assert (cmd.category, cmd.reference) == (Category.MARKETING, "order-42")


def test_a_thousand_recipients_make_five_chunks_with_no_number_twice() -> None:
    numbers = [f"138{i:08d}" for i in range(1000)]
    chunks = plan_chunks("r1", command({"to": numbers, "content": "x"}), 200)
    assert [len(c.mobiles) for c in chunks] == [200] * 5
    sent = [m for c in chunks for m in c.mobiles]
    assert sorted(sent) == sorted(numbers)
    assert [c.number for c in chunks] == [0, 1, 2, 3, 4]


def test_chunks_never_mix_contents() -> None:
    messages = [{"to": f"138{i:08d}", "content": "A" if i % 2 else "B"} for i in range(450)]
    chunks = plan_chunks("r1", command({"messages": messages}), 200)
    assert sorted(len(c.mobiles) for c in chunks) == [25, 25, 200, 200]
    for chunk in chunks:
        expected = {m["to"] for m in messages if m["content"] == chunk.content}
        assert set(chunk.mobiles) <= expected
