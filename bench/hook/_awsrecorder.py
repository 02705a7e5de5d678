"""Why: moto reports no consumed capacity, so the cost model records every AWS request a
process makes (one JSON line each, a botocore event hook) with the sizes DynamoDB bills by.

Installed by ``sitecustomize`` in the local stack's function workers (by the bench in its
own process, for the SQS poller, and by the push probe), before any botocore session exists: the hook
joins ``botocore.handlers.BUILTIN_HANDLERS``, which every new session registers. Each
line holds what billing needs and nothing more: the service and operation, the process's
function, the thread, how many HTTP attempts the call took, and sizes (DynamoDB item
sizes as DynamoDB counts them, message and event sizes) taken from the request
parameters and the parsed answer. No values are kept, so no phone number is written.

An update is billed by the larger of the item before and after it, so for an
``UpdateItem`` the line also holds ``grow`` (what its SET and ADD targets weigh: the
growth if all are new) and, when the answer returns the old item (``ALL_OLD``), the
item's exact size ``before`` and ``after`` the write, worked out from the update
expression. The attribute names needed for that (a delivery report's name is its
mobile) stay in memory for the length of the call.

Standard library and botocore only: it runs inside the workers' Lambda-like processes.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
import threading
import time
from typing import Any

ENV_DIR = "SMSGW_BENCH_AWS_LOG_DIR"
_CONTEXT_KEY = "smsgw_bench"


def _number_size(text: str) -> int:
    """A DynamoDB number: one byte per two significant digits, plus one."""
    digits = text.lstrip("-").replace(".", "").lstrip("0").rstrip("0") or "0"
    return (len(digits) + 1) // 2 + 1


def _utf8(text: Any) -> int:
    return len(str(text).encode("utf-8"))


def _binary(value: Any) -> int:
    return len(value) if isinstance(value, bytes | bytearray) else len(str(value))


_SIZES: dict[str, Any] = {
    "S": _utf8,
    "N": lambda v: _number_size(str(v)),
    "B": _binary,
    "BOOL": lambda v: 1,
    "NULL": lambda v: 1,
    "SS": lambda v: sum(_utf8(s) for s in v),
    "NS": lambda v: sum(_number_size(str(n)) for n in v),
    "BS": lambda v: sum(_binary(b) for b in v),
    "L": lambda v: 3 + sum(value_size(e) + 1 for e in v),
    "M": lambda v: 3 + sum(_utf8(k) + value_size(e) + 1 for k, e in v.items()),
}


def value_size(value: Any) -> int:
    """Bytes of one attribute value in DynamoDB's accounting (AttributeValue form)."""
    if not isinstance(value, dict) or len(value) != 1:
        return 0
    ((kind, inner),) = value.items()
    size = _SIZES.get(kind)
    return int(size(inner)) if size else 0


def item_size(item: dict[str, Any] | None) -> int:
    if not item:
        return 0
    return sum(len(name.encode("utf-8")) + value_size(value) for name, value in item.items())


def key_text(key: dict[str, Any] | None) -> str:
    if not key:
        return ""
    pk = key.get("pk", {}).get("S", "")
    sk = key.get("sk", {}).get("S", "")
    return f"{pk}|{sk}"


def _put(params: dict[str, Any]) -> dict[str, Any]:
    item = params.get("Item", {})
    return {"key": key_text(item), "size": item_size(item)}


def _keyed(params: dict[str, Any]) -> dict[str, Any]:
    return {
        "key": key_text(params.get("Key")),
        "rv": params.get("ReturnValues", "NONE"),
        "consistent": bool(params.get("ConsistentRead")),
    }


def _batch_write(params: dict[str, Any]) -> dict[str, Any]:
    writes = []
    for requests in params.get("RequestItems", {}).values():
        for request in requests:
            if "PutRequest" in request:
                writes.append(_put(request["PutRequest"]))
            else:
                writes.append({"key": key_text(request.get("DeleteRequest", {}).get("Key")), "del": True})
    return {"writes": writes}


def _batch_get(params: dict[str, Any]) -> dict[str, Any]:
    tables = params.get("RequestItems", {}).values()
    return {
        "keys": sum(len(t.get("Keys", [])) for t in tables),
        "consistent": any(t.get("ConsistentRead") for t in tables),
    }


_CLAUSE = re.compile(r"\b(SET|ADD|REMOVE|DELETE)\b")
IF_NOT_EXISTS = re.compile(r"^if_not_exists\(\s*([#\w.]+)\s*,\s*(:\w+)\s*\)$")
_VALUE_NAME = re.compile(r":\w+")
Plan = list[tuple[str, str, int]]  # (how, attribute name, attribute size with its name)


def _split_top(text: str) -> list[str]:
    """Split on commas outside parentheses."""
    parts: list[str] = []
    depth, start = 0, 0
    for i, char in enumerate(text):
        depth += (char == "(") - (char == ")")
        if char == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    parts.append(text[start:].strip())
    return [part for part in parts if part]


def update_actions(params: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The bench's one reading of an UpdateExpression (``update_plan`` sizes it):
    ``(verb, attribute name, operand)`` per action, names
    resolved; SET's operand is its right-hand side, ADD's its value name, REMOVE's empty."""
    names: dict[str, str] = params.get("ExpressionAttributeNames", {})
    pieces = _CLAUSE.split(params.get("UpdateExpression", ""))
    actions: list[tuple[str, str, str]] = []
    for verb, body in zip(pieces[1::2], pieces[2::2], strict=True):
        for action in _split_top(body):
            if verb == "SET" and "=" in action:
                target, operand = action.split("=", 1)
            elif verb == "ADD":
                target, operand = action.split(None, 1)
            elif verb == "REMOVE":
                target, operand = action, ""
            else:
                continue
            actions.append((verb, names.get(target.strip(), target.strip()), operand.strip()))
    return actions


def update_plan(params: dict[str, Any]) -> Plan:
    """What an UpdateExpression does to each attribute: ``keep`` (if_not_exists), ``set``,
    ``add`` or ``remove``, with the size the attribute has once written."""
    values: dict[str, Any] = params.get("ExpressionAttributeValues", {})
    plan: Plan = []
    for verb, name, operand in update_actions(params):
        found = IF_NOT_EXISTS.match(operand)
        if verb == "REMOVE":
            plan.append(("remove", name, 0))
        elif verb == "ADD":
            plan.append(("add", name, _utf8(name) + value_size(values.get(operand))))
        elif found:
            plan.append(("keep", name, _utf8(name) + value_size(values.get(found.group(2)))))
        else:  # ``:v``, ``a + :v``, ``a = b``: as large as its largest operand
            operands = [value_size(values.get(v)) for v in _VALUE_NAME.findall(operand)]
            plan.append(("set", name, _utf8(name) + max(operands, default=4)))
    return plan


def apply_plan(item: dict[str, Any], plan: Plan) -> int:
    """The item's size once ``plan`` is applied to ``item`` (AttributeValue form)."""
    sizes = {name: _utf8(name) + value_size(value) for name, value in item.items()}
    for how, name, size in plan:
        if how == "keep":
            sizes.setdefault(name, size)
        elif how == "set":
            sizes[name] = size
        elif how == "add":  # a number grows by a byte at most; a set by its new elements
            sizes[name] = max(sizes.get(name, 0), size)
        elif how == "remove":
            sizes.pop(name, None)
    return sum(sizes.values())


def _grow(plan: Plan) -> int:
    return sum(size for how, _, size in plan if how != "remove")


def _update(params: dict[str, Any]) -> dict[str, Any]:
    return {**_keyed(params), "grow": _grow(update_plan(params))}


def _transact_write(params: dict[str, Any]) -> dict[str, Any]:
    items = []
    for entry in params.get("TransactItems", []):
        ((kind, body),) = entry.items()
        record: dict[str, Any] = _put(body) if kind == "Put" else {"key": key_text(body.get("Key"))}
        if kind == "Update":
            record["grow"] = _grow(update_plan(body))
        items.append({"kind": kind, **record})
    return {"items": items}


_DYNAMODB_PARAMS: dict[str, Any] = {
    "PutItem": _put,
    "UpdateItem": _update,
    "DeleteItem": _keyed,
    "GetItem": _keyed,
    "BatchWriteItem": _batch_write,
    "BatchGetItem": _batch_get,
    "Query": lambda p: {"consistent": bool(p.get("ConsistentRead"))},
    "Scan": lambda p: {"consistent": bool(p.get("ConsistentRead"))},
    "TransactWriteItems": _transact_write,
}


def _dynamodb_params(op: str, params: dict[str, Any]) -> dict[str, Any]:
    summarise = _DYNAMODB_PARAMS.get(op)
    return dict(summarise(params)) if summarise else {}


def _dynamodb_result(op: str, parsed: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "Attributes" in parsed:
        out["attr_size"] = item_size(parsed["Attributes"])
    if "Item" in parsed:
        out["size"] = item_size(parsed["Item"])
    if "Items" in parsed:
        out["sizes"] = [item_size(i) for i in parsed["Items"]]
    if op == "BatchGetItem":
        out["sizes"] = [item_size(i) for items in parsed.get("Responses", {}).values() for i in items]
        out["unprocessed"] = sum(len(t.get("Keys", [])) for t in parsed.get("UnprocessedKeys", {}).values())
    if op == "BatchWriteItem":
        out["unprocessed"] = sum(len(v) for v in parsed.get("UnprocessedItems", {}).values())
    if "ConsumedCapacity" in parsed:
        out["consumed"] = parsed["ConsumedCapacity"]
    return out


def _entry_size(entry: dict[str, Any]) -> int:
    """An EventBridge entry's billed size: Time (14), Source, DetailType, Detail, Resources."""
    size = 14 if entry.get("Time") else 0
    for name in ("Source", "DetailType", "Detail"):
        size += len(str(entry.get(name, "")).encode("utf-8"))
    size += sum(len(str(r).encode("utf-8")) for r in entry.get("Resources", []))
    return size


def _message_bytes(entries: list[dict[str, Any]]) -> list[int]:
    return [_utf8(e.get("MessageBody", "")) for e in entries]


_SQS_PARAMS: dict[str, Any] = {
    "SendMessageBatch": lambda p: {"bytes": _message_bytes(p.get("Entries", []))},
    "SendMessage": lambda p: {"bytes": _message_bytes([p])},
    "DeleteMessageBatch": lambda p: {"n": len(p.get("Entries", []))},
    "ChangeMessageVisibilityBatch": lambda p: {"n": len(p.get("Entries", []))},
    "ReceiveMessage": lambda p: {"wait": p.get("WaitTimeSeconds", 0)},
}


def summarise_params(service: str, op: str, params: dict[str, Any]) -> dict[str, Any]:
    if service == "dynamodb":
        return _dynamodb_params(op, params)
    if service == "sqs" and op in _SQS_PARAMS:
        return dict(_SQS_PARAMS[op](params))
    if service in ("events", "eventbridge") and op == "PutEvents":
        return {"sizes": [_entry_size(e) for e in params.get("Entries", [])]}
    return {}


def summarise_result(service: str, op: str, parsed: dict[str, Any]) -> dict[str, Any]:
    if service == "dynamodb":
        return _dynamodb_result(op, parsed)
    if service == "sqs" and op == "ReceiveMessage":
        messages = parsed.get("Messages", [])
        return {"n": len(messages), "bytes": [_utf8(m.get("Body", "")) for m in messages]}
    if service in ("events", "eventbridge") and op == "PutEvents":
        return {"failed": parsed.get("FailedEntryCount", 0)}
    return {}


class Recorder:
    """Appends one JSON line per AWS call to ``<dir>/<pid>.jsonl``."""

    def __init__(self, directory: str) -> None:
        os.makedirs(directory, exist_ok=True)
        self._path = os.path.join(directory, f"{os.getpid()}.jsonl")
        self._lock = threading.Lock()
        self._file = open(self._path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115 - lives with the process
        self._function = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")

    def before(self, params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        service = model.service_model.service_name
        try:
            summary = summarise_params(service, model.name, params)
        except Exception as err:  # never break the call being watched
            summary = {"summary_error": type(err).__name__}
        call = {"svc": service, "op": model.name, "p": summary, "try": 0, "t0": time.time()}
        if service == "dynamodb" and model.name == "UpdateItem" and params.get("ReturnValues") == "ALL_OLD":
            with contextlib.suppress(Exception):  # never break the call being watched
                # In memory only: the attribute names of reports are mobiles.
                call["plan"] = (params.get("Key", {}), update_plan(params))
        context[_CONTEXT_KEY] = call

    def attempt(self, context: dict[str, Any] | None = None, **_: Any) -> None:
        if context is not None and _CONTEXT_KEY in context:
            context[_CONTEXT_KEY]["try"] += 1

    def after(
        self, http_response: Any, parsed: dict[str, Any], model: Any, context: dict[str, Any], **_: Any
    ) -> None:
        call = context.get(_CONTEXT_KEY)
        if call is None:
            return
        try:
            result = summarise_result(call["svc"], call["op"], parsed)
        except Exception as err:
            result = {"summary_error": type(err).__name__}
        error = (
            parsed.get("Error", {}).get("Code") if getattr(http_response, "status_code", 200) >= 300 else None
        )
        if "plan" in call and error is None:
            key, plan = call.pop("plan")
            old = parsed.get("Attributes") or {}
            result["before"] = item_size(old)
            result["after"] = apply_plan(old or key, plan)
        call.pop("plan", None)
        self._write(call, result, error)

    def failed(self, exception: BaseException, context: dict[str, Any], **_: Any) -> None:
        call = context.get(_CONTEXT_KEY)
        if call is not None:
            self._write(call, {}, type(exception).__name__)

    def _write(self, call: dict[str, Any], result: dict[str, Any], error: str | None) -> None:
        line = {
            "t": call["t0"],
            "ms": round((time.time() - call["t0"]) * 1000, 2),
            "pid": os.getpid(),
            "fn": self._function,
            "th": threading.current_thread().name,
            "svc": call["svc"],
            "op": call["op"],
            "try": call["try"],
            "p": call["p"],
            "r": result,
            "err": error,
        }
        text = json.dumps(line, separators=(",", ":")) + "\n"
        with self._lock:
            self._file.write(text)

    def handlers(self) -> list[tuple[str, Any]]:
        return [
            ("before-parameter-build", self.before),
            ("response-received", self.attempt),
            ("after-call", self.after),
            ("after-call-error", self.failed),
        ]


_installed: Recorder | None = None


def install(directory: str) -> Recorder:
    """Hook every botocore session created from now on (and boto3's default one, if any)."""
    global _installed  # noqa: PLW0603 - one recorder per process
    if _installed is not None:
        return _installed
    import botocore.handlers

    recorder = Recorder(directory)
    botocore.handlers.BUILTIN_HANDLERS.extend(recorder.handlers())
    boto3 = sys.modules.get("boto3")
    default = getattr(boto3, "DEFAULT_SESSION", None)
    if default is not None:
        for event, handler in recorder.handlers():
            default._session.register(event, handler)
    _installed = recorder
    return recorder
