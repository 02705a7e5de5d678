"""Inbound (MO) messages: what people send to the gateway's numbers, and the opt-out list
their replies feed."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Inbound:
    """One MO message, as the platform pushed it."""

    mobile: str
    content: str
    received_time: str  # as the platform wrote it (Beijing time, no zone); may be empty
    append_id: str


@dataclass(frozen=True)
class OptOut:
    """A number on the deployment's opt-out list (marketing never goes to it)."""

    mobile: str
    keyword: str
    source: str  # "mo" (the person replied) or "api" (an operator added it)
    created_at: str
    changed_by: str | None = None  # the caller that added it through the API
