"""Why: 3. moto bills nothing, so requests and cost per million are priced here from recorded calls.

AWS requests per 1,000 recipients and the cost per million recipients, at list prices.
Requests come from the recorded botocore calls of a full local run (``bench.localrun``,
``bench.hook._awsrecorder``). DynamoDB on-demand bills capacity units, not requests: the
moto server bills each request as DynamoDB would, from its own item sizes before and
after the request (``bench.hook._capacity``), and this sums its lines.

This matters since reports live on their MsgId's item: the item grows with every packet
that brings reports of it (to about 11 KB for 200 numbers), so a late write of a few
reports costs as many units as the whole item's KB.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from typing import Any

from bench.hook._capacity import item_size, key_hash

PRICES_REGION = "us-east-1 (US East, N. Virginia)"
PRICES_AS_OF = (
    "as published in mid-2025, DynamoDB on-demand after its 1 Nov 2024 cut; not re-checked at run time"
)
PRICES: dict[str, tuple[float, str]] = {
    "api_request": (3.50e-6, "API Gateway REST API: $3.50 per million requests (first 333 million a month)"),
    "lambda_request": (0.20e-6, "Lambda: $0.20 per million requests"),
    "lambda_gb_s": (0.0000133334, "Lambda arm64: $0.0000133334 per GB-second"),
    "sqs_request": (0.40e-6, "SQS standard: $0.40 per million requests (64 KB each)"),
    "dynamodb_wru": (0.625e-6, "DynamoDB on-demand: $0.625 per million write request units"),
    "dynamodb_rru": (0.125e-6, "DynamoDB on-demand: $0.125 per million read request units"),
    "dynamodb_gb_month": (0.25, "DynamoDB storage: $0.25 per GB-month"),
    "pitr_gb_month": (0.20, "DynamoDB point-in-time recovery: $0.20 per GB-month"),
    "event": (1.00e-6, "EventBridge custom events: $1.00 per million (64 KB each)"),
    "secret_call": (0.05e-4, "Secrets Manager: $0.05 per 10,000 API calls"),
    "secret_month": (0.40, "Secrets Manager: $0.40 per secret per month"),
    "log_gb": (0.50, "CloudWatch Logs: $0.50 per GB ingested"),
    "log_gb_month": (0.03, "CloudWatch Logs: $0.03 per GB-month stored"),
    "metric_month": (0.30, "CloudWatch custom metrics: $0.30 per metric per month (first 10,000)"),
    "xray_trace": (5.00e-6, "X-Ray: $5.00 per million traces recorded (first 100,000 a month free)"),
    "kms_key_month": (1.00, "KMS: $1.00 per customer managed key per month"),
}
BUDGET_PER_MILLION = 0.75
LOG_EVENT_OVERHEAD = 26  # CloudWatch counts 26 bytes per log event on top of the message
# START, END and REPORT (with an X-Ray line when tracing is active) per invocation.
PLATFORM_LOG_BYTES = 4 * (90 + LOG_EVENT_OVERHEAD)
ITEM_OVERHEAD = 100  # DynamoDB storage adds 100 bytes per item
# An item of its own for one write of reports: its key (MSG#<MsgId>, a sort key) and expiry.
OWN_ITEM_BASE = 60
XRAY_SAMPLED = 0.05  # beyond the 1-a-second reservoir, 5% of requests are traced


def _wru(size: int) -> int:
    return max(1, math.ceil(size / 1024))


def dynamodb_units(billed: list[dict[str, Any]], items: list[dict[str, Any]]) -> dict[str, Any]:
    """Units of the moto server's billed lines (``_capacity``), and the storage of the
    ``items`` (a scan of the table at the end) that these requests wrote."""
    wru: Counter[str] = Counter()
    rru: defaultdict[str, float] = defaultdict(float)
    report_writes: list[tuple[int, int]] = []  # (before, after) of each report write
    written: set[str] = set()
    for line in billed:
        who = f"{line['fn'] or 'poller'}:{line['op']}"
        if line["wru"]:
            wru[who] += line["wru"]
        if line["rru"]:
            rru[who] += line["rru"]
        if not line["err"]:
            written.update(key for key, _, after in line["writes"] if after)
            if line["op"] == "UpdateItem" and "push-receiver" in who:
                report_writes.extend((before, after) for _, before, after in line["writes"])
    # The table also holds other runs' items: storage counts the items this run wrote.
    mine = [(item, item_size(item)) for item in items if key_hash(item) in written]
    return {
        "wru": sum(wru.values()),
        "rru": sum(rru.values()),
        "wru_by_call": dict(wru.most_common()),
        "rru_by_call": dict(sorted(rru.items(), key=lambda kv: -kv[1])),
        "items": len(mine),
        "stored_bytes": sum(size + ITEM_OVERHEAD for _, size in mine),
        "items_by_kind": _kinds(mine),
        "report_writes": _report_writes(report_writes),
    }


def _report_writes(writes: list[tuple[int, int]]) -> dict[str, Any]:
    """The push receiver's report writes: what the MsgId's growing item makes them cost, and
    what the same writes would cost if each went to an item of its own (per MsgId and packet)."""
    if not writes:
        return {}
    billed = [_wru(max(before, after)) for before, after in writes]
    own_item = [_wru(after - before + OWN_ITEM_BASE) for before, after in writes]
    largest = max(after for _, after in writes)
    return {
        "writes": len(writes),
        "wru": sum(billed),
        "wru_per_write": round(sum(billed) / len(writes), 2),
        "wru_own_item": sum(own_item),
        "bytes_written": sum(after - before for before, after in writes),
        "largest_item_bytes": largest,
        "largest_write_wru": max(billed),
    }


def _kinds(items: list[tuple[dict[str, Any], int]]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for item, size in items:
        kind = item.get("kind", {}).get("S") or item.get("pk", {}).get("S", "?").split("#")[0].lower()
        entry = out.setdefault(kind, {"items": 0, "bytes": 0})
        entry["items"] += 1
        entry["bytes"] += size
    return out


def request_counts(records: list[dict[str, Any]]) -> dict[str, Any]:
    by_op: Counter[str] = Counter()
    attempts = 0
    sqs_requests = 0
    sqs_empty = 0
    events = 0
    secrets = 0
    for rec in records:
        op = f"{rec['svc']}.{rec['op']}"
        attempts += max(0, rec.get("try", 1) - 1)
        if rec["svc"] == "sqs":
            if rec["op"] == "ReceiveMessage" and not rec["r"].get("n"):
                sqs_empty += 1
                continue
            payload = sum(rec["p"].get("bytes", []) or rec["r"].get("bytes", []) or [0])
            sqs_requests += max(1, math.ceil(payload / 65536))
        elif rec["svc"] in ("events", "eventbridge") and rec["op"] == "PutEvents":
            events += sum(max(1, math.ceil(size / 65536)) for size in rec["p"].get("sizes", []))
        elif rec["svc"] == "secretsmanager":
            secrets += 1
        by_op[f"{rec['fn'] or 'SQS event source (poller)'} {op}"] += 1
    return {
        "by_call": dict(sorted(by_op.items())),
        "total": sum(by_op.values()),
        "retries": attempts,
        "sqs_billed_requests": sqs_requests,
        "sqs_empty_receives": sqs_empty,
        "events": events,
        "secret_calls": secrets,
    }


def model(counted: dict[str, Any], memory_mb: dict[str, int], retention_days: int) -> dict[str, Any]:
    """Requests per 1,000 recipients and dollars per million, by service."""
    recipients = counted["recipients"]
    records = counted["records"]
    counts = request_counts(records)
    units = dynamodb_units(counted["billed"], counted["items"])
    invocations: dict[str, int] = counted["invocations"]
    api_requests = sum(
        n for fn, n in invocations.items() if fn in ("SendApiFunction", "PushReceiverFunction")
    )
    lambda_requests = sum(invocations.values())
    gb_s = 0.0
    short_to_memory = {fn.removesuffix("Function"): mb for fn, mb in memory_mb.items()}
    for short, summary in counted["durations_ms"].items():
        gb_s += summary.get("sum", 0.0) / 1000 * short_to_memory.get(short, 256) / 1024
    log_bytes = sum(e["bytes"] + e["lines"] * LOG_EVENT_OVERHEAD for e in counted["log_output"].values())
    log_bytes += lambda_requests * PLATFORM_LOG_BYTES
    months = retention_days / 30.4
    per = 1_000_000 / recipients
    lines = {
        "API Gateway (REST)": {
            "count": api_requests,
            "unit": "requests",
            "usd": api_requests * PRICES["api_request"][0],
        },
        "Lambda requests": {
            "count": lambda_requests,
            "unit": "invocations",
            "usd": lambda_requests * PRICES["lambda_request"][0],
        },
        "Lambda compute": {"count": round(gb_s, 2), "unit": "GB-s", "usd": gb_s * PRICES["lambda_gb_s"][0]},
        "SQS": {
            "count": counts["sqs_billed_requests"],
            "unit": "requests",
            "usd": counts["sqs_billed_requests"] * PRICES["sqs_request"][0],
        },
        "DynamoDB writes": {
            "count": units["wru"],
            "unit": "WRU",
            "usd": units["wru"] * PRICES["dynamodb_wru"][0],
        },
        "DynamoDB reads": {
            "count": units["rru"],
            "unit": "RRU",
            "usd": units["rru"] * PRICES["dynamodb_rru"][0],
        },
        "DynamoDB storage + PITR": {
            "count": round(units["stored_bytes"] / 1e6, 2),
            "unit": f"MB kept {retention_days} days",
            "usd": units["stored_bytes"]
            / 1e9
            * months
            * (PRICES["dynamodb_gb_month"][0] + PRICES["pitr_gb_month"][0]),
        },
        "EventBridge": {
            "count": counts["events"],
            "unit": "events",
            "usd": counts["events"] * PRICES["event"][0],
        },
        "Secrets Manager": {
            "count": counts["secret_calls"],
            "unit": "calls",
            "usd": counts["secret_calls"] * PRICES["secret_call"][0],
        },
        "CloudWatch Logs": {
            "count": round(log_bytes / 1e6, 3),
            "unit": "MB ingested",
            "usd": log_bytes / 1e9 * (PRICES["log_gb"][0] + PRICES["log_gb_month"][0] * months),
        },
        "X-Ray (5% sampled)": {
            "count": round(lambda_requests * XRAY_SAMPLED, 1),
            "unit": "traces",
            "usd": lambda_requests * XRAY_SAMPLED * PRICES["xray_trace"][0],
        },
    }
    table = {
        name: {
            "count": line["count"],
            "unit": line["unit"],
            "per_1000_recipients": round(line["count"] * 1000 / recipients, 3),
            "usd_per_million": round(line["usd"] * per, 4),
        }
        for name, line in lines.items()
    }
    total = sum(line["usd_per_million"] for line in table.values())
    return {
        "recipients": recipients,
        "lines": table,
        "usd_per_million": round(total, 3),
        "budget_usd_per_million": BUDGET_PER_MILLION,
        "budget_met": total <= BUDGET_PER_MILLION,
        "aws_requests": counts,
        "aws_requests_per_1000": round(counts["total"] * 1000 / recipients, 1),
        "dynamodb": units,
        "wru_per_recipient": round(units["wru"] / recipients, 3),
        "prices": {key: text for key, (_, text) in PRICES.items()},
        "prices_region": PRICES_REGION,
        "prices_as_of": PRICES_AS_OF,
        "straightforward": straightforward_model(),
    }


def straightforward_model() -> dict[str, Any]:
    """What a straightforward design pays per million recipients (a model, for scale)."""
    per_recipient = {
        "DynamoDB: a recipient item written at intake, updated at submit and at its report (3 WRU)": 3
        * PRICES["dynamodb_wru"][0],
        "SQS: one message per recipient, sent, received and deleted (3 requests)": 3
        * PRICES["sqs_request"][0],
        "EventBridge: one event per delivery report": PRICES["event"][0],
        "Lambda: one worker invocation per 10 messages, one push invocation per report packet of 50": (
            0.1 + 0.02
        )
        * PRICES["lambda_request"][0],
        "API Gateway: one push request per packet of 50 reports": 0.02 * PRICES["api_request"][0],
    }
    total = sum(per_recipient.values()) * 1_000_000
    return {
        "usd_per_million": round(total, 2),
        "parts": {k: round(v * 1_000_000, 3) for k, v in per_recipient.items()},
    }


def what_if_own_items(model_: dict[str, Any]) -> dict[str, Any]:
    """The report writes if each went to an item of its own (one per MsgId and packet)
    instead of the MsgId's growing item: the same run's writes, each billed by the reports
    it adds alone, plus the link read the push receiver would then need. A model from the
    measured writes, not a measurement."""
    writes = model_["dynamodb"].get("report_writes") or {}
    if not writes:
        return {}
    now, alternative = writes["wru"], writes["wru_own_item"]
    link_reads = writes["writes"] * 0.5  # an eventually consistent read of a small item
    saved = (now - alternative) * PRICES["dynamodb_wru"][0] - link_reads * PRICES["dynamodb_rru"][0]
    usd = model_["usd_per_million"] - saved * 1_000_000 / model_["recipients"]
    average = writes["bytes_written"] / writes["writes"]
    return {
        "report_wru_now": now,
        "report_wru_own_items": alternative,
        "link_rru": link_reads,
        "usd_per_million": round(usd, 3),
        "text": (
            f"the push receiver's {writes['writes']:,} report writes added {average:,.0f} bytes of"
            f" reports each on average, yet cost {now:,} write units ({writes['wru_per_write']:g} a write):"
            " each is billed by its MsgId's whole item, which grows with every packet that brings reports"
            f" of it, up to {writes['largest_item_bytes'] / 1024:.1f} KB"
            f" ({writes['largest_write_wru']} units for one write). Written to an item of their own per"
            f" (MsgId, packet), the same writes would cost {alternative:,} units, plus a read of the MsgId's"
            f" link per write ({link_reads:,.0f} read units), and the total would be ${usd:.2f} per million"
            f" recipients instead of ${model_['usd_per_million']:.2f}. The price: first-report-wins would be"
            " decided when reading (the status API would query a MsgId's report items instead of reading one"
            " item), and a contradicting late report could be announced once more (consumers already drop"
            " duplicates by (provider_msg_id, to))."
        ),
    }
