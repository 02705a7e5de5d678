"""Fixtures for the end-to-end tests: the local stack over real sockets.

Two stacks, each shared by the tests of a module (each test uses its own numbers and
requests): ``local_stack`` runs ``template.yaml`` as ``make run`` does; ``failing_stack``
runs it with five receives before the dead-letter queue and no retry delay, plus a probe:
a queue (two-second visibility timeout, dead-letter queue after two receives) feeding a
small function with a one-second timeout that sleeps, raises or reports a failure when a
message asks it to. The probe tests the runtime's and the poller's mechanics without
depending on what the real worker decides.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from guodu_simulator import SimulatorConfig
from smsgw_local.stack import LocalGateway
from smsgw_local.template import load_template

FAILING_PARAMETERS = {"SubmitMaxAttempts": 5, "RetryBaseSeconds": 0, "RetryMaxSeconds": 0}
PROBE = "ProbeFunction"
PROBE_TIMEOUT = 1
PROBE_VISIBILITY_TIMEOUT = 2
PROBE_MAX_RECEIVES = 2
PROBE_HANDLER = """
import json
import time


def handler(event, context):
    failures = []
    for record in event["Records"]:
        order = json.loads(record["body"])
        time.sleep(order.get("sleep", 0))
        if order.get("raise"):
            raise RuntimeError("the probe was asked to fail")
        if order.get("fail"):
            failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures}
"""


def mobile() -> str:
    """A fresh, valid mainland mobile number, so that tests never share recipients."""
    return f"139{random.randrange(10**8):08d}"


def fast_simulator() -> SimulatorConfig:
    """Every number delivered, reports pushed within a few tens of milliseconds."""
    config = SimulatorConfig(seed=11)
    config.push.delivery_ratio = 1.0
    config.push.delay_min_seconds = 0.0
    config.push.delay_max_seconds = 0.05
    config.push.batch_window_seconds = 0.02
    config.push.retry_base_seconds = 0.05
    return config


class Gateway:
    """The local API as a client sees it."""

    def __init__(self, stack: LocalGateway) -> None:
        self.stack = stack
        self.http = requests.Session()

    def post_messages(
        self, body: Any, *, api_key: str | None = "", headers: dict[str, str] | None = None
    ) -> requests.Response:
        sent = dict(headers or {})
        if api_key is not None:
            sent["x-api-key"] = api_key or self.stack.api_key
        return self.http.post(f"{self.stack.api_url}/v1/messages", json=body, headers=sent, timeout=35)

    def get_message(self, request_id: str, *, api_key: str | None = "", base: str = "") -> requests.Response:
        sent = {} if api_key is None else {"x-api-key": api_key or self.stack.api_key}
        url = f"{base or self.stack.api_url}/v1/messages/{request_id}"
        return self.http.get(url, headers=sent, timeout=35)

    def send(self, *numbers: str, content: str = "【测试】您的验证码是123456") -> str:
        response = self.post_messages({"to": list(numbers), "content": content})
        assert response.status_code == 202, response.text
        request_id: str = response.json()["id"]
        return request_id

    def status(self, request_id: str) -> dict[str, Any]:
        response = self.get_message(request_id)
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()
        return data

    def recipient_states(self, request_id: str) -> set[str]:
        return {recipient["status"] for recipient in self.status(request_id)["recipients"]}


def queue_depth(stack: LocalGateway, logical_id: str) -> tuple[int, int]:
    """(visible, in flight) messages of one of the template's queues."""
    attributes = stack.client("sqs").get_queue_attributes(
        QueueUrl=stack.provisioned.ref(logical_id) if stack.provisioned else "",
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]), int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


@pytest.fixture(scope="module")
def local_stack() -> Iterator[LocalGateway]:
    """The gateway as ``make run`` starts it, on ephemeral ports, away from the shell's
    environment (a developer's GUODU_SUBMIT_URL must not send test traffic elsewhere)."""
    with LocalGateway(api_port=0, simulator_port=0, moto_port=0, env={}, simulator=fast_simulator()) as stack:
        yield stack


def _with_probe(template: dict[str, Any], code_dir: Path) -> dict[str, Any]:
    resources = template["Resources"]
    resources["ProbeDeadLetterQueue"] = {
        "Type": "AWS::SQS::Queue",
        "Properties": {"QueueName": {"Fn::Sub": "${AWS::StackName}-probe-dlq"}},
    }
    resources["ProbeQueue"] = {
        "Type": "AWS::SQS::Queue",
        "Properties": {
            "QueueName": {"Fn::Sub": "${AWS::StackName}-probe"},
            "VisibilityTimeout": PROBE_VISIBILITY_TIMEOUT,
            "RedrivePolicy": {
                "deadLetterTargetArn": {"Fn::GetAtt": ["ProbeDeadLetterQueue", "Arn"]},
                "maxReceiveCount": PROBE_MAX_RECEIVES,
            },
        },
    }
    resources[PROBE] = {
        "Type": "AWS::Serverless::Function",
        "Properties": {
            "FunctionName": {"Fn::Sub": "${AWS::StackName}-probe"},
            "CodeUri": str(code_dir),
            "Handler": "app.handler",
            "Timeout": PROBE_TIMEOUT,
            "Events": {
                "Probe": {
                    "Type": "SQS",
                    "Properties": {
                        "Queue": {"Fn::GetAtt": ["ProbeQueue", "Arn"]},
                        "BatchSize": 1,
                        "FunctionResponseTypes": ["ReportBatchItemFailures"],
                        "ScalingConfig": {"MaximumConcurrency": 2},
                    },
                }
            },
        },
    }
    return template


@pytest.fixture(scope="module")
def failing_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalGateway]:
    folder = tmp_path_factory.mktemp("failing")
    code_dir = folder / "probe"
    code_dir.mkdir()
    (code_dir / "app.py").write_text(PROBE_HANDLER, encoding="utf-8")
    path = folder / "template.yaml"
    template = _with_probe(load_template(), code_dir)
    path.write_text(yaml.safe_dump(template, allow_unicode=True, sort_keys=False), encoding="utf-8")
    with LocalGateway(
        api_port=0,
        simulator_port=0,
        moto_port=0,
        env={},
        simulator=fast_simulator(),
        parameters=FAILING_PARAMETERS,
        template_path=path,
    ) as stack:
        yield stack


@pytest.fixture(scope="module")
def gateway(local_stack: LocalGateway) -> Gateway:
    return Gateway(local_stack)


@pytest.fixture(scope="module")
def failing_gateway(failing_stack: LocalGateway) -> Gateway:
    return Gateway(failing_stack)
