"""A provider MsgId's item: which request it belongs to, and the reports of its numbers.

``MSG#<MsgId>`` / ``LINK`` holds the link written by the worker when the platform
accepts a submit (``request_id``, ``chunk``, ``reference``) and one attribute per mobile
once its report has arrived: ``"13800138000": "0|2026-11-24 12:00:05|1795608005|发送成功"``
(status, the platform's report time, when we stored it, the platform's words). Counts
are read from the reports themselves, so a push costs one write per MsgId it touches.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from smsgw.domain.numbers import is_mobile

_FIELDS = {"pk", "sk", "kind", "request_id", "chunk", "reference", "submitted_at", "expires_at"}
_MOBILE_NAME = re.compile(r"^1[3-9][0-9]{9}$")


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
            if name not in _FIELDS and _MOBILE_NAME.match(name) and is_mobile(name)
        }
        chunk = item.get("chunk", {}).get("N")
        return cls(
            msg_id=item["pk"]["S"].removeprefix("MSG#"),
            request_id=item.get("request_id", {}).get("S"),
            chunk=int(chunk) if chunk is not None else None,
            reference=item.get("reference", {}).get("S"),
            reports=reports,
        )
