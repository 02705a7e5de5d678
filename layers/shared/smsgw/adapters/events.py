"""Publishing the gateway's events on its EventBridge bus.

Every event has the same envelope in ``detail``: ``version``, ``event_id`` (stable: the
same fact always gets the same id, so consumers can drop the duplicates EventBridge's
at-least-once delivery allows), ``occurred_at`` (ISO 8601 with offset), then the payload.
Entries go out ten per PutEvents call (the API's limit); entries the service reports failed in
``FailedEntryCount`` are retried with growing delays, and what still fails raises.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from smsgw.domain.events import Event
from smsgw.domain.times import iso

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient

PUT_EVENTS_LIMIT = 10
MAX_ENTRY_BYTES = 256 * 1024
ENVELOPE_VERSION = "1"


class EventsUnavailable(RuntimeError):
    """EventBridge refused entries even after retries."""


class EventPublisher:
    def __init__(
        self,
        client: EventBridgeClient,
        bus_name: str,
        *,
        source: str = "smsgw",
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        attempts: int = 5,
    ) -> None:
        self._events = client
        self._bus = bus_name
        self._source = source
        self._clock = clock
        self._sleep = sleep
        self._attempts = attempts

    def _entry(self, event: Event) -> dict[str, Any]:
        detail = {
            "version": ENVELOPE_VERSION,
            "event_id": event.event_id,
            "occurred_at": iso(self._clock()),
            **event.payload,
        }
        body = json.dumps(detail, ensure_ascii=False, separators=(",", ":"))
        if len(body.encode("utf-8")) > MAX_ENTRY_BYTES - 1024:
            raise ValueError(f"event {event.event_id} is larger than an EventBridge entry may be")
        return {
            "Source": self._source,
            "DetailType": event.detail_type,
            "Detail": body,
            "EventBusName": self._bus,
        }

    def publish(self, events: Sequence[Event]) -> None:
        entries = [self._entry(e) for e in events]
        for start in range(0, len(entries), PUT_EVENTS_LIMIT):
            pending = entries[start : start + PUT_EVENTS_LIMIT]
            for attempt in range(self._attempts):
                result = self._events.put_events(Entries=pending)  # type: ignore[arg-type]
                if not result.get("FailedEntryCount"):
                    break
                # Results are positional: keep the entries whose result carries an error.
                pending = [e for e, r in zip(pending, result["Entries"], strict=True) if r.get("ErrorCode")]
                self._sleep(min(0.1 * 2**attempt, 2.0))
            else:
                raise EventsUnavailable(f"{len(pending)} events refused by EventBridge")
