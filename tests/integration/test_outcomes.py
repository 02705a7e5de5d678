"""Every outcome is an event, once per fact, and a request ends ``completed``.

The real send API, worker, push receiver and reconciler handlers against moto and the
Guodu simulator (a real HTTP server); events are read from an EventBridge rule's SQS
target, as a subscriber gets them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from guodu_simulator import Simulator
from smsgw_local.provision import Provisioned
from tests.integration.conftest import Api, EventSink, Pusher, Worker, make_stack


@pytest.fixture
def stack(aws: None, simulator: Simulator) -> Provisioned:
    return make_stack(simulator.submit_url)


def of(sink: EventSink, detail_type: str, request_id: str) -> list[dict[str, Any]]:
    return [e for e in sink.of_type(detail_type) if e["detail"].get("request_id") == request_id]


def report(msg_id: str, mobile: str, status: int) -> dict[str, Any]:
    return {"msg": "发送成功" if status == 0 else "UNDELIV", "mobile": mobile, "msgId": msg_id,
            "reportTime": "2026-11-24 12:00:05", "status": status}  # fmt: skip


def test_a_request_ends_completed_with_its_counts_and_is_announced_once(
    *, api: Api, worker: Worker, pusher: Pusher, simulator: Simulator, event_sink: EventSink, reconcile: Any
) -> None:
    # Given a request of three recipients, submitted
    numbers = ["13800138000", "13900139000", "13700137000"]
    _, reply = api.post({"to": numbers, "content": "【示例】您好", "reference": "order-7"})
    worker.drain()
    (submit,) = simulator.accepted
    # And reports for two of them: the request is not complete yet
    pusher.push([report(submit.msg_id, numbers[0], 0), report(submit.msg_id, numbers[1], 2)])
    reconcile()
    assert api.get(reply["id"])[1]["status"] == "submitted"
    assert of(event_sink, "Request Completed", reply["id"]) == []
    # When the third report comes and the reconciler runs (its completion check comes due)
    pusher.push([report(submit.msg_id, numbers[2], 0)])
    reconcile(later=120)
    # Then the request is completed, with its counts and when
    _, view = api.get(reply["id"])
    assert view["status"] == "completed"
    assert (view["counts"]["delivered"], view["counts"]["failed"], view["counts"]["total"]) == (2, 1, 3)
    assert view["completed_at"].endswith("+08:00")
    # And Request Completed was announced with the same counts, once, even after more sweeps
    reconcile(later=4000)
    (event,) = of(event_sink, "Request Completed", reply["id"])
    assert event["detail"]["reference"] == "order-7"
    assert event["detail"]["counts"] == view["counts"]


def test_recipients_without_a_report_end_unknown_and_the_request_completes(
    api: Api, worker: Worker, simulator: Simulator, event_sink: EventSink, reconcile: Any
) -> None:
    _, reply = api.post({"to": ["13800138000"], "content": "x"})
    worker.drain()
    # When the report timeout (72 h) passes without a report
    reconcile(later=73 * 3600)
    reconcile(later=73 * 3600 + 60)
    # Then the recipient is unknown (no_report), announced once, and the request completed
    (unknown,) = of(event_sink, "Recipients Unknown", reply["id"])
    assert unknown["detail"]["reason"] == "no_report"
    assert api.get(reply["id"])[1]["status"] == "completed"
    assert len(of(event_sink, "Request Completed", reply["id"])) == 1


def test_a_refusal_at_submit_is_announced_with_its_code_once(
    api: Api, worker: Worker, simulator: Simulator, event_sink: EventSink, reconcile: Any
) -> None:
    # Given a platform that refuses the content (06)
    simulator.queue_faults("06")
    _, reply = api.post({"to": ["13800138000", "13900139000"], "content": "x", "reference": "r-06"})
    worker.drain()
    # When SQS delivers the message again, twice (at-least-once)
    worker.redeliver(reply["id"], 0)
    worker.redeliver(reply["id"], 0)
    # Then the failure was announced once, with the platform's code and both numbers
    (failed,) = of(event_sink, "Recipients Failed", reply["id"])
    detail = failed["detail"]
    assert (detail["stage"], detail["provider_code"], detail["count"]) == ("submit", "06", 2)
    assert {r["to"] for r in detail["recipients"]} == {"13800138000", "13900139000"}
    # And the request completes at once (every recipient failed): announced once
    reconcile()
    reconcile(later=600)
    assert api.get(reply["id"])[1]["status"] == "completed"
    (completed,) = of(event_sink, "Request Completed", reply["id"])
    assert completed["detail"]["counts"]["failed"] == 2


def test_a_refusal_written_by_a_settle_order_is_announced_once(
    api: Api, worker: Worker, simulator: Simulator, event_sink: EventSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given DynamoDB refusing the settle in place (the answer goes on the queue as a settle order)
    store = worker.graph.store.chunks
    settle = store.settle
    failures = {"left": 4}

    def failing(chunk: Any, settlement: Any) -> bool:
        if failures["left"]:
            failures["left"] -= 1
            raise ClientError(
                {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "x"}}, "Op"
            )
        return bool(settle(chunk, settlement))

    monkeypatch.setattr(store, "settle", failing)
    monkeypatch.setattr(worker.service, "_sleep", lambda _: None)
    simulator.queue_faults("07")
    _, reply = api.post({"to": ["13800138000"], "content": "x"})
    # When the worker drains the queue: the settle order is written by a later delivery
    worker.drain()
    assert failures["left"] == 0
    # Then the refusal was announced once (not by the attempt, not twice by the order)
    (failed,) = of(event_sink, "Recipients Failed", reply["id"])
    assert failed["detail"]["provider_code"] == "07"
    assert len(simulator.refused) == 1


def test_an_ambiguous_submit_is_announced_unknown_once(
    api: Api, worker: Worker, simulator: Simulator, event_sink: EventSink
) -> None:
    simulator.queue_faults("accept_then_drop")
    _, reply = api.post({"to": ["13800138000"], "content": "x"})
    worker.drain()
    worker.redeliver(reply["id"], 0)
    (unknown,) = of(event_sink, "Recipients Unknown", reply["id"])
    assert unknown["detail"]["reason"] == "ambiguous"


def test_an_expired_chunk_is_announced_once(
    api: Api, worker: Worker, simulator: Simulator, event_sink: EventSink, stack: Provisioned
) -> None:
    _, reply = api.post({"to": ["13800138000"], "content": "x"})
    boto3.client("dynamodb").update_item(
        TableName=stack.ref("MessagesTable"),
        Key={"pk": {"S": f"REQ#{reply['id']}"}, "sk": {"S": "CHUNK#00000"}},
        UpdateExpression="SET valid_until = :past",
        ExpressionAttributeValues={":past": {"N": str(int(time.time()) - 1)}},
    )
    worker.drain()
    worker.redeliver(reply["id"], 0)
    assert simulator.accepted == []
    (expired,) = of(event_sink, "Recipients Expired", reply["id"])
    assert expired["detail"]["recipients"] == [{"to": "13800138000", "provider_msg_id": None}]


def test_a_dead_lettered_chunk_is_announced(
    aws: None,
    simulator: Simulator,
    load_api: Callable[[Provisioned], Api],
    load_worker: Callable[..., Worker],
) -> None:
    stack = make_stack(simulator.submit_url, SubmitMaxAttempts=2)
    api, worker, sink = load_api(stack), load_worker(stack), EventSink(stack)
    simulator.configure({"faults": {"code_rates": {"05": 1.0}}})
    _, reply = api.post({"to": ["13800138000"], "content": "x"})
    worker.drain()
    (parked,) = of(sink, "Recipients Dead-Lettered", reply["id"])
    assert (parked["detail"]["provider_code"], parked["detail"]["attempts"]) == ("05", 2)
