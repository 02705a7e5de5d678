"""Create the template's stateful resources in moto, and describe its functions.

Used by the local stack (against moto server) and by the integration tests (against
in-process ``mock_aws``), so neither can drift from ``template.yaml``: a table's keys, a
queue's redrive policy, a function's environment all come from the template itself.
"""

from __future__ import annotations

import json
import re
import secrets
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from smsgw_local.template import (
    REPO_ROOT,
    Context,
    TemplateError,
    evaluate_conditions,
    load_template,
    parameter_values,
    resolve,
    resources_of_type,
)

# Resources the local stack runs itself (functions, the API) or has no use for locally.
_SKIPPED = {
    "AWS::Serverless::Function",
    "AWS::Serverless::Api",
    "AWS::Serverless::LayerVersion",
    "AWS::Logs::LogGroup",
    "AWS::CloudWatch::Alarm",
    "AWS::CloudWatch::Dashboard",
    "AWS::SQS::QueuePolicy",
    "AWS::SNS::TopicPolicy",
    "AWS::SNS::Subscription",
    "AWS::KMS::Key",
    "AWS::KMS::Alias",
    "AWS::Lambda::Permission",
    "AWS::IAM::Role",
    "AWS::ApiGateway::UsagePlan",
    "AWS::ApiGateway::UsagePlanKey",
    "AWS::ApiGateway::ApiKey",
}
# What the local stack cannot stand in for and has no need of: logged, not created.


@dataclass(frozen=True)
class ApiRoute:
    method: str  # upper case
    path: str  # API Gateway form, e.g. /v1/messages/{id}
    api_key_required: bool


@dataclass(frozen=True)
class SqsSource:
    queue_url: str
    queue_arn: str
    batch_size: int
    max_concurrency: int
    report_batch_item_failures: bool
    batching_window_seconds: int = 0


@dataclass(frozen=True)
class ScheduleSource:
    expression: str  # rate(...) or cron(...)
    enabled: bool = True


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    name: str
    code_dir: Path
    handler: str  # module.function
    timeout: int
    memory: int
    environment: dict[str, str]
    layer_dirs: tuple[Path, ...]
    api_routes: tuple[ApiRoute, ...] = ()
    sqs_sources: tuple[SqsSource, ...] = ()
    schedules: tuple[ScheduleSource, ...] = ()


@dataclass
class Provisioned:
    template: dict[str, Any]
    context: Context
    functions: dict[str, FunctionSpec] = field(default_factory=dict)
    secret_values: dict[str, str] = field(default_factory=dict)

    def ref(self, logical_id: str) -> Any:
        return self.context.refs[logical_id]

    def attribute(self, logical_id: str, name: str) -> Any:
        return self.context.attributes[logical_id][name]


def _random_secret(length: int = 32) -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(length))


def _secret_string(props: Mapping[str, Any], given: str | None) -> str:
    if given is not None:
        return given
    if "SecretString" in props:
        return str(props["SecretString"])
    generate = props.get("GenerateSecretString", {})
    value = _random_secret(int(generate.get("PasswordLength", 32)))
    if "SecretStringTemplate" in generate:
        data = json.loads(generate["SecretStringTemplate"])
        data[generate["GenerateStringKey"]] = value
        return json.dumps(data)
    return value


class _Provisioner:
    def __init__(self, session: boto3.session.Session, endpoint_url: str | None, ctx: Context) -> None:
        self.session = session
        self.endpoint = endpoint_url
        self.ctx = ctx

    def client(self, service: str) -> Any:
        session: Any = self.session
        return session.client(service, region_name=self.ctx.region, endpoint_url=self.endpoint)

    def queue(self, logical: str, props: dict[str, Any]) -> None:
        sqs = self.client("sqs")
        name = props.get("QueueName", f"{self.ctx.stack_name}-{logical}")
        attributes: dict[str, str] = {}
        for key in (
            "VisibilityTimeout",
            "MessageRetentionPeriod",
            "DelaySeconds",
            "ReceiveMessageWaitTimeSeconds",
        ):
            if key in props:
                attributes[key] = str(props[key])
        if "RedrivePolicy" in props:
            attributes["RedrivePolicy"] = json.dumps(props["RedrivePolicy"])
        url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.ctx.refs[logical] = url
        self.ctx.attributes[logical] = {"Arn": arn, "QueueName": name, "QueueUrl": url}

    def table(self, logical: str, props: dict[str, Any]) -> None:
        dynamodb = self.client("dynamodb")
        name = props.get("TableName", f"{self.ctx.stack_name}-{logical}")
        kwargs: dict[str, Any] = {
            "TableName": name,
            "AttributeDefinitions": props["AttributeDefinitions"],
            "KeySchema": props["KeySchema"],
            "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
        }
        if props.get("GlobalSecondaryIndexes"):
            kwargs["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
        if props.get("StreamSpecification"):
            kwargs["StreamSpecification"] = {"StreamEnabled": True, **props["StreamSpecification"]}
        description = dynamodb.create_table(**kwargs)["TableDescription"]
        ttl = props.get("TimeToLiveSpecification")
        if ttl and ttl.get("Enabled"):
            dynamodb.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)
        self.ctx.refs[logical] = name
        self.ctx.attributes[logical] = {
            "Arn": description["TableArn"],
            "StreamArn": description.get("LatestStreamArn"),
        }

    def secret(self, logical: str, props: dict[str, Any], given: str | None) -> str:
        value = _secret_string(props, given)
        arn = self.client("secretsmanager").create_secret(Name=props["Name"], SecretString=value)["ARN"]
        self.ctx.refs[logical] = arn
        self.ctx.attributes[logical] = {"Id": arn}
        return value

    def event_bus(self, logical: str, props: dict[str, Any]) -> None:
        arn = self.client("events").create_event_bus(Name=props["Name"])["EventBusArn"]
        self.ctx.refs[logical] = props["Name"]
        self.ctx.attributes[logical] = {"Arn": arn, "Name": props["Name"]}

    def rule(self, logical: str, props: dict[str, Any]) -> None:
        """An EventBridge rule with an event pattern and its targets (moto delivers to SQS
        targets, as EventBridge does). A scheduled rule is the local schedules' business."""
        name = props.get("Name", f"{self.ctx.stack_name}-{logical}")
        self.ctx.refs[logical] = name
        self.ctx.attributes[logical] = {
            "Arn": f"arn:aws:events:{self.ctx.region}:{self.ctx.account}:rule/{name}"
        }
        if "EventPattern" not in props:
            return
        events = self.client("events")
        bus = props.get("EventBusName", "default")
        events.put_rule(
            Name=name,
            EventBusName=bus,
            EventPattern=json.dumps(props["EventPattern"]),
            State=props.get("State", "ENABLED"),
        )
        targets = [{"Id": t["Id"], "Arn": t["Arn"]} for t in props.get("Targets", [])]
        if targets:
            events.put_targets(Rule=name, EventBusName=bus, Targets=targets)

    def topic(self, logical: str, props: dict[str, Any]) -> None:
        name = props.get("TopicName", f"{self.ctx.stack_name}-{logical}")
        arn = self.client("sns").create_topic(Name=name)["TopicArn"]
        self.ctx.refs[logical] = arn
        self.ctx.attributes[logical] = {"TopicArn": arn, "TopicName": name}

    def parameter(self, logical: str, props: dict[str, Any]) -> None:
        self.client("ssm").put_parameter(
            Name=props["Name"], Value=str(props["Value"]), Type=props.get("Type", "String")
        )
        self.ctx.refs[logical] = props["Name"]


def provision(
    *,
    parameters: Mapping[str, Any] | None = None,
    secret_values: Mapping[str, str] | None = None,
    session: boto3.session.Session | None = None,
    endpoint_url: str | None = None,
    stack_name: str = "smsgw-local",
    template_path: Path | None = None,
) -> Provisioned:
    """Create the template's tables, queues, secrets, buses, topics and parameters.

    ``secret_values`` gives the local value of a secret by logical id (otherwise it is
    generated as the template says). Returns every physical name and the functions'
    resolved settings.
    """
    template = load_template(template_path) if template_path else load_template()
    ctx = Context(parameters=parameter_values(template, parameters or {}), stack_name=stack_name)
    ctx.conditions = evaluate_conditions(template, ctx)
    worker = _Provisioner(session or boto3.session.Session(), endpoint_url, ctx)
    given = dict(secret_values or {})
    result = Provisioned(template=template, context=ctx)

    # Names of what the local stack stands in for, so that Ref/GetAtt on them resolve.
    for logical, res in template.get("Resources", {}).items():
        kind = res["Type"]
        if kind in _SKIPPED:
            ctx.refs.setdefault(logical, f"{stack_name}-{logical}")
            ctx.attributes.setdefault(logical, {"Arn": f"arn:aws:local:{ctx.region}:{ctx.account}:{logical}"})

    creators: dict[str, Callable[[str, dict[str, Any]], None]] = {
        "AWS::SQS::Queue": worker.queue,
        "AWS::DynamoDB::Table": worker.table,
        "AWS::Events::EventBus": worker.event_bus,
        "AWS::Events::Rule": worker.rule,
        "AWS::SNS::Topic": worker.topic,
        "AWS::SSM::Parameter": worker.parameter,
    }
    pending = {k: v for k, v in template.get("Resources", {}).items() if v["Type"] not in _SKIPPED}
    while pending:
        progressed = False
        for logical, res in list(pending.items()):
            if "Condition" in res and not ctx.conditions[res["Condition"]]:
                pending.pop(logical)
                progressed = True
                continue
            try:
                props = resolve(res.get("Properties", {}), ctx)
            except TemplateError:
                continue  # depends on a resource not created yet
            kind = res["Type"]
            if kind == "AWS::SecretsManager::Secret":
                result.secret_values[logical] = worker.secret(logical, props, given.pop(logical, None))
            elif kind in creators:
                creators[kind](logical, props)
            else:
                raise TemplateError(f"{logical}: the local stack cannot provision {kind}")
            pending.pop(logical)
            progressed = True
        if not progressed:
            raise TemplateError(f"cannot resolve the properties of: {', '.join(pending)}")
    if given:
        raise TemplateError(f"no such secrets in the template: {', '.join(given)}")
    result.functions = describe_functions(template, ctx)
    return result


def _as_env(values: Mapping[str, Any]) -> dict[str, str]:
    return {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in values.items()}


_INTEGRATION_TARGET = re.compile(r"\$\{(\w+)\.Arn\}")


def api_routes(template: Mapping[str, Any], ctx: Context) -> dict[str, list[ApiRoute]]:
    """Routes by function, from the APIs' OpenAPI bodies (the template's own routing)."""
    routes: dict[str, list[ApiRoute]] = {}
    for api in resources_of_type(template, "AWS::Serverless::Api").values():
        body = api.get("Properties", {}).get("DefinitionBody", {})
        for path, methods in body.get("paths", {}).items():
            for method, operation in methods.items():
                integration = operation.get("x-amazon-apigateway-integration", {})
                uri = integration.get("uri", {})
                found = _INTEGRATION_TARGET.search(
                    uri.get("Fn::Sub", "") if isinstance(uri, dict) else str(uri)
                )
                if not found:
                    raise TemplateError(f"{method.upper()} {path}: cannot tell which function it calls")
                security = resolve(operation.get("security", []), ctx)
                if any("sigv4" in requirement for requirement in security):
                    raise TemplateError("the local stack serves API keys only: run it with ApiAuth=API_KEY")
                required = any("api_key" in requirement for requirement in security)
                routes.setdefault(found.group(1), []).append(ApiRoute(method.upper(), path, required))
    return routes


def describe_functions(template: Mapping[str, Any], ctx: Context) -> dict[str, FunctionSpec]:
    globals_ = template.get("Globals", {}).get("Function", {})
    apis = resources_of_type(template, "AWS::Serverless::Api")
    layers = resources_of_type(template, "AWS::Serverless::LayerVersion")
    openapi_routes = api_routes(template, ctx)
    specs: dict[str, FunctionSpec] = {}
    for logical, res in resources_of_type(template, "AWS::Serverless::Function").items():
        props = {**globals_, **res.get("Properties", {})}
        env = {
            **globals_.get("Environment", {}).get("Variables", {}),
            **res.get("Properties", {}).get("Environment", {}).get("Variables", {}),
        }
        layer_dirs = tuple(
            REPO_ROOT / layers[layer["Ref"]]["Properties"]["ContentUri"]
            for layer in props.get("Layers", [])
            if isinstance(layer, dict) and layer.get("Ref") in layers
        )
        routes: list[ApiRoute] = list(openapi_routes.get(logical, []))
        sqs: list[SqsSource] = []
        schedules: list[ScheduleSource] = []
        for event in res.get("Properties", {}).get("Events", {}).values():
            ev = (
                resolve(event.get("Properties", {}), ctx)
                if event["Type"] != "Api"
                else event.get("Properties", {})
            )
            if event["Type"] == "Api":
                api_logical = ev.get("RestApiId", {}).get("Ref")
                api_auth = apis.get(api_logical, {}).get("Properties", {}).get("Auth", {})
                required = ev.get("Auth", {}).get("ApiKeyRequired", api_auth.get("ApiKeyRequired", False))
                routes.append(ApiRoute(ev["Method"].upper(), ev["Path"], bool(required)))
            elif event["Type"] == "SQS":
                arn = ev["Queue"]
                url = next(v["QueueUrl"] for v in ctx.attributes.values() if v.get("Arn") == arn)
                sqs.append(
                    SqsSource(
                        queue_url=url,
                        queue_arn=arn,
                        batch_size=int(ev.get("BatchSize", 10)),
                        max_concurrency=int(ev.get("ScalingConfig", {}).get("MaximumConcurrency", 2)),
                        report_batch_item_failures="ReportBatchItemFailures"
                        in ev.get("FunctionResponseTypes", []),
                        batching_window_seconds=int(ev.get("MaximumBatchingWindowInSeconds", 0)),
                    )
                )
            elif event["Type"] == "Schedule":
                enabled = bool(ev.get("Enabled", True)) and ev.get("State", "ENABLED") != "DISABLED"
                schedules.append(ScheduleSource(str(ev["Schedule"]), enabled))
        specs[logical] = FunctionSpec(
            logical_id=logical,
            name=str(resolve(props.get("FunctionName", logical), ctx)),
            code_dir=REPO_ROOT / props["CodeUri"],
            handler=props["Handler"],
            timeout=int(resolve(props.get("Timeout", 3), ctx)),
            memory=int(resolve(props.get("MemorySize", 128), ctx)),
            environment=_as_env(resolve(env, ctx)),
            layer_dirs=layer_dirs,
            api_routes=tuple(routes),
            sqs_sources=tuple(sqs),
            schedules=tuple(schedules),
        )
    return specs
