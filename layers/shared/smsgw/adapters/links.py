"""A provider MsgId's item: which request it belongs to, and the reports of its numbers.

``MSG#<MsgId>`` / ``LINK`` holds the link written by the worker when the platform
accepts a submit (``request_id``, ``chunk``, ``reference``) and one attribute per mobile
once its report has arrived: ``"13800138000": "0|261124120005|发送成功"`` (status, the
platform's report time, the platform's words). Counts
are read from the reports themselves, so a push costs one write per MsgId it touches.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from smsgw.domain.numbers import is_mobile
from smsgw.provider.guodu import BEIJING

# The document's reportTime (section 3.2), and how it is packed in storage.
REPORT_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
PACKED_TIME_FORMAT = "%y%m%d%H%M%S"


@dataclass(frozen=True)
class StoredReport:
    """One recipient's report, as it is kept: ``status|time|msg``, the time packed to
    ``yymmddHHMMSS`` when it has the platform's usual form. A MsgId's item grows with
    every report and each write is billed by the item's size, so every byte counts."""

    mobile: str
    status: str
    msg: str
    report_time: str  # as the platform wrote it, Beijing time

    @property
    def delivered(self) -> bool:
        return self.status == "0"

    @property
    def reported_at_utc(self) -> str | None:
        """The report time in UTC ISO 8601, when the platform's form could be read."""
        try:
            moment = datetime.strptime(self.report_time, REPORT_TIME_FORMAT).replace(tzinfo=BEIJING)
        except ValueError:
            return None
        return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def encode(self) -> str:
        try:
            packed = datetime.strptime(self.report_time, REPORT_TIME_FORMAT).strftime(PACKED_TIME_FORMAT)
        except ValueError:
            packed = "~" + self.report_time.replace("|", " ")  # kept as it came
        return f"{self.status}|{packed}|{self.msg}"

    @classmethod
    def decode(cls, mobile: str, value: str) -> StoredReport:
        status, packed, msg = value.split("|", 2)
        if packed.startswith("~"):
            report_time = packed[1:]
        else:
            report_time = datetime.strptime(packed, PACKED_TIME_FORMAT).strftime(REPORT_TIME_FORMAT)
        return cls(mobile, status, msg, report_time)


@dataclass(frozen=True)
class Link:
    """Reports may arrive before the submit's answer: the item then holds reports only
    (``request_id`` None) until the worker records the submit."""

    msg_id: str
    request_id: str | None
    chunk: int | None
    reference: str | None
    reports: dict[str, StoredReport] = field(default_factory=dict)

    @property
    def delivered(self) -> int:
        return sum(r.delivered for r in self.reports.values())

    @property
    def failed(self) -> int:
        return len(self.reports) - self.delivered

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> Link:
        """From a raw DynamoDB item (attribute-value form)."""
        reports = {
            name: StoredReport.decode(name, value["S"])
            for name, value in item.items()
            if is_mobile(name)  # every other attribute is the link's own
        }
        chunk = item.get("chunk", {}).get("N")
        return cls(
            msg_id=item["pk"]["S"].removeprefix("MSG#"),
            request_id=item.get("request_id", {}).get("S"),
            chunk=int(chunk) if chunk is not None else None,
            reference=item.get("reference", {}).get("S"),
            reports=reports,
        )
