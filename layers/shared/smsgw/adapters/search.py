"""The search entries of the gateway: what a caller finds its messages and replies by.

Every entry is the caller's own: its keys start with a short digest of the caller
(``domain.callers.caller_key``), so a query can only ever reach that caller's entries.
Designed for cost (write units are per KB of an item, and a GSI entry costs a write of
its own):

==============================  ==========================  ==================================
entry                           key                         written
==============================  ==========================  ==================================
``ReferenceIndex`` (sparse GSI,  ``ref_key`` =              once per request with a
KEYS_ONLY) on a request's        ``REF#<caller>#<ref>``,    ``reference`` (its only projected
header                           ``created_at``             attributes never change, so later
                                                            updates of the header write no
                                                            index entry)
recipient buckets (items)        ``TO#<caller>#<bb>`` /     once per request and bucket: the
                                 ``<created_at>#<id>``      request's numbers whose CRC-32 falls
                                                            in bucket ``bb`` (of 64), comma-
                                                            joined; a 10,000-number request
                                                            writes 64 items of ~2 KB, not
                                                            10,000 items
``InboundIndex`` (sparse GSI,    ``in_day`` = ``IN#<day>``,  once per reply
INCLUDE content, time, ext.)     ``in_at`` (epoch s)
extensions (items)               ``EXT#<caller>`` / ext     once per request with an extension
==============================  ==========================  ==================================

A number is searched by reading its bucket's entries in the time range and keeping those
that hold it (a filter on the server: every number is 11 digits between commas, so a
match is exact). Everything expires with the request (``RetentionDays`` after it, or
after its send time): that is how long a number stays searchable.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
import zlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from smsgw.adapters.dynamo import batch_write, to_item
from smsgw.domain.callers import caller_key
from smsgw.domain.times import BEIJING

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

REFERENCE_INDEX = "ReferenceIndex"
INBOUND_INDEX = "InboundIndex"
TO_BUCKETS = 64
# Query pages read for one API page, at most: a search answers in bounded time, with a
# cursor to go on (a page may then hold fewer entries than asked for).
MAX_PAGES = 10
UTC_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


class BadCursor(ValueError):
    """A cursor this search did not hand out."""


def reference_key(caller: str, reference: str) -> str:
    return f"REF#{caller_key(caller)}#{reference}"


def bucket_of(mobile: str) -> int:
    return zlib.crc32(mobile.encode()) % TO_BUCKETS


def inbound_day(moment: datetime) -> str:
    return "IN#" + moment.astimezone(BEIJING).strftime("%Y-%m-%d")


def encode_cursor(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(text: str) -> dict[str, Any]:
    try:
        data = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (ValueError, binascii.Error) as err:
        raise BadCursor("not a cursor of this search") from err
    if not isinstance(data, dict):
        raise BadCursor("not a cursor of this search")
    return data


def _key_shape(data: Any, names: Sequence[str]) -> dict[str, Any]:
    """``data`` if it is a DynamoDB key of exactly these attributes (strings, or numbers for
    ``in_at``): a cursor is handed back as ExclusiveStartKey, so nothing else may pass."""
    if not isinstance(data, dict) or set(data) != set(names):
        raise BadCursor("not a cursor of this search")
    for name, value in data.items():
        kind = "N" if name == "in_at" else "S"
        if not (isinstance(value, dict) and set(value) == {kind} and isinstance(value[kind], str)):
            raise BadCursor("not a cursor of this search")
        if kind == "N" and not (value[kind].isascii() and value[kind].isdigit() and len(value[kind]) <= 12):
            raise BadCursor("not a cursor of this search")
        if len(value[kind]) > 2048:
            raise BadCursor("not a cursor of this search")
    return data


@dataclass(frozen=True)
class Hit:
    """A request found by a search: its id and when it was made (UTC ``...Z``)."""

    request_id: str
    created_at: str


@dataclass(frozen=True)
class Reply:
    mobile: str
    content: str
    received_time: str  # as the platform wrote it
    append_id: str
    at: int  # epoch seconds


@dataclass(frozen=True)
class Page:
    items: list[Any]
    cursor: str | None


def _as_utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(UTC_FORMAT)


# An extension registered by this container is not written again for this long (a
# one-time code with an extension would otherwise cost a write each).
EXTENSION_REFRESH_SECONDS = 3_600


class SearchStore:
    def __init__(
        self, client: DynamoDBClient, table_name: str, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._db = client
        self._table = table_name
        self._clock = clock
        self._registered: dict[tuple[str, str], float] = {}

    # -- writing -----------------------------------------------------------------------

    def index_recipients(
        self, *, caller: str, request_id: str, created_at: str, mobiles: Iterable[str], expires_at: int
    ) -> None:
        """The request's numbers, one item per bucket (BatchWriteItem, 25 a call)."""
        buckets: dict[int, list[str]] = defaultdict(list)
        for mobile in dict.fromkeys(mobiles):
            buckets[bucket_of(mobile)].append(mobile)
        who = caller_key(caller)
        requests = [
            {
                "PutRequest": {
                    "Item": to_item(
                        {
                            "pk": f"TO#{who}#{bucket:02d}",
                            "sk": f"{created_at}#{request_id}",
                            "to": ",".join(sorted(numbers)),
                            "expires_at": expires_at,
                        }
                    )
                }
            }
            for bucket, numbers in sorted(buckets.items())
        ]
        batch_write(self._db, self._table, requests)

    def register_extension(self, *, caller: str, append_id: str, expires_at: int) -> None:
        """The caller sends with this extension: replies to it are the caller's (kept as long
        as the requests are; written at most once an hour by one container)."""
        seen = self._registered.get((caller, append_id))
        if seen is not None and self._clock() - seen < EXTENSION_REFRESH_SECONDS:
            return
        self._db.put_item(
            TableName=self._table,
            Item=to_item({"pk": f"EXT#{caller_key(caller)}", "sk": append_id, "expires_at": expires_at}),
        )
        if len(self._registered) > 10_000:
            self._registered.clear()
        self._registered[(caller, append_id)] = self._clock()

    # -- reading -----------------------------------------------------------------------

    def by_reference(
        self, caller: str, reference: str, *, since: datetime, until: datetime, limit: int, cursor: str | None
    ) -> Page:
        ref_key = reference_key(caller, reference)
        query = {
            "TableName": self._table,
            "IndexName": REFERENCE_INDEX,
            "KeyConditionExpression": "ref_key = :k AND created_at BETWEEN :a AND :b",
            "ExpressionAttributeValues": {
                ":k": {"S": ref_key},
                ":a": {"S": _as_utc(since)},
                ":b": {"S": _as_utc(until)},
            },
            "ScanIndexForward": False,
        }
        names = ("ref_key", "created_at", "pk", "sk")
        start = self._start(cursor, {"ref_key": ref_key}, names)
        taken, last = self._collect(query, start, limit, names)
        hits = [Hit(item["pk"]["S"].removeprefix("REQ#"), item["created_at"]["S"]) for item in taken]
        return Page(hits, encode_cursor(last) if last else None)

    def by_number(
        self, caller: str, mobile: str, *, since: datetime, until: datetime, limit: int, cursor: str | None
    ) -> Page:
        pk = f"TO#{caller_key(caller)}#{bucket_of(mobile):02d}"
        query = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND sk BETWEEN :a AND :b",
            "FilterExpression": "contains(#to, :m)",
            "ExpressionAttributeNames": {"#to": "to"},
            "ExpressionAttributeValues": {
                ":pk": {"S": pk},
                ":a": {"S": _as_utc(since)},
                ":b": {"S": _as_utc(until) + "~"},
                ":m": {"S": mobile},
            },
            "ProjectionExpression": "pk, sk",
            "ScanIndexForward": False,
        }
        start = self._start(cursor, {"pk": pk}, ("pk", "sk"))
        taken, last = self._collect(query, start, limit, ("pk", "sk"))
        hits = []
        for item in taken:
            created_at, request_id = item["sk"]["S"].split("#", 1)
            hits.append(Hit(request_id, created_at))
        return Page(hits, encode_cursor(last) if last else None)

    def extensions(self, caller: str) -> set[str]:
        found: set[str] = set()
        query: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": f"EXT#{caller_key(caller)}"}},
            "ProjectionExpression": "sk",
        }
        for page in self._pages(query):
            found.update(item["sk"]["S"] for item in page.get("Items", []))
        return found

    def replies(
        self,
        *,
        visible: Callable[[str], bool],
        since: datetime,
        until: datetime,
        mobile: str | None,
        limit: int,
        cursor: str | None,
    ) -> Page:
        """Replies in the time range (of one number, or all), newest first, that ``visible``
        (given the reply's extension) lets the caller see."""
        start = decode_cursor(cursor) if cursor else {}
        days = (
            [f"MO#{mobile}"]
            if mobile
            else [inbound_day(until - timedelta(days=n)) for n in range((until - since).days + 2)]
        )
        if start:
            if set(start) != {"d", "k"} or start.get("d") not in days:
                raise BadCursor("not a cursor of this search")
            names = ("pk", "sk") if mobile else ("in_day", "in_at", "pk", "sk")
            _key_shape(start["k"], names)
            if not mobile and start["k"]["in_day"]["S"] != start["d"]:
                raise BadCursor("not a cursor of this search")
            if mobile and start["k"]["pk"]["S"] != f"MO#{mobile}":
                raise BadCursor("not a cursor of this search")
            days = days[days.index(start["d"]) :]
        replies: list[Reply] = []
        pages = 0
        for day in days:
            query = self._replies_query(day, mobile, since, until)
            resume = start.get("k") if start.get("d") == day else None
            if resume is not None:
                query["ExclusiveStartKey"] = resume
            while pages < MAX_PAGES:
                pages += 1
                page = self._db.query(**query)
                for item in page.get("Items", []):
                    reply = _reply(item)
                    if reply is None or not visible(reply.append_id):
                        continue
                    replies.append(reply)
                    if len(replies) == limit:
                        return Page(replies, encode_cursor({"d": day, "k": _key_of(item, mobile)}))
                if "LastEvaluatedKey" not in page:
                    break
                query["ExclusiveStartKey"] = page["LastEvaluatedKey"]
            else:
                return Page(replies, encode_cursor({"d": day, "k": query["ExclusiveStartKey"]}))
        return Page(replies, None)

    def _replies_query(
        self, day: str, mobile: str | None, since: datetime, until: datetime
    ) -> dict[str, Any]:
        if mobile:
            low = since.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S")
            high = until.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S") + "~"
            return {
                "TableName": self._table,
                "KeyConditionExpression": "pk = :pk AND sk BETWEEN :a AND :b",
                "ExpressionAttributeValues": {":pk": {"S": day}, ":a": {"S": low}, ":b": {"S": high}},
                "ScanIndexForward": False,
            }
        return {
            "TableName": self._table,
            "IndexName": INBOUND_INDEX,
            "KeyConditionExpression": "in_day = :d AND in_at BETWEEN :a AND :b",
            "ExpressionAttributeValues": {
                ":d": {"S": day},
                ":a": {"N": str(int(since.timestamp()))},
                ":b": {"N": str(int(until.timestamp()))},
            },
            "ScanIndexForward": False,
        }

    # -- paging ------------------------------------------------------------------------

    @staticmethod
    def _start(cursor: str | None, partition: dict[str, str], names: Sequence[str]) -> dict[str, Any] | None:
        """The ExclusiveStartKey a cursor stands for, if it is one of this very search's."""
        if not cursor:
            return None
        data = _key_shape(decode_cursor(cursor), names)
        for name, value in partition.items():
            if data.get(name) != {"S": value}:
                raise BadCursor("not a cursor of this search")
        return data

    def _collect(
        self, query: dict[str, Any], start: dict[str, Any] | None, limit: int, key_names: Sequence[str]
    ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        """Up to ``limit`` items from ``start`` on, and the key to resume after the last one
        taken (None when nothing is left)."""
        if start:
            query["ExclusiveStartKey"] = start
        taken: list[dict[str, Any]] = []
        for number, page in enumerate(self._pages(query)):
            for item in page.get("Items", []):
                taken.append(item)
                if len(taken) == limit:
                    return taken, {k: item[k] for k in key_names}
            if number + 1 >= MAX_PAGES and "LastEvaluatedKey" in page:
                return taken, dict(page["LastEvaluatedKey"])
        return taken, None

    def _pages(self, query: dict[str, Any]) -> Iterator[dict[str, Any]]:
        while True:
            page: dict[str, Any] = dict(self._db.query(**query))
            yield page
            if "LastEvaluatedKey" not in page:
                return
            query["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _reply(item: dict[str, Any]) -> Reply | None:
    if "content" not in item:
        return None
    at = item.get("in_at", {}).get("N")
    return Reply(
        mobile=item["pk"]["S"].removeprefix("MO#"),
        content=item["content"]["S"],
        received_time=item.get("received_time", {}).get("S", ""),
        append_id=item.get("append_id", {}).get("S", ""),
        at=int(at) if at else 0,
    )


def _key_of(item: dict[str, Any], mobile: str | None) -> dict[str, Any]:
    names = ("pk", "sk") if mobile else ("in_day", "in_at", "pk", "sk")
    return {k: item[k] for k in names}
