"""Why: capacity.md prices finding and following, which no run measures: per million
recipients, the search indexes, the
completion checks and the callbacks (``docs/capacity.md``, section "Finding and following").

Worked out from the item layouts (``layers/shared/smsgw/adapters/search.py``) at the list
prices of ``bench.costs``, not measured: the entries are written once per request (or per
request and bucket), so their cost follows from their sizes. DynamoDB bills a write by the
KB of the item (a GSI entry is a write of its own), storage by the GB-month (plus 100
bytes an item) and point-in-time recovery likewise; TTL deletes cost no write.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from bench.costs import ITEM_OVERHEAD, PRICES

BUCKETS = 64  # adapters.search.TO_BUCKETS
NUMBER_BYTES = 12  # 11 digits and a comma
# Key and bookkeeping bytes of one entry, as DynamoDB sizes them (names and values).
BUCKET_KEYS = len("pk") + len("TO#0123456789abcdef#00") + len("sk") + len("2026-11-24T12:00:00Z#") + 36
BUCKET_KEYS += len("to") + len("expires_at") + 4
REFERENCE_ENTRY = (
    len("ref_key") + len("REF#0123456789abcdef#") + 16  # a reference of 16 characters
    + len("created_at") + 20 + len("pk") + len("REQ#") + 36 + len("sk") + len("META")
)  # fmt: skip
INBOUND_ENTRY = len("in_day") + 13 + len("in_at") + 4 + len("pk") + 14 + len("sk") + 37 + 120  # content etc.
# Events a request's recipients bring, per 1,000 recipients (the measured bulk run: reports
# grouped per packet, plus Request Submitted and Request Completed).
EVENTS_PER_1000 = 31.8


@dataclass(frozen=True)
class Workload:
    name: str
    recipients_per_request: int
    reply_ratio: float = 0.01  # replies (MO) per recipient
    with_reference: bool = True


WORKLOADS = (Workload("bulk, 10,000 numbers a request", 10_000), Workload("one-time codes, 1 a request", 1))


def _wru(size: int) -> int:
    return max(1, math.ceil(size / 1024))


def _expected_buckets(numbers: int) -> float:
    return BUCKETS * (1 - (1 - 1 / BUCKETS) ** numbers)


def model(workload: Workload, *, retention_days: int = 30) -> dict[str, Any]:
    """What one million recipients cost in each part, in units and USD."""
    requests = 1_000_000 / workload.recipients_per_request
    months = retention_days / 30
    wru, rru, gb = PRICES["dynamodb_wru"][0], PRICES["dynamodb_rru"][0], PRICES["dynamodb_gb_month"][0]
    pitr = PRICES["pitr_gb_month"][0]
    rows: dict[str, dict[str, float]] = {}

    def row(name: str, writes: float = 0, reads: float = 0, stored: float = 0, other: float = 0) -> None:
        usd = writes * wru + reads * rru + stored / 1e9 * months * (gb + pitr) + other
        rows[name] = {"wru": writes, "rru": reads, "bytes": stored, "usd": usd}

    buckets = _expected_buckets(workload.recipients_per_request)
    per_bucket = workload.recipients_per_request / buckets
    bucket_item = BUCKET_KEYS + math.ceil(per_bucket * NUMBER_BYTES)
    row(
        "search by number: recipient buckets",
        writes=requests * buckets * _wru(bucket_item),
        stored=requests * buckets * (bucket_item + ITEM_OVERHEAD),
    )
    if workload.with_reference:
        row(
            "search by reference: ReferenceIndex (keys only)",
            writes=requests,
            stored=requests * (REFERENCE_ENTRY + ITEM_OVERHEAD),
        )
    replies = 1_000_000 * workload.reply_ratio
    row(
        f"replies: InboundIndex ({workload.reply_ratio:.0%} reply)",
        writes=replies,
        stored=replies * (INBOUND_ENTRY + ITEM_OVERHEAD),
    )
    # Completion: the request goes on the due index when fully submitted and off it when
    # completed (a header write and a DueIndex entry write each), typically one check.
    chunks = math.ceil(workload.recipients_per_request / 200)
    link_bytes = 150 + 55 * min(200, workload.recipients_per_request)  # a MsgId's item with its reports
    check_reads = chunks * 0.5 + chunks * math.ceil(link_bytes / 4096) / 2  # chunk query, links
    row("completion: due index and one check", writes=requests * 3, reads=requests * check_reads)
    # A one-time code: its report, Request Submitted and Request Completed.
    events = EVENTS_PER_1000 * 1_000 if workload.recipients_per_request > 1 else 3 * 1_000_000
    sqs = events * 1.2 * PRICES["sqs_request"][0]  # sent by the rule; received and deleted 10 at a time
    invocations = events / 10
    compute = invocations * 0.2 * 0.25 * PRICES["lambda_gb_s"][0] + invocations * PRICES["lambda_request"][0]
    row("callbacks: queue, sender, its reads", reads=events * 0.5, other=sqs + compute)
    total = sum(r["usd"] for r in rows.values())
    naive = 1_000_000 * (wru + (BUCKET_KEYS + NUMBER_BYTES + ITEM_OVERHEAD) / 1e9 * months * (gb + pitr))
    return {
        "workload": workload.name,
        "rows": rows,
        "usd_per_million": total,
        "per_recipient_items_usd": naive,
    }


def markdown_lines(retention_days: int = 30) -> list[str]:
    lines = [
        "## Finding and following",
        "",
        "What search, completion and callbacks add per million recipients, worked out from the",
        "entries' sizes (`bench/finding.py`) at the prices above, with records kept",
        f"{retention_days} days (`RetentionDays`; storage includes point-in-time recovery). Every",
        "search entry expires with its request: a number stays searchable for `RetentionDays` after",
        "the request (after its send time, for a scheduled one), then it is gone from the index too.",
        "",
    ]
    for workload in WORKLOADS:
        result = model(workload, retention_days=retention_days)
        lines += [
            f"**{result['workload']}**",
            "",
            "| part | write units | read units | stored | USD per million recipients |",
            "|---|---:|---:|---:|---:|",
        ]
        for name, r in result["rows"].items():
            stored = f"{r['bytes'] / 1e6:,.1f} MB"
            lines.append(f"| {name} | {r['wru']:,.0f} | {r['rru']:,.0f} | {stored} | {r['usd']:.4f} |")
        lines += [
            f"| **total** | | | | **{result['usd_per_million']:.4f}** |",
            "",
            f"An item per recipient and request (the straightforward index) would cost"
            f" ${result['per_recipient_items_usd']:.3f} for the search by number alone.",
            "",
        ]
    lines += [
        "Why these shapes: a GSI entry costs a write of its own, and a write is billed per KB. The",
        "reference index projects keys only, so no later update of a request (its status, its",
        "counters) writes it again; a number is found through 64 buckets per caller, each request",
        "writing one item per bucket it has numbers in (~2 KB for 10,000 numbers), instead of an",
        "item per recipient; replies get a sparse index that only they carry. Callbacks add an SQS",
        "message per event of a request (the bus's rule cannot tell which requests have a callback",
        "URL), delivered ten to an invocation, whether or not the request has one. A one-time code",
        "(one number a request) pays per number what a bulk send pays per request: its bucket entry,",
        "its reference entry, its completion (three writes) and three events for the callback queue;",
        "beside API Gateway's $3.50 per million requests, the order of what its request costs already.",
        "",
    ]
    return lines
