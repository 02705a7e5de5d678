"""Shared fixtures. AWS is moto; the provider is a real HTTP server (never the internet)."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
EVENTS = REPO / "events"

# No test may reach a real AWS account, whatever the developer's shell holds.
os.environ.update(
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing",
    AWS_SECURITY_TOKEN="testing",
    AWS_SESSION_TOKEN="testing",
    AWS_DEFAULT_REGION="us-east-1",
    POWERTOOLS_METRICS_NAMESPACE="SmsGatewayTest",
    POWERTOOLS_SERVICE_NAME="smsgw",
)
for _var in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
    os.environ.pop(_var, None)


def peek_queue(sqs: Any, url: str) -> list[dict[str, Any]]:
    """Every message now on a queue: received with a short visibility, then made visible
    again at once, so the queue is left as it was."""
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


def sample_event(name: str) -> dict[str, Any]:
    """A copy of ``events/<name>`` (the samples shipped with the repository)."""
    data: dict[str, Any] = json.loads((EVENTS / name).read_text(encoding="utf-8"))
    return data


@pytest.fixture
def aws() -> Iterator[None]:
    from moto import mock_aws

    from smsgw_local import moto_fidelity

    moto_fidelity.install()
    with mock_aws():
        yield


def import_handler(code_dir: Path, environment: dict[str, str], patch: pytest.MonkeyPatch) -> ModuleType:
    """Import a function's ``app.py`` as Lambda would: its own environment, a fresh module."""
    for key, value in environment.items():
        patch.setenv(key, value)
    name = f"handler_{code_dir.name}_{uuid.uuid4().hex[:8]}"
    spec = importlib.util.spec_from_file_location(name, code_dir / "app.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def rewire(module: ModuleType, **seams: Any) -> Any:
    """Build a loaded handler's graph again through its own wiring (``module.build``), with
    the test's seams (its own clients, clock, ...); the handler uses it from then on."""
    module.graph = module.build(module.graph.settings, **seams)
    return module.graph


@pytest.fixture
def load_handler(monkeypatch: pytest.MonkeyPatch) -> Callable[..., ModuleType]:
    """``import_handler`` for one test; the environment is restored after it."""

    def load(code_dir: Path, environment: dict[str, str]) -> ModuleType:
        return import_handler(code_dir, environment, monkeypatch)

    return load


class FakeContext:
    """The parts of the Lambda context that the handlers and Powertools read."""

    def __init__(self, function_name: str = "smsgw-test", timeout_ms: int = 30_000) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = "256"  # a string, as the real runtime gives it
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}"
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "test"
        self._timeout_ms = timeout_ms

    def get_remaining_time_in_millis(self) -> int:
        return self._timeout_ms


@pytest.fixture
def lambda_context() -> FakeContext:
    return FakeContext()


def wait_until(predicate: Callable[[], Any], timeout: float = 15.0, interval: float = 0.1) -> Any:
    """Poll ``predicate`` until it returns something truthy (returned) or time runs out
    (then the last falsy value is returned, for the assertion to show)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)
