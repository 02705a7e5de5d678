"""Why: moto bills nothing, so the bench's moto servers bill each DynamoDB request as DynamoDB would.

Loaded by ``sitecustomize`` in a moto server started with ``SMSGW_BENCH_CAPACITY_DIR`` set
(``billing``). It wraps moto's DynamoDB request handlers: each request writes one JSON
line to ``<dir>/<pid>.capacity`` with when it came, which function sent it (the header
``bench.hook._awsrecorder`` adds), the operation, whether it failed, its write and read
units, and the sizes of the items it wrote before and after it. Sizes are moto's own
(``Item.size()``: attribute names plus values; it counts numbers and maps a few bytes
differently from DynamoDB's published formula, which moves units only at KB boundaries).

DynamoDB on-demand: a write costs one unit per KB of the larger of the item before and
after it (twice inside a transaction), a failed conditional write too; a read one unit
per 4 KB of what it read (a query or scan: of all it returned), half when eventually
consistent, and a missing item the smallest read. Keys are written as short hashes: the
bench compares them with the table's items; no value is written.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

ENV_DIR = "SMSGW_BENCH_CAPACITY_DIR"
FUNCTION_HEADER = "x-smsgw-bench-fn"
_OPERATIONS = {
    "put_item": "PutItem",
    "update_item": "UpdateItem",
    "delete_item": "DeleteItem",
    "batch_write_item": "BatchWriteItem",
    "transact_write_items": "TransactWriteItems",
    "get_item": "GetItem",
    "batch_get_item": "BatchGetItem",
    "query": "Query",
    "scan": "Scan",
}


@contextlib.contextmanager
def billing(directory: str) -> Iterator[None]:
    """Moto servers started inside bill their DynamoDB requests into ``directory`` (they
    inherit this process's environment, which is restored afterwards)."""
    saved = dict(os.environ)
    hook = os.path.dirname(os.path.abspath(__file__))
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [hook, os.environ.get("PYTHONPATH")]))
    os.environ[ENV_DIR] = directory
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def read(directory: str, started: float, ended: float) -> list[dict[str, Any]]:
    """The billed lines of the functions' requests that came between ``started`` and ``ended``."""
    found: list[dict[str, Any]] = []
    for name in sorted(os.listdir(directory)) if os.path.isdir(directory) else []:
        if name.endswith(".capacity"):
            with open(os.path.join(directory, name), encoding="utf-8") as lines:
                for text in lines:
                    line = json.loads(text)
                    if started <= line["t"] <= ended and line["fn"] not in ("", "poller"):
                        found.append(line)
    return found


def key_hash(item: dict[str, Any]) -> str:
    """A short name for an item's key (``pk``/``sk``, AttributeValue form)."""
    text = f"{item.get('pk', {}).get('S', '')}|{item.get('sk', {}).get('S', '')}"
    return hashlib.blake2b(text.encode("utf-8"), digest_size=8).hexdigest()


def item_size(attrs: dict[str, Any] | None) -> int:
    """An item's size (AttributeValue form), as moto counts it."""
    from moto.dynamodb.models.dynamo_type import Item

    return Item(None, None, attrs).size() if attrs else 0  # type: ignore[arg-type]


def _units(size: int, unit: int) -> int:
    return max(1, math.ceil(size / unit))


def _written(op: str, body: dict[str, Any]) -> list[tuple[str, dict[str, Any], int]]:
    """(table, key or item, factor) of each item a write request writes."""
    if op == "PutItem":
        return [(body["TableName"], body["Item"], 1)]
    if op in ("UpdateItem", "DeleteItem"):
        return [(body["TableName"], body["Key"], 1)]
    if op == "BatchWriteItem":
        return [
            (table, request.get("PutRequest", {}).get("Item") or request["DeleteRequest"]["Key"], 1)
            for table, requests in body["RequestItems"].items()
            for request in requests
        ]
    if op == "TransactWriteItems":
        return [
            (part["TableName"], part.get("Item") or part["Key"], 2)
            for entry in body["TransactItems"]
            for part in entry.values()
        ]
    return []


class Biller:
    def __init__(self, directory: str) -> None:
        os.makedirs(directory, exist_ok=True)
        path = os.path.join(directory, f"{os.getpid()}.capacity")
        self._file = open(path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115 - lives with the process
        self._lock = threading.Lock()
        self._writing = threading.Lock()

    def _size(self, handler: Any, table: str, key: dict[str, Any]) -> int:
        try:
            found = handler.dynamodb_backend.get_item(table, key)
        except Exception:  # a missing table or a malformed key: the request fails on its own
            return 0
        return int(found.size()) if found else 0

    def _reads(self, handler: Any, op: str, body: dict[str, Any], result: Any) -> float:
        half = 1.0 if body.get("ConsistentRead") else 0.5
        if op == "GetItem":
            return _units(self._size(handler, body["TableName"], body["Key"]), 4096) * half
        if op == "BatchGetItem":
            return sum(
                _units(self._size(handler, table, key), 4096)
                * (1.0 if request.get("ConsistentRead") else 0.5)
                for table, request in body["RequestItems"].items()
                for key in request.get("Keys", [])
            )
        if op in ("Query", "Scan") and result is not None:
            found = (getattr(result, "result", None) or {}).get("Items", [])
            return _units(sum(item_size(item) for item in found), 4096) * half
        return 0.0

    def billed(self, handler: Any, op: str, original: Any) -> Any:
        body: dict[str, Any] = handler.body
        written = _written(op, body)
        started, result, error = time.time(), None, None
        # One write at a time, so that no other write lands between the sizes and this one
        # (moto's work holds the GIL anyway: the lock costs the server little parallelism).
        with self._writing if written else contextlib.nullcontext():
            before = [self._size(handler, table, key) for table, key, _ in written]
            try:
                result = original(handler)
            except Exception as err:
                error = err
            after = [self._size(handler, table, key) for table, key, _ in written]
        sizes = list(zip(written, before, after, strict=True))
        line = {
            "t": started,
            "fn": handler.headers.get(FUNCTION_HEADER, ""),
            "op": op,
            "err": type(error).__name__ if error else None,
            "wru": sum(f * _units(max(b, a), 1024) for (_, _, f), b, a in sizes),
            "rru": self._reads(handler, op, body, result),
            "writes": [[key_hash(key), b, a] for (_, key, _), b, a in sizes],
        }
        with self._lock:
            self._file.write(json.dumps(line, separators=(",", ":")) + "\n")
        if error is not None:
            raise error
        return result


def install(directory: str) -> None:
    """Bill every DynamoDB request this moto server answers from now on."""
    from moto.dynamodb.responses import DynamoHandler

    biller = Biller(directory)
    for method, op in _OPERATIONS.items():
        original = getattr(DynamoHandler, method)

        def wrapper(handler: Any, _op: str = op, _original: Any = original) -> Any:
            return biller.billed(handler, _op, _original)

        setattr(DynamoHandler, method, wrapper)
