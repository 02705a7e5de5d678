"""What the template must hold, read from template.yaml itself (no AWS, no network).

sam validate, cfn-lint and checkov run in `make validate`; these tests check the
gateway's own rules, which no linter knows.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from smsgw_local.template import Context, load_template, resolve, resources_of_type

TEMPLATE = load_template()
RESOURCES: dict[str, Any] = TEMPLATE["Resources"]
PARAMETERS: dict[str, Any] = TEMPLATE["Parameters"]


def props(logical_id: str) -> dict[str, Any]:
    properties: dict[str, Any] = RESOURCES[logical_id]["Properties"]
    return properties


LANE_QUEUES = {
    "verification": ("VerificationQueue", "VerificationDeadLetterQueue"),
    "transactional": ("SendQueue", "SendDeadLetterQueue"),
    "marketing": ("MarketingQueue", "MarketingDeadLetterQueue"),
}


@pytest.mark.parametrize("lane", sorted(LANE_QUEUES))
def test_each_lanes_queue_outlives_six_worker_timeouts_and_has_its_own_dead_letter_queue(lane: str) -> None:
    worker_timeout = props("SubmitWorkerFunction")["Timeout"]
    queue_id, dlq_id = LANE_QUEUES[lane]
    queue = props(queue_id)
    assert queue["VisibilityTimeout"] >= 6 * worker_timeout
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": [dlq_id, "Arn"]}
    assert queue["RedrivePolicy"]["maxReceiveCount"] == {"Ref": "SubmitMaxReceiveCount"}
    assert PARAMETERS["SubmitMaxReceiveCount"]["MinValue"] >= 5
    assert queue["SqsManagedSseEnabled"] is True
    assert props(dlq_id)["SqsManagedSseEnabled"] is True
    # and an alarm on its dead-letter queue
    (alarm,) = [
        a["Properties"]
        for a in resources_of_type(TEMPLATE, "AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("Dimensions", [{}])[0].get("Value") == {"Fn::GetAtt": [dlq_id, "QueueName"]}
    ]
    assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}]


def test_each_lane_has_its_own_event_source_with_its_own_concurrency() -> None:
    # Given the worker's event sources / Then one per lane's queue, each reporting partial
    # failures, with its batch size and MaximumConcurrency as parameters
    sources = {
        e["Properties"]["Queue"]["Fn::GetAtt"][0]: e["Properties"]
        for e in props("SubmitWorkerFunction")["Events"].values()
    }
    assert set(sources) == {queue for queue, _ in LANE_QUEUES.values()}
    expected = {
        "VerificationQueue": ("VerificationBatchSize", "VerificationMaxConcurrency"),
        "SendQueue": ("SubmitBatchSize", "SubmitMaxConcurrency"),
        "MarketingQueue": ("SubmitBatchSize", "MarketingMaxConcurrency"),
    }
    for queue, (batch, concurrency) in expected.items():
        source = sources[queue]
        assert source["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        assert source["BatchSize"] == {"Ref": batch}
        assert source["ScalingConfig"]["MaximumConcurrency"] == {"Ref": concurrency}
        # AWS refuses a MaximumConcurrency below 2; the linters do not check it.
        assert PARAMETERS[concurrency]["MinValue"] >= 2
        assert PARAMETERS[concurrency]["Default"] >= 2
    # A code waits for no other code's submit in its invocation.
    assert PARAMETERS["VerificationBatchSize"]["Default"] == 1


def test_the_worker_knows_every_lanes_queues_and_the_api_and_reconciler_enqueue_on_each() -> None:
    env = props("SubmitWorkerFunction")["Environment"]["Variables"]
    assert env["VERIFICATION_QUEUE_URL"] == {"Ref": "VerificationQueue"}
    assert env["VERIFICATION_DLQ_URL"] == {"Ref": "VerificationDeadLetterQueue"}
    assert env["SEND_QUEUE_URL"] == {"Ref": "SendQueue"}
    assert env["MARKETING_DLQ_URL"] == {"Ref": "MarketingDeadLetterQueue"}
    for function in ("SendApiFunction", "ReconcilerFunction"):
        variables = props(function)["Environment"]["Variables"]
        assert variables["VERIFICATION_QUEUE_URL"] == {"Ref": "VerificationQueue"}
        assert variables["MARKETING_QUEUE_URL"] == {"Ref": "MarketingQueue"}


def test_the_platforms_addresses_are_an_ordered_list_and_one_url_still_works() -> None:
    # Given one URL (GuoduSubmitUrl) or a list (GuoduSubmitUrls)
    env = props("SubmitWorkerFunction")["Environment"]["Variables"]
    ctx = Context(
        parameters={"GuoduSubmitUrl": "http://a/x", "GuoduSubmitUrls": [""]},
        condition_expressions=TEMPLATE["Conditions"],
    )
    assert resolve(env["GUODU_SUBMIT_URLS"], ctx) == "http://a/x"
    listed = Context(
        parameters={"GuoduSubmitUrl": "", "GuoduSubmitUrls": ["http://a/x", "http://b/x"]},
        condition_expressions=TEMPLATE["Conditions"],
    )
    assert resolve(env["GUODU_SUBMIT_URLS"], listed) == "http://a/x,http://b/x"
    # And a deploy without either is refused
    assert "SubmitUrlGiven" in TEMPLATE["Rules"]


def test_the_first_address_benched_alarm_watches_the_metric_the_worker_emits() -> None:
    from pathlib import Path

    alarm = props("PrimaryAddressBenchedAlarm")
    assert (alarm["Namespace"], alarm["MetricName"]) == ("SmsGateway", "PrimaryAddressBenched")
    assert alarm["Dimensions"] == [{"Name": "service", "Value": "smsgw"}]
    source = Path(__file__).resolve().parents[2] / "layers/shared/smsgw/services/submit.py"
    assert 'name="PrimaryAddressBenched"' in source.read_text(encoding="utf-8")
    assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}]


def test_a_code_waiting_on_its_lane_for_half_a_minute_alarms() -> None:
    alarm = props("VerificationQueueDelayAlarm")
    assert alarm["MetricName"] == "ApproximateAgeOfOldestMessage"
    assert alarm["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": ["VerificationQueue", "QueueName"]}}
    ]
    assert alarm["Threshold"] <= 30


def test_the_table_is_on_demand_encrypted_with_ttl_and_point_in_time_recovery() -> None:
    table = props("MessagesTable")
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["SSESpecification"]["SSEEnabled"] is True
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True


def test_every_function_runs_python_3_13_with_the_shared_layer_and_a_log_group() -> None:
    function_globals = TEMPLATE["Globals"]["Function"]
    assert function_globals["Runtime"] == "python3.13"
    assert function_globals["Layers"] == [{"Ref": "SharedLayer"}]
    log_groups = {
        resolve(p["Properties"]["LogGroupName"], Context(parameters={}, stack_name="s"))
        for p in resources_of_type(TEMPLATE, "AWS::Logs::LogGroup").values()
    }
    for logical, function in resources_of_type(TEMPLATE, "AWS::Serverless::Function").items():
        name = resolve(function["Properties"]["FunctionName"], Context(parameters={}, stack_name="s"))
        assert f"/aws/lambda/{name}" in log_groups, logical
        assert "Runtime" not in function["Properties"] or function["Properties"]["Runtime"] == "python3.13"


def test_every_function_that_calls_the_platform_waits_the_configured_read_timeout() -> None:
    for logical in ("SubmitWorkerFunction", "BalanceCheckFunction"):
        variables = props(logical)["Environment"]["Variables"]
        assert variables["GUODU_READ_TIMEOUT"] == {"Ref": "GuoduReadTimeoutSeconds"}, logical


def test_secrets_are_never_plain_environment_variables() -> None:
    for logical, function in resources_of_type(TEMPLATE, "AWS::Serverless::Function").items():
        variables = function["Properties"].get("Environment", {}).get("Variables", {})
        for name, value in variables.items():
            assert not re.search(r"PASS|TOKEN(?!_SECRET)|SECRET(?!_NAME)", name), (logical, name)
            if "SECRET" in name:
                assert isinstance(value, dict), (logical, name)  # a reference to a secret, not a value


def test_no_wildcard_actions_and_only_scoped_policies() -> None:
    # Each function's policies: SAM policy templates scoped by Ref/GetAtt, or statements of
    # our own on a resource of the stack (never a managed policy, never "*")
    for logical, function in resources_of_type(TEMPLATE, "AWS::Serverless::Function").items():
        for policy in function["Properties"].get("Policies", []):
            assert isinstance(policy, dict), (
                f"{logical}: a managed policy name ({policy}) instead of a template"
            )
            if "Statement" in policy:
                for statement in policy["Statement"]:
                    assert statement["Effect"] == "Allow", logical
                    resources = statement["Resource"]
                    for resource in resources if isinstance(resources, list) else [resources]:
                        assert isinstance(resource, dict), f"{logical}: {statement['Sid']} on '*'"
                continue
            ((template_name, arguments),) = policy.items()
            assert template_name.endswith("Policy"), logical
            for value in arguments.values():
                assert isinstance(value, dict), f"{logical}: {template_name} not scoped by Ref/GetAtt"
    serialised = json.dumps({k: v for k, v in RESOURCES.items() if v["Type"] != "AWS::KMS::Key"})
    assert '"Action": "*"' not in serialised
    assert not re.search(r'"[a-z0-9-]+:\*"', serialised), "a service-wide wildcard action"


def test_arns_use_the_partition_so_the_stack_deploys_in_china() -> None:
    text = json.dumps(TEMPLATE)
    assert "arn:aws:" not in text
    assert "arn:aws-cn:" not in text
    assert "amazonaws.com/" not in text  # URLs are built with AWS::URLSuffix
    for function in resources_of_type(TEMPLATE, "AWS::Serverless::Function").values():
        for layer in function["Properties"].get("Layers", []):
            assert isinstance(layer, dict), "a public layer ARN"


def test_the_api_requires_keys_or_iam_except_on_the_push_route() -> None:
    paths = props("GatewayApi")["DefinitionBody"]["paths"]
    for path, methods in paths.items():
        for method, operation in methods.items():
            if path == "/v1/guodu/push/{token}":
                assert operation["security"] == [], "the platform cannot send a key"
            else:
                assert operation["security"] == {"Fn::If": ["UseIam", [{"sigv4": []}], [{"api_key": []}]]}, (
                    method,
                    path,
                )
    assert set(PARAMETERS["ApiAuth"]["AllowedValues"]) == {"API_KEY", "IAM"}
    for logical in ("ApiKey", "ApiUsagePlan", "ApiUsagePlanKey"):
        assert RESOURCES[logical]["Condition"] == "UseApiKeys"
    plan = props("ApiUsagePlan")
    assert plan["Throttle"] == {
        "RateLimit": {"Ref": "ApiThrottleRate"},
        "BurstLimit": {"Ref": "ApiThrottleBurst"},
    }
    assert plan["Quota"]["Limit"] == {"Ref": "ApiQuotaPerDay"}


# API Gateway's own answers: the code each has in the contract's shape, and the status
# API Gateway gives it (None: DEFAULT_4XX/5XX keep each answer's own status).
GATEWAY_RESPONSES = {
    "DEFAULT_4XX": (None, "request_rejected"),
    "DEFAULT_5XX": (None, "internal_error"),
    "INVALID_API_KEY": ("403", "invalid_api_key"),
    "MISSING_AUTHENTICATION_TOKEN": ("403", "missing_authentication_token"),
    "ACCESS_DENIED": ("403", "access_denied"),
    "INVALID_SIGNATURE": ("403", "invalid_signature"),
    "EXPIRED_TOKEN": ("403", "expired_token"),
    "THROTTLED": ("429", "throttled"),
    "QUOTA_EXCEEDED": ("429", "quota_exceeded"),
    "REQUEST_TOO_LARGE": ("413", "payload_too_large"),
    "INTEGRATION_TIMEOUT": ("504", "gateway_timeout"),
}


@pytest.mark.parametrize("response_type", sorted(GATEWAY_RESPONSES))
def test_api_gateways_own_answers_use_the_contracts_error_shape(response_type: str) -> None:
    # Given the gateway response the API defines for this type
    responses = props("GatewayApi")["DefinitionBody"]["x-amazon-apigateway-gateway-responses"]
    response = responses[response_type]
    status, code = GATEWAY_RESPONSES[response_type]

    # When API Gateway fills in its message ($context.error.messageString is a quoted string)
    ((content_type, template),) = response["responseTemplates"].items()
    message = 'Say "no" \\ politely'
    body = template.replace("$context.error.messageString", json.dumps(message))

    # Then the body is the contract's error JSON with a stable snake_case code and the message,
    # at API Gateway's own status, and nothing else is left for API Gateway to substitute
    assert content_type == "application/json"
    assert "$" not in body
    assert json.loads(body) == {"error": {"code": code, "message": message, "details": []}}
    assert re.fullmatch(r"[a-z][a-z0-9_]*", code)
    assert response.get("statusCode") == status
    assert set(response) <= {"statusCode", "responseTemplates"}


def test_every_gateway_response_is_tested_and_codes_are_distinct() -> None:
    responses = props("GatewayApi")["DefinitionBody"]["x-amazon-apigateway-gateway-responses"]
    assert set(responses) == set(GATEWAY_RESPONSES)
    codes = [code for _, code in GATEWAY_RESPONSES.values()]
    assert len(set(codes)) == len(codes)
    # Fallbacks set no status: a status there would replace every 4xx (or 5xx) status.
    assert "statusCode" not in responses["DEFAULT_4XX"]
    assert "statusCode" not in responses["DEFAULT_5XX"]
    # SAM's GatewayResponses property would be a second place to look.
    assert "GatewayResponses" not in props("GatewayApi")


def test_access_logs_never_hold_the_push_token() -> None:
    log_format = props("GatewayApi")["AccessLogSetting"]["Format"]
    assert "$context.resourcePath" in log_format
    assert "$context.path" not in log_format


ALARMS = {
    "DeadLetterQueueAlarm": "dead-letter queue not empty",
    "WorkerErrorsAlarm": "worker errors",
    "ApiServerErrorsAlarm": "API 5xx",
    "AccountErrorsAlarm": "account-level result codes",
    "NoReportsAlarm": "no reports while submitted",
    "BalanceLowAlarm": "balance below a threshold",
    "UnknownRecipientsAlarm": "the platform sent no usable answer",
}


@pytest.mark.parametrize("logical", sorted(ALARMS))
def test_each_alarm_of_issue_4_exists_and_notifies_the_encrypted_topic(logical: str) -> None:
    alarm = RESOURCES[logical]
    assert alarm["Type"] == "AWS::CloudWatch::Alarm"
    assert alarm["Properties"]["AlarmActions"] == [{"Ref": "AlarmTopic"}]
    assert "docs/operations.md#" in alarm["Properties"]["AlarmDescription"]


@pytest.mark.parametrize("logical", ["ApiServerErrorsAlarm", "PushReceiverErrorsAlarm"])
def test_a_lone_burst_of_5xx_does_not_page_two_of_three_periods_do(logical: str) -> None:
    alarm = props(logical)
    assert (alarm["DatapointsToAlarm"], alarm["EvaluationPeriods"]) == (2, 3)
    periods = [m["MetricStat"]["Period"] for m in alarm.get("Metrics", []) if "MetricStat" in m]
    assert set(periods or [alarm["Period"]]) == {300}
    assert alarm["TreatMissingData"] == "notBreaching"


def test_the_unknown_recipients_alarm_watches_the_metric_an_unanswered_submit_emits() -> None:
    from smsgw.domain.model import ChunkState

    alarm = props("UnknownRecipientsAlarm")
    # The worker names it f"Recipients{state.value.title()}" when it settles a chunk unknown.
    assert alarm["MetricName"] == f"Recipients{ChunkState.UNKNOWN.value.title()}"
    assert alarm["Namespace"] == "SmsGateway"
    assert alarm["Dimensions"] == [{"Name": "service", "Value": "smsgw"}]
    assert (alarm["Statistic"], alarm["Period"]) == ("Sum", 300)
    assert (alarm["DatapointsToAlarm"], alarm["EvaluationPeriods"]) == (2, 3)
    assert alarm["Threshold"] == {"Ref": "UnknownRecipientsAlarmThreshold"}
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarm["TreatMissingData"] == "notBreaching"
    assert alarm["OKActions"] == [{"Ref": "AlarmTopic"}]
    assert "#recipients-unknown" in alarm["AlarmDescription"]
    assert PARAMETERS["UnknownRecipientsAlarmThreshold"]["Default"] >= 1


def test_the_alarm_topic_is_encrypted_with_a_key_cloudwatch_may_use() -> None:
    assert props("AlarmTopic")["KmsMasterKeyId"] == {"Ref": "GatewayKey"}
    statements = props("GatewayKey")["KeyPolicy"]["Statement"]
    assert any(s["Principal"].get("Service") == "cloudwatch.amazonaws.com" for s in statements)
    assert props("GatewayKey")["EnableKeyRotation"] is True


def test_the_account_code_alarm_watches_the_metric_the_worker_emits() -> None:
    alarm = props("AccountErrorsAlarm")
    assert (alarm["Namespace"], alarm["MetricName"]) == ("SmsGateway", "AccountErrors")
    assert (
        TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]["POWERTOOLS_METRICS_NAMESPACE"]
        == "SmsGateway"
    )
    assert alarm["Dimensions"] == [{"Name": "service", "Value": "smsgw"}]


def test_the_no_reports_alarm_fires_only_when_submits_had_no_report_at_all() -> None:
    metrics = {m["Id"]: m for m in props("NoReportsAlarm")["Metrics"]}
    assert metrics["submitted"]["MetricStat"]["Metric"]["MetricName"] == "RecipientsSubmitted"
    assert metrics["silent"]["ReturnData"] is True
    assert "submitted" in metrics["silent"]["Expression"]
    assert metrics["submitted"]["MetricStat"]["Period"] == {"Ref": "NoReportsAlarmPeriodSeconds"}


def test_the_no_reports_alarm_needs_two_silent_periods_in_a_row() -> None:
    # One silent period is normal: a report may land just past the clock-aligned boundary.
    alarm = props("NoReportsAlarm")
    assert (alarm["DatapointsToAlarm"], alarm["EvaluationPeriods"]) == (2, 2)
    period = PARAMETERS["NoReportsAlarmPeriodSeconds"]
    # Both periods fit in one day, the evaluation range every CloudWatch alarm may use.
    assert alarm["EvaluationPeriods"] * period["MaxValue"] <= 86_400
    assert period["MinValue"] <= period["Default"] <= period["MaxValue"]


def test_the_balance_alarm_sees_at_least_two_readings_in_each_of_its_periods() -> None:
    # Missing data breaches: a period shorter than two check intervals flaps or never clears.
    alarm = props("BalanceLowAlarm")
    assert alarm["TreatMissingData"] == "breaching"
    assert alarm["Period"] >= 2 * 60 * PARAMETERS["BalanceCheckMinutes"]["MaxValue"]
    assert PARAMETERS["BalanceCheckMinutes"]["Default"] <= PARAMETERS["BalanceCheckMinutes"]["MaxValue"]


def test_the_dashboard_is_valid_json_showing_every_alarm() -> None:
    body_template, variables = props("Dashboard")["DashboardBody"]["Fn::Sub"]
    ctx = Context(parameters={"BalanceAlarmThreshold": 10000, "StageName": "live"}, stack_name="smsgw")
    for logical in resources_of_type(TEMPLATE, "AWS::Serverless::Function"):
        ctx.refs[logical] = f"smsgw-{logical}"
    for logical in resources_of_type(TEMPLATE, "AWS::CloudWatch::Alarm"):
        ctx.attributes[logical] = {"Arn": f"arn:alarm:{logical}"}
    for queues in LANE_QUEUES.values():
        for logical in queues:
            ctx.attributes[logical] = {"QueueName": logical}
    dashboard = json.loads(resolve({"Fn::Sub": [body_template, variables]}, ctx))
    (alarm_widget,) = [w for w in dashboard["widgets"] if w["type"] == "alarm"]
    assert set(alarm_widget["properties"]["alarms"]) == {
        f"arn:alarm:{a}" for a in resources_of_type(TEMPLATE, "AWS::CloudWatch::Alarm")
    }
    (recipients,) = [w for w in dashboard["widgets"] if w["properties"].get("title") == "Recipients"]
    assert [".", "RecipientsUnknown", ".", "."] in recipients["properties"]["metrics"]


def test_outputs_name_every_url_table_and_queue() -> None:
    assert {
        "ApiUrl",
        "MessagesEndpoint",
        "PushUrl",
        "ApiKeyId",
        "MessagesTableName",
        "SendQueueUrl",
        "SendDeadLetterQueueUrl",
        "VerificationQueueUrl",
        "VerificationDeadLetterQueueUrl",
        "MarketingQueueUrl",
        "MarketingDeadLetterQueueUrl",
        "EventBusName",
        "AlarmTopicArn",
    } <= set(TEMPLATE["Outputs"])


def test_every_checkov_suppression_says_why() -> None:
    for logical, resource in RESOURCES.items():
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
            assert len(skip.get("comment", "")) > 30, f"{logical}: {skip['id']} needs a reason"


def test_every_parameter_is_explained_in_the_deploy_guide() -> None:
    from pathlib import Path

    guide = (Path(__file__).resolve().parents[2] / "docs" / "deploy.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `(\w+)` \|", guide, flags=re.MULTILINE))
    assert set(PARAMETERS) <= documented, sorted(set(PARAMETERS) - documented)
