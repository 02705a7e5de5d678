"""Delivery reports, and the link from a provider MsgId to the request it came from.

The early-report handshake
--------------------------
The platform answers a submit with a MsgId, and later pushes one report per recipient,
keyed by that MsgId. A report may arrive *before* the worker has recorded the submit's
answer (the platform is fast, the worker's write slow or retried). Nothing waits for the
other; the two writers meet on one item, ``MSG#<MsgId>`` / ``LINK``
(``adapters.links.LinkStore``), whichever comes first:

1. The push receiver stores each report as an attribute of that item, *with*
   ``if_not_exists`` and ``ReturnValues=ALL_OLD``. If the old item had no ``request_id``,
   the MsgId is not linked yet: the report is stored but **not announced** (no request id
   to put in its event) (``services.push``).
2. The worker, once the platform accepted, writes the link (``request_id``, ``chunk``) onto
   the same item with an *update*, never a put, so the early reports stay
   (``adapters.chunks.ChunkStore.settle``, in one transaction with the chunk's settlement).
3. After the link is written, the worker reads the item back (consistent) and announces
   the reports of its chunk's numbers that were already there
   (``services.submit.SubmitService._announce_early_reports``).

A report that lands between 2 and 3 is announced by the receiver (it sees the link) and
may be announced again by the worker: events carry a stable ``event_id``, so consumers drop
the duplicate. The status API needs no handshake: it reads chunks and links together.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC

from smsgw.domain.times import platform_time

# A report's status "0" means delivered; anything else failed, with the platform's words.
DELIVERED_STATUS = "0"


@dataclass(frozen=True)
class Report:
    """One delivery report, as the platform pushed it."""

    msg_id: str
    mobile: str
    status: str  # "0" delivered; anything else failed, with msg as the reason
    msg: str
    report_time: str

    @property
    def delivered(self) -> bool:
        return self.status == DELIVERED_STATUS


@dataclass(frozen=True)
class StoredReport:
    """One recipient's report as it is kept on its MsgId's link (no MsgId: the link has it)."""

    mobile: str
    status: str
    msg: str
    report_time: str  # as the platform wrote it, Beijing time

    @property
    def delivered(self) -> bool:
        return self.status == DELIVERED_STATUS

    @property
    def reported_at_utc(self) -> str | None:
        """The report time in UTC ISO 8601, when the platform's form could be read."""
        moment = platform_time(self.report_time)
        return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


@dataclass(frozen=True)
class Link:
    """A provider MsgId: the request and chunk it was submitted for, and the reports of its
    numbers. Reports may arrive before the submit's answer (see the module's note): the
    link then holds reports only (``request_id`` None) until the worker records the submit."""

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
