"""A provider MsgId's item, ``MSG#<MsgId>`` / ``LINK``: its one owner, ``LinkStore``.

The item holds the link written by the worker when the platform accepts a submit
(``request_id``, ``chunk``, ``reference``, ``submitted_at``) and one attribute per mobile
once its report has arrived: ``"13800138000": "0|261124120005|发送成功"`` (status, the
platform's report time packed, the platform's words). Counts are read from the reports
themselves, so a push costs one write per MsgId it touches (per 50 of its numbers).

Reports are written ``if_not_exists``, so the first final report of a recipient wins and
a duplicate or a contradicting late report changes nothing, without a read-then-write
race. ``ALL_OLD`` tells, in the same call, which recipients the write newly settled and
whether the MsgId was linked to a request yet: a report may come before the submit's
answer, the *early-report handshake* explained in ``domain/reports.py``. The link is
written as an update, never a put, so such early reports stay. The item lives as long as
its request (``RetentionDays`` after its send time or validity), and at least
``RetentionDays`` after its first report.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from smsgw.adapters.dynamo import Lifetime, Update, batch_get, iso, link_key
from smsgw.domain.model import Chunk
from smsgw.domain.numbers import is_mobile
from smsgw.domain.reports import Link, Report, StoredReport
from smsgw.domain.times import PLATFORM_TIME_FORMAT

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

# How the platform's reportTime (``PLATFORM_TIME_FORMAT``) is packed in storage.
PACKED_TIME_FORMAT = "%y%m%d%H%M%S"
# UpdateExpression is limited to 4 KB: at most this many recipients per write.
MAX_ATTRIBUTES_PER_UPDATE = 50
WRITE_THREADS = 8


def pack_report(report: StoredReport) -> str:
    """A report as it is kept: ``status|time|msg``, the time packed to ``yymmddHHMMSS``
    when it has the platform's usual form. A MsgId's item grows with every report and
    each write is billed by the item's size, so every byte counts."""
    try:
        packed = datetime.strptime(report.report_time, PLATFORM_TIME_FORMAT).strftime(PACKED_TIME_FORMAT)
    except ValueError:
        packed = "~" + report.report_time.replace("|", " ")  # kept as it came
    return f"{report.status}|{packed}|{report.msg}"


def unpack_report(mobile: str, value: str) -> StoredReport:
    status, packed, msg = value.split("|", 2)
    if packed.startswith("~"):
        report_time = packed[1:]
    else:
        report_time = datetime.strptime(packed, PACKED_TIME_FORMAT).strftime(PLATFORM_TIME_FORMAT)
    return StoredReport(mobile, status, msg, report_time)


def link_from_item(item: dict[str, Any]) -> Link:
    """A link from a raw DynamoDB item (attribute-value form)."""
    reports = {
        name: unpack_report(name, value["S"])
        for name, value in item.items()
        if is_mobile(name)  # every other attribute is the link's own
    }
    chunk = item.get("chunk", {}).get("N")
    return Link(
        msg_id=item["pk"]["S"].removeprefix("MSG#"),
        request_id=item.get("request_id", {}).get("S"),
        chunk=int(chunk) if chunk is not None else None,
        reference=item.get("reference", {}).get("S"),
        reports=reports,
    )


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


class LinkStore:
    def __init__(
        self,
        client: DynamoDBClient,
        table_name: str,
        *,
        lifetime: Lifetime,
        clock: Callable[[], float] = time.time,
        pool: Executor | None = None,
    ) -> None:
        """``pool`` runs the parts of a packet's writes (default: WRITE_THREADS threads)."""
        self._db = client
        self._table = table_name
        self._lifetime = lifetime
        self._clock = clock
        self._pool = pool or ThreadPoolExecutor(max_workers=WRITE_THREADS, thread_name_prefix="reports")

    def link_clause(self, chunk: Chunk, msg_id: str) -> Update:
        """The write that links ``msg_id`` to ``chunk``'s request, for the chunk's owner to
        put in one transaction with its settlement (``ChunkStore.settle``). An update, not a
        put: reports that beat the submit's answer are kept (the early-report handshake)."""
        return Update(
            link_key(msg_id),
            set={
                "kind": "link",
                "request_id": chunk.request_id,
                "chunk": chunk.number,
                "submitted_at": iso(self._clock()),
                "expires_at": self._lifetime.of(chunk),
                "reference": chunk.reference,
            },
        )

    def get_links(self, msg_ids: Sequence[str]) -> dict[str, Link]:
        """These MsgIds' links, with their reports; one known only from reports that beat
        the submit's answer has no request yet."""
        keys = [link_key(m) for m in dict.fromkeys(msg_ids)]
        return {link.msg_id: link for link in map(link_from_item, batch_get(self._db, self._table, keys))}

    def record_reports(self, reports: Iterable[Report]) -> Recorded:
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
        values[":exp"] = {"N": str(self._lifetime.expires_at(now))}
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
