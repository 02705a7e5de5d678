"""How replies and errors look on a terminal: plain aligned text, no colour, no secrets.

Results go to stdout, progress and errors to stderr (the commands decide which). Phone
numbers are shown as the API gives them: this is the operator's own tool.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from smsgw_cli.client import ApiError, Failure, Unreachable
from smsgw_cli.models import Accepted, Rejected, Status

NONE = "-"


def as_json(document: Any) -> str:
    return json.dumps(document, ensure_ascii=False, indent=2)


def _fields(pairs: Iterable[tuple[str, object]]) -> list[str]:
    rows = [(key, NONE if value in (None, "") else str(value)) for key, value in pairs]
    width = max((len(key) for key, _ in rows), default=0)
    return [f"{key.ljust(width)}  {value}" for key, value in rows]


def _table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> list[str]:
    """Columns padded to their widest cell; the last column is free (it may hold Chinese)."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header) - 1)]

    def line(row: tuple[str, ...]) -> str:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        return "  ".join([*cells, row[-1]]).rstrip()

    return [line(header), *(line(row) for row in rows)]


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _segments(segments: int, total: int) -> str:
    return f"{segments} per message, {total} in total"


def _rejected(rejected: tuple[Rejected, ...]) -> list[str]:
    if not rejected:
        return []
    width = max(len(r.to) for r in rejected)
    return [
        f"rejected {_plural(len(rejected), 'number')}:",
        *(f"  {r.to.ljust(width)}  {r.reason}" for r in rejected),
    ]


def accepted_lines(reply: Accepted) -> list[str]:
    lines = _fields(
        [
            ("id", reply.id),
            ("status", reply.status),
            ("reference", reply.reference),
            ("recipients", reply.recipients),
            ("segments", _segments(reply.segments, reply.total_segments)),
        ]
    )
    return lines + _rejected(reply.rejected)


def counts_text(status: Status) -> str:
    return ", ".join(f"{name} {count}" for name, count in status.ordered_counts())


def status_lines(status: Status) -> list[str]:
    lines = _fields(
        [
            ("id", status.id),
            ("status", status.status),
            ("reference", status.reference),
            ("category", status.category),
            ("created", status.created_at),
            ("send at", status.send_at or "now"),
            ("segments", _segments(status.segments, status.total_segments)),
            ("counts", counts_text(status)),
        ]
    )
    if status.recipients:
        rows = [
            (
                r.to,
                r.status,
                r.provider_code or NONE,
                r.provider_msg_id or NONE,
                r.updated_at or NONE,
                r.detail or NONE,
            )
            for r in status.recipients
        ]
        lines += ["", *_table(("TO", "STATUS", "CODE", "PROVIDER MSG ID", "UPDATED", "DETAIL"), rows)]
    rejected = _rejected(status.rejected)
    if rejected:
        lines += ["", *rejected]
    return lines


def progress_line(status: Status, elapsed: float) -> str:
    """One line a poll: the state and the counts that are not zero (total always)."""
    counts = ", ".join(f"{name} {n}" for name, n in status.ordered_counts() if n or name == "total")
    return f"[{elapsed:5.1f}s] {status.status}: {counts}"


def heartbeat_line(status: Status, elapsed: float, quiet: float) -> str:
    """While nothing changes: what it waits for, and for how long it has not moved."""
    return f"[{elapsed:5.1f}s] still waiting: {status.pending_text()} (no change for {quiet:.0f}s)"


def message_rows(messages: Sequence[Mapping[str, Any]]) -> list[str]:
    """A table of found requests (newest first), as ``GET /v1/messages`` lists them."""
    rows = [
        (
            str(m.get("id", "")),
            str(m.get("status", "")),
            str(m.get("created_at") or "-"),
            str(m.get("send_at") or "-"),
            str(m.get("recipients", "")),
            str(m.get("reference") or "-"),
        )
        for m in messages
    ]
    return _table(("ID", "STATUS", "CREATED", "SEND AT", "RECIPIENTS", "REFERENCE"), rows)


def cancelled_lines(reply: Mapping[str, Any]) -> list[str]:
    cancelled, left, ended = (int(reply.get(k) or 0) for k in ("cancelled", "already_left", "already_final"))
    lines = [f"{_plural(cancelled, 'recipient')} cancelled"]
    if left:
        lines.append(f"{_plural(left, 'recipient')} had already left for the platform: not cancelled")
    if ended:
        lines.append(f"{_plural(ended, 'recipient')} had already failed or expired")
    return lines


def opt_out_lines(reply: Mapping[str, Any]) -> list[str]:
    return _fields(
        (name, reply.get(name))
        for name in ("mobile", "opted_out", "keyword", "source", "created_at", "changed_by")
        if reply.get(name) not in (None, "")
    )


def _detail(detail: Mapping[str, Any]) -> str:
    if "field" in detail and "message" in detail:
        return f"{detail['field']}: {detail['message']}"
    if "to" in detail and "reason" in detail:
        return f"{detail['to']}: {detail['reason']}"
    return ", ".join(f"{key}={value}" for key, value in detail.items())


def _api_hints(err: ApiError, *, local: bool, idempotency_key: str | None) -> list[str]:
    if err.missing_route:
        return [
            "hint: API Gateway knows no such route: check --url; a deployed stack's URL is its "
            "ApiUrl output and ends with the stage (e.g. …/live)"
        ]
    if err.key_refused:
        where = (
            "the local stack accepts the SMSGW_API_KEY it was started with"
            if local
            else "read a deployed stack's key with "
            "`aws apigateway get-api-key --include-value --api-key <ApiKeyId output>`"
        )
        return [f"hint: the API key was refused: set SMSGW_API_KEY (or --api-key); {where}"]
    if err.status == 429:
        return ["hint: throttled by the API's usage plan; wait a little and retry"]
    if err.code == "idempotency_key_reused":
        return ["hint: this Idempotency-Key was used for a different request; use a new key"]
    if err.status >= 500:
        hints = []
        if err.retry_after:
            after = f"{err.retry_after}s" if err.retry_after.isdigit() else err.retry_after  # or a date
            hints.append(f"hint: the service asks to retry after {after}")
        if idempotency_key:
            hints.append(_retry_safely(idempotency_key))
        return hints
    return []


def _retry_safely(idempotency_key: str) -> str:
    return (
        "hint: the request may have been accepted in part; repeat it with "
        f"--idempotency-key {idempotency_key} to finish it without sending anything twice"
    )


def api_error_lines(err: ApiError, *, local: bool, idempotency_key: str | None = None) -> list[str]:
    """``idempotency_key``: the key a failed send went out with (hints how to retry it)."""
    what = str(err.status) if err.from_gateway else f"{err.status} {err.code}"
    lines = [f"error: {what}: {err.message}" if err.message else f"error: {what}"]
    # The gateway's message usually joins its field details already: show only the others.
    lines += [f"  - {text}" for text in map(_detail, err.details) if text not in err.message]
    return lines + _api_hints(err, local=local, idempotency_key=idempotency_key)


def unreachable_lines(err: Unreachable, *, idempotency_key: str | None = None) -> list[str]:
    lines = [f"error: cannot reach the API at {err.url}: {err.reason}"]
    if err.may_have_arrived and idempotency_key:
        return [*lines, _retry_safely(idempotency_key)]
    match err.failure:
        case Failure.SLOW:
            hint = "the API is slow to answer; try again, or with a larger --timeout"
        case Failure.NOT_JSON:
            hint = "is --url the gateway's API? (a deployed stack's ApiUrl output)"
        case Failure.REDIRECTED:
            hint = "give the API's own URL as --url (the key is never sent along a redirect)"
        case Failure.TLS:
            hint = "check --url and the proxy or certificate settings of this machine"
        case _ if err.local:
            hint = "is `make run` up? (or pass --url / set SMSGW_URL for another stack)"
        case _:
            hint = "check --url (a deployed stack's ApiUrl output) and your network"
    return [*lines, f"hint: {hint}"]
