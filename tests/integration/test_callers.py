"""Callers are tenants: each sees only its own requests; the opt-out list is shared and
records who changed it. The send API handler against moto, as API Gateway calls it."""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Callable
from types import ModuleType
from typing import Any

import boto3
import pytest

from smsgw_local.provision import Provisioned
from tests.conftest import FakeContext, sample_event
from tests.integration.conftest import Api, table_items

A, B = "key-id-of-a", "key-id-of-b"
ROLE = "arn:aws:sts::123456789012:assumed-role/OrderService"


def call(
    module: ModuleType,
    method: str,
    path: str,
    *,
    resource: str,
    parameters: dict[str, str],
    caller: str | None = None,
    user_arn: str | None = None,
    body: Any = None,
    key: str | None = None,
) -> tuple[int, Any]:
    """Any route of the send API, as API Gateway's proxy event, from an API key or an IAM
    principal."""
    event = copy.deepcopy(sample_event("send_api/get_message.json"))
    event.update(httpMethod=method, path=path, resource=resource, pathParameters=parameters)
    event["requestContext"].update(httpMethod=method, resourcePath=resource)
    identity = event["requestContext"]["identity"]
    identity["apiKeyId"] = caller
    identity["userArn"] = user_arn
    if user_arn:
        identity["apiKey"] = None
    if body is not None:
        event["body"] = json.dumps(body, ensure_ascii=False)
    if key is not None:
        event["headers"]["Idempotency-Key"] = key
        event["multiValueHeaders"]["Idempotency-Key"] = [key]
    response = module.handler(event, FakeContext("smsgw-send-api"))
    return response["statusCode"], json.loads(response["body"] or "null")


def get(module: ModuleType, request_id: str, **who: Any) -> tuple[int, Any]:
    return call(
        module,
        "GET",
        f"/v1/messages/{request_id}",
        resource="/v1/messages/{id}",
        parameters={"id": request_id},
        **who,
    )


def post(module: ModuleType, body: Any, **who: Any) -> tuple[int, Any]:
    return call(module, "POST", "/v1/messages", resource="/v1/messages", parameters={}, body=body, **who)


def opt_out(module: ModuleType, method: str, mobile: str, **who: Any) -> tuple[int, Any]:
    return call(
        module,
        method,
        f"/v1/opt-outs/{mobile}",
        resource="/v1/opt-outs/{mobile}",
        parameters={"mobile": mobile},
        **who,
    )


SEND = {"to": ["13800138000"], "content": "【示例】您好", "reference": "order-42"}


def test_another_callers_request_is_the_same_404_as_an_unknown_one(api: Api) -> None:
    # Given a request of caller A
    status, reply = post(api.module, SEND, caller=A)
    assert status == 202
    # When caller B asks for it, and for an id nobody used
    theirs = get(api.module, reply["id"], caller=B)
    unknown = get(api.module, str(uuid.uuid4()), caller=B)
    # Then B gets a 404, exactly the answer to an unknown id: not even its existence shows
    assert theirs == unknown
    assert theirs[0] == 404
    assert theirs[1]["error"]["code"] == "not_found"
    assert "13800138000" not in json.dumps(theirs)
    assert "order-42" not in json.dumps(theirs)
    # And A reads it
    status, view = get(api.module, reply["id"], caller=A)
    assert (status, view["reference"]) == (200, "order-42")


def test_the_id_of_a_keyed_request_cannot_be_computed_by_another_caller(api: Api) -> None:
    # Given caller A's request under an Idempotency-Key (an order number, say)
    status, reply = post(api.module, SEND, caller=A, key="order-42")
    assert status == 202
    # When B computes the id the gateway used to derive from public values
    legacy = uuid.uuid5(uuid.UUID("6b1f4c3e-2f55-4d8e-9a41-5c0e4d9b7a10"), f"{A}\norder-42")
    # Then that is not A's id, and asking for either gets B a 404
    assert reply["id"] != str(legacy)
    assert get(api.module, str(legacy), caller=B)[0] == 404
    assert get(api.module, reply["id"], caller=B)[0] == 404
    # And A's retry with the same key lands on the same request
    assert post(api.module, SEND, caller=A, key="order-42") == (202, reply)
    # while B's request with the same key is B's own
    status, theirs = post(api.module, SEND, caller=B, key="order-42")
    assert status == 202
    assert theirs["id"] != reply["id"]


def test_keyed_ids_come_from_the_stacks_secret(
    stack: Provisioned, api: Api, load_handler: Callable[..., ModuleType]
) -> None:
    # Given a keyed request, then the secret replaced (a new deployment of the stack)
    _, first = post(api.module, SEND, caller=A, key="order-7")
    boto3.client("secretsmanager").put_secret_value(
        SecretId=stack.ref("RequestIdSecret"), SecretString="another-secret-" + "z" * 40
    )
    spec = stack.functions["SendApiFunction"]
    fresh = load_handler(spec.code_dir, spec.environment)
    # When the same caller sends under the same key to a new container
    _, second = post(fresh, SEND, caller=A, key="order-7")
    # Then the id differs: it is a function of the secret, not of the caller and key alone
    assert second["id"] != first["id"]


def test_an_id_that_is_no_request_id_is_a_404_without_a_read(api: Api) -> None:
    calls: list[str] = []
    api.module.graph.dynamodb.meta.events.register(
        "before-call.dynamodb", lambda model, **_: calls.append(model.name)
    )
    for junk in ["no-such-id", "x" * 4096, "0B4F6C1E-8D2A-4F7E-9C11-2A6F5E3D9B01", "13800138000"]:
        status, body = get(api.module, junk, caller=A)
        assert (status, body["error"]["code"]) == (404, "not_found"), junk
    assert calls == []
    # (an id of the right shape is looked up: the counter sees reads)
    assert get(api.module, str(uuid.uuid4()), caller=A)[0] == 404
    assert calls == ["GetItem"]


def test_with_iam_the_caller_is_the_role_not_the_session(api: Api) -> None:
    # Given a request signed by one session of a role
    status, reply = post(api.module, SEND, user_arn=f"{ROLE}/session-1", key="k-1")
    assert status == 202
    # Then another session of the role reads it and its retry replays it
    assert get(api.module, reply["id"], user_arn=f"{ROLE}/session-2")[0] == 200
    assert post(api.module, SEND, user_arn=f"{ROLE}/session-3", key="k-1") == (202, reply)
    # But another role does not see it
    other = "arn:aws:sts::123456789012:assumed-role/MarketingTool/session-1"
    assert get(api.module, reply["id"], user_arn=other)[0] == 404


def test_an_event_with_no_caller_is_refused(api: Api) -> None:
    # API Gateway always names the caller; a misconfigured route must not make one up
    status, body = post(api.module, SEND)
    assert (status, body["error"]["code"]) == (403, "forbidden")


def test_the_opt_out_list_is_shared_and_records_who_changed_it(api: Api, stack: Provisioned) -> None:
    mobile = "13700137000"
    # Given caller A opts a number out
    status, view = opt_out(api.module, "PUT", mobile, caller=A)
    assert (status, view["changed_by"]) == (201, A)
    # Then caller B sees it (it is the company's list), and removes it
    status, view = opt_out(api.module, "GET", mobile, caller=B)
    assert (status, view["opted_out"], view["changed_by"]) == (200, True, A)
    assert opt_out(api.module, "DELETE", f"+86{mobile}", caller=B)[0] == 204
    assert opt_out(api.module, "GET", mobile, caller=A)[0] == 404
    # And each change is on record with the caller that made it
    changes = sorted(
        (i["sk"]["S"], i["action"]["S"], i["caller"]["S"])
        for i in table_items(stack, f"OPTOUT#{mobile}")
        if i["sk"]["S"].startswith("CHANGE#")
    )
    assert [(action, caller) for _, action, caller in changes] == [("added", A), ("removed", B)]
    # And removing what is not there changes nothing and records nothing
    assert opt_out(api.module, "DELETE", mobile, caller=A)[0] == 404
    assert len(table_items(stack, f"OPTOUT#{mobile}")) == 2


@pytest.mark.parametrize("spelling", ["13600136000", "+86 136-0013-6000", "008613600136000"])
def test_an_opt_out_by_any_spelling_is_the_same_entry(api: Api, spelling: str) -> None:
    assert opt_out(api.module, "PUT", spelling, caller=A)[0] in (200, 201)
    assert opt_out(api.module, "GET", "13600136000", caller=B)[1]["mobile"] == "13600136000"
