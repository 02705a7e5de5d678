"""A provider MsgId's item: which request it belongs to, and the reports of its numbers.

``MSG#<MsgId>`` / ``LINK`` holds the link written by the worker when the platform
accepts a submit (``request_id``, ``chunk``, ``reference``) and one attribute per mobile
once its report has arrived: ``"13800138000": "0|261124120005|发送成功"`` (status, the
platform's report time, the platform's words). Counts
are read from the reports themselves, so a push costs one write per MsgId it touches.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from smsgw.domain.numbers import is_mobile
from smsgw.domain.reports import Link, StoredReport
from smsgw.domain.times import PLATFORM_TIME_FORMAT

# How the platform's reportTime (``PLATFORM_TIME_FORMAT``) is packed in storage.
PACKED_TIME_FORMAT = "%y%m%d%H%M%S"


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
