"""Reading JSON that came from outside, refusing what could not be stored or echoed.

``json.loads`` accepts two things the rest of the gateway cannot handle: nesting deeper
than Python's recursion limit (it raises ``RecursionError``, not ``ValueError``), and a
lone UTF-16 surrogate such as ``"\\ud83d"`` (valid JSON escapes, but not text: it cannot
be encoded, so it could be neither stored in DynamoDB nor counted in segments).
"""

from __future__ import annotations

import json
from typing import Any


class NotText(ValueError):
    """The JSON holds something that is not storable text."""


def loads(text: str | bytes) -> Any:
    try:
        data = json.loads(text)
    except RecursionError as err:
        raise NotText("the JSON is nested too deeply") from err
    _check_text(data)
    return data


def is_text(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_text(data: Any) -> None:
    pending = [data]
    while pending:
        value = pending.pop()
        if isinstance(value, str):
            if not is_text(value):
                raise NotText("the JSON holds a lone surrogate escape (half of a character)")
        elif isinstance(value, dict):
            pending.extend(value.keys())
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
