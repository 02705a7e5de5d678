"""Why: 8. capacity for 10 million recipients a day is arithmetic no run can measure directly.

By the measured counts and the template's quotas.

Everything here is arithmetic on figures measured in the same run (requests and units per
recipient, items per push packet, CPU per invocation) and on the template's parameter
defaults, read from template.yaml. The per-call latencies are assumptions, stated.
"""

from __future__ import annotations

import math
from typing import Any

from bench import finding
from bench.costs import PRICES
from smsgw.adapters.throttle import MARGIN_SECONDS, SLACK_SECONDS
from smsgw_local.template import load_template

DAILY_RECIPIENTS = 10_000_000
PEAK_OVER_WINDOW = 2.0  # the busiest hour of the sending window carries twice its average
DYNAMODB_MS = 6.0  # assumed in-region DynamoDB latency per call (p50)
EVENTS_MS = 15.0  # assumed PutEvents latency
PROVIDER_MS = 30.0  # the provider's answer time, as the simulator was set
LAMBDA_CPU_FACTOR = 1769 / 256  # a 256 MB function has 256/1769 of a vCPU
REPORT_WRITE_THREADS = 8  # adapters.links.WRITE_THREADS
ON_DEMAND_INITIAL_WRU = 4_000  # a new on-demand table serves at least this (AWS documentation)
PARTITION_WRU = 1_000
SQS_INFLIGHT = 120_000
ACCOUNT_CONCURRENCY = 1_000


def parameters() -> dict[str, Any]:
    declared = load_template().get("Parameters", {})
    return {name: spec.get("Default") for name, spec in declared.items()}


def sending_hours(quiet: str | None) -> float:
    """Hours a day marketing may go out, from the QuietHours parameter (HH:MM-HH:MM)."""
    if not quiet or quiet == "off" or "-" not in quiet:
        return 24.0
    start, end = quiet.split("-")
    a = int(start[:2]) * 60 + int(start[3:])
    b = int(end[:2]) * 60 + int(end[3:])
    quiet_minutes = (b - a) % (24 * 60)
    return (24 * 60 - quiet_minutes) / 60


def plan(measured: dict[str, Any]) -> dict[str, Any]:
    """The quota arithmetic. ``measured`` holds the cost model, the counted run, CPU figures."""
    params = parameters()
    cost = measured["cost"]
    counted = measured["counted"]
    cpu = measured.get("cpu", {})
    hours = sending_hours(params.get("QuietHours"))
    average = DAILY_RECIPIENTS / (hours * 3600)
    peak = average * PEAK_OVER_WINDOW
    per_submit = 200
    submits_peak = peak / per_submit
    rate_limit = params.get("GuoduMaxSubmitsPerSecond")
    concurrency = int(params.get("SubmitMaxConcurrency") or 5)
    batch = int(params.get("SubmitBatchSize") or 5)

    worker_calls = sum(
        n
        for name, n in cost["aws_requests"]["by_call"].items()
        if "submit-worker" in name and "secretsmanager" not in name
    )
    calls_per_chunk = worker_calls / max(1, counted["submits"])
    worker_by_op = {
        name.split(" ", 1)[1]: round(n / max(1, counted["submits"]), 2)
        for name, n in cost["aws_requests"]["by_call"].items()
        if "submit-worker" in name and "secretsmanager" not in name
    }
    worker_cpu_ms = cpu.get("worker_batch", {}).get("cpu_ms_median", 20.0) / 5
    # The shared rate limiter: slots (1 + slack) / N apart, so a worker near the limit waits
    # half a slot's spacing on average (and none when the timeline is idle).
    limiter_ms = (1 + SLACK_SECONDS + MARGIN_SECONDS) / rate_limit / 2 * 1000 if rate_limit else 0.0
    chunk_ms = PROVIDER_MS + calls_per_chunk * DYNAMODB_MS + worker_cpu_ms * LAMBDA_CPU_FACTOR + limiter_ms
    per_instance = 1000 / chunk_ms * per_submit
    design_rate = per_instance * concurrency
    limited_rate = min(design_rate, float(rate_limit) * per_submit) if rate_limit else design_rate

    items_per_packet = counted.get("push_items_per_packet") or 250
    packets_peak = peak / items_per_packet
    push_calls = cost["aws_requests"]["by_call"]
    packets = max(1, counted.get("push_packets", 1))
    # One report write per MsgId (per 50 of its numbers), REPORT_WRITE_THREADS at a time.
    report_writes = (
        sum(n for k, n in push_calls.items() if "push-receiver dynamodb.UpdateItem" in k) / packets
    )
    push_reads = sum(n for k, n in push_calls.items() if "push-receiver dynamodb.GetItem" in k) / packets
    push_cpu = cpu.get("push_250_scattered", {}).get("cpu_ms_median", 100.0) * items_per_packet / 250
    push_ms = (
        DYNAMODB_MS  # the raw packet
        + math.ceil(report_writes / REPORT_WRITE_THREADS) * DYNAMODB_MS
        + push_reads * DYNAMODB_MS  # lookups one after another, if any
        + EVENTS_MS
        + push_cpu * LAMBDA_CPU_FACTOR
    )
    push_concurrency = packets_peak * push_ms / 1000

    wru_peak = peak * cost["wru_per_recipient"]
    stored_per_recipient = cost["dynamodb"]["stored_bytes"] / cost["recipients"]
    retention = int(params.get("RetentionDays") or 30)
    stored_gb = stored_per_recipient * DAILY_RECIPIENTS * retention / 1e9
    api_rate = params.get("ApiThrottleRate")
    api_quota = params.get("ApiQuotaPerDay")
    posts_bulk = DAILY_RECIPIENTS / 10_000
    monthly = cost["usd_per_million"] * DAILY_RECIPIENTS / 1e6 * 30.4
    marketing = PRICES["dynamodb_rru"][0] / 2 * DAILY_RECIPIENTS * 30.4
    metrics = sorted({m for e in counted.get("log_output", {}).values() for m in e.get("metrics", [])})
    return {
        "daily_recipients": DAILY_RECIPIENTS,
        "sending_hours": round(hours, 1),
        "average_per_s": round(average, 1),
        "peak_per_s": round(peak, 1),
        "submits_peak_per_s": round(submits_peak, 2),
        "rate_limit_submits_per_s": rate_limit,
        "calls_per_chunk": round(calls_per_chunk, 1),
        "worker_calls_per_chunk_by_op": worker_by_op,
        "chunk_ms_model": round(chunk_ms, 1),
        "limiter_wait_ms_model": round(limiter_ms, 1),
        "worker_instance_recipients_per_s": round(per_instance, 0),
        "worker_concurrency": concurrency,
        "worker_batch": batch,
        "worker_concurrency_needed": round(submits_peak * chunk_ms / 1000, 2),
        "design_recipients_per_s": round(design_rate, 0),
        "limited_recipients_per_s": round(limited_rate, 0),
        "push_items_per_packet": items_per_packet,
        "push_report_writes_per_packet": round(report_writes, 1),
        "push_packets_peak_per_s": round(packets_peak, 2),
        "push_ms_model": round(push_ms, 0),
        "push_concurrency_needed": round(push_concurrency, 2),
        "sqs_messages_per_day": math.ceil(DAILY_RECIPIENTS / per_submit),
        "sqs_inflight_peak": math.ceil(submits_peak * 60),
        "wru_peak_per_s": round(wru_peak, 0),
        "stored_gb": round(stored_gb, 1),
        "retention_days": retention,
        "api_throttle_rate": api_rate,
        "api_quota_per_day": api_quota,
        "posts_per_day_bulk": round(posts_bulk),
        "monthly_usd_variable": round(monthly, 2),
        "marketing_monthly_usd": round(marketing, 2),
        "metric_names": metrics,
        "params": params,
    }


def push_model(push: dict[str, Any], cpu: dict[str, Any]) -> dict[str, Any]:
    """A 250-report packet in Lambda (model): request rounds × assumed latency + CPU × factor."""
    out: dict[str, Any] = {}
    for shape, figures in (push.get("shapes") or {}).items():
        calls = figures["aws_requests_per_packet"]
        cpu_ms = cpu.get(f"push_250_{shape}", {}).get("cpu_ms_median")
        if cpu_ms is None:
            continue
        ms = (
            DYNAMODB_MS * calls.get("dynamodb.PutItem", 1)  # the raw packet
            + math.ceil(calls.get("dynamodb.UpdateItem", 0) / REPORT_WRITE_THREADS) * DYNAMODB_MS
            + calls.get("dynamodb.GetItem", 0) * DYNAMODB_MS
            + EVENTS_MS * calls.get("events.PutEvents", 1)
            + cpu_ms * LAMBDA_CPU_FACTOR
        )
        out[shape] = {"ms": round(ms), "reports_per_s": round(250 / ms * 1000)}
    base_cpu = cpu.get("push_250_one_write_per_report", {}).get("cpu_ms_median")
    if base_cpu is not None:
        ms = math.ceil(250 / REPORT_WRITE_THREADS) * DYNAMODB_MS + base_cpu * LAMBDA_CPU_FACTOR
        out["one_write_per_report"] = {"ms": round(ms), "reports_per_s": round(250 / ms * 1000)}
    return out


def _p(value: Any) -> str:
    return "—" if value is None else f"{value:,}" if isinstance(value, int | float) else str(value)


def _row(*cells: Any) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _quotas(cap: dict[str, Any], params: dict[str, Any]) -> list[str]:
    per_day = cap["posts_per_day_bulk"]
    return [
        _row("quota", "need at peak", "default limit", "template parameter"),
        "|---|---:|---:|---|",
        _row(
            "provider submits/s (bulk, 200 a submit)",
            cap["submits_peak_per_s"],
            _p(cap["rate_limit_submits_per_s"]),
            "`GuoduMaxSubmitsPerSecond` (ask Guodu for the account's figure)",
        ),
        _row(
            "submit worker concurrency",
            cap["worker_concurrency_needed"],
            cap["worker_concurrency"],
            f"`SubmitMaxConcurrency`, `SubmitBatchSize` ({cap['worker_batch']})",
        ),
        _row(
            "push receiver concurrency",
            cap["push_concurrency_needed"],
            f"the account's pool ({ACCOUNT_CONCURRENCY:,} by default; new accounts may start lower)",
            "none: the platform's push rate drives it",
        ),
        _row(
            "SQS messages in flight",
            f"{cap['sqs_inflight_peak']:,} (a minute's chunks)",
            f"{SQS_INFLIGHT:,} per standard queue",
            "`SubmitMaxConcurrency`",
        ),
        _row(
            "DynamoDB write units/s (table)",
            f"{cap['wru_peak_per_s']:,.0f}",
            f"{ON_DEMAND_INITIAL_WRU:,} on a new on-demand table, more as it warms",
            "none (on-demand)",
        ),
        _row(
            "DynamoDB write units/s (one partition)",
            f"≤ {_p(cap['rate_limit_submits_per_s'])} chunk updates/s of one request",
            f"{PARTITION_WRU:,}",
            "`GuoduMaxSubmitsPerSecond` bounds it",
        ),
        _row(
            "API requests/s per key",
            f"bulk: {per_day:,} POSTs a day",
            f"{_p(cap['api_throttle_rate'])} (burst {_p(params.get('ApiThrottleBurst'))})",
            "`ApiThrottleRate`, `ApiThrottleBurst`",
        ),
        _row(
            "API requests per key per day",
            f"bulk: {per_day:,}; one recipient a POST: {DAILY_RECIPIENTS:,}",
            _p(cap["api_quota_per_day"]),
            "`ApiQuotaPerDay` (raise it for one-recipient-per-request clients)",
        ),
        _row(
            "recipients per POST", "—", _p(params.get("MaxRecipientsPerRequest")), "`MaxRecipientsPerRequest`"
        ),
        _row(
            "storage kept",
            f"{cap['stored_gb']} GB ({cap['retention_days']} days)",
            "none",
            "`RetentionDays`, `RawPacketRetentionDays`",
        ),
    ]


def _arithmetic(cost: dict[str, Any], cap: dict[str, Any]) -> list[str]:
    limit = (
        f"the provider limit caps that at {cap['limited_recipients_per_s']:,.0f}/s."
        if cap["rate_limit_submits_per_s"]
        else "no provider limit is set."
    )
    calls, chunk_ms, cpu_x = cap["calls_per_chunk"], cap["chunk_ms_model"], LAMBDA_CPU_FACTOR
    instance, design = cap["worker_instance_recipients_per_s"], cap["design_recipients_per_s"]
    items, push_ms, packets = (
        cap["push_items_per_packet"],
        cap["push_ms_model"],
        cap["push_packets_peak_per_s"],
    )
    writes = cap.get("push_report_writes_per_packet", "?")
    by_op = ", ".join(
        f"{op} {n:g}" for op, n in (cap.get("worker_calls_per_chunk_by_op") or {}).items() if n >= 0.01
    )
    report = cost.get("dynamodb", {}).get("report_writes") or {}
    report_note = (
        f"{report['wru_per_write']:g} units a write on average, the item reaching"
        f" {report['largest_item_bytes'] / 1024:.1f} KB"
        if report
        else "not measured in this run"
    )
    total_wru = cost.get("dynamodb", {}).get("wru") or 0
    share = f"{report['wru'] / total_wru:.0%}" if report and total_wru else "Some"
    return [
        "The arithmetic:",
        "",
        f"- **Worker** (model): a chunk takes the provider's answer ({PROVIDER_MS:g} ms, *assumed*, as the",
        f"  simulator was set) + {calls} AWS calls one after another × {DYNAMODB_MS:g} ms (*assumed*;",
        f"  measured per chunk: {by_op}: the claim, which counts the attempt on the chunk, the",
        "  rate limiter's reservation, the transaction that records the submit and the MsgId's link,",
        "  the request's settled count, a read of the MsgId's item for reports that beat the answer,",
        "  the lane-pause read, at most once a second per instance, and the request's submitted event",
        "  once its last chunk settles)",
        f"  + the measured CPU × {cpu_x:.1f} (a 256 MB function has 256/1769 of a vCPU)",
        f"  + {cap.get('limiter_wait_ms_model', 0):g} ms on average for the rate limiter (slots are"
        f" (1 + {SLACK_SECONDS:g} + {MARGIN_SECONDS:g}) / N s apart,",
        "  so a worker near the limit waits half a slot's spacing on average)",
        f"  ≈ {chunk_ms} ms, so one instance submits about {instance:,.0f}",
        f"  recipients/s and {cap['worker_concurrency']} instances {design:,.0f}/s; {limit}",
        "  Personalised sends with distinct contents use one submit per content: at one recipient a",
        "  submit the provider limit, not Lambda, bounds them.",
        f"- **Push receiver** (model): packets of {items} reports (as measured), one raw put,",
        f"  {writes} report writes (one per MsgId in the packet, per 50 of its numbers, as measured),",
        f"  {REPORT_WRITE_THREADS} at a time, one PutEvents, and the CPU: ≈ {push_ms:.0f} ms a packet;",
        f"  at {packets} packets/s that is {cap['push_concurrency_needed']} concurrent executions",
        "  (Little's law).",
        f"- **DynamoDB**: {cost['wru_per_recipient']} write units per recipient × {cap['peak_per_s']:,}",
        f"  recipients/s ≈ {cap['wru_peak_per_s']:,.0f} units/s. {share} of it is the report writes, each",
        f"  billed by its MsgId's whole item ({report_note}). The per-recipient figure depends on how",
        "  the platform spreads a MsgId's reports over packets: the fewer reports per write, the more",
        "  writes of a large item. The hottest keys: a request's partition (its chunks and header,",
        "  updated as chunks settle, at most as fast as the provider limit allows), the rate",
        "  limiter's one-second items (one write per submit) and a MsgId's item (one write per packet",
        f"  holding its reports, up to {report.get('largest_write_wru', '?')} units each). None comes near"
        f" {PARTITION_WRU:,} units/s",
        "  per partition at this volume.",
        "- **SQS**: one message per chunk of 200; standard queues have no practical throughput limit.",
        "- **API Gateway**: the stage's method throttle in the template is 1,000 requests/s (burst",
        "  2,000, not a parameter); the push route has no API key, so only that and the account's",
        "  10,000 requests/s apply to it.",
        "",
    ]


def _levers(cost: dict[str, Any], params: dict[str, Any]) -> list[str]:
    """Template parameters (and one thing that is not one) that move the cost per million."""
    wru, rru = PRICES["dynamodb_wru"][0] * 1e6, PRICES["dynamodb_rru"][0] * 1e6
    caps = ", ".join(
        f"`{name}` (`{params.get(name) or 'none'}`)"
        for name in ("FrequencyCapsVerification", "FrequencyCapsTransactional", "FrequencyCapsMarketing")
    )
    storage = cost["lines"].get("DynamoDB storage + PITR", {}).get("usd_per_million", 0)
    report = cost.get("dynamodb", {}).get("report_writes") or {}
    return [
        "## What changes the cost",
        "",
        "The run above is a transactional bulk send (no caps, no opt-out check). *Model* figures from",
        "the code and the same prices:",
        "",
        f"- **Frequency caps**, per category: {caps}. A capped category pays one conditional write",
        f"  per number for its counters (one small item per number and day): +1 write unit, +${wru:.3f} per",
        "  million recipients. Verification codes are capped by default; bulk sends are not.",
        "- **Marketing** checks every number against the opt-out list (a batched, eventually consistent",
        f"  read per number): +0.5 read units, +${rru / 2:.4f} per million; and waits out `QuietHours`.",
        f"- **`RetentionDays`** (`{params.get('RetentionDays')}`) and **`RawPacketRetentionDays`**"
        f" (`{params.get('RawPacketRetentionDays')}`): the storage line",
        f"  (${storage:.4f} per million at the defaults) scales with them.",
        f"- **`GuoduMaxSubmitsPerSecond`** (`{params.get('GuoduMaxSubmitsPerSecond')}`): the shared"
        " rate limit costs a small write per submit",
        "  (1/200 of a write unit per recipient); 0 turns it off.",
        "- **How the platform spreads reports over packets** (no parameter): every packet holding reports",
        "  of a MsgId costs one write billed by that MsgId's whole item"
        + (
            f" ({report['wru_per_write']:g} units a write in this run, the item reaching"
            f" {report['largest_item_bytes'] / 1024:.1f} KB)"
            if report
            else ""
        )
        + ", so",
        "  scattered reports cost more than grouped ones (section 3 of benchmarks.md has both).",
        "",
    ]


def markdown(measured: dict[str, Any], cap: dict[str, Any]) -> str:
    cost = measured["cost"]
    params = cap["params"]
    metrics = len(cap["metric_names"])
    lines = [
        "# Capacity and cost model",
        "",
        "Generated by `make bench` together with [benchmarks.md](benchmarks.md), from the figures",
        f"measured in that run ({measured['generated']}, {measured['mode']} mode) and the defaults of",
        "`template.yaml`. Latencies marked *assumed* are not measured here; everything else is.",
        "",
        "## Cost per million recipients",
        "",
        f"Bulk sends with delivery tracking, {cost['recipients']:,} recipients counted end to end on the",
        "local stack (reports arriving scattered, as a busy platform sends them), at",
        f"{cost['prices_region']} list prices ({cost['prices_as_of']}). China regions (cn-north-1,",
        "cn-northwest-1) are billed in CNY by their local operators at other prices, not stated here:",
        "see amazonaws.cn's pricing pages.",
        "",
        _row("service", "count in run", "per 1,000 recipients", "USD per million recipients"),
        "|---|---:|---:|---:|",
    ]
    for name, line in cost["lines"].items():
        lines.append(
            _row(
                name,
                f"{_p(line['count'])} {line['unit']}",
                f"{line['per_1000_recipients']:,}",
                f"{line['usd_per_million']:.4f}",
            )
        )
    straightforward = cost["straightforward"]["usd_per_million"]
    lines += [
        _row("**total**", "", "", f"**{cost['usd_per_million']:.3f}**"),
        "",
        f"Budget: at most ${cost['budget_usd_per_million']:.2f}. A straightforward design (one item, one",
        f"queue message and one event per recipient) costs about ${straightforward:.2f} at the same prices:",
        "",
    ]
    lines += [f"- {part}: ${usd:.3f}" for part, usd in cost["straightforward"]["parts"].items()]
    lines += [
        "",
        "How the units are counted: the moto server bills each DynamoDB request from its own item",
        "sizes (`Item.size()`), a write by the larger of its item before and after it (twice inside a",
        "transaction; a failed conditional write too), one write at a time so that the sizes are its",
        "own; a read by what it read (per 4 KB, half when eventually consistent); SQS requests per",
        "64 KB, empty long-poll receives left out (an idle cost,",
        "below); EventBridge events per 64 KB entry; Lambda GB-seconds from the local runtime's REPORT",
        "durations (on two shared cores, with moto as the database: an upper bound); CloudWatch",
        "Logs from the handlers' own output plus Lambda's START/END/REPORT lines.",
        "",
        "## Fixed monthly costs (independent of volume)",
        "",
        _row("what", "USD a month"),
        "|---|---:|",
        _row("Secrets Manager: 2 secrets", "0.80"),
        _row("KMS: the gateway's customer managed key", "1.00"),
        _row(f"CloudWatch custom metrics: {metrics} seen in the run × $0.30", f"{metrics * 0.30:.2f}"),
        _row("CloudWatch alarms (8) and the dashboard", "about 4"),
        _row(
            "X-Ray: the 1-a-second sampling reservoir, beyond 100,000 free traces",
            "about 12.5 at steady traffic",
        ),
        _row("SQS: the event source's long polls of an idle queue (5 pollers, 20 s polls)", "about 0.26"),
        "",
        *_levers(cost, params),
        *finding.markdown_lines(int(params.get("RetentionDays", 30))),
        "## 10 million recipients a day",
        "",
        f"Marketing waits out the quiet hours (`QuietHours` = `{params.get('QuietHours')}`), so the day's",
        f"volume goes out in {cap['sending_hours']} hours: {cap['average_per_s']:,} recipients/s on average;",
        f"sized here for a peak hour at {PEAK_OVER_WINDOW:g}× that, **{cap['peak_per_s']:,} recipients/s**.",
        f"At the measured cost that is about **${cap['monthly_usd_variable']:,.0f} a month** in variable",
        "AWS charges, plus the fixed costs above; if it is all marketing, its opt-out reads add about",
        f"${cap['marketing_monthly_usd']:,.0f} a month (above).",
        "",
        *_quotas(cap, params),
        "",
        *_arithmetic(cost, cap),
    ]
    return "\n".join(lines)
