"""template.yaml as CloudFormation gets it: transformed by the SAM translator, offline.

``sam deploy`` sends the template to the ``AWS::Serverless-2016-10-31`` transform, which is
this translator (``aws-sam-translator``). What it generates (stages, permissions, roles)
is only visible here, never in template.yaml itself.
"""

from __future__ import annotations

import copy
import fnmatch
import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import boto3
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator

from smsgw_local.template import Context, evaluate_conditions, load_template, parameter_values

REGION = "us-east-1"
SUBMIT_URL = "http://203.0.113.1:9999/x"


@functools.cache
def _transformed(parameters: str) -> dict[str, Any]:
    template = copy.deepcopy(load_template())
    # What `sam package` does: code goes to S3 and the template names it there.
    for logical, resource in template["Resources"].items():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = f"s3://artifacts/{logical}.zip"
        elif resource["Type"] == "AWS::Serverless::LayerVersion":
            resource["Properties"]["ContentUri"] = f"s3://artifacts/{logical}.zip"
    translator = Translator(None, Parser(), boto_session=boto3.session.Session(region_name=REGION))
    result: dict[str, Any] = translator.translate(
        template,
        parameter_values={"GuoduSubmitUrl": SUBMIT_URL, **json.loads(parameters)},
        get_managed_policy_map=lambda: {},
    )
    return result


def transformed(**parameters: Any) -> dict[str, Any]:
    """The CloudFormation template SAM makes of template.yaml with these parameters."""
    return copy.deepcopy(_transformed(json.dumps(parameters, sort_keys=True)))


def conditions(**parameters: Any) -> dict[str, bool]:
    """The template's conditions with these parameters (the others at their defaults)."""
    template = load_template()
    values = parameter_values(template, {"GuoduSubmitUrl": SUBMIT_URL, **parameters})
    return evaluate_conditions(template, Context(parameters=values))


def of_type(template: Mapping[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


@dataclass(frozen=True)
class Grant:
    """One action on one resource of the stack; for DynamoDB, on the items whose partition
    key matches ``keys`` (a ``dynamodb:LeadingKeys`` pattern), "" when unbounded."""

    action: str
    resource: str  # logical id of the resource
    keys: str = ""


def _logical_ids(resource: Any, held: Mapping[str, bool]) -> list[str]:
    """The stack's resources a statement's resource names (none: an ``Fn::If`` whose
    condition, as ``held``, chooses ``AWS::NoValue``)."""
    if isinstance(resource, dict) and "Fn::If" in resource:
        condition, when_true, when_false = resource["Fn::If"]
        return _logical_ids(when_true if held[condition] else when_false, held)
    if isinstance(resource, dict) and resource.get("Ref") == "AWS::NoValue":
        return []
    if isinstance(resource, dict) and "Fn::GetAtt" in resource:
        return [str(resource["Fn::GetAtt"][0])]
    if isinstance(resource, dict) and "Ref" in resource:
        return [str(resource["Ref"])]
    if isinstance(resource, dict) and "Fn::Sub" in resource:
        text, variables = resource["Fn::Sub"]
        ((name, value),) = [(k, v) for k, v in variables.items() if isinstance(v, dict)]
        assert isinstance(text, str)
        # A table's index: "${TableArn}/index/Name" is the resource "Table/index/Name".
        suffix = text.removeprefix(f"${{{name}}}") if text.startswith(f"${{{name}}}/index/") else ""
        return [logical + suffix for logical in _logical_ids(value, held)]
    raise AssertionError(f"a grant on {resource!r}, not on one resource of the stack")


def statements(template: Mapping[str, Any], function: str) -> list[dict[str, Any]]:
    """Every statement of the inline policies of ``function``'s role."""
    role = template["Resources"][function]["Properties"]["Role"]["Fn::GetAtt"][0]
    found: list[dict[str, Any]] = []
    for policy in template["Resources"][role]["Properties"].get("Policies", []):
        found.extend(policy["PolicyDocument"]["Statement"])
    return found


def grants(template: Mapping[str, Any], function: str, held: Mapping[str, bool] | None = None) -> set[Grant]:
    """The grants of ``function``'s role; ``held``: the conditions the template was
    transformed with (default: every parameter at its default)."""
    held = conditions() if held is None else held
    out: set[Grant] = set()
    for statement in statements(template, function):
        assert statement["Effect"] == "Allow"
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        resources = (
            statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        )
        condition = statement.get("Condition", {})
        leading = condition.get("ForAllValues:StringLike", {}).get("dynamodb:LeadingKeys", [""])
        for action in actions:
            for resource in resources:
                for keys in leading:
                    for logical in _logical_ids(resource, held):
                        out.add(Grant(action, logical, keys))
    return out


def allows(held: set[Grant], action: str, resource: str, partition_key: str | None = None) -> bool:
    """Whether ``held`` allows ``action`` on ``resource`` (for an item, its partition key)."""
    for grant in held:
        if (grant.action, grant.resource) != (action, resource):
            continue
        if not grant.keys or (partition_key is not None and fnmatch.fnmatchcase(partition_key, grant.keys)):
            return True
    return False
