"""Why: warm CPU must be the handler's alone, and moto would add its own CPU (and is not in
the runtime-only interpreter), so AWS is answered in-process: a plausible reply, no network.

Installed on ``before-send``, after botocore has serialised and signed the request, and
before it would go on the wire; the reply is parsed by botocore as a real one would be.
So the CPU the probes measure is what a handler spends in Lambda (validation,
serialisation, signing, parsing, our code), without the network wait.

DynamoDB is a small in-memory key-value store: ``PutItem``/``BatchWriteItem`` keep items
(for the key prefixes asked for), ``GetItem``/``BatchGetItem``/``Query`` return them, and
``UpdateItem``/``TransactWriteItems`` apply ``SET a = :v``, ``SET a = if_not_exists(a, :v)``,
``ADD a :n`` and ``REMOVE a``. Conditions are not evaluated: every write succeeds, so a
workload can be repeated. SQS, EventBridge and Secrets Manager answer success.

Standard library and botocore only: it runs in the runtime-only virtual environment.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from bench.hook._awsrecorder import IF_NOT_EXISTS, update_actions

Item = dict[str, Any]


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


def _add_numbers(left: Any, right: Any) -> dict[str, str]:
    total = Decimal(left.get("N", "0") if left else "0") + Decimal(right["N"])
    return {"N": str(total)}


def apply_update(item: Item, params: dict[str, Any]) -> Item:
    """A new item: ``item`` with the simple forms of ``UpdateExpression`` applied (read by
    the recorder's ``update_actions``, the bench's one expression reader)."""
    names: dict[str, str] = params.get("ExpressionAttributeNames", {})
    values: dict[str, Any] = params.get("ExpressionAttributeValues", {})
    new = dict(item)
    for verb, name, operand in update_actions(params):
        found = IF_NOT_EXISTS.match(operand)
        if verb == "REMOVE":
            new.pop(name, None)
        elif verb == "ADD":
            new[name] = (
                _add_numbers(new.get(name), values[operand]) if "N" in values[operand] else values[operand]
            )
        elif found:
            new.setdefault(name, values[found.group(2)])
        elif operand in values:
            new[name] = values[operand]
        elif "+" in operand:
            left, right = (part.strip() for part in operand.split("+", 1))
            new[name] = _add_numbers(new.get(names.get(left, left)), values[right])
    return new


def _md5(text: str) -> str:
    """SQS answers the MD5 of each body (a checksum, not security)."""
    return hashlib.md5(text.encode("utf-8"), usedforsecurity=False).hexdigest()


def _key(item: Item) -> tuple[str, str]:
    return item.get("pk", {}).get("S", ""), item.get("sk", {}).get("S", "")


class FakeAws:
    def __init__(
        self,
        *,
        secrets: dict[str, str] | None = None,
        keep_prefixes: tuple[str, ...] = (),
    ) -> None:
        self.items: dict[tuple[str, str], Item] = {}
        self.secrets = dict(secrets or {})
        self.keep_prefixes = keep_prefixes
        self.calls: Counter[str] = Counter()

    # -- wiring ------------------------------------------------------------------------
    def install(self) -> None:
        """Answer every request of every botocore session created from now on."""
        import botocore.handlers

        botocore.handlers.BUILTIN_HANDLERS.append(("before-send", self.respond))

    def respond(self, request: Any, event_name: str = "", **_: Any) -> Any:
        from botocore.awsrequest import AWSResponse, HTTPHeaders

        _before_send, service, operation = event_name.split(".", 2)
        raw_body = request.body
        body = raw_body.decode("utf-8") if isinstance(raw_body, bytes | bytearray) else raw_body
        params = json.loads(body) if body else {}
        self.calls[f"{service}.{operation}"] += 1
        handler = getattr(self, f"_{service.replace('-', '_')}", None)
        reply = handler(operation, params) if handler else {}
        raw = json.dumps(reply).encode("utf-8")
        headers = HTTPHeaders()
        headers["content-type"] = "application/x-amz-json-1.0"
        return AWSResponse(request.url, 200, headers, _Raw(raw))

    # -- the store ---------------------------------------------------------------------
    def keep(self, item: Item) -> None:
        pk, _ = _key(item)
        if pk.startswith(self.keep_prefixes):
            self.items[_key(item)] = item

    def load(self, items: list[Item]) -> None:
        for item in items:
            self.items[_key(item)] = item

    def dump(self) -> list[Item]:
        return list(self.items.values())

    def _get(self, key: Item) -> Item | None:
        return self.items.get(_key(key))

    def _update(self, params: dict[str, Any]) -> tuple[Item | None, Item]:
        old = self._get(params["Key"])
        new = apply_update(old or dict(params["Key"]), params)
        self.keep(new)
        return old, new

    # -- services ------------------------------------------------------------------------
    def _dynamodb(self, op: str, params: dict[str, Any]) -> dict[str, Any]:
        handler = getattr(self, f"_ddb_{op}", None)
        return dict(handler(params)) if handler else {}

    # One method per DynamoDB operation, named after it.
    def _ddb_PutItem(self, params: dict[str, Any]) -> dict[str, Any]:
        self.keep(params["Item"])
        return {}

    def _ddb_BatchWriteItem(self, params: dict[str, Any]) -> dict[str, Any]:
        for requests in params.get("RequestItems", {}).values():
            for request in requests:
                if "PutRequest" in request:
                    self.keep(request["PutRequest"]["Item"])
        return {"UnprocessedItems": {}}

    def _ddb_UpdateItem(self, params: dict[str, Any]) -> dict[str, Any]:
        old, new = self._update(params)
        returns = params.get("ReturnValues", "NONE")
        if returns in ("ALL_NEW", "UPDATED_NEW"):
            return {"Attributes": new}
        if returns in ("ALL_OLD", "UPDATED_OLD") and old:
            return {"Attributes": old}
        return {}

    def _ddb_GetItem(self, params: dict[str, Any]) -> dict[str, Any]:
        found = self._get(params["Key"])
        return {"Item": found} if found else {}

    def _ddb_DeleteItem(self, params: dict[str, Any]) -> dict[str, Any]:
        old = self.items.pop(_key(params["Key"]), None)
        return {"Attributes": old} if old and params.get("ReturnValues") == "ALL_OLD" else {}

    def _ddb_BatchGetItem(self, params: dict[str, Any]) -> dict[str, Any]:
        responses: dict[str, list[Item]] = {}
        for table, request in params.get("RequestItems", {}).items():
            found = [self._get(key) for key in request.get("Keys", [])]
            responses[table] = [i for i in found if i]
        return {"Responses": responses, "UnprocessedKeys": {}}

    def _ddb_TransactWriteItems(self, params: dict[str, Any]) -> dict[str, Any]:
        for entry in params.get("TransactItems", []):
            if "Update" in entry:
                self._update(entry["Update"])
            elif "Put" in entry:
                self.keep(entry["Put"]["Item"])
        return {}

    def _ddb_Query(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._query(params)

    def _query(self, params: dict[str, Any]) -> dict[str, Any]:
        values = params.get("ExpressionAttributeValues", {})
        pk = values.get(":pk", {}).get("S")
        low = values.get(":from", {}).get("S", "")
        high = values.get(":to", {}).get("S", "\uffff")
        prefix = values.get(":r", {}).get("S", "")
        items = sorted(
            (
                item
                for (p, s), item in self.items.items()
                if p == pk and low <= s <= high and s.startswith(prefix)
            ),
            key=_key,
        )
        return {"Items": items, "Count": len(items), "ScannedCount": len(items)}

    def _sqs(self, op: str, params: dict[str, Any]) -> dict[str, Any]:
        if op == "SendMessageBatch":
            return {
                "Successful": [
                    {
                        "Id": entry["Id"],
                        "MessageId": str(uuid.uuid4()),
                        "MD5OfMessageBody": _md5(entry["MessageBody"]),
                    }
                    for entry in params.get("Entries", [])
                ],
                "Failed": [],
            }
        if op == "SendMessage":
            body = params.get("MessageBody", "")
            return {
                "MessageId": str(uuid.uuid4()),
                "MD5OfMessageBody": _md5(body),
            }
        return {}

    def _eventbridge(self, op: str, params: dict[str, Any]) -> dict[str, Any]:
        if op == "PutEvents":
            return {
                "FailedEntryCount": 0,
                "Entries": [{"EventId": str(uuid.uuid4())} for _ in params.get("Entries", [])],
            }
        return {}

    def _secrets_manager(self, op: str, params: dict[str, Any]) -> dict[str, Any]:
        name = params.get("SecretId", "")
        value = self.secrets.get(name) or next(iter(self.secrets.values()), "")
        return {
            "ARN": f"arn:aws:secretsmanager:us-east-1:123456789012:secret:{name}",
            "Name": name,
            "SecretString": value,
            "VersionId": "00000000-0000-0000-0000-000000000000",
            "VersionStages": ["AWSCURRENT"],
        }
