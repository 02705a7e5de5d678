"""The submit worker against moto and the Guodu simulator (a real HTTP server).

Each test posts through the real send API handler, then feeds the send queue to the real
worker handler the way the SQS event source does: batches of received messages in, the
``batchItemFailures`` left on the queue, every other message deleted.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote_plus

import boto3
import pytest
from botocore.exceptions import ClientError

from guodu_simulator import Simulator
from smsgw.domain.times import BEIJING
from smsgw_local.provision import Provisioned
from tests.conftest import wait_until
from tests.integration.conftest import Api, EventSink, Worker, make_stack, queued_messages


@pytest.fixture
def stack(aws: None, simulator: Simulator) -> Provisioned:
    return make_stack(simulator.submit_url)


def test_every_chunk_is_submitted_once_with_its_msg_id(
    api: Api, worker: Worker, simulator: Simulator
) -> None:
    # Given 1,000 recipients of one content
    numbers = [f"138{i:08d}" for i in range(1000)]
    _, reply = api.post({"to": numbers, "content": "【示例】您好", "reference": "bulk-1"})
    # When the worker drains the queue
    worker.drain()
    # Then exactly five submits left, 200 numbers each, no number twice
    submits = simulator.accepted
    assert [len(s.mobiles) for s in submits] == [200] * 5
    sent = [m for s in submits for m in s.mobiles]
    assert sorted(sent) == numbers
    # And every recipient is submitted with the MsgId of its own submit
    msg_id_of = {m: s.msg_id for s in submits for m in s.mobiles}
    _, view = api.get(reply["id"], limit="5000")
    assert view["status"] == "submitted"
    assert view["counts"]["submitted"] == 1000
    assert all(
        r["status"] == "submitted" and r["provider_msg_id"] == msg_id_of[r["to"]] for r in view["recipients"]
    )
    assert {r["provider_code"] for r in view["recipients"]} == {"00"}


def test_content_reaches_the_platform_url_encoded_and_decodes_to_the_original(
    api: Api, worker: Worker, simulator: Simulator
) -> None:
    text = "【示例】您好 world~ 50%+ *_-. 😀 退订回T"
    api.post({"to": ["13800138000"], "content": text})
    worker.drain()
    (submit,) = simulator.accepted
    assert submit.content == text
    assert submit.raw_content.isascii()
    assert unquote_plus(submit.raw_content) == text
    assert submit.result_code == "03"  # one number: a single message


def test_send_at_and_extension_become_send_time_and_append_id(
    aws: None,
    simulator: Simulator,
    load_api: Callable[[Provisioned], Api],
    load_worker: Callable[..., Worker],
) -> None:
    # Given a stack that never holds a scheduled send itself (the platform keeps it)
    stack = make_stack(simulator.submit_url, ScheduledHoldSeconds=0)
    api, worker = load_api(stack), load_worker(stack)
    _, reply = api.post(
        {"to": ["13800138000"], "content": "x", "send_at": "2026-12-24T01:30:00Z", "extension": "0042"},
    )
    worker.drain()
    (submit,) = simulator.accepted
    assert (submit.send_time, submit.append_id) == ("20261224093000", "0042")
    assert api.get(reply["id"])[1]["send_at"] == "2026-12-24T09:30:00+08:00"


def test_a_scheduled_chunk_that_waited_past_its_time_goes_at_once(
    api: Api, worker: Worker, simulator: Simulator, stack: Provisioned
) -> None:
    # Given a send scheduled ten minutes ahead, still queued when its time has passed (an
    # outage): its stored send time now lies ten minutes back
    send_at = datetime.now(UTC) + timedelta(minutes=10)
    _, reply = api.post({"to": ["13800138000"], "content": "x", "send_at": send_at.isoformat()})
    past = (datetime.now(BEIJING) - timedelta(minutes=10)).strftime("%Y%m%d%H%M%S")
    boto3.client("dynamodb").update_item(
        TableName=stack.ref("MessagesTable"),
        Key={"pk": {"S": f"REQ#{reply['id']}"}, "sk": {"S": "CHUNK#00000"}},
        UpdateExpression="SET send_time = :t",
        ExpressionAttributeValues={":t": {"S": past}},
    )
    worker.drain()
    # Then it is submitted for now, not with a SendTime already past
    (submit,) = simulator.accepted
    assert submit.send_time == ""


def test_a_failure_before_the_submit_left_gives_the_chunk_back_to_be_sent(
    api: Api, worker: Worker, simulator: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the rate limiter's table fails once, after the chunk was claimed (the worker's
    # DynamoDB client fails its first reservation of a slot on a rate-limit timeline)
    db = worker.graph.dynamodb
    update, calls = db.update_item, []

    def failing_once(**request: Any) -> Any:
        if request["Key"]["pk"]["S"].startswith("RATE#") and "tat" in request["UpdateExpression"]:
            calls.append(request)
            if len(calls) == 1:
                raise ClientError({"Error": {"Code": "InternalServerError", "Message": "x"}}, "UpdateItem")
        return update(**request)

    monkeypatch.setattr(db, "update_item", failing_once)
    _, reply = api.post({"to": ["13800138000"], "content": "x"})
    worker.drain()
    # Then nothing was claimed (a claim would later read "may have been sent"): the
    # recipient is queued, and the message is held a few seconds (AWS failed, not the chunk)
    assert simulator.accepted == []
    assert api.get(reply["id"])[1]["recipients"][0]["status"] == "queued"
    # And once the hold is over, it goes out
    wait_until(lambda: worker.poll_once() or simulator.accepted, timeout=15, interval=0.5)
    worker.drain()
    assert len(simulator.accepted) == 1
    assert api.get(reply["id"])[1]["recipients"][0]["status"] == "submitted"


def test_personalised_contents_reach_the_right_numbers(
    api: Api, worker: Worker, simulator: Simulator
) -> None:
    messages = [{"to": f"139{i:08d}", "content": f"尊敬的客户{i % 3}号，您好"} for i in range(9)]
    api.post({"messages": messages})
    worker.drain()
    received = {m: s.content for s in simulator.accepted for m in s.mobiles}
    assert received == {m["to"]: m["content"] for m in messages}
    assert len(simulator.accepted) == 3  # equal contents share a submit


def test_a_request_error_06_fails_the_recipients_and_is_never_retried(
    api: Api, worker: Worker, simulator: Simulator, stack: Provisioned
) -> None:
    simulator.queue_faults("06")
    _, reply = api.post({"to": ["13800138000", "13900139000"], "content": "x"})
    worker.drain()
    assert len(simulator.refused) == 1
    assert simulator.accepted == []
    _, view = api.get(reply["id"])
    assert {(r["status"], r["provider_code"]) for r in view["recipients"]} == {("failed", "06")}
    assert view["counts"]["failed"] == 2
    assert queued_messages(stack) == []
    assert queued_messages(stack, "SendDeadLetterQueue") == []


def test_a_platform_exception_minus_1_is_retried_until_accepted(
    api: Api, worker: Worker, simulator: Simulator
) -> None:
    simulator.queue_faults("-1", "-1", "http_503")
    _, reply = api.post({"to": ["13800138000"], "content": "x"})
    worker.drain()
    assert [r.result_code for r in simulator.refused][:2] == ["-1", "-1"]
    assert len(simulator.refused) == 3  # the HTTP 503 answer is the third refusal
    assert len(simulator.accepted) == 1
    assert worker.invocations == 4
    _, view = api.get(reply["id"])
    assert view["recipients"][0]["status"] == "submitted"


def test_a_wrong_password_05_ends_in_the_dead_letter_queue_after_its_retries(
    aws: None,
    simulator: Simulator,
    load_api: Callable[[Provisioned], Api],
    load_worker: Callable[..., Worker],
) -> None:
    # Given a stack whose queue allows five receives, and a platform refusing the password
    stack = make_stack(simulator.submit_url, SubmitMaxAttempts=5)
    api = load_api(stack)
    worker = load_worker(stack)
    simulator.configure({"faults": {"code_rates": {"05": 1.0}}})
    _, reply = api.post({"to": ["13800138000"], "content": "x"})
    # When the worker drains the queue
    worker.drain()
    # Then it tried five times, and the chunk now waits in the dead-letter queue
    assert [r.result_code for r in simulator.refused] == ["05"] * 5
    (parked,) = queued_messages(stack, "SendDeadLetterQueue")
    assert json.loads(parked["Body"])["request_id"] == reply["id"]
    # And the recipient is still queued (not lost, not failed), showing why
    _, view = api.get(reply["id"])
    assert (view["recipients"][0]["status"], view["recipients"][0]["provider_code"]) == ("queued", "05")


def test_a_redelivered_message_after_a_successful_submit_is_not_submitted_again(
    api: Api, worker: Worker, simulator: Simulator
) -> None:
    _, reply = api.post({"to": ["13800138000"], "content": "x"})
    worker.drain()
    assert len(simulator.accepted) == 1
    # When SQS delivers the same chunk message again (at-least-once delivery)
    worker.redeliver(reply["id"], 0)
    # Then nothing more reaches the platform
    assert len(simulator.accepted) == 1
    assert simulator.refused == []


@pytest.mark.parametrize(
    ("fault", "code"),
    [("accept_then_drop", "connection_lost"), ("accept_then_truncate", "broken_answer")],
    ids=["answer lost", "answer broken off"],
)
def test_an_answer_lost_after_the_platform_accepted_is_recorded_unknown_not_resent(
    api: Api, worker: Worker, simulator: Simulator, fault: str, code: str
) -> None:
    simulator.queue_faults(fault)
    _, reply = api.post({"to": ["13800138000"], "content": "x"})
    worker.drain()
    assert len(simulator.accepted) == 1  # the platform did take it, and got it once
    _, view = api.get(reply["id"])
    assert (view["recipients"][0]["status"], view["recipients"][0]["provider_code"]) == ("unknown", code)
    assert view["status"] == "completed"  # unknown is final


@pytest.mark.parametrize("fault", ["http_500", "accept_then_502"])
def test_a_5xx_that_may_follow_an_accepted_submit_is_unknown_not_resent(
    api: Api, worker: Worker, simulator: Simulator, fault: str
) -> None:
    # Given a proxy in front of the platform that answers 500/502 (perhaps after the
    # platform took the submit, as accept_then_502 does)
    simulator.queue_faults(fault)
    _, reply = api.post({"to": ["13800138000"], "content": "x"})
    worker.drain()
    # Then the gateway does not send it again: it may have gone out already
    assert len(simulator.accepted) + len(simulator.refused) == 1
    recipient = api.get(reply["id"])[1]["recipients"][0]
    assert (recipient["status"], recipient["provider_code"]) == ("unknown", f"http_{fault[-3:]}")


def test_a_read_timeout_is_ambiguous_too(
    stack: Provisioned, api: Api, load_worker: Callable[..., Worker], simulator: Simulator
) -> None:
    worker = load_worker(stack, GUODU_READ_TIMEOUT="0.3")
    simulator.configure({"faults": {"timeout_seconds": 1.0}})
    simulator.queue_faults("timeout")
    _, reply = api.post({"to": ["13800138000"], "content": "x"})
    worker.drain()
    _, view = api.get(reply["id"])
    assert (view["recipients"][0]["status"], view["recipients"][0]["provider_code"]) == (
        "unknown",
        "read_timeout",
    )


def test_resending_ambiguous_submits_is_a_setting(
    stack: Provisioned, api: Api, load_worker: Callable[..., Worker], simulator: Simulator
) -> None:
    worker = load_worker(stack, RESEND_AMBIGUOUS="true")
    simulator.queue_faults("drop")
    _, reply = api.post({"to": ["13800138000"], "content": "x"})
    worker.drain()
    assert len(simulator.accepted) == 1
    assert api.get(reply["id"])[1]["recipients"][0]["status"] == "submitted"


def test_a_transaction_cancelled_by_a_conflicting_report_still_settles_the_chunk(
    api: Api, worker: Worker, simulator: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given DynamoDB cancels the worker's transaction once because a report was being
    # written to the MsgId's item at that moment (reports may beat the submit's answer)
    db = worker.graph.dynamodb  # the client the store writes with
    transact, calls = db.transact_write_items, []

    def conflicting_once(**kwargs: object) -> object:
        calls.append(kwargs)
        if len(calls) == 1:
            raise ClientError(
                {
                    "Error": {"Code": "TransactionCanceledException", "Message": "conflict"},
                    "CancellationReasons": [{"Code": "None"}, {"Code": "TransactionConflict"}],
                },
                "TransactWriteItems",
            )
        return transact(**kwargs)

    monkeypatch.setattr(db, "transact_write_items", conflicting_once)
    _, reply = api.post({"to": ["13800138000"], "content": "x"})
    worker.drain()
    # Then the recipient shows submitted with its MsgId, and the request is fully submitted
    (submit,) = simulator.accepted
    _, view = api.get(reply["id"])
    recipient = view["recipients"][0]
    assert (view["status"], recipient["status"], recipient["provider_msg_id"]) == (
        "submitted",
        "submitted",
        submit.msg_id,
    )


def test_a_worker_stopping_between_settling_and_counting_still_completes_the_request(
    api: Api, worker: Worker, simulator: Simulator, event_sink: EventSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the worker fails right after the platform accepted and the chunk was settled
    store = worker.graph.store.requests
    count, calls = store.count_settled_chunk, []

    def failing_once(chunk: object) -> object:
        calls.append(chunk)
        if len(calls) == 1:
            raise ClientError({"Error": {"Code": "InternalServerError", "Message": "x"}}, "UpdateItem")
        return count(chunk)

    monkeypatch.setattr(store, "count_settled_chunk", failing_once)
    _, reply = api.post({"to": ["13800138000"], "content": "x", "reference": "r-1"})
    worker.drain()
    assert event_sink.of_type("Request Submitted") == []
    # When SQS delivers the message again (after its visibility timeout)
    worker.redeliver(reply["id"], 0)
    # Then that delivery finishes the count: sent once, announced once
    assert len(simulator.accepted) == 1
    assert api.get(reply["id"])[1]["status"] == "submitted"
    (event,) = event_sink.of_type("Request Submitted")
    assert (event["detail"]["request_id"], event["detail"]["reference"]) == (reply["id"], "r-1")
    # And a further duplicate of the message announces nothing more
    worker.redeliver(reply["id"], 0)
    assert event_sink.of_type("Request Submitted") == [event]


def test_a_worker_quicker_than_the_api_is_not_undone_by_it(
    api: Api, worker: Worker, simulator: Simulator, event_sink: EventSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a worker that settles every chunk before the API marks the request accepted
    queue = api.module.graph.queue
    enqueue = queue.enqueue

    def enqueue_then_work(refs: object) -> None:
        enqueue(refs)
        worker.drain()

    monkeypatch.setattr(queue, "enqueue", enqueue_then_work)
    _, reply = api.post({"to": ["13800138000"], "content": "x"})
    # Then the request stays submitted, and a duplicate delivery announces nothing again
    stored = api.module.graph.store.requests.get_request(reply["id"], consistent=True)
    assert stored.status.value == "submitted"
    worker.redeliver(reply["id"], 0)
    assert len(event_sink.of_type("Request Submitted")) == 1


def test_counting_chunks_keeps_the_requests_item_small(
    api: Api, worker: Worker, simulator: Simulator, stack: Provisioned
) -> None:
    # Given a personalised request of 120 different messages: 120 chunks to count
    messages = [{"to": f"138{i:08d}", "content": f"【示例】验证码 {i:06d}"} for i in range(120)]
    _, reply = api.post({"messages": messages})
    worker.drain(rounds=200)
    # Then it completes, and its item (rewritten, and billed whole, at every count) stays small
    assert api.get(reply["id"])[1]["status"] == "submitted"
    item = boto3.client("dynamodb").get_item(
        TableName=stack.ref("MessagesTable"), Key={"pk": {"S": f"REQ#{reply['id']}"}, "sk": {"S": "META"}}
    )["Item"]
    assert int(item["settled_chunks"]["N"]) == 120
    assert len(json.dumps(item)) < 1_024


def test_an_unknown_result_code_is_parked_in_the_dead_letter_queue_at_once(
    api: Api, worker: Worker, simulator: Simulator, stack: Provisioned
) -> None:
    simulator.queue_faults("99")
    _, reply = api.post({"to": ["13800138000"], "content": "x"})
    worker.drain()
    (parked,) = queued_messages(stack, "SendDeadLetterQueue")
    assert parked["MessageAttributes"]["reason"]["StringValue"] == "unknown ResultCode 99"
    assert len(simulator.refused) == 1
    assert api.get(reply["id"])[1]["recipients"][0]["provider_code"] == "99"


def test_a_chunk_claimed_by_a_live_worker_is_left_to_it(
    api: Api, worker: Worker, simulator: Simulator, stack: Provisioned
) -> None:
    # Given a chunk another worker claimed a moment ago
    _, reply = api.post({"to": ["13800138000"], "content": "x"})
    from smsgw.adapters.table import MessageTable
    from smsgw.domain.model import ChunkRef

    store = MessageTable(boto3.client("dynamodb"), stack.ref("MessagesTable")).chunks
    assert store.claim_chunk(ChunkRef(reply["id"], 0), token="another-worker", lease_seconds=60).claimed
    # When a duplicate of its message arrives
    worker.drain()
    # Then it is dropped without a submit; the recipient is still in flight
    assert simulator.accepted == []
    assert api.get(reply["id"])[1]["recipients"][0]["status"] == "queued"


def test_a_claim_left_by_a_crashed_worker_becomes_unknown(
    api: Api, worker: Worker, simulator: Simulator, stack: Provisioned, capsys: pytest.CaptureFixture[str]
) -> None:
    _, reply = api.post({"to": ["13800138000", "13900139000"], "content": "x"})
    from smsgw.adapters.table import MessageTable
    from smsgw.domain.model import ChunkRef

    store = MessageTable(boto3.client("dynamodb"), stack.ref("MessagesTable")).chunks
    assert store.claim_chunk(
        ChunkRef(reply["id"], 0), token="a-dead-worker", lease_seconds=-1
    ).claimed  # lease already over
    capsys.readouterr()
    worker.drain()
    assert simulator.accepted == []
    assert api.get(reply["id"])[1]["recipients"][0]["status"] == "unknown"
    # And the recipients-unknown alarm's metric counts them (EMF on the worker's stdout)
    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert sum(sum(m.get("RecipientsUnknown", [])) for m in emitted) == 2
