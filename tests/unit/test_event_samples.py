"""The event samples in events/bus/ are what the gateway really publishes (same shape)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from smsgw.adapters.events import EventPublisher
from smsgw.adapters.links import Link
from smsgw.provider.push import Inbound, Report
from smsgw.services.announce import (
    SOURCE,
    inbound_event,
    no_report_event,
    opt_out_event,
    report_events,
    request_submitted_event,
)
from tests.conftest import EVENTS


class RecordingEventBridge:
    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.entries.extend(Entries)
        return {"FailedEntryCount": 0, "Entries": [{"EventId": "x"} for _ in Entries]}


def published() -> dict[str, dict[str, Any]]:
    bus = RecordingEventBridge()
    link = Link("26112412000000000001", "request-1", 0, "order-42")
    mo = Inbound("13800138000", "TD", "2026-11-24 12:30:00", "01")
    events = [
        *report_events(
            [
                Report("26112412000000000001", "13800138000", "0", "发送成功", "2026-11-24 12:00:05"),
                Report("26112412000000000001", "13900139000", "2", "UNDELIV", "2026-11-24 12:00:06"),
            ],
            {link.msg_id: link},
        ),
        request_submitted_event("request-1", "order-42", 2, 1),
        no_report_event("request-1", "order-42", "26112412000000000001", ["13700137000"]),
        inbound_event(mo),
        opt_out_event(mo, "td"),
    ]
    EventPublisher(bus, "smsgw-events", source=SOURCE).publish(events)  # type: ignore[arg-type]
    return {e["DetailType"]: {"source": e["Source"], "detail": json.loads(e["Detail"])} for e in bus.entries}


def shape(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__


@pytest.mark.parametrize("sample", sorted(p.name for p in (EVENTS / "bus").glob("*.json")))
def test_each_sample_has_the_shape_of_the_published_event(sample: str) -> None:
    documented = json.loads((EVENTS / "bus" / sample).read_text(encoding="utf-8"))
    real = published()[documented["detail-type"]]
    assert documented["source"] == real["source"] == "smsgw"
    assert shape(documented["detail"]) == shape(real["detail"])


def test_every_published_event_type_has_a_sample() -> None:
    samples = {
        json.loads(p.read_text(encoding="utf-8"))["detail-type"] for p in (EVENTS / "bus").glob("*.json")
    }
    assert samples == set(published())
