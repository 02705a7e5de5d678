"""What CloudFormation deploys: template.yaml after the SAM transform (offline).

One API stage with its access log and throttle, Lambda permissions for that stage only,
nothing that records a request's path, and each function's role holding exactly the
grants its code needs (tests/integration/test_grants.py runs the code against them).
"""

from __future__ import annotations

import re

import pytest

from tests.template.sam import Grant, conditions, grants, of_type, statements, transformed


@pytest.mark.parametrize("auth", ["API_KEY", "IAM"])
def test_the_api_has_exactly_one_stage_with_its_access_log_and_throttle(auth: str) -> None:
    # Given the template as SAM transforms it
    template = transformed(ApiAuth=auth)
    # Then there is one stage, the StageName parameter's, and no "Stage" stage beside it
    stages = of_type(template, "AWS::ApiGateway::Stage")
    assert len(stages) == 1, sorted(stages)
    ((logical, stage),) = stages.items()
    properties = stage["Properties"]
    assert properties["StageName"] == {"Ref": "StageName"}
    assert properties["RestApiId"] == {"Ref": "GatewayApi"}
    # with its access log (the resource, never the path: the push path holds its token)
    access_log = properties["AccessLogSetting"]
    assert access_log["DestinationArn"] == {"Fn::GetAtt": ["ApiAccessLogGroup", "Arn"]}
    assert "$context.resourcePath" in access_log["Format"]
    assert "$context.path" not in access_log["Format"]
    # and its throttle on every method
    (settings,) = properties["MethodSettings"]
    assert (settings["ResourcePath"], settings["HttpMethod"]) == ("/*", "*")
    assert settings["ThrottlingRateLimit"] > 0
    assert settings["ThrottlingBurstLimit"] >= settings["ThrottlingRateLimit"]
    # And the usage plan (API keys) applies to that stage
    if auth == "API_KEY":
        (plan,) = of_type(template, "AWS::ApiGateway::UsagePlan").values()
        assert plan["Properties"]["ApiStages"] == [
            {"ApiId": {"Ref": "GatewayApi"}, "Stage": {"Ref": logical}}
        ]


def test_nothing_records_a_request_path_not_traces_logs_or_metrics() -> None:
    # The push path is its secret token, the opt-out paths hold a number: the one stage
    # records neither in X-Ray (no stage tracing), execution logs (none) or metrics
    # (per resource, the route's template)
    ((_, stage),) = of_type(transformed(), "AWS::ApiGateway::Stage").items()
    properties = stage["Properties"]
    assert properties["TracingEnabled"] is False
    for settings in properties["MethodSettings"]:
        assert "LoggingLevel" not in settings
        assert not settings.get("DataTraceEnabled", False)
    assert not re.search(
        r"\$context\.(path|requestOverride|identity\.apiKey\b)", properties["AccessLogSetting"]["Format"]
    )


def test_lambda_permissions_let_only_that_stage_invoke_only_its_routes() -> None:
    template = transformed()
    permissions = {
        logical: p["Properties"]
        for logical, p in of_type(template, "AWS::Lambda::Permission").items()
        if p["Properties"]["Principal"] == "apigateway.amazonaws.com"
    }
    prefix = "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${GatewayApi}/${StageName}/"
    assert {p["FunctionName"]["Ref"]: p["SourceArn"]["Fn::Sub"] for p in permissions.values()} == {
        "SendApiFunction": prefix + "*/v1/*",
        "PushReceiverFunction": prefix + "POST/v1/guodu/push/*",
    }


def dynamo(action: str, *keys: str) -> set[Grant]:
    return {Grant(f"dynamodb:{action}", "MessagesTable", k) for k in keys}


SWEEPS = ("accepting", "release", "report", "complete")
EXPECTED: dict[str, set[Grant]] = {
    "SendApiFunction": {
        *dynamo("GetItem", "REQ#*", "OPTOUT#*", "CALLER#*"),
        *dynamo("Query", "REQ#*", "TO#*", "EXT#*", "MO#*"),
        *dynamo("PutItem", "REQ#*", "OPTOUT#*", "EXT#*", "CALLER#*"),
        *dynamo("UpdateItem", "REQ#*", "FREQ#*", "CALLER#*"),
        *dynamo("BatchWriteItem", "REQ#*", "TO#*"),
        *dynamo("BatchGetItem", "REQ#*", "MSG#*", "OPTOUT#*"),
        *dynamo("DeleteItem", "OPTOUT#*"),
        Grant("dynamodb:Query", "MessagesTable/index/ReferenceIndex", "REF#*"),
        Grant("dynamodb:Query", "MessagesTable/index/InboundIndex", "IN#*"),
        *{Grant("sqs:SendMessage", q) for q in ("VerificationQueue", "SendQueue", "MarketingQueue")},
        Grant("secretsmanager:GetSecretValue", "RequestIdSecret"),
        Grant("events:PutEvents", "EventBus"),
    },
    "CallbackSenderFunction": {
        *dynamo("GetItem", "REQ#*", "CALLER#*"),
        *dynamo("PutItem", "CALLER#*"),
        Grant("sqs:ReceiveMessage", "CallbackQueue"),
        Grant("sqs:DeleteMessage", "CallbackQueue"),
        Grant("sqs:GetQueueAttributes", "CallbackQueue"),
        Grant("sqs:ChangeMessageVisibility", "CallbackQueue"),
    },
    "SubmitWorkerFunction": {
        *dynamo("GetItem", "REQ#*", "MSG#*", "RATE#*"),
        *dynamo("PutItem", "REQ#*"),
        *dynamo("UpdateItem", "REQ#*", "MSG#*", "RATE#*"),
        *{
            Grant(f"sqs:{action}", queue)
            for action in ("ReceiveMessage", "DeleteMessage", "GetQueueAttributes", "ChangeMessageVisibility")
            for queue in ("VerificationQueue", "SendQueue", "MarketingQueue")
        },
        *{
            Grant("sqs:SendMessage", queue)
            for queue in (
                "VerificationQueue",
                "SendQueue",
                "MarketingQueue",
                "VerificationDeadLetterQueue",
                "SendDeadLetterQueue",
                "MarketingDeadLetterQueue",
            )
        },
        Grant("secretsmanager:GetSecretValue", "ProviderSecret"),
        Grant("events:PutEvents", "EventBus"),
    },
    "PushReceiverFunction": {
        *dynamo("PutItem", "RAW#*", "MO#*", "OPTOUT#*"),
        *dynamo("UpdateItem", "MSG#*"),
        Grant("secretsmanager:GetSecretValue", "PushTokenSecret"),
        Grant("events:PutEvents", "EventBus"),
    },
    "BalanceCheckFunction": {Grant("secretsmanager:GetSecretValue", "ProviderSecret")},
    "ReconcilerFunction": {
        *{Grant("dynamodb:Query", "MessagesTable/index/DueIndex", f"{sweep}#*") for sweep in SWEEPS},
        *dynamo("GetItem", "REQ#*", "MSG#*"),
        *dynamo("BatchGetItem", "MSG#*", "OPTOUT#*"),
        *dynamo("Query", "REQ#*"),
        *dynamo("PutItem", "REQ#*"),
        *dynamo("UpdateItem", "REQ#*", "FREQ#*"),
        *{Grant("sqs:SendMessage", q) for q in ("VerificationQueue", "SendQueue", "MarketingQueue")},
        Grant("events:PutEvents", "EventBus"),
    },
}


@pytest.mark.parametrize("function", sorted(EXPECTED))
def test_each_function_holds_exactly_the_grants_its_code_calls(function: str) -> None:
    # Given the role SAM makes for the function / Then it holds these grants and no others
    assert grants(transformed(), function) == EXPECTED[function]


@pytest.mark.parametrize("function", ["SubmitWorkerFunction", "BalanceCheckFunction"])
def test_a_lane_with_its_own_account_adds_its_secret_and_nothing_else(function: str) -> None:
    # Given marketing with an account of its own
    own = {"MarketingAccount": "own"}
    held = grants(transformed(**own), function, conditions(**own))
    # Then the worker and the balance check may read that account's secret, and only that more
    assert held - EXPECTED[function] == {Grant("secretsmanager:GetSecretValue", "MarketingProviderSecret")}
    assert EXPECTED[function] <= held


def test_every_function_of_the_template_is_covered() -> None:
    assert set(of_type(transformed(), "AWS::Lambda::Function")) == set(EXPECTED)


def test_the_push_function_can_neither_read_requests_nor_write_chunks() -> None:
    # The unauthenticated push route's function: a request or chunk is REQ#<id>/...
    held = grants(transformed(), "PushReceiverFunction")
    assert not [g for g in held if g.resource == "MessagesTable" and g.keys.startswith("REQ")]
    reads = {"dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query", "dynamodb:Scan"}
    assert not [g for g in held if g.action in reads]


def test_every_table_grant_is_bounded_by_its_items_partition_keys() -> None:
    template = transformed()
    for function in EXPECTED:
        for statement in statements(template, function):
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            if not any(a.startswith("dynamodb:") for a in actions):
                continue
            assert "dynamodb:Scan" not in actions, function
            keys = statement["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]
            assert keys, (function, statement.get("Sid"))
            assert all(re.fullmatch(r"[A-Za-z]+#\*", k) for k in keys), (function, keys)
