"""Least privilege, checked against the code: every AWS call each function makes is one its
role (as SAM generates it from template.yaml) allows, on the items it touches.

The handlers run against moto, which does not enforce IAM. Every call is recorded with the
function that made it, turned into the IAM action and partition key AWS would authorise
(a transaction's parts each as their own action), and matched against the grants of
tests/template/sam.py. A call a role lacks would be an AccessDenied in the cloud; a grant
no call needs is caught by tests/template/test_transformed.py.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import boto3
import botocore.client
import pytest

from guodu_simulator import Simulator
from smsgw_local.provision import Provisioned
from tests.conftest import FakeContext, rewire
from tests.integration.conftest import Api, Pusher, Worker, make_stack, sqs_event
from tests.template.sam import allows, grants, transformed


@dataclass(frozen=True)
class Call:
    function: str
    action: str  # the IAM action
    resource: str  # the logical id of the resource
    partition_key: str | None = None


class Recorder:
    """Every AWS call made while a function is "running" (set around each invocation; a
    plain attribute, not a context variable: the handlers' thread pools call too)."""

    def __init__(self, stack: Provisioned) -> None:
        self.function: str | None = None
        self.calls: list[Call] = []
        self._lock = threading.Lock()
        self._names = {
            str(stack.ref(logical)): logical
            for logical in (
                "MessagesTable",
                "VerificationQueue",
                "VerificationDeadLetterQueue",
                "SendQueue",
                "SendDeadLetterQueue",
                "MarketingQueue",
                "MarketingDeadLetterQueue",
                "EventBus",
                "CallbackQueue",
                "CallbackDeadLetterQueue",
            )
        }
        for logical in ("ProviderSecret", "PushTokenSecret", "RequestIdSecret"):
            self._names[str(stack.ref(logical))] = logical

    def record(self, service: str, operation: str, params: dict[str, Any]) -> None:
        if self.function is None:
            return
        found = list(self._translate(service, operation, params))
        with self._lock:
            self.calls.extend(Call(self.function, *c) for c in found)

    def _resource(self, name: str) -> str:
        return self._names.get(name, f"unknown resource {name}")

    def _translate(self, service: str, operation: str, params: dict[str, Any]) -> Iterator[tuple[Any, ...]]:
        if service == "dynamodb":
            yield from self._dynamodb(operation, params)
        elif service == "sqs":
            action = {
                "SendMessageBatch": "SendMessage",
                "DeleteMessageBatch": "DeleteMessage",
                "ChangeMessageVisibilityBatch": "ChangeMessageVisibility",
            }.get(operation, operation)
            yield f"sqs:{action}", self._resource(params["QueueUrl"])
        elif service == "secretsmanager":
            yield f"secretsmanager:{operation}", self._resource(params["SecretId"])
        elif service == "events":
            for entry in params["Entries"]:
                yield f"events:{operation}", self._resource(entry["EventBusName"])
        else:
            yield f"{service}:{operation}", "unknown"

    def _dynamodb(self, operation: str, params: dict[str, Any]) -> Iterator[tuple[Any, ...]]:
        if operation == "TransactWriteItems":
            for part in params["TransactItems"]:
                ((kind, write),) = part.items()
                action = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem"}.get(
                    kind, "ConditionCheckItem"
                )
                key = write["Item"] if kind == "Put" else write["Key"]
                yield f"dynamodb:{action}", self._resource(write["TableName"]), key["pk"]["S"]
        elif operation == "BatchWriteItem":
            for table, requests in params["RequestItems"].items():
                for request in requests:
                    put, delete = request.get("PutRequest"), request.get("DeleteRequest")
                    key = put["Item"] if put else delete["Key"]
                    yield "dynamodb:BatchWriteItem", self._resource(table), key["pk"]["S"]
        elif operation == "BatchGetItem":
            for table, request in params["RequestItems"].items():
                for key in request["Keys"]:
                    yield "dynamodb:BatchGetItem", self._resource(table), key["pk"]["S"]
        elif operation == "Query":
            # The partition key's value: the first placeholder of the key condition.
            placeholder = params["KeyConditionExpression"].split("=")[1].split()[0]
            partition = params["ExpressionAttributeValues"][placeholder]["S"]
            index = f"/index/{params['IndexName']}" if "IndexName" in params else ""
            yield "dynamodb:Query", self._resource(params["TableName"]) + index, partition
        else:
            key = params["Item"] if operation == "PutItem" else params["Key"]
            yield f"dynamodb:{operation}", self._resource(params["TableName"]), key["pk"]["S"]

    def running(self, function: str) -> _Running:
        return _Running(self, function)


class _Running:
    def __init__(self, recorder: Recorder, function: str) -> None:
        self._recorder, self._function = recorder, function

    def __enter__(self) -> None:
        self._recorder.function = self._function

    def __exit__(self, *_: object) -> None:
        self._recorder.function = None


@pytest.fixture
def stack(aws: None, simulator: Simulator) -> Provisioned:
    return make_stack(simulator.submit_url, FrequencyCapsTransactional="100/1d")


@pytest.fixture
def recorder(stack: Provisioned, monkeypatch: pytest.MonkeyPatch) -> Recorder:
    recording = Recorder(stack)
    original = botocore.client.BaseClient._make_api_call

    def make_api_call(client: Any, operation: str, params: dict[str, Any]) -> Any:
        recording.record(client.meta.service_model.service_name, operation, params)
        return original(client, operation, params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", make_api_call)
    return recording


def test_every_call_each_function_makes_is_granted_to_its_role(
    *,
    stack: Provisioned,
    recorder: Recorder,
    api: Api,
    pusher: Pusher,
    load_worker: Callable[..., Worker],
    load_handler: Callable[..., ModuleType],
    simulator: Simulator,
) -> None:
    send, push, work = (
        recorder.running(f) for f in ("SendApiFunction", "PushReceiverFunction", "SubmitWorkerFunction")
    )
    worker = load_worker(stack)
    numbers = ["13800138000", "13900139000", "13700137000"]
    # Given every path of the send API: plain, keyed (and its replay), capped, marketing
    # around an opt-out, the status, and the opt-out routes
    with send:
        _, plain = api.post({"to": numbers, "content": "【示例】您好"})
        api.post({"to": numbers[:1], "content": "【示例】一"}, key="grants-1")
        api.post({"to": numbers[:1], "content": "【示例】一"}, key="grants-1")
        api.module.graph.opt_outs.add(numbers[2], caller="grants-test")
        api.post({"to": numbers, "content": "【店】上新，退订回T", "category": "marketing"})
        api.post({"to": numbers[1:2], "content": "【示例】验证码 1234", "category": "verification"})
        api.module.graph.opt_outs.get(numbers[2])
        api.module.graph.opt_outs.remove(numbers[2], caller="grants-test")
    # And each lane's worker submits them all (a chunk, its count, the request's status,
    # the link)
    with work:
        worker.drain()
        for queue in ("VerificationQueue", "MarketingQueue"):
            load_worker(stack, queue=queue).drain()
    msg_id = simulator.accepted[0].msg_id
    # And the platform pushes a report and a reply that opts out
    with push:
        pusher.push(
            [
                {
                    "msg": "ok",
                    "mobile": numbers[0],
                    "msgId": msg_id,
                    "reportTime": "2026-11-24 12:00:00",
                    "status": 0,
                }
            ]
        )
        pusher.push([{"SrcMobile": numbers[1], "Content": "TD"}], content_type="application/json")
    with send:
        api.get(plain["id"])
    # And the finding and following paths: a send with a reference, an extension and a
    # callback URL, found by reference, by number, its replies; the caller's callback
    # settings; a send held for later (scheduled), then cancelled; another left held
    with send:
        _, found = api.post(
            {
                "to": numbers[:2],
                "content": "【示例】找",
                "reference": "grants-ref",
                "extension": "7",
                "callback_url": "https://callbacks.invalid/hooks",
            }
        )
        assert api.search(reference="grants-ref")[0] == 200
        assert api.search(to=numbers[0])[0] == 200
        assert api.inbound()[0] == 200
        assert api.inbound(mobile=numbers[1])[0] == 200
        assert api.call("GET", "/v1/callback")[0] == 200
        assert api.call("PUT", "/v1/callback", {"url": "https://callbacks.invalid/default"})[0] == 200
        later = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
        _, held = api.post({"to": numbers[:1], "content": "【示例】定时", "send_at": later})
        assert api.call("DELETE", f"/v1/messages/{held['id']}")[1]["cancelled"] == 1
        api.post(
            {"to": numbers[:1], "content": "【示例】定时二", "send_at": later, "category": "verification"}
        )
    # And the callback sender: an event of that request (its URL is refused: a retry)
    spec = stack.functions["CallbackSenderFunction"]
    sender = load_handler(spec.code_dir, spec.environment)
    callbacks_url = stack.ref("CallbackQueue")
    boto3.client("sqs").send_message(
        QueueUrl=callbacks_url,
        MessageBody=json.dumps(
            {"detail-type": "Request Submitted", "detail": {"event_id": "e1", "request_id": found["id"]}}
        ),
    )
    message = boto3.client("sqs").receive_message(QueueUrl=callbacks_url, MessageSystemAttributeNames=["All"])
    with recorder.running("CallbackSenderFunction"):
        sender.handler(sqs_event(message["Messages"], stack.attribute("CallbackQueue", "Arn")), FakeContext())
    # And the worker's other paths: a message it cannot read (parked), a platform that
    # does not answer (the lane's pause, a delayed retry)
    boto3.client("sqs").send_message(QueueUrl=stack.ref("SendQueue"), MessageBody="not a chunk")
    with work:
        worker.drain()
    with send:
        api.post({"to": ["13600136000"], "content": "【示例】重试"})
    down = load_worker(stack, GUODU_SUBMIT_URLS="http://127.0.0.1:9/HttpQuickProcess/submitJson")
    with work:
        down.poll_once()
    # And the balance check
    spec = stack.functions["BalanceCheckFunction"]
    balance = load_handler(spec.code_dir, spec.environment)
    with recorder.running("BalanceCheckFunction"):
        balance.handler({}, FakeContext("smsgw-balance-check"))
    # And the reconciler: an intake that stopped before its chunks were queued, and
    # submits whose report timeout has passed
    queue = api.module.graph.sqs
    sending = queue.send_message_batch
    queue.send_message_batch = lambda **_: (_ for _ in ()).throw(RuntimeError("SQS down"))
    with send:
        _, _stuck = api.post({"to": ["13500135000"], "content": "【示例】卡住"})
    queue.send_message_batch = sending
    spec = stack.functions["ReconcilerFunction"]
    reconciler = load_handler(spec.code_dir, spec.environment)
    rewire(reconciler, clock=lambda: time.time() + 80 * 3600)
    with recorder.running("ReconcilerFunction"):
        swept = reconciler.handler({}, FakeContext("smsgw-reconciler", timeout_ms=60_000))
    assert swept["intakes_finished"] == 1
    assert swept["recipients_unknown"] >= 1
    assert swept["requests_released"] == 1
    assert swept["requests_completed"] >= 1

    # Then every call was granted to the role of the function that made it
    template = transformed()
    held = {f: grants(template, f) for f in {c.function for c in recorder.calls}}
    denied = sorted(
        {c for c in recorder.calls if not allows(held[c.function], c.action, c.resource, c.partition_key)},
        key=str,
    )
    assert not denied, "\n".join(map(str, denied))
    # And the flows did reach what the grants are for (the recording is not empty-handed)
    made = {(c.function, c.action) for c in recorder.calls}
    for expected in [
        ("SendApiFunction", "dynamodb:BatchWriteItem"),
        ("SendApiFunction", "dynamodb:BatchGetItem"),
        ("SendApiFunction", "dynamodb:DeleteItem"),
        ("SendApiFunction", "secretsmanager:GetSecretValue"),
        ("SubmitWorkerFunction", "sqs:ChangeMessageVisibility"),
        ("SubmitWorkerFunction", "sqs:SendMessage"),
        ("SubmitWorkerFunction", "events:PutEvents"),
        ("PushReceiverFunction", "dynamodb:UpdateItem"),
        ("BalanceCheckFunction", "secretsmanager:GetSecretValue"),
        ("ReconcilerFunction", "dynamodb:Query"),
        ("ReconcilerFunction", "sqs:SendMessage"),
        ("ReconcilerFunction", "events:PutEvents"),
        ("ReconcilerFunction", "dynamodb:BatchGetItem"),
        ("SendApiFunction", "events:PutEvents"),
        ("SendApiFunction", "dynamodb:Query"),
        ("CallbackSenderFunction", "dynamodb:GetItem"),
        ("CallbackSenderFunction", "sqs:ChangeMessageVisibility"),
    ]:
        assert expected in made, expected
    # And every lane's queue was polled and written to by the worker
    touched = {c.resource for c in recorder.calls if c.function == "SubmitWorkerFunction"}
    assert {"VerificationQueue", "SendQueue", "MarketingQueue"} <= touched
    keys = {(c.function, (c.partition_key or "").split("#")[0]) for c in recorder.calls}
    assert ("SubmitWorkerFunction", "RATE") in keys  # the lane: rate limit and pause
    assert ("SendApiFunction", "FREQ") in keys  # the frequency caps
    assert ("PushReceiverFunction", "MO") in keys
    for family in ("TO", "EXT", "CALLER", "REF", "IN", "MO"):
        assert ("SendApiFunction", family) in keys, family
    assert ("ReconcilerFunction", "FREQ") in keys  # a held verification send, counted at release
