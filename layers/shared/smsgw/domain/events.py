"""The gateway's events, as the services make them (``services.announce``) and the
publisher puts them on the bus (``adapters.events``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Event:
    """One fact worth telling: ``event_id`` is stable (the same fact always gets the same
    id), so consumers can drop the duplicates at-least-once delivery allows."""

    detail_type: str
    event_id: str
    payload: dict[str, Any] = field(default_factory=dict)
