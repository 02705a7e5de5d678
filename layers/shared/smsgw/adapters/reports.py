"""Delivery reports and raw push packets in DynamoDB.

Reports are keyed by (MsgId, mobile): each is an attribute of its MsgId's item (see
``links.py``). A push packet is written with one UpdateItem per MsgId it touches, in
parallel, whatever the number of its reports: the platform mixes reports of many
MsgIds in a packet, and a write costs by the KB, not by the attribute.

States move forward only, without a read-then-write race: every report is written with
``if_not_exists``, so the first final report of a recipient wins and a duplicate or a
contradicting late report changes nothing. ``ALL_OLD`` tells, in the same call, which
recipients the write newly settled and whether the MsgId was linked to a request yet.
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

from smsgw.adapters.dynamo import link_key, to_item
from smsgw.adapters.links import link_from_item, pack_report, unpack_report
from smsgw.domain.reports import Link, Report, StoredReport

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

# A raw packet is kept zlib-compressed, in parts of at most this many bytes.
RAW_PART_BYTES = 300_000
# UpdateExpression is limited to 4 KB: at most this many recipients per write.
MAX_ATTRIBUTES_PER_UPDATE = 50
WRITE_THREADS = 8


def _same(stored: str, report: Report) -> bool:
    old = unpack_report(report.mobile, stored)
    return (old.status, old.msg, old.report_time) == (report.status, report.msg, report.report_time)


@dataclass
class Recorded:
    """``newly``: reports that settled their recipient now. ``repeated``: exact copies of a
    report stored before (a pushed-again packet); anything else was a contradicting late
    report, and changed nothing. ``links``: what each MsgId was linked to before the write."""

    newly: list[Report] = field(default_factory=list)
    repeated: list[Report] = field(default_factory=list)
    links: dict[str, Link] = field(default_factory=dict)


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
        """Keep the packet exactly as it came (compressed), before we try to read it.

        A body that compresses badly is kept in several items (``#p0``, ``#p1``...), each
        well under DynamoDB's 400 KB: whatever an authenticated sender posts is kept."""
        now = self._clock()
        digest = hashlib.sha256(body).hexdigest()
        pk = "RAW#" + time.strftime("%Y%m%d", time.gmtime(now))
        sk = f"{time.strftime('%H%M%S', time.gmtime(now))}.{int(now * 1e6) % 1_000_000:06d}#{digest[:12]}"
        compressed = zlib.compress(body)
        parts = [compressed[i : i + RAW_PART_BYTES] for i in range(0, len(compressed), RAW_PART_BYTES)] or [
            b""
        ]
        for number, part in enumerate(parts):
            self._db.put_item(
                TableName=self._table,
                Item=to_item(
                    {
                        "pk": pk,
                        "sk": sk if len(parts) == 1 else f"{sk}#p{number}",
                        "kind": "raw",
                        "packet": kind,
                        "source_ip": source_ip,
                        "size": len(body),
                        "sha256": digest,
                        "part": number,
                        "parts": len(parts),
                        "body": part,
                        "expires_at": int(now) + self._raw_retention,
                    }
                ),
            )
        return f"{pk}/{sk}"

    def record(self, reports: Iterable[Report]) -> Recorded:
        """Store reports, one write per MsgId (per 50 of its numbers)."""
        now = int(self._clock())
        by_msg: dict[str, dict[str, Report]] = defaultdict(dict)
        for report in reports:
            # Within one packet, too, the first report of a recipient wins.
            by_msg[report.msg_id].setdefault(report.mobile, report)
        writes: list[tuple[str, list[Report]]] = []
        for msg_id, by_mobile in by_msg.items():
            items = list(by_mobile.values())
            for start in range(0, len(items), MAX_ATTRIBUTES_PER_UPDATE):
                writes.append((msg_id, items[start : start + MAX_ATTRIBUTES_PER_UPDATE]))
        recorded = Recorded()
        for msg_id, newly, repeated, link in self._pool.map(lambda w: self._write(w[0], w[1], now), writes):
            recorded.newly.extend(newly)
            recorded.repeated.extend(repeated)
            # A MsgId written in several parts may have been linked between them: if any part
            # found the link, the request is known for all of the packet's reports of it (the
            # worker, which links it, announces only what was stored before it looked).
            if msg_id not in recorded.links or link.request_id:
                recorded.links[msg_id] = link
        return recorded

    def _write(
        self, msg_id: str, reports: Sequence[Report], now: int
    ) -> tuple[str, list[Report], list[Report], Link]:
        names = {f"#m{i}": r.mobile for i, r in enumerate(reports)}
        values: dict[str, Any] = {
            f":v{i}": {"S": pack_report(StoredReport(r.mobile, r.status, r.msg, r.report_time))}
            for i, r in enumerate(reports)
        }
        values[":exp"] = {"N": str(now + self._retention)}
        assignments = ", ".join(f"#m{i} = if_not_exists(#m{i}, :v{i})" for i in range(len(reports)))
        result = self._db.update_item(
            TableName=self._table,
            Key=link_key(msg_id),
            UpdateExpression=f"SET {assignments}, expires_at = if_not_exists(expires_at, :exp)",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
            ReturnValues="ALL_OLD",
        )
        before = result.get("Attributes") or {"pk": {"S": f"MSG#{msg_id}"}}
        newly = [r for r in reports if r.mobile not in before]
        repeated = [r for r in reports if r.mobile in before and _same(before[r.mobile]["S"], r)]
        return msg_id, newly, repeated, link_from_item(before)

    def link(self, msg_id: str, *, consistent: bool = False) -> Link | None:
        """A MsgId's link and every report stored for it."""
        item = self._db.get_item(TableName=self._table, Key=link_key(msg_id), ConsistentRead=consistent).get(
            "Item"
        )
        return link_from_item(item) if item else None
