"""``GET /v1/messages/{id}``: a request and the state of each of its recipients.

A caller sees only its own requests: another caller's id gets the same "not found" as an
unknown one, and an id that is no request id is not even looked up.

A recipient's state is its chunk's submission state, moved on by its delivery report
when one has arrived. Counts cover the whole request (chunk states, and the reports
held on each MsgId's item); recipients are paged by whole chunks.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from smsgw.adapters.table import MessageTable
from smsgw.domain.callers import is_request_id, same_caller
from smsgw.domain.errors import NotFound
from smsgw.domain.model import (
    CHUNK_TO_RECIPIENT,
    Chunk,
    ChunkState,
    RecipientStatus,
    RequestRecord,
    RequestStatus,
)
from smsgw.domain.reports import Link, StoredReport
from smsgw.domain.times import from_platform, moment_iso, public
from smsgw.services.announce import NO_REPORT

DEFAULT_PAGE = 1_000
MAX_PAGE = 5_000
# One answer for an unknown id, another caller's id and no id at all: none tells more.
NO_SUCH_REQUEST = "no such message request"


def request_status(stored: RequestStatus, counts: Counter[RecipientStatus]) -> str:
    """What the request's recipients make of it: ``accepting`` (intake under way),
    ``accepted`` (some still to be submitted), ``submitted`` (some await their report),
    ``completed`` (every recipient final)."""
    if stored is RequestStatus.ACCEPTING:
        return "accepting"
    if counts[RecipientStatus.QUEUED]:
        return "accepted"
    if counts[RecipientStatus.SUBMITTED]:
        return "submitted"
    return "completed"


def _unreported_status(chunk: Chunk) -> RecipientStatus:
    """A recipient without a report: its chunk's state, or ``unknown`` once the report
    timeout has passed (``no_report``); a report arriving later still wins."""
    if chunk.state is ChunkState.SUBMITTED and chunk.no_report:
        return RecipientStatus.UNKNOWN
    return CHUNK_TO_RECIPIENT[chunk.state]


SKIPPED_STATUS = {"opted_out": RecipientStatus.OPTED_OUT}  # any other reason: rejected


def _skipped(chunk: Chunk, mobile: str, reason: str) -> dict[str, Any]:
    return {
        "to": mobile,
        "status": SKIPPED_STATUS.get(reason, RecipientStatus.REJECTED).value,
        "provider_msg_id": None,
        "provider_code": None,
        "detail": reason,
        "reported_at": None,
        "reported_at_raw": None,
        "updated_at": public(chunk.updated_at),
    }


def _recipient(mobile: str, chunk: Chunk, report: StoredReport | None) -> dict[str, Any]:
    if report is None:
        status = _unreported_status(chunk)
        return {
            "to": mobile,
            "status": status.value,
            "provider_msg_id": chunk.msg_id,
            "provider_code": chunk.result_code,
            "detail": NO_REPORT if status is not CHUNK_TO_RECIPIENT[chunk.state] else chunk.detail,
            "reported_at": None,
            "reported_at_raw": None,
            "updated_at": public(chunk.updated_at),
        }
    return {
        "to": mobile,
        "status": (RecipientStatus.DELIVERED if report.delivered else RecipientStatus.FAILED).value,
        "provider_msg_id": chunk.msg_id,
        "provider_code": report.status,
        "detail": report.msg,
        # ISO 8601 with offset; the platform's own text (Beijing time, no zone) beside it.
        "reported_at": from_platform(report.report_time),
        "reported_at_raw": report.report_time,
        "updated_at": public(report.reported_at_utc) or public(chunk.updated_at),
    }


class StatusService:
    def __init__(self, store: MessageTable) -> None:
        self._store = store

    def status(
        self, request_id: str, *, caller: str, cursor: int = 0, limit: int = DEFAULT_PAGE
    ) -> dict[str, Any]:
        """``caller``'s request ``request_id``; ``NotFound`` for anyone else's."""
        if not is_request_id(request_id):
            raise NotFound(NO_SUCH_REQUEST)
        request = self._store.requests.get_request(request_id)
        if request is None or not same_caller(request.caller, caller):
            raise NotFound(NO_SUCH_REQUEST)
        chunks, links = load(self._store, request)
        counts = recipient_counts(request, chunks, links)

        page: list[dict[str, Any]] = []
        next_cursor: int | None = None
        for chunk in chunks:
            if chunk.number < cursor:
                continue
            if len(page) >= limit:
                next_cursor = chunk.number
                break
            reports = links[chunk.msg_id].reports if chunk.msg_id in links else {}
            page.extend(_recipient(mobile, chunk, reports.get(mobile)) for mobile in chunk.mobiles)
            page.extend(_skipped(chunk, mobile, reason) for mobile, reason in chunk.skipped)

        return {
            "id": request.id,
            "status": request_status(request.status, counts),
            "reference": request.reference,
            "category": request.category.value,
            "created_at": public(request.created_at),
            # When the platform is asked to send (ISO 8601, Beijing time): the request's send_at.
            "send_at": moment_iso(request.send_time) if request.send_time else None,
            "completed_at": public(request.completed_at),
            "callback_url": request.callback_url,
            "segments": request.segments,
            "total_segments": request.total_segments,
            "counts": counts_view(request, counts),
            "recipients": page,
            "rejected": [r.as_dict() for r in request.rejected],
            "opted_out": list(request.opted_out),
            "next_cursor": str(next_cursor) if next_cursor is not None else None,
        }


def load(store: MessageTable, request: RequestRecord) -> tuple[list[Chunk], dict[str, Link]]:
    """A request's chunks, and the links (with reports) of those submitted."""
    # Chunks beyond the count are a stopped first attempt's, replanned by its retry.
    chunks = [c for c in store.chunks.list_chunks(request.id) if c.number < request.chunk_count]
    links = store.links.get_links([c.msg_id for c in chunks if c.state is ChunkState.SUBMITTED and c.msg_id])
    return chunks, links


def recipient_counts(
    request: RequestRecord, chunks: list[Chunk], links: dict[str, Link]
) -> Counter[RecipientStatus]:
    """How many of the request's recipients are in each state."""
    counts = _counts(chunks, links)
    counts[RecipientStatus.REJECTED] += request.rejected_count
    counts[RecipientStatus.OPTED_OUT] += request.opted_out_count
    return counts


def counts_view(request: RequestRecord, counts: Counter[RecipientStatus]) -> dict[str, int]:
    return {"total": request.recipients, **{s.value: counts[s] for s in RecipientStatus}}


def _counts(chunks: list[Chunk], links: dict[str, Link]) -> Counter[RecipientStatus]:
    counts: Counter[RecipientStatus] = Counter()
    for chunk in chunks:
        for _, reason in chunk.skipped:
            counts[SKIPPED_STATUS.get(reason, RecipientStatus.REJECTED)] += 1
        unreported = _unreported_status(chunk)
        counts[unreported] += len(chunk.mobiles)
        link = links.get(chunk.msg_id or "")
        if link is not None:
            mine = set(chunk.mobiles)
            delivered = sum(1 for m, r in link.reports.items() if m in mine and r.delivered)
            failed = sum(1 for m, r in link.reports.items() if m in mine and not r.delivered)
            counts[RecipientStatus.DELIVERED] += delivered
            counts[RecipientStatus.FAILED] += failed
            counts[unreported] -= delivered + failed
    return counts
