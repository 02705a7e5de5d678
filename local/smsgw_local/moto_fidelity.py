"""Make moto's DynamoDB keep the promises the gateway leans on, at DynamoDB's pace.

**Atomic item writes.** DynamoDB applies each conditional write to an item atomically:
two workers racing for the same rate-limit slot or the same chunk claim cannot both win.
Moto checks the condition and then writes, with nothing in between to stop another
thread, so under concurrency (threads in a test, or moto server's request threads under
the local stack) both can win. Serialising moto's DynamoDB writes restores what AWS
guarantees.

**Transactions that cost what they touch.** To be able to roll a transaction back, moto
deep-copies every table it names, whole, before each ``TransactWriteItems``: the worker's
one transaction per accepted chunk then costs time in proportion to everything the table
holds (a quarter of a second per transaction, all writes waiting behind it, once a bench
run's table holds 100,000 recipients). Here the transaction keeps copies of only the items
it names, and puts those back when it is cancelled: the same all-or-nothing outcome.

**SQS's clock without datetimes.** Moto's SQS asks each message of a queue whether it is
visible and whether it is delayed, several times per ``ReceiveMessage``, and each answer
builds two datetimes to read the clock: about 30,000 of them per receive on a queue 500
deep, a tenth of a second on an idle host and up to a second under a bench run's load, so
a deep queue (a 100,000-number backlog is 500 chunks) fed the workers at a fraction of
the rate limit. Here moto's SQS reads the same clock with ``time.time()``.

None of these changes what a request answers. Call ``install()`` once per process,
before the first request.
"""

from __future__ import annotations

import copy
import functools
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import moto.sqs.models
from moto.core import utils as moto_utils
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType, Item
from moto.dynamodb.models.table import Table

_LOCK = threading.RLock()
_WRITES = ("put_item", "update_item", "delete_item")
_Saved = list[tuple[Table, DynamoType, DynamoType | None, Item | None]]


def _serialised(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with _LOCK:
            return method(*args, **kwargs)

    wrapper.__smsgw_serialised__ = True  # type: ignore[attr-defined]
    return wrapper


def _touched(backend: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> _Saved:
    """A copy of each item the transaction names, as it stands (None: not there yet)."""
    saved: _Saved = []
    for entry in transact_items:
        for op_type, op in entry.items():
            table = backend.tables.get(op.get("TableName", ""))
            key = op.get("Item") if op_type == "Put" else op.get("Key")
            if table is None or not isinstance(key, dict) or table.hash_key_attr not in key:
                continue  # moto refuses the transaction before it writes anything
            range_key = key.get(table.range_key_attr) if table.range_key_attr else None
            if table.range_key_attr and range_key is None:
                continue
            hash_value = DynamoType(key[table.hash_key_attr])
            range_value = DynamoType(range_key) if range_key is not None else None
            current = table.get_item(hash_value, range_value)
            saved.append((table, hash_value, range_value, copy.deepcopy(current)))
    return saved


def _put_back(saved: _Saved) -> None:
    for table, hash_value, range_value, item in reversed(saved):
        if range_value is None:
            items: dict[DynamoType, Any] = table.items
            key = hash_value
        else:
            items, key = table.items[hash_value], range_value
        if item is None:
            items.pop(key, None)
        else:
            items[key] = item


@contextmanager
def _tables_not_copied() -> Iterator[None]:
    """Moto's whole-table backup becomes the table itself; ``_put_back`` does the rollback."""
    Table.__deepcopy__ = lambda self, memo: self  # type: ignore[attr-defined]
    try:
        yield
    finally:
        del Table.__deepcopy__  # type: ignore[attr-defined]


def _transaction(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def wrapper(backend: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> Any:
        with _LOCK:
            saved = _touched(backend, transact_items)
            try:
                with _tables_not_copied():
                    return method(backend, transact_items)
            except Exception:
                _put_back(saved)
                raise

    wrapper.__smsgw_serialised__ = True  # type: ignore[attr-defined]
    return wrapper


def serialise_dynamodb_writes() -> None:
    for name in _WRITES:
        method = getattr(DynamoDBBackend, name)
        if not getattr(method, "__smsgw_serialised__", False):
            setattr(DynamoDBBackend, name, _serialised(method))
    method = DynamoDBBackend.transact_write_items
    if not getattr(method, "__smsgw_serialised__", False):
        DynamoDBBackend.transact_write_items = _transaction(method)  # type: ignore[method-assign]


def _now(dt: Any = None) -> float:
    """``moto.core.utils.unix_time``: the same seconds, read without building datetimes."""
    return time.time() if dt is None else moto_utils.unix_time(dt)


def _now_millis(dt: Any = None) -> float:
    return _now(dt) * 1000.0


def quick_sqs_clock() -> None:
    moto.sqs.models.unix_time = _now  # type: ignore[attr-defined]
    moto.sqs.models.unix_time_millis = _now_millis  # type: ignore[attr-defined]


def install() -> None:
    """Every fidelity (and pace) fix of this module, once per process."""
    serialise_dynamodb_writes()
    quick_sqs_clock()
