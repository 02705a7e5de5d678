"""Intake's decision table, through in-memory adapters: which numbers are stored and
queued, what the client is told, and what a repeated call does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from smsgw.api.models import SendBody, to_command
from smsgw.domain.caps import FREQUENCY_CAPPED, FrequencyCaps
from smsgw.domain.errors import FrequencyCapped, IdempotencyConflict
from smsgw.domain.model import Category, ChunkState, RequestStatus, SendCommand
from smsgw.services.send import SendService, fingerprint
from tests.unit.fakes import Clock, FakeFrequency, FakeOptOuts, FakeQueue, FakeTable, as_any

NOW = datetime(2026, 11, 24, 7, 0, tzinfo=UTC)  # 15:00 in Beijing
ALICE, BOB, CAROL = "13800138000", "13900139000", "13700137000"
CODE = "【示例】验证码 {}"


def code(text: str, *to: str) -> dict[str, Any]:
    """A verification code to ``to``."""
    return {"to": list(to), "content": CODE.format(text), "category": "verification"}


class Intake:
    """The send service over in-memory adapters."""

    def __init__(
        self,
        *,
        opted_out: set[str] | None = None,
        verification_caps: str = "",
        per_submit: int = 200,
        hold_after_seconds: int = 0,
    ) -> None:
        self.table = FakeTable(Clock(NOW.timestamp()))
        self.queue = FakeQueue()
        self.frequency = FakeFrequency()
        self.service = SendService(
            as_any(self.table),
            as_any(self.queue),
            as_any(FakeOptOuts(opted_out or set())),
            as_any(self.frequency),
            caps=FrequencyCaps.parse(verification=verification_caps, transactional="", marketing=""),
            per_submit=per_submit,
            hold_after_seconds=hold_after_seconds,
            release_lead_seconds=300,
            clock=lambda: NOW,
        )

    def send(self, body: dict[str, Any], *, request_id: str = "req-1", keyed: bool = False) -> dict[str, Any]:
        command = to_command(SendBody.model_validate(body), now=NOW, max_recipients=100_000)
        return self.service.accept(
            command, request_id=request_id, body_fingerprint=fingerprint(body), keyed=keyed
        )

    def chunks(self, request_id: str = "req-1") -> list[tuple[str, ...]]:
        return [c.mobiles for c in self.table.chunks.list_chunks(request_id)]

    def queued(self) -> list[tuple[str, int]]:
        return [(m.ref.request_id, m.ref.number) for m in self.queue.enqueued]

    def status(self, request_id: str = "req-1") -> RequestStatus:
        record = self.table.requests.get_request(request_id)
        assert record is not None
        return record.status


def test_numbers_that_are_not_chinese_mobiles_are_rejected_and_the_rest_sent() -> None:
    # Given a request to one good number and one that is not a mobile
    intake = Intake()
    # When it is accepted
    reply = intake.send({"to": [ALICE, "123"], "content": "【示例】您好"})
    # Then the client hears which number was rejected and why
    assert (reply["recipients"], reply["rejected"]) == (1, [{"to": "123", "reason": "invalid_mobile"}])
    # And only the good number is stored and queued
    assert intake.chunks() == [(ALICE,)]
    assert intake.queued() == [("req-1", 0)]
    assert intake.status() is RequestStatus.ACCEPTED


def test_marketing_skips_opted_out_numbers_and_says_so() -> None:
    # Given Bob on the opt-out list
    intake = Intake(opted_out={BOB})
    # When marketing goes to Alice and Bob
    reply = intake.send({"to": [ALICE, BOB], "content": "【示例】促销 退订回T", "category": "marketing"})
    # Then only Alice is sent to, and the reply names Bob as opted out
    assert intake.chunks() == [(ALICE,)]
    assert (reply["opted_out"], reply["opted_out_count"]) == ([BOB], 1)


def test_a_notice_still_reaches_an_opted_out_number() -> None:
    # Given Bob on the opt-out list (he opted out of marketing)
    intake = Intake(opted_out={BOB})
    # When a transactional notice goes to him
    reply = intake.send({"to": [BOB], "content": "【示例】您的订单已发货"})
    # Then it is sent
    assert intake.chunks() == [(BOB,)]
    assert "opted_out" not in reply


def test_marketing_to_opted_out_numbers_only_is_accepted_with_nothing_to_send() -> None:
    # Given every number of a marketing request on the opt-out list
    intake = Intake(opted_out={ALICE})
    # When it is accepted
    reply = intake.send({"to": [ALICE], "content": "【示例】促销", "category": "marketing"})
    # Then nothing is queued and the request is already submitted (it completes at once)
    assert (reply["recipients"], reply["opted_out"]) == (0, [ALICE])
    assert intake.queued() == []
    assert intake.status() is RequestStatus.SUBMITTED


def test_a_number_over_its_frequency_cap_is_refused_the_others_sent() -> None:
    # Given one verification code a minute per number, and Alice sent one already
    intake = Intake(verification_caps="1/1m")
    intake.send(
        {"to": [ALICE], "content": "【示例】验证码 1234", "category": "verification"}, request_id="first"
    )
    # When codes go to Alice and Bob
    reply = intake.send(
        {"to": [ALICE, BOB], "content": "【示例】验证码 5678", "category": "verification"},
        request_id="second",
    )
    # Then Alice is refused with the cap, and only Bob is sent to
    assert [(r["to"], r["reason"]) for r in reply["rejected"]] == [(ALICE, FREQUENCY_CAPPED)]
    assert intake.chunks("second") == [(BOB,)]


def test_a_request_whose_every_number_is_over_its_cap_is_refused_whole() -> None:
    # Given Alice at her cap
    intake = Intake(verification_caps="1/1m")
    intake.send(
        {"to": [ALICE], "content": "【示例】验证码 1234", "category": "verification"}, request_id="first"
    )
    # When another code goes to her alone
    with pytest.raises(FrequencyCapped):
        intake.send(
            {"to": [ALICE], "content": "【示例】验证码 5678", "category": "verification"}, request_id="second"
        )
    # Then nothing of it is stored or queued
    assert intake.chunks("second") == []
    assert intake.queued() == [("first", 0)]


def test_a_keyed_replay_returns_the_first_reply_and_sends_nothing_more() -> None:
    # Given a keyed request accepted once
    intake = Intake(verification_caps="1/1m")
    body = {"to": [ALICE], "content": "【示例】验证码 1234", "category": "verification"}
    first = intake.send(body, keyed=True)
    # When the client sends it again with the same key and body
    again = intake.send(body, keyed=True)
    # Then it gets the same reply, nothing more is queued, and the cap is not spent twice
    assert again == first
    assert intake.queued() == [("req-1", 0)]
    assert "rejected" not in again or again["rejected"] == []


def test_a_key_reused_with_another_body_is_a_conflict() -> None:
    # Given a keyed request accepted once
    intake = Intake()
    intake.send({"to": [ALICE], "content": "【示例】一"}, keyed=True)
    # When the same key comes with another body
    with pytest.raises(IdempotencyConflict):
        intake.send({"to": [BOB], "content": "【示例】二"}, keyed=True)
    # Then nothing of the second body is stored or sent
    assert intake.chunks() == [(ALICE,)]
    assert intake.queued() == [("req-1", 0)]


def test_a_large_request_is_split_into_chunks_of_one_submit_each() -> None:
    # Given 450 numbers and 200 numbers per submit
    intake = Intake(per_submit=200)
    numbers = [f"138{i:08d}" for i in range(450)]
    # When they are accepted
    reply = intake.send({"to": numbers, "content": "【示例】通知"})
    # Then three chunks hold 200, 200 and 50 of them, every number once, all queued
    chunks = intake.chunks()
    assert [len(c) for c in chunks] == [200, 200, 50]
    assert [m for c in chunks for m in c] == numbers
    assert intake.queued() == [("req-1", 0), ("req-1", 1), ("req-1", 2)]
    assert reply["recipients"] == 450


def test_personalised_messages_go_in_one_chunk_per_content() -> None:
    # Given two contents, one to two numbers
    intake = Intake()
    # When they are accepted
    intake.send(
        {
            "messages": [
                {"to": ALICE, "content": "【示例】张三您好"},
                {"to": BOB, "content": "【示例】通知"},
                {"to": CAROL, "content": "【示例】通知"},
            ]
        }
    )
    # Then each content is one submit with exactly its own numbers
    contents = {c.content: c.mobiles for c in intake.table.chunks.list_chunks("req-1")}
    assert contents == {"【示例】张三您好": (ALICE,), "【示例】通知": (BOB, CAROL)}


def test_a_send_scheduled_far_ahead_is_held_by_the_gateway_not_queued() -> None:
    # Given sends more than an hour ahead held by the gateway
    intake = Intake(hold_after_seconds=3_600)
    send_at = NOW + timedelta(days=2)
    # When one is accepted
    intake.send({"to": [ALICE], "content": "【示例】提醒", "send_at": send_at.isoformat()})
    # Then its chunk is held, nothing is queued, and it is released 5 minutes before its time
    [chunk] = intake.table.chunks.list_chunks("req-1")
    assert (chunk.state, chunk.send_time) == (ChunkState.HELD, send_at)
    assert intake.queued() == []
    assert intake.table.requests.release_at["req-1"] == int(send_at.timestamp()) - 300


def test_the_command_carries_its_send_time_as_a_moment_not_text() -> None:
    # Given a send_at in another zone
    command: SendCommand = to_command(
        SendBody.model_validate({"to": [ALICE], "content": "x", "send_at": "2026-12-01T01:30:00Z"}),
        now=NOW,
        max_recipients=10,
    )
    # Then the command holds the same moment, in Beijing time
    assert command.send_time == datetime(2026, 12, 1, 1, 30, tzinfo=UTC)
    assert command.send_time is not None
    assert command.send_time.utcoffset() == timedelta(hours=8)
    # And an accepted request stores it unchanged
    intake = Intake()
    intake.service.accept(command, request_id="req-1", body_fingerprint="f")
    record = intake.table.requests.get_request("req-1")
    assert record is not None
    assert record.send_time == command.send_time
    assert Category.TRANSACTIONAL is record.category
