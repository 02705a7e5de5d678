"""Why: moto bills nothing, so the cost model records every AWS request a process makes.

One JSON line each, from a botocore event hook, installed by ``sitecustomize`` in the local
stack's function workers (by the bench in its own process, for the SQS poller, and by the
handler probes) before any botocore session exists: the hook joins
``botocore.handlers.BUILTIN_HANDLERS``, which every new session registers. Each line holds
what billing needs and nothing more: the service and operation, the process's function,
the thread, how many HTTP attempts the call took, and message and event sizes. No values
are kept, so no phone number is written. DynamoDB's units are counted where the items
are, in the moto server (``_capacity``); this hook names the function on each request
(a header) so that they can be told apart.

Standard library and botocore only: it runs inside the workers' Lambda-like processes.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from typing import Any

ENV_DIR = "SMSGW_BENCH_AWS_LOG_DIR"
FUNCTION_HEADER = "x-smsgw-bench-fn"  # the same as ``_capacity.FUNCTION_HEADER``
_CONTEXT_KEY = "smsgw_bench"


def _utf8(text: Any) -> int:
    return len(str(text).encode("utf-8"))


def _update(params: dict[str, Any]) -> dict[str, Any]:
    """The key of the rate limiter's reservations (``RATE#...|GCRA``); no other key."""
    key = params.get("Key") or {}
    pk = key.get("pk", {}).get("S", "")
    return {"key": f"{pk}|{key.get('sk', {}).get('S', '')}"} if pk.startswith("RATE#") else {}


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
    if service == "dynamodb" and op == "UpdateItem":
        return _update(params)
    if service == "sqs" and op in _SQS_PARAMS:
        return dict(_SQS_PARAMS[op](params))
    if service in ("events", "eventbridge") and op == "PutEvents":
        return {"sizes": [_entry_size(e) for e in params.get("Entries", [])]}
    return {}


def summarise_result(service: str, op: str, parsed: dict[str, Any]) -> dict[str, Any]:
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
        context[_CONTEXT_KEY] = {"svc": service, "op": model.name, "p": summary, "try": 0, "t0": time.time()}

    def sign(self, request: Any, **_: Any) -> None:
        """Name the function on each request, for the moto server's biller (``_capacity``)."""
        request.headers[FUNCTION_HEADER] = self._function or "poller"

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
            ("request-created", self.sign),
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
