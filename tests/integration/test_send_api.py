"""The send API handler against moto: what a client sees and what gets stored and queued."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import boto3
import pytest

from smsgw_local.provision import Provisioned
from tests.conftest import rewire
from tests.integration.conftest import Api, queued_messages, stopping_before_the_header, table_items


def test_a_send_is_accepted_stored_and_queued(api: Api, stack: Provisioned) -> None:
    # Given a request to two numbers (one in +86 form) and one junk number
    status, reply = api.post(
        {
            "to": ["13800138000", "+86 139-0013-9000", "12345"],
            "content": "【示例】您好",
            "reference": "order-42",
        }
    )
    # Then it is accepted with the normalised count, the segments and the junk listed
    assert status == 202
    assert reply["status"] == "accepted"
    assert (reply["recipients"], reply["segments"], reply["reference"]) == (2, 1, "order-42")
    assert reply["rejected"] == [{"to": "12345", "reason": "invalid_mobile"}]
    # And one chunk is on its lane's queue (a transactional send's), pointing at the
    # stored request and naming its lane
    messages = queued_messages(stack)
    assert [json.loads(m["Body"]) for m in messages] == [
        {"v": 1, "request_id": reply["id"], "chunk": 0, "n": 2, "c": "transactional"}
    ]
    assert queued_messages(stack, "VerificationQueue") == queued_messages(stack, "MarketingQueue") == []
    # And the status shows both recipients queued
    status, view = api.get(reply["id"])
    assert status == 200
    assert view["status"] == "accepted"
    assert {r["to"]: r["status"] for r in view["recipients"]} == {
        "13800138000": "queued",
        "13900139000": "queued",
    }
    assert view["counts"]["total"] == 2
    assert view["counts"]["queued"] == 2
    assert view["counts"]["rejected"] == 1


def test_ten_thousand_recipients_are_accepted_in_fifty_chunks(api: Api, stack: Provisioned) -> None:
    numbers = [f"139{i:08d}" for i in range(10_000)]
    status, reply = api.post({"to": numbers, "content": "【示例】大促"})
    assert status == 202
    assert reply["recipients"] == 10_000
    bodies = [json.loads(m["Body"]) for m in queued_messages(stack)]
    assert sorted(b["chunk"] for b in bodies) == list(range(50))
    # Paged status: the first page holds whole chunks, and the cursor leads on
    status, page = api.get(reply["id"], limit="1000")
    assert len(page["recipients"]) == 1000
    assert page["next_cursor"] == "5"
    status, last = api.get(reply["id"], cursor="45", limit="5000")
    assert len(last["recipients"]) == 1000
    assert last["next_cursor"] is None
    assert last["recipients"][-1]["to"] == numbers[-1]


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ("{not json", "invalid_json", "body"),
        ("[1, 2]", "invalid_json", "body"),
        ({"to": ["12345"], "content": "hi"}, "validation_failed", "to"),
        ({"to": ["13800138000"], "content": ""}, "validation_failed", "content"),
        ({"to": [13800138000], "content": "hi"}, "validation_failed", "to[0]"),
        ({"to": ["13800138000"], "content": "hi", "extension": "x1"}, "validation_failed", "extension"),
        (
            {"to": ["13800138000"], "content": "hi", "send_at": "2001-01-01T00:00:00Z"},
            "validation_failed",
            "send_at",
        ),
        ({"to": ["13800138000"], "content": "hi", "unexpected": 1}, "validation_failed", "unexpected"),
    ],
)
def test_bad_input_gets_a_400_naming_the_field_and_stores_nothing(
    api: Api, stack: Provisioned, body: object, code: str, field: str
) -> None:
    status, reply = api.post(body)
    assert status == 400
    assert reply["error"]["code"] == code
    assert field in [d["field"] for d in reply["error"]["details"]]
    assert table_items(stack) == []
    assert queued_messages(stack) == []


def test_all_numbers_invalid_lists_them_in_the_details(api: Api) -> None:
    status, reply = api.post({"to": ["12345", "abc"], "content": "hi"})
    assert status == 400
    assert {"field": "to", "message": "not a Chinese mobile number", "value": "12345"} in reply["error"][
        "details"
    ]


def test_same_idempotency_key_and_body_replays_the_first_reply(api: Api, stack: Provisioned) -> None:
    body = {"to": ["13800138000", "13900139000"], "content": "验证码 123456", "reference": "login-1"}
    first_status, first = api.post(body, key="login-1-sms")
    # When the client retries with the same key (whitespace and key order may differ)
    again_status, again = api.post(json.dumps(dict(reversed(body.items())), indent=2), key="login-1-sms")
    # Then it gets the same reply and nothing more is queued
    assert (first_status, again_status) == (202, 202)
    assert again == first
    assert len(queued_messages(stack)) == 1


def test_same_idempotency_key_with_another_body_is_a_conflict(api: Api, stack: Provisioned) -> None:
    api.post({"to": ["13800138000"], "content": "one"}, key="k-1")
    status, reply = api.post({"to": ["13800138000"], "content": "two"}, key="k-1")
    assert status == 409
    assert reply["error"]["code"] == "idempotency_key_reused"
    assert len(queued_messages(stack)) == 1


def test_a_replay_after_its_send_at_passed_gets_the_first_reply(
    api: Api, stack: Provisioned, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a keyed send scheduled ten minutes ahead
    send_at = (datetime.now(UTC) + timedelta(minutes=10)).isoformat()
    body = {"to": ["13800138000"], "content": "x", "send_at": send_at}
    first = api.post(body, key="sched-1")
    assert first[0] == 202
    # When the client replays it twenty minutes later, when its send_at lies in the past
    later = datetime.now(UTC) + timedelta(minutes=20)
    rewire(api.module, clock=lambda: later)
    # Then it still gets the first reply, not a 400 about the time, and nothing more is queued
    assert api.post(body, key="sched-1") == first
    assert len(queued_messages(stack)) == 1


def test_a_new_keyed_request_costs_one_consistent_read(api: Api) -> None:
    # Given the API built with a DynamoDB client that counts its reads of one item
    dynamodb = boto3.client("dynamodb")
    reads: list[object] = []
    dynamodb.meta.events.register(
        "before-parameter-build.dynamodb.GetItem",
        lambda params, **_: reads.append(params.get("ConsistentRead")),
    )
    rewire(api.module, dynamodb=dynamodb)
    # When a client sends a new request with an Idempotency-Key
    status, _ = api.post({"to": ["13800138000"], "content": "x"}, key="new-key-1")
    # Then it is accepted after one consistent read (is it a replay?), not two
    assert status == 202
    assert reads == [True]


def test_idempotency_keys_are_scoped_to_the_caller(api: Api, stack: Provisioned) -> None:
    # Two clients that happen to pick the same key send two requests
    _, first = api.post({"to": ["13800138000"], "content": "one"}, key="k-1", caller="client-a")
    status, second = api.post({"to": ["13800138000"], "content": "two"}, key="k-1", caller="client-b")
    assert status == 202
    assert second["id"] != first["id"]
    assert len(queued_messages(stack)) == 2


def test_a_request_that_stopped_half_way_is_resumed_by_its_retry(api: Api, stack: Provisioned) -> None:
    # Given a 600-recipient request whose queueing failed after it was stored
    body = {"to": [f"138{i:08d}" for i in range(600)], "content": "x"}
    sqs = api.module.graph.sqs
    original = sqs.send_message_batch

    def failing(**_: object) -> dict[str, object]:
        raise boto3.client("sqs").exceptions.QueueDoesNotExist(
            {"Error": {"Code": "QueueDoesNotExist"}}, "SendMessageBatch"
        )

    sqs.send_message_batch = failing
    # Then it is accepted all the same (it is stored: the reconciler would queue it), and
    # shows as still being accepted
    status, reply = api.post(body, key="bulk-7")
    assert status == 202
    assert queued_messages(stack) == []
    assert api.get(reply["id"])[1]["status"] == "accepting"
    # When the client retries with the same key
    sqs.send_message_batch = original
    status, reply = api.post(body, key="bulk-7")
    # Then the request is queued whole, once
    assert status == 202
    assert sorted(json.loads(m["Body"])["chunk"] for m in queued_messages(stack)) == [0, 1, 2]
    assert api.get(reply["id"])[1]["counts"]["queued"] == 600


def test_a_key_whose_first_call_stopped_refuses_another_body_and_sends_neither(
    api: Api, stack: Provisioned, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a keyed call that stored its 400 numbers' chunks, then failed before its header
    stopping_before_the_header(api, monkeypatch)
    old = {"to": [f"138{i:08d}" for i in range(400)], "content": "OLD code 111111"}
    assert api.post(old, key="otp-9")[0] >= 500
    # When the client reuses the key for another body
    status, reply = api.post({"to": ["13900139000"], "content": "NEW code 222222"}, key="otp-9")
    # Then it is the contract's 409, and nothing at all is queued: not the old chunks either
    assert (status, reply["error"]["code"]) == (409, "idempotency_key_reused")
    assert queued_messages(stack) == []
    # And the first body, retried, goes out whole
    status, reply = api.post(old, key="otp-9")
    assert status == 202
    assert api.get(reply["id"])[1]["counts"]["queued"] == 400


def test_a_retry_whose_plan_changed_sends_each_number_once(
    api: Api, stack: Provisioned, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a keyed marketing call of 300 numbers that stopped before its header
    numbers = [f"138{i:08d}" for i in range(300)]
    body = {"to": numbers, "content": "【店】新品上市", "category": "marketing"}
    stopping_before_the_header(api, monkeypatch)
    assert api.post(body, key="promo-1")[0] >= 500
    # And then one number opted out, so the retry plans other chunks (199 + 100)
    assert api.module.graph.opt_outs.add(numbers[5], caller="an-operator")[0]
    status, reply = api.post(body, key="promo-1")
    # Then the request holds every other number exactly once, and not the opted-out one
    assert (status, reply["recipients"]) == (202, 299)
    _, view = api.get(reply["id"], limit="5000")
    shown = [r["to"] for r in view["recipients"]]
    assert sorted(shown) == sorted(n for n in numbers if n != numbers[5])
    assert view["counts"]["total"] == view["counts"]["queued"] == 299
    marketing = queued_messages(stack, "MarketingQueue")
    assert sorted(json.loads(m["Body"])["chunk"] for m in marketing) == [0, 1]


def test_an_idempotency_key_must_be_printable_ascii(api: Api) -> None:
    status, reply = api.post({"to": ["13800138000"], "content": "x"}, key="密钥")
    assert status == 400
    assert reply["error"]["details"][0]["field"] == "Idempotency-Key"


def test_unknown_request_is_a_404_in_the_contracts_shape(api: Api) -> None:
    status, reply = api.get("no-such-id")
    assert status == 404
    assert reply["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    ("name", "value"), [("limit", "0"), ("limit", "²"), ("cursor", "²"), ("cursor", "-1"), ("limit", "１")]
)
def test_bad_paging_parameters_name_the_parameter(api: Api, name: str, value: str) -> None:
    # "²" and a full-width "１" are digits to str.isdigit() but not to int(): never a 500
    _, reply = api.post({"to": ["13800138000"], "content": "x"})
    status, error = api.get(reply["id"], **{name: value})
    assert status == 400
    assert error["error"]["details"][0]["field"] == name
