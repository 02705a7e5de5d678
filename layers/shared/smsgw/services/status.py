"""``GET /v1/messages/{id}``: a request and the state of each of its recipients."""

from __future__ import annotations

from collections import Counter
from typing import Any

from smsgw.adapters.store import MessageStore
from smsgw.domain.errors import NotFound
from smsgw.domain.model import CHUNK_TO_RECIPIENT, Chunk, RecipientStatus, RequestStatus

DEFAULT_PAGE = 1_000
MAX_PAGE = 5_000


def _request_status(stored: RequestStatus, counts: Counter[RecipientStatus]) -> str:
    if stored is RequestStatus.ACCEPTING:
        return "accepting"
    if counts[RecipientStatus.QUEUED]:
        return "accepted"
    return "submitted"


def _recipient(mobile: str, chunk: Chunk) -> dict[str, Any]:
    return {
        "to": mobile,
        "status": CHUNK_TO_RECIPIENT[chunk.state].value,
        "provider_msg_id": chunk.msg_id,
        "provider_code": chunk.result_code,
        "detail": chunk.detail,
        "updated_at": chunk.updated_at,
    }


class StatusService:
    def __init__(self, store: MessageStore) -> None:
        self._store = store

    def status(self, request_id: str, *, cursor: int = 0, limit: int = DEFAULT_PAGE) -> dict[str, Any]:
        request = self._store.get_request(request_id)
        if request is None:
            raise NotFound(f"no message request {request_id}")
        chunks = self._store.list_chunks(request_id)
        counts: Counter[RecipientStatus] = Counter()
        for chunk in chunks:
            counts[CHUNK_TO_RECIPIENT[chunk.state]] += len(chunk.mobiles)
        counts[RecipientStatus.REJECTED] = len(request.rejected)

        page: list[dict[str, Any]] = []
        next_cursor: int | None = None
        for chunk in chunks:
            if chunk.number < cursor:
                continue
            if len(page) >= limit:
                next_cursor = chunk.number
                break
            page.extend(_recipient(mobile, chunk) for mobile in chunk.mobiles)

        reply: dict[str, Any] = {
            "id": request.id,
            "status": _request_status(request.status, counts),
            "reference": request.reference,
            "category": request.category.value,
            "created_at": request.created_at,
            "send_time": request.send_time or None,
            "segments": request.segments,
            "total_segments": request.total_segments,
            "counts": {"total": request.recipients, **{s.value: counts[s] for s in RecipientStatus}},
            "recipients": page,
            "rejected": [{"to": r.to, "reason": r.reason} for r in request.rejected],
            "next_cursor": str(next_cursor) if next_cursor is not None else None,
        }
        return reply
