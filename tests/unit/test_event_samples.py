"""The events on the bus keep their published contract.

- ``events/schemas/`` holds a JSON Schema per event type, generated from the models of
  ``smsgw.api.events``: a test fails when the files drift from the models;
- every sample of ``events/bus/`` validates against its type's schema;
- what the code really publishes (the real builders through the real publisher) validates
  against the same schemas, so a sample cannot promise a shape the code does not send.
"""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest

from smsgw.adapters.events import EventPublisher
from smsgw.api.events import EVENT_TYPES
from smsgw.api.schemas import SCHEMAS, event_schema, rendered_event_schemas, schema_name
from smsgw.domain.inbound import Inbound
from smsgw.domain.model import Chunk, ChunkState
from smsgw.domain.reports import Link, Report
from smsgw.services import announce
from tests.conftest import EVENTS

RID = "0b4f6c1e-8d2a-4f7e-9c11-2a6f5e3d9b01"


class RecordingEventBridge:
    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.entries.extend(Entries)
        return {"FailedEntryCount": 0, "Entries": [{"EventId": "x"} for _ in Entries]}


def _chunk(state: ChunkState, code: str | None, detail: str | None) -> Chunk:
    return Chunk(
        RID, 3, ("13800138000", "13900139000"), "x", 1, reference=None, state=state,
        result_code=code, detail=detail, attempts=8,
    )  # fmt: skip


def published() -> list[dict[str, Any]]:
    """Every kind of event the code builds, as the publisher puts it on the bus."""
    bus = RecordingEventBridge()
    link = Link("26112412000000000001", RID, 0, "order-42")
    mo = Inbound("13800138000", "TD", "2026-11-24 12:30:00", "01")
    counts = dict.fromkeys(("queued", "submitted", "delivered", "failed", "unknown", "expired"), 0)
    counts.update(total=2, rejected=0, opted_out=0, cancelled=2)
    events = [
        *announce.report_events(
            [
                Report("26112412000000000001", "13800138000", "0", "发送成功", "2026-11-24 12:00:05"),
                Report("26112412000000000001", "13900139000", "2", "UNDELIV", "not a time"),
            ],
            {link.msg_id: link},
        ),
        announce.request_submitted_event(RID, "order-42", 2, 1),
        announce.request_completed_event(RID, None, counts, "2026-11-24T20:00:00+08:00"),
        announce.no_report_event(RID, "order-42", "26112412000000000001", ["13700137000"]),
        announce.skipped_event(_chunk(ChunkState.QUEUED, None, None), [("13700137000", "opted_out")]),
        announce.dead_lettered_event(_chunk(ChunkState.RETRYING, "-1", "busy"), "-1", "busy"),
        announce.inbound_event(mo),
        announce.opt_out_event(mo, "td"),
    ]
    for state, code in [
        (ChunkState.FAILED, "07"),
        (ChunkState.UNKNOWN, "timeout"),
        (ChunkState.UNKNOWN, "stale_claim"),
        (ChunkState.EXPIRED, "expired"),
        (ChunkState.CANCELLED, "cancelled"),
    ]:
        event = announce.chunk_event(_chunk(state, code, "why"))
        assert event is not None
        events.append(event)
    EventPublisher(bus, "smsgw-events", source=announce.SOURCE).publish(events)  # type: ignore[arg-type]
    return [
        {"source": e["Source"], "detail-type": e["DetailType"], "detail": json.loads(e["Detail"])}
        for e in bus.entries
    ]


def samples() -> list[str]:
    return sorted(p.name for p in (EVENTS / "bus").glob("*.json"))


def test_the_schema_files_are_generated_from_the_models_and_have_not_drifted() -> None:
    # Given the schemas the models generate / Then the files in events/schemas/ are exactly those
    # (regenerate with: .venv/bin/python -m smsgw.api.schemas)
    on_disk = {p.name: p.read_text(encoding="utf-8") for p in SCHEMAS.glob("*.json")}
    assert on_disk == rendered_event_schemas()


@pytest.mark.parametrize("sample", samples())
def test_each_sample_validates_against_its_types_schema(sample: str) -> None:
    event = json.loads((EVENTS / "bus" / sample).read_text(encoding="utf-8"))
    schema = json.loads((SCHEMAS / f"{schema_name(event['detail-type'])}.json").read_text(encoding="utf-8"))
    jsonschema.validate(event, schema, format_checker=jsonschema.FormatChecker())


def test_every_event_the_code_publishes_validates_against_its_schema() -> None:
    for event in published():
        jsonschema.validate(event, event_schema(event["detail-type"]))


def test_a_schema_refuses_what_the_contract_does_not_allow() -> None:
    # Given a real delivered event with a field the contract does not name, or a count as text
    (delivered,) = [e for e in published() if e["detail-type"] == "Recipients Delivered"]
    schema = event_schema("Recipients Delivered")
    extra = {**delivered, "detail": {**delivered["detail"], "surprise": 1}}
    wrong = {**delivered, "detail": {**delivered["detail"], "count": "1"}}
    # Then the schema refuses both
    for bad in (extra, wrong):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, schema)


def test_every_event_type_has_a_sample_and_a_schema_and_the_code_publishes_it() -> None:
    sampled = {json.loads((EVENTS / "bus" / s).read_text(encoding="utf-8"))["detail-type"] for s in samples()}
    assert sampled == set(EVENT_TYPES) == {e["detail-type"] for e in published()}
    assert {p.name for p in SCHEMAS.glob("*.json")} == {f"{schema_name(t)}.json" for t in EVENT_TYPES}


def test_every_time_in_an_event_is_iso_8601_with_its_offset() -> None:
    # The platform's own text is kept beside it (…_raw); every other time has an offset
    for event in published():
        detail = event["detail"]
        assert detail["occurred_at"].endswith("+08:00"), event["detail-type"]
        listed = detail.get("recipients")
        for item in listed if isinstance(listed, list) else []:
            if item.get("reported_at_raw") == "2026-11-24 12:00:05":
                assert item["reported_at"] == "2026-11-24T12:00:05+08:00"
            elif "reported_at_raw" in item:
                assert item["reported_at"] is None  # unreadable: null, the raw text kept
        if "received_at" in detail:
            assert (detail["received_at"], detail["received_at_raw"]) == (
                "2026-11-24T12:30:00+08:00",
                "2026-11-24 12:30:00",
            )
