"""Make moto's DynamoDB keep the one promise the gateway leans on: atomic item writes.

DynamoDB applies each conditional write to an item atomically: two workers racing for
the same rate-limit slot or the same chunk claim cannot both win. Moto checks the
condition and then writes, with nothing in between to stop another thread, so under
concurrency (threads in a test, or moto server's request threads under the local
stack) both can win. Serialising moto's DynamoDB writes restores what AWS guarantees;
it changes nothing else. Call ``serialise_dynamodb_writes()`` once per process, before
the first request.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

from moto.dynamodb.models import DynamoDBBackend

_LOCK = threading.RLock()
_WRITES = ("put_item", "update_item", "delete_item", "transact_write_items")


def _serialised(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with _LOCK:
            return method(*args, **kwargs)

    wrapper.__smsgw_serialised__ = True  # type: ignore[attr-defined]
    return wrapper


def serialise_dynamodb_writes() -> None:
    for name in _WRITES:
        method = getattr(DynamoDBBackend, name)
        if not getattr(method, "__smsgw_serialised__", False):
            setattr(DynamoDBBackend, name, _serialised(method))
