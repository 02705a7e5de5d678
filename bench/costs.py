"""3. AWS requests per 1,000 recipients and the cost per million recipients, at list prices.

Counts come from the recorded botocore calls of a full local run (``bench.localrun``).
DynamoDB on-demand bills capacity units, not requests: a write costs one unit per KB of
the item (for an update, the larger of the item before and after; twice that inside a
transaction), a read one unit per 4 KB (half for an eventually consistent read). Moto
does not report consumed capacity, so units are estimated from item sizes computed the
way DynamoDB counts them: a put's size from its request, an update's from the item as
it stands at the end of the run (items only grow here, so this is an upper bound), a
read's from what it returned.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from typing import Any

from bench.hook._awsrecorder import item_size, key_text

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
STRAIGHTFORWARD = (4.0, 7.0)
LOG_EVENT_OVERHEAD = 26  # CloudWatch counts 26 bytes per log event on top of the message
# START, END and REPORT (with an X-Ray line when tracing is active) per invocation.
PLATFORM_LOG_BYTES = 4 * (90 + LOG_EVENT_OVERHEAD)
ITEM_OVERHEAD = 100  # DynamoDB storage adds 100 bytes per item
XRAY_SAMPLED = 0.05  # beyond the 1-a-second reservoir, 5% of requests are traced


def _wru(size: int) -> int:
    return max(1, math.ceil(size / 1024))


def _rru(size: int, consistent: bool) -> float:
    units = max(1, math.ceil(size / 4096))
    return units if consistent else units / 2


def dynamodb_units(records: list[dict[str, Any]], items: list[dict[str, Any]]) -> dict[str, Any]:
    final = {key_text(item): item_size(item) for item in items}
    wru: Counter[str] = Counter()
    rru: defaultdict[str, float] = defaultdict(float)
    for rec in records:
        if rec["svc"] != "dynamodb":
            continue
        op, p, r = rec["op"], rec["p"], rec["r"]
        who = f"{rec['fn'] or 'poller'}:{op}"
        if op == "PutItem":
            wru[who] += _wru(p.get("size", 0))
        elif op == "BatchWriteItem":
            for write in p.get("writes", []):
                wru[who] += _wru(final.get(write["key"], 0) if write.get("del") else write.get("size", 0))
        elif op in ("UpdateItem", "DeleteItem"):
            wru[who] += _wru(max(r.get("attr_size", 0), final.get(p.get("key", ""), 0)))
        elif op == "TransactWriteItems":
            for entry in p.get("items", []):
                size = entry.get("size") or final.get(entry.get("key", ""), 0)
                wru[who] += 2 * _wru(size)
        elif op == "GetItem":
            rru[who] += _rru(r.get("size", 0), p.get("consistent", False))
        elif op == "BatchGetItem":
            sizes = r.get("sizes", [])
            rru[who] += sum(_rru(s, p.get("consistent", False)) for s in sizes)
            rru[who] += max(0, p.get("keys", 0) - len(sizes)) * _rru(0, p.get("consistent", False))
        elif op in ("Query", "Scan"):
            rru[who] += _rru(sum(r.get("sizes", [])), p.get("consistent", False))
    # The table also holds other runs' items: storage counts the items this run wrote.
    written = _written_keys(records)
    mine = [item for item in items if key_text(item) in written]
    stored = sum(item_size(item) + ITEM_OVERHEAD for item in mine)
    return {
        "wru": sum(wru.values()),
        "rru": sum(rru.values()),
        "wru_by_call": dict(wru.most_common()),
        "rru_by_call": dict(sorted(rru.items(), key=lambda kv: -kv[1])),
        "items": len(mine),
        "stored_bytes": stored,
        "items_by_kind": _kinds(mine),
    }


def _written_keys(records: list[dict[str, Any]]) -> set[str]:
    keys: set[str] = set()
    for rec in records:
        if rec["svc"] != "dynamodb":
            continue
        p = rec["p"]
        if p.get("key") and rec["op"] in ("PutItem", "UpdateItem"):
            keys.add(p["key"])
        keys.update(w["key"] for w in p.get("writes", []) if not w.get("del"))
        keys.update(e["key"] for e in p.get("items", []) if e.get("kind") in ("Put", "Update"))
    return keys


def _kinds(items: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for item in items:
        kind = item.get("kind", {}).get("S") or item.get("pk", {}).get("S", "?").split("#")[0].lower()
        entry = out.setdefault(kind, {"items": 0, "bytes": 0})
        entry["items"] += 1
        entry["bytes"] += item_size(item)
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
    units = dynamodb_units(records, counted["items"])
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


REPORT_VALUE_BYTES = 60  # one stored report: a mobile as the attribute name, status|time|stored|msg


def what_if_per_packet(model_: dict[str, Any], counted: dict[str, Any]) -> dict[str, Any]:
    """The report writes if a packet's reports were stored one item per (MsgId, packet), with the
    MsgId's counters in the same write, instead of one item per (MsgId, bucket) plus a counter
    update per MsgId. A model from the same run's packets, not a measurement."""
    current = sum(
        n for call, n in model_["dynamodb"]["wru_by_call"].items() if "push-receiver:UpdateItem" in call
    )
    alternative = 0
    for items, msg_ids in counted.get("push_per_packet", []):
        per_msg = items / max(1, msg_ids)
        alternative += msg_ids * max(1, math.ceil(per_msg * REPORT_VALUE_BYTES / 1024))
    saved = max(0, current - alternative)
    usd = model_["usd_per_million"] - saved * PRICES["dynamodb_wru"][0] * 1_000_000 / model_["recipients"]
    return {
        "report_wru_now": current,
        "report_wru_per_packet_item": alternative,
        "usd_per_million": round(usd, 3),
        "text": (
            f"the reports' writes cost {current:,} write units in this run. Stored as one item per"
            " (MsgId, packet) holding that packet's reports of the MsgId and its counters, they would"
            f" cost about {alternative:,}, and the total ${usd:.2f} per million recipients instead of"
            f" ${model_['usd_per_million']:.2f}. The price:"
            " first-report-wins would be decided when reading (the status API already reads all of a MsgId's"
            " report items), and a contradicting late report could be announced once more (consumers already"
            " drop duplicates by (provider_msg_id, to))."
        ),
    }
