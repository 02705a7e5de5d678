"""``docs/openapi.yaml``, generated from the models: the request models of ``api.models``,
the answers of ``api.contract``, and the one table of routes below.

``python -m smsgw.api.schemas`` writes it; tests fail when the file drifts from what this
generates, when the template's API routes differ from these, and when the running API
answers anything the document does not describe (the contract fuzz run).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from smsgw.api import contract
from smsgw.api.models import CallbackBody, InboundQuery, MessagesQuery, SendBody
from smsgw.services.status import DEFAULT_PAGE, MAX_PAGE

REF = "#/components/schemas/{model}"
JSON = "application/json"


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    operation_id: str
    summary: str
    ok: int
    answer: type[BaseModel] | None  # None: no JSON body (204, or the push's text)
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    path_params: tuple[tuple[str, str], ...] = ()
    errors: tuple[int, ...] = (400, 403, 429)
    authenticated: bool = True
    extra_params: tuple[dict[str, Any], ...] = field(default_factory=tuple)


PAGE_PARAMS = (
    {
        "name": "limit",
        "in": "query",
        "required": False,
        "description": "recipients a page holds at least (whole chunks of up to 200 are added)",
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": DEFAULT_PAGE},
    },
    {
        "name": "cursor",
        "in": "query",
        "required": False,
        "description": "next_cursor of the page before",
        "schema": {"type": "integer", "minimum": 0, "maximum": 99_999},
    },
)
IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "the same key and body return the first reply and send nothing more; another body: 409",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[\\x20-\\x7e]+$"},
}

MOBILE = (("mobile", "a Chinese mobile number"),)
OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "post", "/v1/messages", "sendMessages", "Send one content to many numbers, or personalised messages",
        202, contract.Accepted, body=SendBody, errors=(400, 403, 409, 413, 429),
        extra_params=(IDEMPOTENCY_KEY,),
    ),
    Operation(
        "get", "/v1/messages", "searchMessages",
        "The caller's requests with a reference, or sent to a number; newest first, paged",
        200, contract.MessageList, query=MessagesQuery,
    ),
    Operation(
        "get", "/v1/messages/{id}", "getMessage", "One of the caller's requests and a page of its recipients",
        200, contract.Message, path_params=(("id", "the request id"),), errors=(400, 403, 404, 429),
        extra_params=PAGE_PARAMS,
    ),
    Operation(
        "delete", "/v1/messages/{id}", "cancelMessage",
        "Cancel what has not been handed to the platform; says what had already left",
        200, contract.Cancelled, path_params=(("id", "the request id"),), errors=(403, 404, 429),
    ),
    Operation(
        "get", "/v1/inbound", "searchInbound", "Replies (MO) in a time range, one number's or all",
        200, contract.InboundList, query=InboundQuery,
    ),
    Operation(
        "get", "/v1/callback", "getCallback", "The caller's callback settings and signing secret",
        200, contract.CallbackSettings, errors=(403, 429),
    ),
    Operation(
        "put", "/v1/callback", "putCallback", "Set (or, with null, remove) the caller's default callback URL",
        200, contract.CallbackSettings, body=CallbackBody, errors=(400, 403, 413, 429),
    ),
    Operation(
        "get", "/v1/opt-outs/{mobile}", "getOptOut", "Whether a number is on the opt-out list",
        200, contract.OptOut, path_params=MOBILE, errors=(400, 403, 404, 429),
    ),
    Operation(
        "put", "/v1/opt-outs/{mobile}", "putOptOut", "Put a number on the opt-out list (201 if it was not)",
        200, contract.OptOut, path_params=MOBILE, errors=(400, 403, 404, 429),
    ),
    Operation(
        "delete", "/v1/opt-outs/{mobile}", "deleteOptOut", "Take a number off the opt-out list",
        204, None, path_params=MOBILE, errors=(400, 403, 404, 429),
    ),
    Operation(
        "post", "/v1/guodu/push/{token}", "guoduPush",
        "The URL registered with Guodu: status reports and replies (the token is its secret)",
        200, None, path_params=(("token", "the push URL's secret token"),), errors=(400, 403, 413),
        authenticated=False,
    ),
)  # fmt: skip

ERRORS = {
    400: "bad input: details name each field",
    403: "no or a wrong API key (invalid_api_key), an unknown route (missing_authentication_token)",
    404: "not found (another caller's request is not found either)",
    409: "the Idempotency-Key was used with another body",
    413: "the body is too large",
    429: "throttled, over the daily quota, or (a send) every number over a frequency cap",
}


Refs = dict[tuple[type[BaseModel], str], Any]


def _schemas() -> tuple[Refs, dict[str, Any]]:
    models: list[tuple[type[BaseModel], Any]] = [(m, "validation") for m in (SendBody, CallbackBody)]
    answers = {op.answer for op in OPERATIONS if op.answer is not None} | {contract.Error}
    models += [(m, "serialization") for m in sorted(answers, key=lambda m: m.__name__)]
    found, top = models_json_schema(models, ref_template=REF)
    refs: Refs = {}
    for (model, mode), schema in found.items():
        if isinstance(model, type) and issubclass(model, BaseModel):
            refs[(model, mode)] = schema
    return refs, top.get("$defs", {})


def _query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    schema = model.model_json_schema(by_alias=True)
    defs = schema.get("$defs", {})
    params = []
    for name, prop in schema["properties"].items():
        variants = prop.get("anyOf", [prop])
        plain = next((v for v in variants if v.get("type") != "null"), prop)
        if "$ref" in plain:
            plain = defs[plain["$ref"].rsplit("/", 1)[1]]
        param_schema = {k: v for k, v in plain.items() if k not in ("title", "description")}
        if "default" in prop and prop["default"] is not None:
            param_schema["default"] = prop["default"]
        params.append(
            {
                "name": name,
                "in": "query",
                "required": name in schema.get("required", []),
                **({"description": plain["description"]} if "description" in plain else {}),
                "schema": param_schema,
            }
        )
    return params


def _operation(op: Operation, refs: Refs) -> dict[str, Any]:
    out: dict[str, Any] = {"operationId": op.operation_id, "summary": op.summary}
    params: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "description": text, "schema": {"type": "string"}}
        for name, text in op.path_params
    ]
    if op.query is not None:
        params += _query_parameters(op.query)
    params += list(op.extra_params)
    if params:
        out["parameters"] = params
    if op.body is not None:
        out["requestBody"] = {"required": True, "content": {JSON: {"schema": refs[(op.body, "validation")]}}}
    elif op.operation_id == "guoduPush":
        out["requestBody"] = {
            "required": True,
            "description": "a packet of status reports or MO messages (the platform's document, section 3.2)",
            "content": {
                JSON: {"schema": {}},
                "application/x-www-form-urlencoded": {"schema": {"type": "object"}},
                "text/plain": {"schema": {"type": "string"}},
            },
        }
    responses: dict[str, Any] = {}
    if op.answer is not None:
        answer = {"description": "OK", "content": {JSON: {"schema": refs[(op.answer, "serialization")]}}}
        responses[str(op.ok)] = answer
        if op.operation_id == "putOptOut":
            responses["201"] = {**answer, "description": "put on the list now"}
    elif op.ok == 204:
        responses["204"] = {"description": "done"}
    else:
        responses[str(op.ok)] = {
            "description": "stored (the body is the PushAckBody parameter)",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        }
    error = {"content": {JSON: {"schema": refs[(contract.Error, "serialization")]}}}
    for status in op.errors:
        responses[str(status)] = {"description": ERRORS[status], **error}
    responses["5XX"] = {"description": "the gateway failed (503: retry later, see Retry-After)", **error}
    out["responses"] = responses
    out["security"] = [{"api_key": []}, {"sigv4": []}] if op.authenticated else []
    return out


def openapi() -> dict[str, Any]:
    refs, schemas = _schemas()
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method] = _operation(op, refs)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "smsgw: an SMS gateway for the Guodu 企信通 platform",
            "version": "1",
            "description": (
                "Generated from the models (python -m smsgw.api.schemas): do not edit by hand. "
                "Every time is ISO 8601 with its offset; errors are always the Error shape."
            ),
        },
        "servers": [{"url": "http://127.0.0.1:3000", "description": "the local stack (make run)"}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "api_key": {"type": "apiKey", "name": "x-api-key", "in": "header"},
                "sigv4": {
                    "type": "apiKey",
                    "name": "Authorization",
                    "in": "header",
                    "description": "AWS SigV4 (execute-api), with ApiAuth=IAM",
                },
            },
        },
    }


class _NoAliases(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True


def openapi_yaml() -> str:
    return yaml.dump(openapi(), Dumper=_NoAliases, allow_unicode=True, sort_keys=False, width=100)
