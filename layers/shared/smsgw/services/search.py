"""``GET /v1/messages?reference=|to=`` and ``GET /v1/inbound``: the caller's own, paged.

Messages come newest first, each as a summary of its request (``GET /v1/messages/{id}``
tells each recipient's state); replies newest first. A page holds at most ``limit``
entries and ``next_cursor`` goes on (``null``: the last page). A page may hold fewer
than ``limit`` while a cursor is still given: a search reads a bounded number of index
pages per call, so that it always answers in time.

Replies are scoped by extension: a reply to an extension (``AppendID``) belongs to the
callers that sent with that extension; a reply to the bare number (no extension) belongs
to the deployment, like the opt-out list, and every caller sees it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from smsgw.adapters.search import Hit, SearchStore
from smsgw.adapters.table import MessageTable
from smsgw.domain.callers import same_caller
from smsgw.domain.model import RequestRecord
from smsgw.domain.times import from_platform, iso, moment_iso, public


def summary(record: RequestRecord) -> dict[str, Any]:
    moment = record.send_time
    return {
        "id": record.id,
        "status": record.status.value,
        "reference": record.reference,
        "category": record.category.value,
        "created_at": public(record.created_at),
        "send_at": moment_iso(moment) if moment else None,
        "completed_at": public(record.completed_at),
        "recipients": record.recipients,
    }


class SearchService:
    def __init__(self, store: MessageTable, search: SearchStore) -> None:
        self._store = store
        self._search = search

    def messages(
        self,
        caller: str,
        *,
        reference: str | None,
        to: str | None,
        since: datetime,
        until: datetime,
        limit: int,
        cursor: str | None,
    ) -> dict[str, Any]:
        if to is not None:
            page = self._search.by_number(caller, to, since=since, until=until, limit=limit, cursor=cursor)
        else:
            assert reference is not None  # noqa: S101 - the route requires one of them
            page = self._search.by_reference(
                caller, reference, since=since, until=until, limit=limit, cursor=cursor
            )
        hits: list[Hit] = page.items
        records = self._store.requests.get_requests([h.request_id for h in hits])
        found = []
        seen: set[str] = set()
        for hit in hits:
            if hit.request_id in seen:
                continue  # a keyed retry indexed it twice
            seen.add(hit.request_id)
            record = records.get(hit.request_id)
            # The index is the caller's by its key; the header says so too (never trust one).
            if record is None or not same_caller(record.caller, caller):
                continue
            found.append({**summary(record), **({"to": to} if to is not None else {})})
        return {"messages": found, "next_cursor": page.cursor}

    def inbound(
        self,
        caller: str,
        *,
        mobile: str | None,
        since: datetime,
        until: datetime,
        limit: int,
        cursor: str | None,
    ) -> dict[str, Any]:
        extensions = self._search.extensions(caller)

        def visible(append_id: str) -> bool:
            return not append_id or any(append_id.startswith(e) for e in extensions)

        page = self._search.replies(
            visible=visible, since=since, until=until, mobile=mobile, limit=limit, cursor=cursor
        )
        return {
            "inbound": [
                {
                    "mobile": r.mobile,
                    "content": r.content,
                    "received_at": from_platform(r.received_time) or (iso(r.at) if r.at else None),
                    "received_at_raw": r.received_time,
                    "append_id": r.append_id,
                }
                for r in page.items
            ],
            "next_cursor": page.cursor,
        }
