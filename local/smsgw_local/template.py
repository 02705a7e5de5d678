"""Read ``template.yaml`` the way CloudFormation would, for the local stack and the tests.

Only what the gateway's template uses is implemented: the short-form tags, ``Ref``,
``Fn::GetAtt``, ``Fn::Sub``, ``Fn::If``/``Fn::Equals``, ``Fn::Join``, ``Fn::Select`` and the
pseudo parameters. Anything else raises, so that the template cannot silently grow a
construct the local stack would misread.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = REPO_ROOT / "template.yaml"
LOCAL_ACCOUNT = "123456789012"  # moto's default account
LOCAL_REGION = "us-east-1"


class TemplateError(ValueError):
    """The template uses something the local stack does not understand."""


class _CfnLoader(yaml.SafeLoader):
    pass


def _tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = suffix if suffix in {"Ref", "Condition"} else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = str(value).split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    elif isinstance(node, yaml.MappingNode):
        value = loader.construct_mapping(node, deep=True)
    else:
        raise TemplateError(f"cannot read the tag !{suffix}")
    return {name: value}


_CfnLoader.add_multi_constructor("!", _tag)


def load_template(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        data = yaml.load(handle, Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass
    if not isinstance(data, dict):
        raise TemplateError(f"{path} is not a template")
    return data


@dataclass
class Context:
    """What intrinsic functions resolve against."""

    parameters: dict[str, Any]
    # logical id -> value of Ref, and logical id -> {attribute: value} for GetAtt
    refs: dict[str, Any] = field(default_factory=dict)
    attributes: dict[str, dict[str, Any]] = field(default_factory=dict)
    conditions: dict[str, bool] = field(default_factory=dict)
    condition_expressions: dict[str, Any] = field(default_factory=dict)
    stack_name: str = "smsgw-local"
    region: str = LOCAL_REGION
    account: str = LOCAL_ACCOUNT

    def pseudo(self) -> dict[str, str]:
        return {
            "AWS::StackName": self.stack_name,
            "AWS::Region": self.region,
            "AWS::AccountId": self.account,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
        }


def _ref(name: str, ctx: Context) -> Any:
    pseudo = ctx.pseudo()
    if name in pseudo:
        return pseudo[name]
    if name in ctx.parameters:
        return ctx.parameters[name]
    if name in ctx.refs:
        return ctx.refs[name]
    raise TemplateError(f"cannot resolve Ref {name}")


def _sub(value: Any, ctx: Context) -> str:
    if isinstance(value, list):
        text, extra = value[0], {k: resolve(v, ctx) for k, v in value[1].items()}
    else:
        text, extra = value, {}

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in extra:
            return str(extra[name])
        if "." in name and not name.startswith("AWS::"):
            logical, attribute = name.split(".", 1)
            return str(_get_att(logical, attribute, ctx))
        return str(_ref(name, ctx))

    return re.sub(r"\$\{([^}!][^}]*)\}", replace, text)


def _get_att(logical: str, attribute: str, ctx: Context) -> Any:
    try:
        return ctx.attributes[logical][attribute]
    except KeyError as err:
        raise TemplateError(f"cannot resolve GetAtt {logical}.{attribute}") from err


def _fn_get_att(arg: Any, ctx: Context) -> Any:
    logical, attribute = arg if isinstance(arg, list) else str(arg).split(".", 1)
    return _get_att(logical, attribute, ctx)


def _fn_if(arg: Any, ctx: Context) -> Any:
    condition, when_true, when_false = arg
    return resolve(when_true if _condition(condition, ctx) else when_false, ctx)


def _fn_equals(arg: Any, ctx: Context) -> bool:
    left, right = (resolve(v, ctx) for v in arg)
    return str(left) == str(right)


def _condition(name: Any, ctx: Context) -> bool:
    if name not in ctx.conditions:
        if name not in ctx.condition_expressions:
            raise TemplateError(f"no condition {name}")
        ctx.conditions[name] = bool(resolve(ctx.condition_expressions[name], ctx))
    return ctx.conditions[name]


def _fn_join(arg: Any, ctx: Context) -> str:
    separator, items = arg
    return str(separator).join(str(v) for v in resolve(items, ctx))


def _fn_select(arg: Any, ctx: Context) -> Any:
    index, items = arg
    return resolve(items, ctx)[int(resolve(index, ctx))]


_INTRINSICS: dict[str, Callable[[Any, Context], Any]] = {
    "Ref": _ref,
    "Fn::GetAtt": _fn_get_att,
    "Fn::Sub": _sub,
    "Fn::If": _fn_if,
    "Fn::Equals": _fn_equals,
    "Fn::Not": lambda arg, ctx: not resolve(arg[0], ctx),
    "Fn::And": lambda arg, ctx: all(resolve(a, ctx) for a in arg),
    "Fn::Or": lambda arg, ctx: any(resolve(a, ctx) for a in arg),
    "Condition": _condition,
    "Fn::Join": _fn_join,
    "Fn::Select": _fn_select,
}


def resolve(value: Any, ctx: Context) -> Any:
    """Resolve intrinsic functions inside ``value``, recursively."""
    if isinstance(value, list):
        return [resolve(v, ctx) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        ((key, arg),) = value.items()
        if key in _INTRINSICS:
            return _INTRINSICS[key](arg, ctx)
        if key.startswith("Fn::"):
            raise TemplateError(f"{key} is not supported by the local stack")
    return {k: resolve(v, ctx) for k, v in value.items()}


def parameter_values(template: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Template defaults, replaced by ``overrides``; a parameter without either is an error."""
    values: dict[str, Any] = {}
    for name, spec in template.get("Parameters", {}).items():
        if name in overrides:
            values[name] = overrides[name]
        elif "Default" in spec:
            values[name] = spec["Default"]
        else:
            raise TemplateError(f"parameter {name} has no default: pass a value")
        if spec.get("Type") == "CommaDelimitedList" and isinstance(values[name], str):
            # As CloudFormation passes it: a list ("" is one empty item).
            values[name] = [part.strip() for part in values[name].split(",")]
    unknown = set(overrides) - set(values)
    if unknown:
        raise TemplateError(f"unknown parameters: {', '.join(sorted(unknown))}")
    return values


def evaluate_conditions(template: Mapping[str, Any], ctx: Context) -> dict[str, bool]:
    ctx.condition_expressions = dict(template.get("Conditions", {}))
    return {name: _condition(name, ctx) for name in ctx.condition_expressions}


def resources_of_type(template: Mapping[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {name: res for name, res in template.get("Resources", {}).items() if res.get("Type") == kind}
