"""The API's replies as typed records.

Parsing is lenient on purpose: a field the server leaves out reads as empty rather than
crashing the operator's tool, and counts the CLI does not know yet are kept and shown.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from smsgw.domain.model import RecipientStatus

# The order in which counts are shown; anything else the server adds follows.
COUNT_ORDER = (
    "total",
    "queued",
    "submitted",
    "delivered",
    "failed",
    "unknown",
    "expired",
    "rejected",
    "opted_out",
    "cancelled",
)

# A recipient's public states (the API's ``RecipientStatus``). Queued and submitted still
# move on: submitted waits for the platform's delivery report. The others are final: the
# first five are where an accepted recipient ends (counted in ``total``), rejected and
# opted out are decided at intake (never in ``total``), or when a held send is released.
# Listed here rather than derived, so a state added later is not taken for final by mistake.
PENDING_STATES = (RecipientStatus.QUEUED, RecipientStatus.SUBMITTED)
ENDS_OF_ACCEPTED = (
    RecipientStatus.DELIVERED,
    RecipientStatus.FAILED,
    RecipientStatus.UNKNOWN,
    RecipientStatus.EXPIRED,
    RecipientStatus.CANCELLED,
)
FINAL_STATES = (*ENDS_OF_ACCEPTED, RecipientStatus.REJECTED, RecipientStatus.OPTED_OUT)


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _dicts(value: Any) -> list[Mapping[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


@dataclass(frozen=True)
class Rejected:
    to: str
    reason: str

    @classmethod
    def from_json(cls, item: Mapping[str, Any]) -> Rejected:
        return cls(to=str(item.get("to", "")), reason=str(item.get("reason", "")))


@dataclass(frozen=True)
class Accepted:
    """The 202 reply of ``POST /v1/messages``."""

    id: str
    status: str
    recipients: int
    segments: int
    total_segments: int
    rejected: tuple[Rejected, ...]
    reference: str | None

    @classmethod
    def from_json(cls, reply: Mapping[str, Any]) -> Accepted:
        return cls(
            id=str(reply.get("id", "")),
            status=str(reply.get("status", "")),
            recipients=_int(reply.get("recipients")),
            segments=_int(reply.get("segments")),
            total_segments=_int(reply.get("total_segments")),
            rejected=tuple(Rejected.from_json(r) for r in _dicts(reply.get("rejected"))),
            reference=_str(reply.get("reference")),
        )


@dataclass(frozen=True)
class Recipient:
    to: str
    status: str
    provider_msg_id: str | None
    provider_code: str | None
    detail: str | None
    updated_at: str | None

    @classmethod
    def from_json(cls, item: Mapping[str, Any]) -> Recipient:
        return cls(
            to=str(item.get("to", "")),
            status=str(item.get("status", "")),
            provider_msg_id=_str(item.get("provider_msg_id")),
            provider_code=_str(item.get("provider_code")),
            detail=_str(item.get("detail")),
            updated_at=_str(item.get("updated_at")),
        )


@dataclass(frozen=True)
class Status:
    """The reply of ``GET /v1/messages/{id}`` (one page of recipients, or all pages merged)."""

    id: str
    status: str
    reference: str | None
    category: str | None
    created_at: str | None
    send_at: str | None
    segments: int
    total_segments: int
    counts: dict[str, int]
    recipients: tuple[Recipient, ...]
    rejected: tuple[Rejected, ...]
    next_cursor: str | None

    @classmethod
    def from_json(cls, reply: Mapping[str, Any]) -> Status:
        raw_counts = reply.get("counts")
        counts = {k: _int(v) for k, v in raw_counts.items()} if isinstance(raw_counts, dict) else {}
        return cls(
            id=str(reply.get("id", "")),
            status=str(reply.get("status", "")),
            reference=_str(reply.get("reference")),
            category=_str(reply.get("category")),
            created_at=_str(reply.get("created_at")),
            send_at=_str(reply.get("send_at")),
            segments=_int(reply.get("segments")),
            total_segments=_int(reply.get("total_segments")),
            counts=counts,
            recipients=tuple(Recipient.from_json(r) for r in _dicts(reply.get("recipients"))),
            rejected=tuple(Rejected.from_json(r) for r in _dicts(reply.get("rejected"))),
            next_cursor=_str(reply.get("next_cursor")),
        )

    @property
    def queued(self) -> int:
        return self.counts.get("queued", 0)

    @property
    def settled(self) -> bool:
        """Nothing left to submit: every chunk is stored and none is still queued."""
        return self.status != "accepting" and self.queued == 0

    @property
    def pending(self) -> int:
        """Accepted recipients not yet in a final state: those counted queued or submitted,
        or (should the server add a state) those ``total`` holds beyond the final counts."""
        in_flight = sum(self.counts.get(state, 0) for state in PENDING_STATES)
        ended = sum(self.counts.get(state, 0) for state in ENDS_OF_ACCEPTED)
        return max(in_flight, self.counts.get("total", 0) - ended)

    @property
    def finished(self) -> bool:
        """Every recipient is in a final state: nothing about this request will change (the
        server says ``completed``; an older one only shows it in the counts)."""
        return self.status == "completed" or (self.status != "accepting" and self.pending == 0)

    def pending_text(self) -> str:
        """What is still pending, e.g. ``1 queued, 2 submitted``."""
        parts = [f"{self.counts[s]} {s}" for s in PENDING_STATES if self.counts.get(s, 0)]
        return ", ".join(parts) or f"{self.pending} not final"

    def ordered_counts(self) -> list[tuple[str, int]]:
        known = [(name, self.counts.get(name, 0)) for name in COUNT_ORDER]
        return known + [(k, v) for k, v in self.counts.items() if k not in COUNT_ORDER]


def merge_pages(pages: list[dict[str, Any]]) -> dict[str, Any]:
    """All pages of one status as one reply: the last page's header (the freshest counts)
    and every page's recipients."""
    if not pages:
        raise ValueError("no pages to merge")
    merged = dict(pages[-1])  # the latest counts and status
    merged["recipients"] = [r for page in pages for r in _dicts(page.get("recipients"))]
    merged["next_cursor"] = None
    return merged
