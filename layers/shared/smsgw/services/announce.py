"""The gateway's events: their types and how each is built (``adapters.events`` sends them).

=========================  ================================================================
detail-type                when, and what ``detail`` holds besides the envelope
=========================  ================================================================
Recipients Delivered       reports with status 0 in one push, per request: ``request_id``,
                           ``reference``, ``count``, ``recipients`` [{to, provider_msg_id,
                           provider_status, detail, reported_at}]
Recipients Failed          the same for any other status (``detail`` is the carrier's reason)
Recipients Unknown         submitted recipients with no report within the report timeout:
                           ``request_id``, ``reference``, ``count``, ``reason``
                           (``no_report``), ``recipients`` [{to, provider_msg_id}]
Request Submitted          every chunk of a request has settled: ``request_id``,
                           ``reference``, ``recipients``, ``chunks``
Inbound Message Received   an MO message: ``mobile``, ``content``, ``received_at``, ``append_id``
Recipient Opted Out        an MO that is an opt-out keyword: ``mobile``, ``keyword``
=========================  ================================================================

The envelope (``version``, ``event_id``, ``occurred_at``) is added by the publisher. One
event per request and outcome *per push packet*, not per recipient: the platform pushes
up to 250 reports a packet, so this costs about 1/100th of an event per recipient.
Recipients are identified by (``provider_msg_id``, ``to``): drop duplicates by that pair.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable

from smsgw.adapters.events import Event
from smsgw.adapters.links import Link
from smsgw.provider.push import Inbound, Report

SOURCE = "smsgw"
DELIVERED = "Recipients Delivered"
FAILED = "Recipients Failed"
UNKNOWN = "Recipients Unknown"
SUBMITTED = "Request Submitted"
NO_REPORT = "no_report"
INBOUND = "Inbound Message Received"
OPTED_OUT = "Recipient Opted Out"


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
                "reported_at": r.report_time,
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
            "recipients": [{"to": m, "provider_msg_id": msg_id} for m in numbers],
        },
    )


def request_submitted_event(request_id: str, reference: str | None, recipients: int, chunks: int) -> Event:
    return Event(
        SUBMITTED,
        digest("submitted", request_id),
        {"request_id": request_id, "reference": reference, "recipients": recipients, "chunks": chunks},
    )


def inbound_event(message: Inbound) -> Event:
    return Event(
        INBOUND,
        inbound_id(message),
        {
            "mobile": message.mobile,
            "content": message.content,
            "received_at": message.received_time,
            "append_id": message.append_id,
        },
    )


def opt_out_event(message: Inbound, keyword: str) -> Event:
    return Event(
        OPTED_OUT, digest("optout", inbound_id(message)), {"mobile": message.mobile, "keyword": keyword}
    )


def inbound_id(message: Inbound) -> str:
    return digest(message.mobile, message.received_time, message.append_id, message.content)
