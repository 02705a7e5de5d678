"""What the simulator remembers: submits it accepted or refused, and packets it pushed.

Records are plain dataclasses; :meth:`to_json` gives the shape the admin API returns.
The phone numbers are kept whole here (this is a test tool's memory, never a log).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

PushKind = Literal["report", "mo"]
PushOutcome = Literal["pending", "delivered", "failed"]


def iso_now(now: float | None = None) -> str:
    """An ISO 8601 UTC timestamp with milliseconds."""
    moment = datetime.fromtimestamp(time.time() if now is None else now, tz=UTC)
    return moment.isoformat(timespec="milliseconds")


@dataclass
class SubmitRecord:
    """One accepted ``submitJson`` request."""

    msg_id: str
    oper_id: str
    mobiles: list[str]
    content: str
    raw_content: str
    send_time: str
    append_id: str
    result_code: str
    segments: int
    source_ip: str
    received_at: str = field(default_factory=iso_now)
    fault: str | None = None  # accepted, but the answer never came or broke off (ACCEPTING_FAULTS)
    early_reports: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "msg_id": self.msg_id,
            "oper_id": self.oper_id,
            "mobiles": list(self.mobiles),
            "content": self.content,
            "raw_content": self.raw_content,
            "send_time": self.send_time,
            "append_id": self.append_id,
            "result_code": self.result_code,
            "segments": self.segments,
            "source_ip": self.source_ip,
            "received_at": self.received_at,
            "fault": self.fault,
            "early_reports": self.early_reports,
        }


@dataclass
class RefusedRecord:
    """One ``submitJson`` request not accepted: refused with a code, or hit by a fault.

    ``result_code`` is None when no code was answered (HTTP 500, a dropped connection, a
    timeout). ``fault`` names the injected fault, None for a genuine refusal.
    """

    result_code: str | None
    reason: str
    oper_id: str | None
    source_ip: str
    received_at: str = field(default_factory=iso_now)
    fault: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "result_code": self.result_code,
            "reason": self.reason,
            "oper_id": self.oper_id,
            "source_ip": self.source_ip,
            "received_at": self.received_at,
            "fault": self.fault,
        }


@dataclass
class PushRecord:
    """One packet pushed (or being pushed) to the gateway."""

    id: int
    kind: PushKind
    items: list[dict[str, Any]]
    early: bool = False
    duplicate_of: int | None = None
    shuffled: bool = False
    attempts: int = 0
    status: int | None = None  # the HTTP status of the last attempt; None: no answer
    error: str | None = None
    outcome: PushOutcome = "pending"
    created_at: str = field(default_factory=iso_now)
    attempted_at: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "items": self.items,
            "early": self.early,
            "duplicate_of": self.duplicate_of,
            "shuffled": self.shuffled,
            "attempts": self.attempts,
            "status": self.status,
            "error": self.error,
            "outcome": self.outcome,
            "created_at": self.created_at,
            "attempted_at": list(self.attempted_at),
        }
