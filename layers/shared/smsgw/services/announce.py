"""The gateway's events: their types and how each is built (``adapters.events`` sends them).

===========================  ==============================================================
detail-type                  when, and what ``detail`` holds besides the envelope
===========================  ==============================================================
Recipients Delivered         reports with status 0 in one push, per request: ``request_id``,
                             ``reference``, ``stage`` "report", ``count``, ``recipients``
                             [{to, provider_msg_id, provider_status, detail, reported_at,
                             reported_at_raw}]
Recipients Failed            the same for any other status (``detail`` is the carrier's
                             reason); or, ``stage`` "submit", a chunk the platform refused
                             (06-10) with its ``provider_code`` and ``detail``
Recipients Unknown           ``reason`` ``no_report`` (no report within the report timeout)
                             or ``ambiguous`` (the submit may have left, no answer came)
Recipients Expired           not submitted within the request's validity
Recipients Cancelled         called off by ``DELETE /v1/messages/{id}`` before they left
Recipients Skipped           taken out of a held (scheduled) send at its release: opted out,
                             or over a frequency cap recorded since the request came in
Recipients Dead-Lettered     a chunk used its attempts and waits in the dead-letter queue
                             for ``smsgw redrive`` (not final: redriven, it goes on)
Request Submitted            every chunk of a request has settled: ``request_id``,
                             ``reference``, ``recipients``, ``chunks``
Request Completed            every recipient is final: ``request_id``, ``reference``,
                             ``status`` "completed", ``counts`` per state, ``completed_at``
Inbound Message Received     an MO message: ``mobile``, ``content``, ``received_at``,
                             ``received_at_raw``, ``append_id``
Recipient Opted Out          an MO that is an opt-out keyword: ``mobile``, ``keyword``
===========================  ==============================================================

The envelope (``version``, ``event_id``, ``occurred_at``) is added by the publisher. One
event per request and outcome *per push packet* (reports) or *per chunk* (everything the
gateway decides itself), never per recipient: at most 250 recipients an event.
``event_id`` is stable: the same fact always gets the same id, whoever publishes it and
however often.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from smsgw.domain.events import Event
from smsgw.domain.inbound import Inbound
from smsgw.domain.model import STALE_CLAIM, Chunk, ChunkState
from smsgw.domain.reports import Link, Report
from smsgw.domain.times import from_platform

SOURCE = "smsgw"
DELIVERED = "Recipients Delivered"
FAILED = "Recipients Failed"
UNKNOWN = "Recipients Unknown"
EXPIRED = "Recipients Expired"
CANCELLED = "Recipients Cancelled"
SKIPPED = "Recipients Skipped"
DEAD_LETTERED = "Recipients Dead-Lettered"
SUBMITTED = "Request Submitted"
COMPLETED = "Request Completed"
NO_REPORT = "no_report"
AMBIGUOUS = "ambiguous"
INBOUND = "Inbound Message Received"
OPTED_OUT = "Recipient Opted Out"

# The events of one request (a callback is POSTed for each of these).
REQUEST_EVENTS = (
    DELIVERED,
    FAILED,
    UNKNOWN,
    EXPIRED,
    CANCELLED,
    SKIPPED,
    DEAD_LETTERED,
    SUBMITTED,
    COMPLETED,
)


def digest(*parts: str) -> str:
    return hashlib.sha256("\n".join(parts).encode("utf-8")).hexdigest()[:32]


def report_events(reports: Iterable[Report], links: dict[str, Link]) -> list[Event]:
    """One event per (request, outcome) among these reports."""
    groups: dict[tuple[str | None, bool], list[Report]] = defaultdict(list)
    for report in reports:
        link = links.get(report.msg_id)
        groups[(link.request_id if link else None, report.delivered)].append(report)
    events: list[Event] = []
    for (request_id, delivered), items in groups.items():
        link = links.get(items[0].msg_id)
        recipients = [
            {
                "to": r.mobile,
                "provider_msg_id": r.msg_id,
                "provider_status": r.status,
                "detail": r.msg,
                "reported_at": from_platform(r.report_time),
                "reported_at_raw": r.report_time,
            }
            for r in items
        ]
        events.append(
            Event(
                DELIVERED if delivered else FAILED,
                digest(*sorted(f"{r.msg_id}:{r.mobile}:{r.status}" for r in items)),
                {
                    "request_id": request_id,
                    "reference": link.reference if link else None,
                    "stage": "report",
                    "count": len(recipients),
                    "recipients": recipients,
                },
            )
        )
    return events


def no_report_event(request_id: str, reference: str | None, msg_id: str, mobiles: Iterable[str]) -> Event:
    """Recipients of one submit whose report never came: they are now ``unknown``. A report
    that arrives later still settles them (and is announced as usual)."""
    numbers = sorted(mobiles)
    return Event(
        UNKNOWN,
        digest(NO_REPORT, msg_id, *numbers),
        {
            "request_id": request_id,
            "reference": reference,
            "count": len(numbers),
            "reason": NO_REPORT,
            "provider_code": None,
            "detail": "no delivery report within the report timeout",
            "recipients": [{"to": m, "provider_msg_id": msg_id} for m in numbers],
        },
    )


def chunk_event(chunk: Chunk) -> Event | None:
    """The final-state event of a chunk the gateway settled itself (not by a report): failed
    at submit, unknown (ambiguous), expired, cancelled. None for any other state: a
    submitted chunk's recipients are announced by their reports."""
    kind = {
        ChunkState.FAILED: FAILED,
        ChunkState.UNKNOWN: UNKNOWN,
        ChunkState.EXPIRED: EXPIRED,
        ChunkState.CANCELLED: CANCELLED,
    }.get(chunk.state)
    if kind is None or not chunk.mobiles:
        return None
    payload: dict[str, Any] = {
        "request_id": chunk.request_id,
        "reference": chunk.reference,
        "count": len(chunk.mobiles),
        "provider_code": chunk.result_code if chunk.state is not ChunkState.CANCELLED else None,
        "detail": chunk.detail,
        "recipients": [{"to": m, "provider_msg_id": chunk.msg_id} for m in chunk.mobiles],
    }
    if chunk.state is ChunkState.FAILED:
        payload["stage"] = "submit"
    elif chunk.state is ChunkState.UNKNOWN:
        payload["reason"] = AMBIGUOUS
        if chunk.result_code == STALE_CLAIM:
            payload["provider_code"] = None
    else:
        payload["reason"] = chunk.state.value
    # One fact per chunk and final state: a chunk settles once.
    return Event(kind, digest(chunk.state.value, chunk.request_id, f"{chunk.number:05d}"), payload)


def skipped_event(chunk: Chunk, skipped: Sequence[tuple[str, str]]) -> Event:
    """Numbers a held chunk dropped at its release (opted out, over a cap since intake)."""
    return Event(
        SKIPPED,
        digest("skipped", chunk.request_id, f"{chunk.number:05d}"),
        {
            "request_id": chunk.request_id,
            "reference": chunk.reference,
            "count": len(skipped),
            "recipients": [{"to": m, "reason": reason} for m, reason in skipped],
        },
    )


def dead_lettered_event(chunk: Chunk, code: str, detail: str) -> Event:
    """A chunk parked in the dead-letter queue; each parking is its own fact (a redriven
    chunk that fails again is announced again), told apart by the attempts it had made."""
    return Event(
        DEAD_LETTERED,
        digest("dead_lettered", chunk.request_id, f"{chunk.number:05d}", str(chunk.attempts)),
        {
            "request_id": chunk.request_id,
            "reference": chunk.reference,
            "count": len(chunk.mobiles),
            "provider_code": code,
            "detail": detail,
            "attempts": chunk.attempts,
            "recipients": [{"to": m, "provider_msg_id": None} for m in chunk.mobiles],
        },
    )


def request_submitted_event(request_id: str, reference: str | None, recipients: int, chunks: int) -> Event:
    return Event(
        SUBMITTED,
        digest("submitted", request_id),
        {"request_id": request_id, "reference": reference, "recipients": recipients, "chunks": chunks},
    )


def request_completed_event(
    request_id: str, reference: str | None, counts: Mapping[str, int], completed_at: str
) -> Event:
    return Event(
        COMPLETED,
        digest("completed", request_id),
        {
            "request_id": request_id,
            "reference": reference,
            "status": "completed",
            "counts": dict(counts),
            "completed_at": completed_at,
        },
    )


def inbound_event(message: Inbound) -> Event:
    return Event(
        INBOUND,
        inbound_id(message),
        {
            "mobile": message.mobile,
            "content": message.content,
            "received_at": from_platform(message.received_time),
            "received_at_raw": message.received_time,
            "append_id": message.append_id,
        },
    )


def opt_out_event(message: Inbound, keyword: str) -> Event:
    return Event(
        OPTED_OUT, digest("optout", inbound_id(message)), {"mobile": message.mobile, "keyword": keyword}
    )


def inbound_id(message: Inbound) -> str:
    return digest(message.mobile, message.received_time, message.append_id, message.content)
