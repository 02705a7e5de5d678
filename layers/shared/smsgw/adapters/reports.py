"""Delivery reports and raw push packets in DynamoDB.

Reports are keyed by (MsgId, mobile). To keep the write cost per report well under one
write unit, a MsgId's reports live in up to 20 small items (``R#00``..``R#19``, by the
mobile's last two digits), one attribute per mobile. A packet touching 200 numbers of
one MsgId costs about 20 writes, not 200, and every item stays under 1 KB.

States move forward only, without a read-then-write race: each report is written with
``if_not_exists`` in one UpdateItem, so the first final report of a recipient wins and a
duplicate or a contradicting late report changes nothing. ``ALL_OLD`` tells which
recipients the write newly settled.
"""

from __future__ import annotations

import hashlib
import time
import zlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from smsgw.adapters.dynamo import key, link_key, to_item
from smsgw.adapters.store import Link
from smsgw.provider.push import Report

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

REPORT_BUCKETS = 20
# UpdateExpression is limited to 4 KB: at most this many recipients per write.
MAX_ATTRIBUTES_PER_UPDATE = 50
WRITE_THREADS = 8


def report_bucket(mobile: str) -> str:
    return f"R#{int(mobile[-2:]) % REPORT_BUCKETS:02d}"


@dataclass(frozen=True)
class StoredReport:
    mobile: str
    status: str
    msg: str
    report_time: str
    received_at: int  # epoch seconds, when we stored it

    @property
    def delivered(self) -> bool:
        return self.status == "0"

    def encode(self) -> str:
        return f"{self.status}|{self.report_time}|{self.received_at}|{self.msg}"

    @classmethod
    def decode(cls, mobile: str, value: str) -> StoredReport:
        status, report_time, received_at, msg = value.split("|", 3)
        return cls(mobile, status, msg, report_time, int(received_at))


def _same(stored: str, report: Report) -> bool:
    old = StoredReport.decode(report.mobile, stored)
    return (old.status, old.msg, old.report_time) == (report.status, report.msg, report.report_time)


@dataclass
class Recorded:
    """``newly``: reports that settled their recipient now. ``repeated``: exact copies of a
    report stored before (a pushed-again packet); anything else was a contradicting
    late report, and changed nothing."""

    newly: list[Report] = field(default_factory=list)
    repeated: list[Report] = field(default_factory=list)


class ReportStore:
    def __init__(
        self,
        client: DynamoDBClient,
        table_name: str,
        *,
        retention_days: int = 30,
        raw_retention_days: int = 30,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db = client
        self._table = table_name
        self._retention = retention_days * 86_400
        self._raw_retention = raw_retention_days * 86_400
        self._clock = clock
        self._pool = ThreadPoolExecutor(max_workers=WRITE_THREADS, thread_name_prefix="reports")

    def store_raw_packet(self, body: bytes, *, kind: str, source_ip: str) -> str:
        """Keep the packet exactly as it came (compressed), before we try to read it."""
        now = self._clock()
        digest = hashlib.sha256(body).hexdigest()
        pk = "RAW#" + time.strftime("%Y%m%d", time.gmtime(now))
        sk = f"{time.strftime('%H%M%S', time.gmtime(now))}.{int(now * 1e6) % 1_000_000:06d}#{digest[:12]}"
        self._db.put_item(
            TableName=self._table,
            Item=to_item(
                {
                    "pk": pk,
                    "sk": sk,
                    "kind": "raw",
                    "packet": kind,
                    "source_ip": source_ip,
                    "size": len(body),
                    "sha256": digest,
                    "body": zlib.compress(body),
                    "expires_at": int(now) + self._raw_retention,
                }
            ),
        )
        return f"{pk}/{sk}"

    def record(self, reports: Iterable[Report]) -> Recorded:
        """Store reports; tell which settled their recipient now and which repeat a stored one."""
        now = int(self._clock())
        groups: dict[tuple[str, str], dict[str, Report]] = defaultdict(dict)
        for report in reports:
            # Within one packet, too, the first report of a recipient wins.
            groups[(report.msg_id, report_bucket(report.mobile))].setdefault(report.mobile, report)
        writes: list[tuple[str, str, list[Report]]] = []
        for (msg_id, bucket), by_mobile in groups.items():
            items = list(by_mobile.values())
            for start in range(0, len(items), MAX_ATTRIBUTES_PER_UPDATE):
                writes.append((msg_id, bucket, items[start : start + MAX_ATTRIBUTES_PER_UPDATE]))
        recorded = Recorded()
        for newly, repeated in self._pool.map(lambda w: self._write(w[0], w[1], w[2], now), writes):
            recorded.newly.extend(newly)
            recorded.repeated.extend(repeated)
        return recorded

    def _write(
        self, msg_id: str, bucket: str, reports: Sequence[Report], now: int
    ) -> tuple[list[Report], list[Report]]:
        names = {f"#m{i}": r.mobile for i, r in enumerate(reports)}
        values: dict[str, Any] = {
            f":v{i}": {"S": StoredReport(r.mobile, r.status, r.msg, r.report_time, now).encode()}
            for i, r in enumerate(reports)
        }
        values[":exp"] = {"N": str(now + self._retention)}
        assignments = ", ".join(f"#m{i} = if_not_exists(#m{i}, :v{i})" for i in range(len(reports)))
        result = self._db.update_item(
            TableName=self._table,
            Key=key(f"MSG#{msg_id}", bucket),
            UpdateExpression=f"SET {assignments}, expires_at = if_not_exists(expires_at, :exp)",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
            ReturnValues="ALL_OLD",
        )
        before = result.get("Attributes", {})
        newly = [r for r in reports if r.mobile not in before]
        repeated = [r for r in reports if r.mobile in before and _same(before[r.mobile]["S"], r)]
        return newly, repeated

    def count(self, msg_id: str, delivered: int, failed: int) -> Link:
        """Add newly settled recipients to the MsgId's link; returns what the link knows."""
        result = self._db.update_item(
            TableName=self._table,
            Key=link_key(msg_id),
            UpdateExpression="ADD delivered :d, failed :f SET expires_at = if_not_exists(expires_at, :exp)",
            ExpressionAttributeValues={
                ":d": {"N": str(delivered)},
                ":f": {"N": str(failed)},
                ":exp": {"N": str(int(self._clock()) + self._retention)},
            },
            ReturnValues="ALL_NEW",
        )
        return Link.from_item(result["Attributes"])

    def link(self, msg_id: str, *, consistent: bool = False) -> Link | None:
        item = self._db.get_item(TableName=self._table, Key=link_key(msg_id), ConsistentRead=consistent).get(
            "Item"
        )
        return Link.from_item(item) if item else None

    def reports_for(self, msg_id: str) -> dict[str, StoredReport]:
        """Every stored report of one MsgId, by mobile."""
        found: dict[str, StoredReport] = {}
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :r)",
            "ExpressionAttributeValues": {":pk": {"S": f"MSG#{msg_id}"}, ":r": {"S": "R#"}},
        }
        while True:
            page = self._db.query(**kwargs)
            for item in page.get("Items", []):
                for name, value in item.items():
                    if name not in {"pk", "sk", "expires_at"}:
                        found[name] = StoredReport.decode(name, value["S"])
            if "LastEvaluatedKey" not in page:
                return found
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
