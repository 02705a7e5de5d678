"""Each caller's callback settings: its default callback URL and its signing secret.

``CALLER#<caller digest>`` / ``CALLBACK``: ``url`` (the default for requests that name
none), ``secret`` (the HMAC-SHA256 key its callbacks are signed with: generated when first
needed, shown to the caller by ``GET /v1/callback``), ``caller``. A secret is never
logged; it is the caller's, like its API key, and lives with the caller's data.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from smsgw.adapters.dynamo import conditional_write, from_item, key, to_item
from smsgw.domain.callers import caller_key

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

SECRET_PREFIX = "whsec_"  # noqa: S105 - the prefix of generated secrets, not one


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def settings_key(caller: str) -> dict[str, Any]:
    return key(f"CALLER#{caller_key(caller)}", "CALLBACK")


@dataclass(frozen=True)
class CallbackSettings:
    url: str | None
    secret: str = field(repr=False)


class CallerStore:
    def __init__(
        self,
        client: DynamoDBClient,
        table_name: str,
        *,
        cache_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._db = client
        self._table = table_name
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._cache: dict[str, tuple[float, CallbackSettings]] = {}

    def get(self, caller: str, *, fresh: bool = False) -> CallbackSettings | None:
        cached = self._cache.get(caller)
        if cached and not fresh and self._clock() - cached[0] < self._cache_seconds:
            return cached[1]
        item = self._db.get_item(TableName=self._table, Key=settings_key(caller), ConsistentRead=fresh).get(
            "Item"
        )
        if not item:
            return None
        data = from_item(item)
        found = CallbackSettings(data.get("url"), data["secret"])
        self._cache[caller] = (self._clock(), found)
        return found

    def ensure(self, caller: str) -> CallbackSettings:
        """The caller's settings, with a secret made now if it had none (kept once made:
        two callers of this at once both end with the one that was stored first)."""
        found = self.get(caller, fresh=True)
        if found is not None:
            return found
        conditional_write(
            lambda: self._db.put_item(
                TableName=self._table,
                Item={**settings_key(caller), **to_item({"secret": new_secret(), "caller": caller})},
                ConditionExpression="attribute_not_exists(pk)",
            )
        )
        made = self.get(caller, fresh=True)
        if made is None:
            raise LookupError("the callback settings were not stored")
        return made

    def set_url(self, caller: str, url: str | None) -> CallbackSettings:
        """Set (or, with None, remove) the caller's default callback URL."""
        # The secret is made here too if there is none yet (never replaced).
        expression = "SET #caller = :caller, #secret = if_not_exists(#secret, :secret)"
        values: dict[str, Any] = {":caller": {"S": caller}, ":secret": {"S": new_secret()}}
        if url:
            expression += ", #url = :url"
            values[":url"] = {"S": url}
        else:
            expression += " REMOVE #url"
        update: dict[str, Any] = {
            "TableName": self._table,
            "Key": settings_key(caller),
            "UpdateExpression": expression,
            "ExpressionAttributeNames": {"#caller": "caller", "#secret": "secret", "#url": "url"},
            "ExpressionAttributeValues": values,
        }
        self._db.update_item(**update)
        self._cache.pop(caller, None)
        found = self.get(caller, fresh=True)
        if found is None:
            raise LookupError("the callback settings were not stored")
        return found
