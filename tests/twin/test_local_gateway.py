"""The local twin (``make run``, ``smsgw_local.LocalGateway``) end to end: real sockets, the
real handlers, moto server.

These tests cover the mechanics the local stack adds around the handlers: the API front
(keys, routes, events, responses), the SQS event source (batches, partial failures,
dead-lettering), the function runtimes (environment, timeouts) and ``python -m
smsgw_local`` itself. What the handlers decide is tested in the unit and integration
suites.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from aws_lambda_powertools.utilities.parser.models import APIGatewayProxyEventModel, SqsModel

from smsgw_local.apigw import (
    BAD_REQUEST,
    FORBIDDEN,
    INTERNAL_ERROR,
    MISSING_TOKEN,
    TIMED_OUT,
    TOO_LARGE,
    ApiSettings,
    GatewayError,
    GatewayResponses,
    LocalApiGateway,
    Request,
    Route,
    build_proxy_event,
    gateway_responses_of,
)
from smsgw_local.runtime import FunctionPool, Invocation
from smsgw_local.schedules import UnsupportedSchedule, rate_seconds
from smsgw_local.sqs_source import failed_message_ids, sqs_record
from smsgw_local.stack import LocalGateway
from smsgw_local.template import REPO_ROOT, Context, load_template
from tests.conftest import wait_until
from tests.e2e.conftest import (
    FAILING_PARAMETERS,
    PROBE,
    PROBE_MAX_RECEIVES,
    PROBE_TIMEOUT,
    Gateway,
    mobile,
    queue_depth,
)
from tests.twin.probe import probe_pool

pytestmark = pytest.mark.e2e

SUBMIT_WORKER = "SubmitWorkerFunction"
SEND_API = "SendApiFunction"
PUSH_RECEIVER = "PushReceiverFunction"
# The gateway responses template.yaml defines, as the local stack reads them.
TEMPLATE_RESPONSES = gateway_responses_of(load_template(), Context(parameters={}))


def _sam_event(*args: str) -> dict[str, Any] | None:
    """``sam local generate-event ...`` when the SAM CLI is installed (make test installs it)."""
    tools = os.environ.get("SMSGW_TOOLS_BIN") or str(REPO_ROOT / ".venv-tools" / "bin")
    sam = shutil.which("sam", path=tools) or shutil.which("sam")
    if sam is None:
        return None
    env = {**os.environ, "SAM_CLI_TELEMETRY": "0", "AWS_DEFAULT_REGION": "us-east-1"}
    done = subprocess.run(
        [sam, "local", "generate-event", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    )
    data: dict[str, Any] = json.loads(done.stdout)
    return data


# Fields whose keys are data (header names, parameters), not part of the event's shape.
_DATA_MAPS = frozenset(
    {
        "headers",
        "multiValueHeaders",
        "queryStringParameters",
        "multiValueQueryStringParameters",
        "pathParameters",
        "stageVariables",
        "messageAttributes",
    }
)


def _key_paths(data: Any, prefix: str = "") -> set[str]:
    """Every key of a JSON object, as dotted paths, without descending into data maps."""
    if not isinstance(data, dict):
        return set()
    paths = set()
    for key, value in data.items():
        paths.add(prefix + key)
        if key not in _DATA_MAPS:
            paths |= _key_paths(value, f"{prefix}{key}.")
    return paths


# -- the events the local stack builds ---------------------------------------------------


def test_api_event_has_the_shape_of_an_api_gateway_rest_proxy_event() -> None:
    # Given a request to a route with a path parameter, a repeated query parameter and an API key
    settings = ApiSettings(stage="live", api_key="k")
    route = Route("GET", "/v1/messages/{id}", SEND_API, api_key_required=True)
    request = Request(
        method="GET",
        target="/v1/messages/a%20b?limit=5&tag=x&tag=y",
        headers=(("Host", "127.0.0.1:3000"), ("x-api-key", "k"), ("Accept", "a"), ("Accept", "b")),
        body=b"",
        source_ip="127.0.0.1",
    )

    # When the local API Gateway turns it into an event
    event = build_proxy_event(
        settings,
        route,
        request,
        path="/v1/messages/a%20b",
        path_parameters={"id": "a b"},
        request_id="r-1",
        api_key="k",
    )

    # Then Powertools reads it as a REST proxy event, with what API Gateway puts there
    parsed = APIGatewayProxyEventModel.model_validate(event)
    assert parsed.pathParameters == {"id": "a b"}
    assert parsed.path == "/v1/messages/a%20b"
    assert parsed.resource == "/v1/messages/{id}"
    assert parsed.queryStringParameters == {"limit": "5", "tag": "y"}
    assert parsed.multiValueQueryStringParameters == {"limit": ["5"], "tag": ["x", "y"]}
    assert parsed.multiValueHeaders["Accept"] == ["a", "b"]
    assert parsed.requestContext.identity.apiKey == "k"
    assert parsed.requestContext.identity.apiKeyId == "local-api-key-id"
    assert parsed.requestContext.path == "/live/v1/messages/a%20b"
    assert parsed.body is None
    assert parsed.isBase64Encoded is False
    # And it has every field of the SAM CLI's sample event
    sample = _sam_event("apigateway", "aws-proxy")
    if sample is not None:
        assert _key_paths(sample) <= _key_paths(event)


def test_sqs_record_has_the_shape_of_a_lambda_sqs_record() -> None:
    # Given a message as ReceiveMessage returns it, with attributes of every kind
    message = {
        "MessageId": "m-1",
        "ReceiptHandle": "rh-1",
        "MD5OfBody": "5d41402abc4b2a76b9719d911017c592",
        "Body": "hello",
        "Attributes": {
            "SenderId": "AIDAEXAMPLE",
            "SentTimestamp": "1",
            "ApproximateReceiveCount": "2",
            "ApproximateFirstReceiveTimestamp": "2",
        },
        "MD5OfMessageAttributes": "abc",
        "MessageAttributes": {
            "reason": {"StringValue": "x", "DataType": "String"},
            "blob": {"BinaryValue": b"\x00\x01", "DataType": "Binary"},
        },
    }

    # When the poller turns it into a record of the event
    record = sqs_record(message, queue_arn="arn:aws:sqs:us-east-1:123456789012:q", region="us-east-1")

    # Then Powertools reads it as an SQS event, with Lambda's camelCase attributes
    parsed = SqsModel.model_validate({"Records": [record]}).Records[0]
    assert parsed.attributes.ApproximateReceiveCount == "2"
    assert record["messageAttributes"]["reason"] == {
        "stringValue": "x",
        "stringListValues": [],
        "binaryListValues": [],
        "dataType": "String",
    }
    assert record["messageAttributes"]["blob"]["binaryValue"] == "AAE="
    assert record["eventSource"] == "aws:sqs"
    sample = _sam_event("sqs", "receive-message")
    if sample is not None:
        assert _key_paths(sample["Records"][0]) <= _key_paths(record)


@pytest.mark.parametrize(
    ("response", "failed"),
    [
        (None, set()),
        ({}, set()),
        ({"batchItemFailures": []}, set()),
        ({"batchItemFailures": None}, set()),
        ({"batchItemFailures": [{"itemIdentifier": "b"}]}, {"b"}),
        ({"batchItemFailures": [{"itemIdentifier": ""}]}, {"a", "b"}),
        ({"batchItemFailures": [{"itemIdentifier": None}]}, {"a", "b"}),
        ({"batchItemFailures": [{"id": "b"}]}, {"a", "b"}),
        ({"batchItemFailures": [{"itemIdentifier": "zz"}]}, {"a", "b"}),
        ("ok", {"a", "b"}),
    ],
)
def test_partial_batch_responses_are_read_as_lambda_reads_them(response: Any, failed: set[str]) -> None:
    # Given a batch of two messages, When the function answers `response`,
    # Then exactly the messages Lambda would keep are kept
    assert failed_message_ids(response, ["a", "b"]) == failed


def _gateway_answering(outcome: Invocation) -> LocalApiGateway:
    route = Route("POST", "/v1/things", "ThingFunction", api_key_required=False)
    settings = ApiSettings(stage="live", api_key="k", gateway_responses=TEMPLATE_RESPONSES)
    return LocalApiGateway(settings, [route], lambda fn, ev: outcome, {})


def _contract_error(body: bytes | str, code: str, message: str) -> None:
    assert json.loads(body) == {"error": {"code": code, "message": message, "details": []}}


_POST = Request("POST", "/v1/things", (("Host", "h"),), b"{}", "127.0.0.1")


@pytest.mark.parametrize(
    "outcome",
    [
        Invocation("ThingFunction", "r", ok=False, error={"errorType": "ValueError", "errorMessage": "boom"}),
        Invocation("ThingFunction", "r", ok=False, error={"errorType": "Sandbox.Timedout"}, timed_out=True),
        Invocation("ThingFunction", "r", ok=True, payload={"statusCode": 200, "body": {"not": "a string"}}),
        Invocation("ThingFunction", "r", ok=True, payload={"statusCode": 200, "extra": 1}),
        Invocation("ThingFunction", "r", ok=True, payload="not an object"),
    ],
    ids=["exception", "timeout", "body-not-a-string", "unknown-key", "not-an-object"],
)
def test_a_failed_invocation_or_a_malformed_proxy_response_is_a_502(outcome: Invocation) -> None:
    # Given a function that fails or answers what API Gateway cannot read
    gateway = _gateway_answering(outcome)

    # When it is called through the local API Gateway
    handled = gateway.handle(_POST)

    # Then the client gets API Gateway's 502, in the contract's error shape
    assert handled.function == "ThingFunction"
    reply = handled.reply
    assert reply.status == 502
    _contract_error(reply.body, "internal_error", "Internal server error")


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (MISSING_TOKEN, 403, "missing_authentication_token"),
        (FORBIDDEN, 403, "invalid_api_key"),
        (TOO_LARGE, 413, "payload_too_large"),
        (INTERNAL_ERROR, 502, "internal_error"),
        (TIMED_OUT, 504, "gateway_timeout"),
        (BAD_REQUEST, 400, "request_rejected"),
    ],
    ids=lambda value: value.response_type if isinstance(value, GatewayError) else None,
)
def test_the_local_gateway_answers_with_the_templates_gateway_responses(
    error: GatewayError, status: int, code: str
) -> None:
    # Given the gateway responses template.yaml defines, and a gateway without any
    customised = GatewayResponses(TEMPLATE_RESPONSES)
    plain = GatewayResponses()

    # When API Gateway would answer `error` itself
    reply = customised.reply(error, request_id="req-1")
    default = plain.reply(error, request_id="req-1")

    # Then the template's answer is the contract's shape at API Gateway's status, and without
    # customisation it is API Gateway's default `{"message": ...}` at the same status
    assert reply.status == default.status == status
    _contract_error(reply.body, code, error.message)
    assert json.loads(default.body) == {"message": error.message}
    headers = dict(reply.headers)
    assert headers["Content-Type"] == "application/json"
    assert headers["x-amzn-RequestId"] == "req-1"
    if error.error_type:
        assert headers["x-amzn-ErrorType"] == error.error_type


def test_a_proxy_response_is_written_back_as_api_gateway_writes_it() -> None:
    # Given a function answering with single and multi-value headers and a base64 body
    payload = {
        "statusCode": 201,
        "headers": {"X-One": "1", "X-Both": "single"},
        "multiValueHeaders": {"Set-Cookie": ["a=1", "b=2"], "X-Both": ["multi"]},
        "body": base64.b64encode(b"\x00binary").decode(),
        "isBase64Encoded": True,
    }
    gateway = _gateway_answering(Invocation("ThingFunction", "r", ok=True, payload=payload))

    # When it is called
    reply = gateway.handle(_POST).reply

    # Then status, merged headers (multi values win) and the decoded body come back
    assert reply.status == 201
    assert reply.body == b"\x00binary"
    headers = [(k, v) for k, v in reply.headers if not k.lower().startswith("x-am")]
    assert headers == [
        ("X-One", "1"),
        ("Set-Cookie", "a=1"),
        ("Set-Cookie", "b=2"),
        ("X-Both", "multi"),
        ("Content-Type", "application/json"),
    ]


# -- the function runtime ---------------------------------------------------------------


def test_a_worker_process_sees_only_its_lambda_environment_and_is_replaced_after_a_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a function with a one-second timeout, and a variable in the orchestrator's environment
    monkeypatch.setenv("SMSGW_E2E_SHOULD_NOT_LEAK", "1")
    pool = probe_pool(
        tmp_path,
        """
            import os, sys, time

            def handler(event, context):
                if event.get("sleep"):
                    time.sleep(event["sleep"])
                return {"env": dict(os.environ), "path": sys.path[:2], "pid": os.getpid(),
                        "memory": context.memory_limit_in_mb, "name": context.function_name,
                        "remaining": context.get_remaining_time_in_millis()}
            """,
        timeout=1,
        memory=256,
        environment={"MESSAGES_TABLE": "t"},
        layer_dirs=(REPO_ROOT / "layers" / "shared",),
    )
    pool.start()
    try:
        # When it is invoked, then invoked with a handler that overruns the timeout, then again
        first = pool.invoke({})
        slow = pool.invoke({"sleep": 5})
        after = pool.invoke({})
    finally:
        pool.stop()

    # Then the handler saw the function's environment and Lambda's variables, nothing else
    assert first.ok, first.error
    env = first.payload["env"]
    assert env["MESSAGES_TABLE"] == "t"
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "smsgw-local-probe"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256"
    assert env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:9"
    assert "SMSGW_E2E_SHOULD_NOT_LEAK" not in env
    assert first.payload["path"] == [str(tmp_path), str(REPO_ROOT / "layers" / "shared")]
    assert first.payload["memory"] == "256"
    assert 0 < first.payload["remaining"] <= 1000
    # And the overrun failed as Lambda's timeout, in about the timeout, in a process replaced since
    assert slow.timed_out
    assert slow.error is not None
    assert slow.error["errorType"] == "Sandbox.Timedout"
    assert slow.duration_ms < 3000
    assert after.ok
    assert after.payload["pid"] != first.payload["pid"]
    assert pool.stats.timeouts == 1


def _pid_pool(tmp_path: Path, size: int) -> FunctionPool:
    """A pool of a small function that answers its process id (after ``sleep`` seconds)."""
    return probe_pool(
        tmp_path,
        """
            import os, time

            def handler(event, context):
                time.sleep(event.get("sleep", 0))
                return {"pid": os.getpid()}
            """,
        size=size,
    )


def _gone(pid: int) -> bool:
    return not _alive(pid)


def test_a_worker_process_killed_between_invocations_is_replaced_before_the_next_one(tmp_path: Path) -> None:
    # Given a function with two warm processes, each invoked once
    pool = _pid_pool(tmp_path, size=2)
    pool.start()
    try:
        assert pool.wait_ready() == []
        warm = [pool.invoke({}) for _ in range(2)]
        pids = {invocation.payload["pid"] for invocation in warm}
        assert len(pids) == 2

        # When both are killed (SIGKILL) while idle, then the function is invoked again
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        assert wait_until(lambda: all(_gone(pid) for pid in pids), timeout=5)
        after = [pool.invoke({}) for _ in range(4)]
    finally:
        pool.stop()

    # Then every invocation succeeded, on fresh processes whose cold start the first two paid,
    # and the pool counts the two replacements
    assert all(invocation.ok for invocation in after), [invocation.error for invocation in after]
    assert not pids & {invocation.payload["pid"] for invocation in after}
    assert [invocation.init_ms is not None for invocation in after] == [True, True, False, False]
    assert pool.stats.replaced == 2
    assert pool.stats.errors == 0
    assert pool.stats.processes_started == 4


def test_a_worker_process_killed_mid_invocation_fails_that_invocation_only(tmp_path: Path) -> None:
    # Given a function with one warm process
    pool = _pid_pool(tmp_path, size=1)
    pool.start()
    try:
        pid = pool.invoke({}).payload["pid"]

        # When the process is killed (SIGKILL) while it handles an invocation
        threading.Timer(0.5, os.kill, (pid, signal.SIGKILL)).start()
        killed = pool.invoke({"sleep": 5})
        after = pool.invoke({})
    finally:
        pool.stop()

    # Then that invocation failed as Lambda reports a runtime that exited, and the next one
    # ran on a fresh process
    assert not killed.ok
    assert killed.error is not None
    assert killed.error["errorType"] == "Runtime.ExitError"
    assert "signal 9" in killed.error["errorMessage"]
    assert killed.duration_ms < 3000
    assert after.ok
    assert after.payload["pid"] != pid
    assert pool.stats.errors == 1
    assert pool.stats.replaced == 0


# -- the API front ------------------------------------------------------------------------


@pytest.mark.parametrize("api_key", [None, "not-the-key"])
def test_the_api_refuses_a_missing_or_wrong_key_without_invoking_the_function(
    local_stack: LocalGateway, gateway: Gateway, api_key: str | None
) -> None:
    # Given the running stack
    before = local_stack.stats(SEND_API).invocations

    # When a message is posted without the key, or with a wrong one
    response = gateway.post_messages({"to": [mobile()], "content": "【测试】你好"}, api_key=api_key)

    # Then API Gateway's own 403 comes back, in the contract's shape, and the function never ran
    assert response.status_code == 403
    _contract_error(response.content, "invalid_api_key", "Forbidden")
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["x-amzn-ErrorType"] == "ForbiddenException"
    assert local_stack.stats(SEND_API).invocations == before


@pytest.mark.parametrize(
    ("method", "path"), [("GET", "/v1/unknown"), ("DELETE", "/v1/messages"), ("GET", "/")]
)
def test_an_unknown_route_or_method_answers_missing_authentication_token(
    local_stack: LocalGateway, method: str, path: str
) -> None:
    # When a path or a method the template does not declare is called, even with the key
    response = requests.request(
        method, local_stack.api_url + path, headers={"x-api-key": local_stack.api_key}, timeout=10
    )

    # Then the answer is API Gateway's, in the contract's shape
    assert response.status_code == 403
    _contract_error(response.content, "missing_authentication_token", "Missing Authentication Token")


def test_a_body_over_api_gateways_10_mb_limit_is_refused_before_the_function(
    local_stack: LocalGateway,
) -> None:
    # Given the running stack
    before = local_stack.stats(SEND_API).invocations
    port = int(local_stack.api_url.rsplit(":", 1)[1])

    # When a request announces a body over 10 MB
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(
            b"POST /v1/messages HTTP/1.1\r\nHost: localhost\r\nx-api-key: "
            + local_stack.api_key.encode()
            + b"\r\nContent-Type: application/json\r\nContent-Length: 10485761\r\n\r\n{"
        )
        answer = b""
        while chunk := connection.recv(4096):  # the gateway closes the connection after it
            answer += chunk

    # Then API Gateway's 413 comes back at once, in the contract's shape, and the function never ran
    head, _, body = answer.decode("utf-8", "replace").partition("\r\n\r\n")
    assert head.startswith("HTTP/1.1 413 ")
    _contract_error(body, "payload_too_large", "Request Too Long")
    assert local_stack.stats(SEND_API).invocations == before


@pytest.mark.parametrize("method", ["TRACE", "PATCH", "CONNECT", "PROPFIND", "FOO"])
def test_a_method_no_route_declares_answers_as_api_gateway_does_not_501(
    local_stack: LocalGateway, method: str
) -> None:
    # When a method the template does not route is sent (http.server itself knows none of them)
    answer = _raw(local_stack, f"{method} /v1/messages HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())

    # Then the answer is API Gateway's 403, in the contract's shape, not http.server's 501
    head, _, body = answer.partition("\r\n\r\n")
    assert head.startswith("HTTP/1.1 403 "), head
    _contract_error(body, "missing_authentication_token", "Missing Authentication Token")


UNREADABLE = {
    "no request line": b"GARBAGE /v1/guodu/push/secret-token\r\n\r\n",
    "an unknown HTTP version": b"GET /v1/messages HTTP/9.9\r\n\r\n",
    "a header line over 64 KB": b"GET /v1/messages HTTP/1.1\r\nX-Long: " + b"a" * 70_000 + b"\r\n\r\n",
}


@pytest.mark.parametrize("data", UNREADABLE.values(), ids=UNREADABLE.keys())
def test_a_request_http_server_cannot_read_gets_a_4xx_in_the_contracts_shape(
    local_stack: LocalGateway, data: bytes
) -> None:
    answer = _raw(local_stack, data)
    head, _, body = answer.partition("\r\n\r\n")
    assert re.match(r"HTTP/1\.1 4\d\d ", head), head
    error = json.loads(body)["error"]
    assert (error["code"], error["details"]) == ("request_rejected", [])
    assert "secret-token" not in answer  # the request line is not echoed


def test_a_body_over_lambdas_6_mb_limit_is_a_413_before_the_function(
    local_stack: LocalGateway, gateway: Gateway
) -> None:
    # Given the running stack
    before = local_stack.stats(SEND_API).invocations

    # When a body over 6 MB (under API Gateway's 10 MB) is posted
    too_big = {"to": [mobile()], "content": "【测试】你好", "reference": "x" * (6 * 1024 * 1024)}
    response = gateway.post_messages(too_big)

    # Then it is the contract's 413, and the function never ran (Lambda would refuse the event)
    assert response.status_code == 413
    _contract_error(response.content, "payload_too_large", "Request Too Long")
    assert local_stack.stats(SEND_API).invocations == before

    # And a body well under it reaches the function (which judges it: a 400 naming the field)
    response = gateway.post_messages({**too_big, "reference": "x" * (5 * 1024 * 1024)})
    assert response.status_code == 400
    assert response.json()["error"]["details"][0]["field"] == "reference"
    assert local_stack.stats(SEND_API).invocations == before + 1


def _raw(local_stack: LocalGateway, data: bytes) -> str:
    """What the local API answers to ``data`` sent as is (the connection closed after it)."""
    port = int(local_stack.api_url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(data)
        connection.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := connection.recv(4096):
            answer += chunk
    return answer.decode("utf-8", "replace")


def test_a_wrong_push_token_is_refused_by_the_function_not_by_api_gateway(local_stack: LocalGateway) -> None:
    # Given the running stack
    before = local_stack.stats(PUSH_RECEIVER).invocations

    # When the platform's route is called with a wrong token
    response = requests.post(
        local_stack.api_url + "/v1/guodu/push/not-the-token",
        data=b"[]",
        headers={"Content-Type": "application/json"},
        timeout=30,
    )

    # Then the push receiver itself answers the contract's 403, as before the gateway responses
    assert response.status_code == 403
    _contract_error(response.content, "forbidden", "forbidden")
    assert "x-amzn-ErrorType" not in response.headers
    assert local_stack.stats(PUSH_RECEIVER).invocations == before + 1


def test_headers_and_the_api_key_id_reach_the_handler(gateway: Gateway) -> None:
    # Given one body and one Idempotency-Key (the handler keys idempotency on the caller's
    # API key id, which only the local API Gateway puts in the event)
    body = {"to": [mobile()], "content": "【测试】幂等"}
    key = f"e2e-{time.time_ns()}"

    # When it is posted twice
    first = gateway.post_messages(body, headers={"Idempotency-Key": key})
    second = gateway.post_messages(body, headers={"Idempotency-Key": key})

    # Then the second answer is the first one: the header and the key id arrived
    assert first.status_code == second.status_code == 202
    assert second.json()["id"] == first.json()["id"]


# -- the send path, through the poller -----------------------------------------------------


def test_a_partial_batch_failure_leaves_only_the_failed_message_on_the_queue(
    local_stack: LocalGateway, gateway: Gateway
) -> None:
    # Given two requests waiting on the queue while the event source is paused,
    # and a platform that answers the next submit with -1 (a transient error)
    assert local_stack.provisioned is not None
    send_queue = local_stack.provisioned.ref("SendQueue")
    (source,) = [s for s in local_stack.event_sources[SUBMIT_WORKER] if s.source.queue_url == send_queue]
    assert wait_until(source.idle, 20)
    assert wait_until(lambda: queue_depth(local_stack, "SendQueue") == (0, 0), 30)
    local_stack.disable_event_source(SUBMIT_WORKER)
    try:
        first, second = gateway.send(mobile()), gateway.send(mobile())
        assert queue_depth(local_stack, "SendQueue") == (2, 0)
        assert local_stack.simulator is not None
        local_stack.simulator.queue_faults("-1")
        batches = source.batches
    finally:
        # When the event source resumes and hands both messages to one invocation
        local_stack.enable_event_source(SUBMIT_WORKER)
    assert wait_until(lambda: source.batches > batches, 20)

    # Then the failed message is still on the queue (hidden until its retry), the other is gone
    assert queue_depth(local_stack, "SendQueue") == (0, 1)
    states = {request_id: gateway.recipient_states(request_id) for request_id in (first, second)}
    settled = [r for r, s in states.items() if s <= {"submitted", "delivered"}]
    retried = [r for r, s in states.items() if s == {"queued"}]
    assert len(settled) == len(retried) == 1, states
    assert gateway.status(retried[0])["recipients"][0]["provider_code"] == "-1"


def test_a_message_that_keeps_failing_ends_in_the_dead_letter_queue(
    failing_stack: LocalGateway, failing_gateway: Gateway
) -> None:
    # Given a platform that refuses the gateway's password (ResultCode 05) on every submit
    simulator = failing_stack.simulator
    assert simulator is not None
    simulator.reset()
    simulator.configure({"accounts": {failing_stack.oper_id: {"password": "not-what-the-secret-says"}}})
    try:
        # When a message is sent
        request_id = failing_gateway.send(mobile())

        # Then after maxReceiveCount attempts SQS moves it to the dead-letter queue
        assert wait_until(lambda: queue_depth(failing_stack, "SendDeadLetterQueue")[0] == 1, 30)
        refused = [r.result_code for r in simulator.refused]
    finally:
        simulator.reset()
    assert refused == ["05"] * FAILING_PARAMETERS["SubmitMaxAttempts"]
    # (the parked copy may land before the invocation that parked it has ended)
    assert wait_until(lambda: queue_depth(failing_stack, "SendQueue") == (0, 0), 10)
    dead = failing_stack.client("sqs").receive_message(
        QueueUrl=failing_stack.provisioned.ref("SendDeadLetterQueue") if failing_stack.provisioned else "",
        MessageSystemAttributeNames=["All"],
    )["Messages"]
    assert json.loads(dead[0]["Body"])["request_id"] == request_id
    # And the request shows the recipient still queued, with the platform's last answer
    recipient = failing_gateway.status(request_id)["recipients"][0]
    assert recipient["status"] == "queued"
    assert recipient["provider_code"] == "05"


def _probe(stack: LocalGateway, order: dict[str, Any]) -> None:
    queue = stack.provisioned.ref("ProbeQueue") if stack.provisioned else ""
    stack.client("sqs").send_message(QueueUrl=queue, MessageBody=json.dumps(order))


def _dead_letters(stack: LocalGateway, queue: str) -> list[dict[str, Any]]:
    url = stack.provisioned.ref(queue) if stack.provisioned else ""
    response = stack.client("sqs").receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"], VisibilityTimeout=0
    )
    messages: list[dict[str, Any]] = response.get("Messages", [])
    return messages


def test_a_function_that_overruns_its_timeout_fails_and_its_message_comes_back(
    failing_stack: LocalGateway,
) -> None:
    # Given a function with a one-second timeout fed by a queue
    before = failing_stack.stats(PROBE)
    order = {"sleep": PROBE_TIMEOUT + 4, "id": time.time_ns()}

    # When a message makes it run longer than that
    _probe(failing_stack, order)

    # Then every attempt times out, its process is replaced, and the message is never deleted:
    # it comes back after the visibility timeout until SQS moves it to the dead-letter queue
    assert wait_until(lambda: queue_depth(failing_stack, "ProbeDeadLetterQueue")[0] == 1, 30)
    after = failing_stack.stats(PROBE)
    assert after.timeouts - before.timeouts == PROBE_MAX_RECEIVES
    assert after.processes_started - before.processes_started >= PROBE_MAX_RECEIVES
    (dead,) = _dead_letters(failing_stack, "ProbeDeadLetterQueue")
    assert json.loads(dead["Body"]) == order
    assert int(dead["Attributes"]["ApproximateReceiveCount"]) >= PROBE_MAX_RECEIVES
    failing_stack.client("sqs").delete_message(
        QueueUrl=failing_stack.provisioned.ref("ProbeDeadLetterQueue") if failing_stack.provisioned else "",
        ReceiptHandle=dead["ReceiptHandle"],
    )


@pytest.mark.parametrize("order", [{"raise": True}, {"fail": True}], ids=["error", "reported-failure"])
def test_a_failing_message_is_never_deleted_and_ends_in_the_dead_letter_queue(
    failing_stack: LocalGateway, order: dict[str, Any]
) -> None:
    # Given a function that fails on a message, by an error or by reporting it
    before = failing_stack.stats(PROBE)

    # When the message arrives
    _probe(failing_stack, {**order, "id": time.time_ns()})

    # Then it is handed out again after its visibility timeout, maxReceiveCount times,
    # and then it is in the dead-letter queue
    assert wait_until(lambda: queue_depth(failing_stack, "ProbeDeadLetterQueue")[0] == 1, 20)
    after = failing_stack.stats(PROBE)
    assert after.invocations - before.invocations == PROBE_MAX_RECEIVES
    assert after.errors - before.errors == (PROBE_MAX_RECEIVES if "raise" in order else 0)
    assert queue_depth(failing_stack, "ProbeQueue") == (0, 0)
    (dead,) = _dead_letters(failing_stack, "ProbeDeadLetterQueue")
    failing_stack.client("sqs").delete_message(
        QueueUrl=failing_stack.provisioned.ref("ProbeDeadLetterQueue") if failing_stack.provisioned else "",
        ReceiptHandle=dead["ReceiptHandle"],
    )


# -- schedules -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "seconds"),
    [("rate(1 minute)", 60), ("rate(15 minutes)", 900), ("rate(2 hours)", 7200), ("rate(1 day)", 86_400)],
)
def test_rate_expressions_are_read_as_eventbridge_reads_them(expression: str, seconds: int) -> None:
    # Given a template schedule, When the stack reads it, Then it runs at EventBridge's period
    assert rate_seconds(expression) == seconds


@pytest.mark.parametrize(
    "expression", ["rate(1 minutes)", "rate(2 minute)", "rate(0 hours)", "cron(0 * * * ? *)"]
)
def test_a_schedule_eventbridge_would_refuse_or_a_cron_is_not_run(expression: str) -> None:
    # Given an expression EventBridge refuses (or a cron), When the stack reads it,
    # Then it says so (the stack logs it and skips that schedule) rather than guessing
    with pytest.raises(UnsupportedSchedule):
        rate_seconds(expression)


def test_the_templates_schedule_invokes_its_function_with_a_scheduled_event(
    local_stack: LocalGateway,
) -> None:
    # Given the stack, with the template's scheduled functions on their rate
    schedules = {schedule.function: schedule for schedule in local_stack.schedules}
    assert "BalanceCheckFunction" in schedules
    schedule = schedules["BalanceCheckFunction"]
    assert schedule.period == 60 * int(local_stack.provisioned.context.parameters["BalanceCheckMinutes"])

    # When the function gets the event the schedule sends
    event = schedule.event()
    invocation = local_stack.invoke("BalanceCheckFunction", event)

    # Then it is EventBridge's "Scheduled Event", and the function runs on it
    assert event["detail-type"] == "Scheduled Event"
    assert event["source"] == "aws.events"
    assert invocation.ok, invocation.error


# -- python -m smsgw_local ------------------------------------------------------------------


def _children(pid: int) -> set[int]:
    found: set[int] = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] == "Z")


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc to list child processes")
def test_python_m_smsgw_local_prints_a_curl_and_stops_cleanly_on_ctrl_c() -> None:
    # Given `make run`'s command, on free ports
    env = {
        **os.environ,
        "SMSGW_API_PORT": "0",
        "SMSGW_SIMULATOR_PORT": "0",
        "SMSGW_MOTO_PORT": "0",
        "SMSGW_API_KEY": "e2e-key",
    }
    env.pop("GUODU_SUBMIT_URL", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "smsgw_local"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO_ROOT,
    )
    try:
        # When it is up
        printed: list[str] = []
        assert process.stdout is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            printed.append(line)
            if "Ctrl-C" in line:
                break
        out = "".join(printed)
        curl = next(line for line in printed if line.strip().startswith("curl") and "-d" in line)
        url = re.search(r"(http://127\.0\.0\.1:\d+)/v1/messages", curl)
        assert url is not None, out
        answer = requests.post(
            f"{url.group(1)}/v1/messages",
            headers={"x-api-key": "e2e-key"},
            json={"to": ["13800138000"], "content": "【示例】您好"},
            timeout=30,
        )
        children = _children(process.pid)

        # And Ctrl-C is pressed
        started = time.monotonic()
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=15)
        took = time.monotonic() - started
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    err = process.stderr.read() if process.stderr else ""

    # Then it had printed a curl with the key that works, and it stopped within seconds,
    # with exit code 0, no traceback and no process left behind
    assert "-H 'x-api-key: e2e-key'" in curl
    assert "'content-type: application/json'" in curl
    assert "/v1/messages/<id>" in out
    assert answer.status_code == 202
    assert code == 0, err
    assert took < 8
    assert "Traceback" not in err
    assert children, "the moto server and the workers are child processes"
    assert not [pid for pid in children if _alive(pid)]
