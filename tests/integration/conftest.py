"""Handlers against moto, with every table and queue made from template.yaml."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from types import ModuleType
from typing import Any

import boto3
import pytest

from smsgw_local.provision import Provisioned, provision
from tests.conftest import FakeContext, sample_event

PROVIDER_URL = "http://127.0.0.1:9/HttpQuickProcess/submitJson"  # replaced where a test needs a provider


@pytest.fixture
def stack(aws: None) -> Provisioned:
    return provision(
        parameters={"GuoduSubmitUrl": PROVIDER_URL, "RetryBaseSeconds": 0},
        secret_values={"ProviderSecret": json.dumps({"oper_id": "acct", "oper_pass": "test-only-password"})},
    )


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

    def _call(self, event: dict[str, Any]) -> tuple[int, Any]:
        response = self.module.handler(event, FakeContext("smsgw-send-api"))
        return response["statusCode"], json.loads(response["body"])


@pytest.fixture
def api(send_api: ModuleType) -> Api:
    return Api(send_api)


def queued_messages(stack: Provisioned, queue: str = "SendQueue") -> list[dict[str, Any]]:
    """Every message now on a queue (received with a short visibility, then left there)."""
    sqs = boto3.client("sqs")
    url = stack.ref(queue)
    found: dict[str, dict[str, Any]] = {}
    for _ in range(50):
        batch = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=30, MessageAttributeNames=["All"]
        ).get("Messages", [])
        if not batch:
            break
        for message in batch:
            found[message["MessageId"]] = message
    for message in found.values():
        sqs.change_message_visibility(
            QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
        )
    return list(found.values())


def table_items(stack: Provisioned) -> list[dict[str, Any]]:
    return boto3.client("dynamodb").scan(TableName=stack.ref("MessagesTable"))["Items"]
