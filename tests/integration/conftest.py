"""Handlers against moto, with every table and queue made from template.yaml."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from guodu_simulator import Simulator, SimulatorConfig
from smsgw.domain.model import Category
from smsgw_local.provision import Provisioned, provision
from tests.conftest import FakeContext, peek_queue, rewire, sample_event

PROVIDER_URL = "http://127.0.0.1:9/HttpQuickProcess/submitJson"  # replaced where a test needs a provider
PROVIDER_PASSWORD = "test-only-password"
PUSH_TOKEN = "test-push-token-0123456789"


def make_stack(
    provider_url: str = PROVIDER_URL,
    *,
    lane_accounts: dict[str, tuple[str, str]] | None = None,
    **parameters: Any,
) -> Provisioned:
    """Tables, queues, secrets and the bus of template.yaml, in moto (call inside ``aws``).
    ``lane_accounts``: lane -> (OperID, password) of a lane's own account (its
    ``<Lane>Account`` parameter is set to ``own``)."""
    secrets = {
        "ProviderSecret": json.dumps({"oper_id": "acct", "oper_pass": PROVIDER_PASSWORD}),
        "PushTokenSecret": PUSH_TOKEN,
    }
    for lane, (oper_id, password) in (lane_accounts or {}).items():
        parameters[f"{lane.title()}Account"] = "own"
        secrets[f"{lane.title()}ProviderSecret"] = json.dumps({"oper_id": oper_id, "oper_pass": password})
    return provision(
        parameters={"GuoduSubmitUrl": provider_url, "RetryBaseSeconds": 0, **parameters},
        secret_values=secrets,
    )


@pytest.fixture
def stack(aws: None) -> Provisioned:
    return make_stack()


@pytest.fixture
def send_api(stack: Provisioned, load_handler: Callable[..., ModuleType]) -> ModuleType:
    spec = stack.functions["SendApiFunction"]
    return load_handler(spec.code_dir, spec.environment)


class Api:
    """Calls the send API handler with API Gateway events made from events/send_api/*."""

    def __init__(self, module: ModuleType) -> None:
        self.module = module

    def post(self, body: Any, *, key: str | None = None, caller: str = "k1a2b3c4d5") -> tuple[int, Any]:
        event = copy.deepcopy(sample_event("send_api/post_messages.json"))
        event["body"] = body if isinstance(body, str) else json.dumps(body, ensure_ascii=False)
        event["requestContext"]["identity"]["apiKeyId"] = caller
        for headers in (event["headers"], event["multiValueHeaders"]):
            headers.pop("Idempotency-Key")
            if key is not None:
                headers["Idempotency-Key"] = key if headers is event["headers"] else [key]
        return self._call(event)

    def get(self, request_id: str, **query: str) -> tuple[int, Any]:
        event = copy.deepcopy(sample_event("send_api/get_message.json"))
        event["path"] = f"/v1/messages/{request_id}"
        event["pathParameters"] = {"id": request_id}
        event["queryStringParameters"] = query or None
        event["multiValueQueryStringParameters"] = {k: [v] for k, v in query.items()} or None
        return self._call(event)

    def call(
        self, method: str, path: str, body: Any = None, *, caller: str = "k1a2b3c4d5", **query: str
    ) -> tuple[int, Any]:
        """Any route of the API: ``path`` as the client writes it, ``query`` its parameters."""
        event = copy.deepcopy(sample_event("send_api/get_message.json"))
        event.update(httpMethod=method, path=path, resource=path, pathParameters=None)
        event["requestContext"].update(httpMethod=method, path=path, resourcePath=path)
        event["requestContext"]["identity"]["apiKeyId"] = caller
        event["queryStringParameters"] = query or None
        event["multiValueQueryStringParameters"] = {k: [v] for k, v in query.items()} or None
        event["body"] = None if body is None else json.dumps(body, ensure_ascii=False)
        return self._call(event)

    def search(self, *, caller: str = "k1a2b3c4d5", **query: str) -> tuple[int, Any]:
        return self.call("GET", "/v1/messages", caller=caller, **query)

    def inbound(self, *, caller: str = "k1a2b3c4d5", **query: str) -> tuple[int, Any]:
        return self.call("GET", "/v1/inbound", caller=caller, **query)

    def _call(self, event: dict[str, Any]) -> tuple[int, Any]:
        response = self.module.handler(event, FakeContext("smsgw-send-api"))
        return response["statusCode"], json.loads(response["body"] or "null")


@pytest.fixture
def api(send_api: ModuleType) -> Api:
    return Api(send_api)


@pytest.fixture
def load_api(load_handler: Callable[..., ModuleType]) -> Callable[[Provisioned], Api]:
    """The send API of a stack made inside a test (with parameters of its own)."""

    def load(stack: Provisioned) -> Api:
        spec = stack.functions["SendApiFunction"]
        return Api(load_handler(spec.code_dir, spec.environment))

    return load


def queued_messages(stack: Provisioned, queue: str = "SendQueue") -> list[dict[str, Any]]:
    """Every message now on one of the template's queues (left there)."""
    return peek_queue(boto3.client("sqs"), stack.ref(queue))


def table_items(stack: Provisioned, prefix: str = "") -> list[dict[str, Any]]:
    items = boto3.client("dynamodb").scan(TableName=stack.ref("MessagesTable"))["Items"]
    return [i for i in items if i["pk"]["S"].startswith(prefix)]


class EventSink:
    """An EventBridge rule on the gateway's bus with an SQS target, as a subscriber would set it up."""

    def __init__(self, stack: Provisioned) -> None:
        self.sqs = boto3.client("sqs")
        self.url = self.sqs.create_queue(QueueName="event-sink")["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        events = boto3.client("events")
        bus = stack.ref("EventBus")
        events.put_rule(
            Name="everything-from-smsgw", EventBusName=bus, EventPattern=json.dumps({"source": ["smsgw"]})
        )
        events.put_targets(
            Rule="everything-from-smsgw", EventBusName=bus, Targets=[{"Id": "sink", "Arn": arn}]
        )
        self.received: list[dict[str, Any]] = []

    def drain(self) -> list[dict[str, Any]]:
        """Every event delivered so far (and remembered across calls)."""
        while True:
            batch = self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10).get("Messages", [])
            if not batch:
                return self.received
            for message in batch:
                self.received.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"])

    def of_type(self, detail_type: str) -> list[dict[str, Any]]:
        return [e for e in self.drain() if e["detail-type"] == detail_type]


@pytest.fixture
def event_sink(stack: Provisioned) -> EventSink:
    return EventSink(stack)


class Pusher:
    """Calls the push receiver handler the way API Gateway does for the platform's POSTs."""

    def __init__(self, module: ModuleType) -> None:
        self.module = module

    def push(
        self,
        body: Any,
        *,
        token: str = PUSH_TOKEN,
        source_ip: str = "221.179.172.68",
        content_type: str = "application/json;charset=UTF-8",
    ) -> tuple[int, str]:
        event = copy.deepcopy(sample_event("push_receiver/report_packet.json"))
        event["path"] = f"/v1/guodu/push/{token}"
        event["pathParameters"] = {"token": token}
        event["body"] = body if isinstance(body, str) else json.dumps(body, ensure_ascii=False)
        event["headers"]["Content-Type"] = content_type
        event["multiValueHeaders"]["Content-Type"] = [content_type]
        event["requestContext"]["identity"]["sourceIp"] = source_ip
        response = self.module.handler(event, FakeContext("smsgw-push-receiver"))
        return response["statusCode"], response["body"]


@pytest.fixture
def load_pusher(load_handler: Callable[..., ModuleType]) -> Callable[..., Pusher]:
    def load(stack: Provisioned, **env: str) -> Pusher:
        spec = stack.functions["PushReceiverFunction"]
        return Pusher(load_handler(spec.code_dir, {**spec.environment, **env}))

    return load


@pytest.fixture
def pusher(stack: Provisioned, load_pusher: Callable[..., Pusher]) -> Pusher:
    return load_pusher(stack)


@pytest.fixture
def simulator() -> Iterator[Simulator]:
    """The Guodu simulator on an ephemeral port, with the account the provider secret names."""
    config = SimulatorConfig().add_account("acct", PROVIDER_PASSWORD, balance=10_000_000)
    with Simulator(config) as sim:
        yield sim


def sqs_event(messages: list[dict[str, Any]], arn: str) -> dict[str, Any]:
    """The SQS event source's event for received ``messages`` (as Lambda gets them)."""
    template = sample_event("submit_worker/sqs_chunk.json")["Records"][0]
    records = []
    for message in messages:
        record = copy.deepcopy(template)
        record.update(
            messageId=message["MessageId"],
            receiptHandle=message["ReceiptHandle"],
            body=message["Body"],
            md5OfBody=message["MD5OfBody"],
            eventSourceARN=arn,
            awsRegion="us-east-1",
        )
        record["attributes"]["ApproximateReceiveCount"] = message["Attributes"]["ApproximateReceiveCount"]
        records.append(record)
    return {"Records": records}


# Each lane's queue, by category.
LANE_QUEUES = {
    "verification": "VerificationQueue",
    "transactional": "SendQueue",
    "marketing": "MarketingQueue",
}


class Worker:
    """Plays one lane's SQS event source for the worker handler (``queue``: the lane's
    queue, a logical id of the template)."""

    def __init__(self, module: ModuleType, stack: Provisioned, queue: str = "SendQueue") -> None:
        self.module = module
        self.url = stack.ref(queue)
        self.arn = stack.attribute(queue, "Arn")
        lane = next(category for category, logical in LANE_QUEUES.items() if logical == queue)
        self.lane = Category(lane)
        self.sqs = boto3.client("sqs")
        self.invocations = 0

    @property
    def graph(self) -> Any:
        """The handler's object graph (``smsgw.wiring.submit_worker``)."""
        return self.module.graph

    @property
    def service(self) -> Any:
        """The lane's service in the handler."""
        return self.graph.services[self.lane]

    def event(self, messages: list[dict[str, Any]]) -> dict[str, Any]:
        return sqs_event(messages, self.arn)

    def poll_once(self, batch_size: int = 5) -> int:
        """One invocation; returns how many messages it got."""
        messages = self.sqs.receive_message(
            QueueUrl=self.url, MaxNumberOfMessages=batch_size, MessageSystemAttributeNames=["All"]
        ).get("Messages", [])
        if not messages:
            return 0
        self.invocations += 1
        result = self.module.handler(self.event(messages), FakeContext("smsgw-submit-worker"))
        failed = {f["itemIdentifier"] for f in result["batchItemFailures"]}
        for message in messages:
            if message["MessageId"] not in failed:
                self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"])
        return len(messages)

    def redeliver(self, request_id: str, chunk: int) -> None:
        """SQS delivers a chunk's message once more (at-least-once delivery), then drain."""
        self.sqs.send_message(
            QueueUrl=self.url, MessageBody=json.dumps({"v": 1, "request_id": request_id, "chunk": chunk})
        )
        self.drain()

    def drain(self, rounds: int = 50) -> None:
        """Invoke until the queue stays empty (failed messages come back at once: no delay)."""
        empty = 0
        for _ in range(rounds):
            empty = empty + 1 if self.poll_once() == 0 else 0
            if empty == 2:
                return
        raise AssertionError("the send queue did not drain")


def stopping_before_the_header(api: Api, patch: pytest.MonkeyPatch) -> None:
    """The next send stores its chunks, then fails to store its header (DynamoDB down)."""
    store = api.module.graph.store.requests
    create = store.create_request

    def failing_once(record: object, **_: object) -> bool:
        patch.setattr(store, "create_request", create)
        raise ClientError({"Error": {"Code": "InternalServerError", "Message": "x"}}, "PutItem")

    patch.setattr(store, "create_request", failing_once)


@pytest.fixture
def load_worker(load_handler: Callable[..., ModuleType]) -> Callable[..., Worker]:
    def load(stack: Provisioned, *, queue: str = "SendQueue", **env: str) -> Worker:
        spec = stack.functions["SubmitWorkerFunction"]
        # No lane pause unless a test asks for one: it would only slow the others down.
        return Worker(
            load_handler(spec.code_dir, {**spec.environment, "LANE_PAUSE_BASE_SECONDS": "0", **env}),
            stack,
            queue,
        )

    return load


@pytest.fixture
def worker(stack: Provisioned, load_worker: Callable[..., Worker]) -> Worker:
    return load_worker(stack)


@pytest.fixture
def reconcile(stack: Provisioned, load_handler: Callable[..., ModuleType]) -> Callable[..., dict[str, int]]:
    """The reconciler handler of ``stack``; ``run(later=s)`` sweeps as if ``s`` seconds
    had passed."""
    spec = stack.functions["ReconcilerFunction"]
    module = load_handler(spec.code_dir, spec.environment)
    offset = [0.0]
    rewire(module, clock=lambda: time.time() + offset[0])

    def run(*, later: float = 0) -> dict[str, int]:
        offset[0] = later
        result: dict[str, int] = module.handler({}, FakeContext("smsgw-reconciler", timeout_ms=60_000))
        return result

    return run
