"""Fuzzing the two public endpoints: the send API and the push receiver, in-process.

The real handlers run against moto (tables, queues and secrets made from template.yaml,
as in the integration tests), called with API Gateway events built from the samples in
``events/``. Every answer must be one the contract documents, and a refused request must
write nothing to the table (every write the handlers' DynamoDB client makes is recorded)
and queue nothing.
"""

from __future__ import annotations

import base64
import copy
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import boto3
import pytest
from hypothesis import HealthCheck, Phase, settings

from smsgw_local.provision import Provisioned
from tests.conftest import FakeContext, import_handler, sample_event
from tests.integration.conftest import PUSH_TOKEN, make_stack

# A fixed seed, a bounded number of examples, no example database written to the tree:
# the same inputs on every run, and a run that fits in CI. A failure is shrunk but not
# "explained" (that phase re-runs it hundreds of times over to comment on each part).
settings.register_profile(
    "fuzz",
    derandomize=True,
    database=None,
    deadline=None,
    phases=(Phase.explicit, Phase.generate, Phase.shrink),
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)

# What the contract documents, by status: the error codes each may carry (None: success).
SEND_ANSWERS: dict[int, frozenset[str] | None] = {
    202: None,
    400: frozenset({"validation_failed", "invalid_json", "too_many_invalid"}),
    409: frozenset({"idempotency_key_reused"}),
    429: frozenset({"frequency_capped"}),
}
PUSH_ANSWERS: dict[int, frozenset[str] | None] = {
    200: None,
    400: frozenset({"malformed_packet"}),
    403: frozenset({"forbidden"}),
    413: frozenset({"too_many_items", "payload_too_large"}),
}
RAW_PREFIX = "RAW#"


@dataclass(frozen=True)
class Answer:
    status: int
    body: str

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def code(self) -> str:
        """The contract's error code, for statistics; "" for a success."""
        try:
            return str(self.json()["error"]["code"])
        except (ValueError, KeyError, TypeError):
            return ""


# The DynamoDB operations that write, and where each names the items it writes.
WRITE_OPERATIONS = frozenset({"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"})


def _item_name(key: dict[str, Any]) -> str:
    return f"{key['pk']['S']}/{key.get('sk', {}).get('S', '')}"


def written_items(operation: str, params: dict[str, Any]) -> list[str]:
    """``pk/sk`` of every item a successful write call wrote (or deleted)."""
    if operation == "PutItem":
        return [_item_name(params["Item"])]
    if operation in ("UpdateItem", "DeleteItem"):
        return [_item_name(params["Key"])]
    names: list[str] = []
    if operation == "BatchWriteItem":
        for requests in params["RequestItems"].values():
            for request in requests:
                put, delete = request.get("PutRequest"), request.get("DeleteRequest")
                names.append(_item_name(put["Item"] if put else delete["Key"]))
    elif operation == "TransactWriteItems":
        for action in params["TransactItems"]:
            if "Put" in action:
                names.append(_item_name(action["Put"]["Item"]))
            for kind in ("Update", "Delete"):
                if kind in action:
                    names.append(_item_name(action[kind]["Key"]))
    return names


class WriteRecorder:
    """Every item a handler's DynamoDB client writes, seen through botocore's events: what a
    request left behind, without scanning the table after each example."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._written: list[str] = []

    def attach(self, client: Any) -> None:
        client.meta.events.register("provide-client-params.dynamodb", self._remember)
        client.meta.events.register("after-call.dynamodb", self._record)

    @staticmethod
    def _remember(params: dict[str, Any], context: dict[str, Any], model: Any, **_: Any) -> None:
        if model.name in WRITE_OPERATIONS:
            context["fuzz_write"] = params

    def _record(self, http_response: Any, context: dict[str, Any], model: Any, **_: Any) -> None:
        params = context.get("fuzz_write")
        if params is not None and http_response.status_code < 300:
            with self._lock:
                self._written.extend(written_items(model.name, params))

    def take(self) -> list[str]:
        with self._lock:
            written, self._written = self._written, []
        return written


@dataclass(frozen=True)
class Effects:
    """What one request left behind: the items written, the messages queued."""

    written: list[str]
    queued: int

    def stored(self, *, raw_allowed: bool = False) -> list[str]:
        """The lasting effects, raw push packets aside when they are allowed."""
        found = [name for name in self.written if not (raw_allowed and name.startswith(RAW_PREFIX))]
        if self.queued:
            found.append(f"{self.queued:+d} messages on the send queues")
        return found


def _load(code_dir: Any, environment: dict[str, str]) -> ModuleType:
    """A handler for the whole module: its environment is restored once imported."""
    with pytest.MonkeyPatch.context() as patch:
        return import_handler(code_dir, environment, patch)


def _with_headers(event: dict[str, Any], headers: dict[str, str]) -> None:
    event["headers"] = dict(headers)
    event["multiValueHeaders"] = {name: [value] for name, value in headers.items()}


class FuzzedGateway:
    """The send API and push receiver handlers, their moto stack, and what is stored."""

    def __init__(self, stack: Provisioned) -> None:
        self.stack = stack
        self.send_api = _load(
            stack.functions["SendApiFunction"].code_dir, stack.functions["SendApiFunction"].environment
        )
        self.push_receiver = _load(
            stack.functions["PushReceiverFunction"].code_dir,
            stack.functions["PushReceiverFunction"].environment,
        )
        self.dynamodb = boto3.client("dynamodb")
        self.sqs = boto3.client("sqs")
        self.table = str(stack.ref("MessagesTable"))
        self.queues = [str(stack.ref("SendQueue")), str(stack.ref("SendDeadLetterQueue"))]
        self.recorder = WriteRecorder()
        self.recorder.attach(self.send_api.graph.dynamodb)
        self.recorder.attach(self.push_receiver.graph.dynamodb)

    def send(
        self, body: str, *, headers: dict[str, str] | None = None, base64_encoded: bool = False
    ) -> tuple[Answer, Effects]:
        event = copy.deepcopy(sample_event("send_api/post_messages.json"))
        _with_headers(event, {"Content-Type": "application/json", "x-api-key": "REDACTED", **(headers or {})})
        event["body"] = (
            base64.b64encode(body.encode("utf-8", "surrogatepass")).decode() if base64_encoded else body
        )
        event["isBase64Encoded"] = base64_encoded
        return self._call(self.send_api, event, "smsgw-send-api")

    def push(
        self,
        body: bytes | str,
        *,
        token: str = PUSH_TOKEN,
        content_type: str | None = "application/json;charset=UTF-8",
        base64_encoded: bool | None = None,
    ) -> tuple[Answer, Effects]:
        """POST to the push route. Bytes that are not UTF-8 arrive base64-encoded, as API
        Gateway passes a binary body; ``base64_encoded`` forces either form."""
        event = copy.deepcopy(sample_event("push_receiver/report_packet.json"))
        event["path"] = f"/v1/guodu/push/{token}"
        event["pathParameters"] = {"token": token}
        headers = dict(event["headers"])
        headers.pop("Content-Type", None)
        if content_type is not None:
            headers["Content-Type"] = content_type
        _with_headers(event, headers)
        raw = body if isinstance(body, bytes) else body.encode("utf-8", "surrogatepass")
        if base64_encoded is None:
            try:
                text: str | None = raw.decode("utf-8")
            except UnicodeDecodeError:
                text = None
            base64_encoded = text is None
        event["isBase64Encoded"] = base64_encoded
        event["body"] = (
            base64.b64encode(raw).decode() if base64_encoded else raw.decode("utf-8", "surrogatepass")
        )
        return self._call(self.push_receiver, event, "smsgw-push-receiver")

    def _call(self, module: ModuleType, event: dict[str, Any], name: str) -> tuple[Answer, Effects]:
        self.recorder.take()
        queued = self.queued()
        response = module.handler(event, FakeContext(name))
        effects = Effects(self.recorder.take(), self.queued() - queued)
        return Answer(response["statusCode"], response["body"]), effects

    def queued(self) -> int:
        """Messages on the send queue and its dead-letter queue, visible or not."""
        total = 0
        for url in self.queues:
            attributes = self.sqs.get_queue_attributes(
                QueueUrl=url,
                AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
            )["Attributes"]
            total += int(attributes["ApproximateNumberOfMessages"])
            total += int(attributes["ApproximateNumberOfMessagesNotVisible"])
        return total

    def item(self, pk: str, sk: str) -> dict[str, Any] | None:
        found: dict[str, Any] | None = self.dynamodb.get_item(
            TableName=self.table, Key={"pk": {"S": pk}, "sk": {"S": sk}}, ConsistentRead=True
        ).get("Item")
        return found

    def drain_send_queue(self) -> None:
        """Nobody submits here: keep the queue shallow (moto's SQS slows as it fills)."""
        while messages := self.sqs.receive_message(QueueUrl=self.queues[0], MaxNumberOfMessages=10).get(
            "Messages", []
        ):
            self.sqs.delete_message_batch(
                QueueUrl=self.queues[0],
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
            )


@pytest.fixture(scope="module")
def fuzzed() -> Iterator[FuzzedGateway]:
    from moto import mock_aws

    from smsgw_local import moto_fidelity

    moto_fidelity.install()
    with mock_aws():
        yield FuzzedGateway(make_stack())


def error_problems(answer: Answer, documented: dict[int, frozenset[str] | None]) -> list[str]:
    """A documented status, and for an error the contract's JSON with a documented code."""
    if answer.status not in documented:
        return [f"HTTP {answer.status} is not a documented answer: {answer.body[:300]}"]
    codes = documented[answer.status]
    if codes is None:
        return []
    try:
        error = answer.json()["error"]
    except (ValueError, KeyError, TypeError):
        return [f"HTTP {answer.status} without the contract's error body: {answer.body[:300]}"]
    problems = []
    if error.get("code") not in codes:
        problems.append(f"HTTP {answer.status} with code {error.get('code')!r}, not one of {sorted(codes)}")
    if not isinstance(error.get("message"), str) or not isinstance(error.get("details"), list):
        problems.append(f"the error body lacks a message or a details list: {answer.body[:300]}")
    return problems
