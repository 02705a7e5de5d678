"""Why: 11. lanes are judged under a real backlog, which only the local stack can build.

Lanes in the local stack (section 11): how long a one-time code waits behind a bulk
backlog, and what bulk gets of the provider limit meanwhile; and what a single-recipient
send costs (section 3, priced as the bulk figure is).

The codes are sent one after another while the backlog is worked off, each to a number of
its own (the verification caps allow one code a minute per number). A code's wait is
from its ``202`` (the moment the API answered) to the moment the simulator received its
submit, by the same clock (one machine). Bulk's share is the bulk submits the simulator
received from the first to the last of them, a second, over the limit.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from bench.localrun import WORKER, StackRun, busiest_window, mobiles, rate_limit_use
from smsgw.adapters.throttle import MARGIN_SECONDS, SLACK_SECONDS

CODE = "【示例】您的验证码是{n:06d}，5分钟内有效。"
BULK = "【示例】您本月的账单已出，请登录查看。"


def _received(record: Any) -> float:
    return datetime.fromisoformat(record.received_at).timestamp()


def _percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def codes_under_backlog(
    run: StackRun,
    *,
    backlog: int,
    per_post: int,
    codes: int,
    interval: float,
    log: Callable[[str], None],
) -> dict[str, Any]:
    """POST ``backlog`` transactional recipients, then, once bulk is under way, ``codes``
    verification codes ``interval`` seconds apart; time each code from 202 to the provider."""
    sim = run.sim
    base = len(sim.accepted)
    numbers = mobiles(backlog, "170")
    chunks = sum(math.ceil(len(numbers[i : i + per_post]) / 200) for i in range(0, backlog, per_post))
    limit = int(run.provisioned.context.parameters.get("GuoduMaxSubmitsPerSecond") or 0)
    window = run.open_window()
    # The whole backlog is queued before the first submit (the workers' event sources are
    # off while it is POSTed): on this host intake and workers would share the one moto
    # process, and bulk's share would measure that, not the limiter (intake is section 9).
    run.stack.disable_event_source(WORKER)
    began = time.perf_counter()
    for start in range(0, backlog, per_post):
        run.post({"to": numbers[start : start + per_post], "content": BULK, "reference": "bench-backlog"})
    posted_s = time.perf_counter() - began
    run.stack.enable_event_source(WORKER)
    started = min(20, chunks // 2)
    run.wait(lambda: len(sim.accepted) - base >= started, 300, "bulk to be under way")
    queued_behind = backlog - 200 * (len(sim.accepted) - base)  # waiting when the first code came
    code_numbers = mobiles(codes, "171")
    answered: dict[str, float] = {}
    for n, mobile in enumerate(code_numbers):
        run.post({"to": [mobile], "content": CODE.format(n=n), "category": "verification"})
        answered[mobile] = time.time()
        time.sleep(interval)
    run.wait(
        lambda: len(sim.accepted) - base >= chunks + codes, 1800, "the backlog and the codes to be submitted"
    )
    run.close_window(window)
    records = sim.accepted[base:]
    use = rate_limit_use(run.records(window), records, limit)
    waits = {r.mobiles[0]: _received(r) - answered[r.mobiles[0]] for r in records if r.mobiles[0] in answered}
    bulk = sorted(_received(r) for r in records if r.mobiles[0] not in answered)
    code_moments = sorted(_received(r) for r in records if r.mobiles[0] in answered)
    span = bulk[-1] - bulk[0] if len(bulk) > 1 else 0.0
    bulk_rate = (len(bulk) - 1) / span if span else 0.0
    # While codes went too (between the first and the last code): bulk's rate, and every
    # submit's; the limit left to bulk is what the codes did not take.
    during = [t for t in bulk if code_moments and code_moments[0] <= t <= code_moments[-1]]
    during_span = code_moments[-1] - code_moments[0] if len(code_moments) > 1 else 0.0
    # Bulk alone: from its first submit to the first code, and from the last code to its end.
    alone = [t for t in bulk if not code_moments or t < code_moments[0] or t > code_moments[-1]]
    alone_span = span - during_span
    used = (len(bulk) + len(code_moments) - 1) / span if span else 0.0
    everything = bulk + code_moments
    values = list(waits.values())
    result: dict[str, Any] = {
        "backlog_recipients": backlog,
        "backlog_submits": chunks,
        "per_post": per_post,
        "posted_s": round(posted_s, 2),
        "codes": len(values),
        "code_interval_s": interval,
        "recipients_queued_before_first_code": queued_behind,
        "code_wait_ms": {
            "median": round(_percentile(values, 0.5) * 1000),
            "p99": round(_percentile(values, 0.99) * 1000),
            "max": round(max(values) * 1000),
            "min": round(min(values) * 1000),
        },
        "code_waits": [
            (round(answered[m] - answered[code_numbers[0]], 2), round(w * 1000)) for m, w in waits.items()
        ],
        "limit_submits_per_s": limit,
        "bulk_submits_per_s": round(bulk_rate, 2),
        "bulk_share_of_limit": round(bulk_rate / limit, 3) if limit else None,
        "limit_used_share": round(used / limit, 3) if limit else None,
        "ceiling_share": round(1 / (1 + SLACK_SECONDS + MARGIN_SECONDS), 3),
        "bulk_alone_submits_per_s": round(len(alone) / alone_span, 2) if alone_span > 5 else None,
        "bulk_submits_per_s_during_codes": round(len(during) / during_span, 2) if during_span else None,
        "all_submits_per_s_during_codes": (
            round((len(during) + len(code_moments)) / during_span, 2) if during_span else None
        ),
        "busiest_window": busiest_window(everything),
        "slots_missed": use["given_up"],
        "slack_ms": round(SLACK_SECONDS * 1000),
        "limiter_writes": use["reservations"],
        "limiter_refused": use["refused"],
        "bulk_span_s": round(span, 2),
        "bulk_per_second": _per_second(bulk, bulk[0] if bulk else 0.0),
        "codes_at_s": [round(t - (bulk[0] if bulk else 0.0), 2) for t in code_moments],
        "simulator_latency_ms": sim.config.latency_ms,
    }
    log(
        f"codes under a {backlog:,}-recipient backlog: median {result['code_wait_ms']['median']} ms, p99"
        f" {result['code_wait_ms']['p99']} ms; bulk {bulk_rate:.1f}/s of {limit}"
    )
    return result


def _per_second(moments: list[float], origin: float) -> list[int]:
    counts: dict[int, int] = {}
    for moment in moments:
        counts[int(moment - origin)] = counts.get(int(moment - origin), 0) + 1
    return [counts.get(second, 0) for second in range(max(counts, default=-1) + 1)]


def single_sends(
    run: StackRun,
    *,
    sends: int,
    category: str,
    prefix: str,
    push: dict[str, Any],
    log: Callable[[str], None],
) -> dict[str, Any]:
    """``sends`` requests of one recipient each, end to end with their reports, every AWS
    request inside counted: what ``bench.costs.model`` prices (as ``localrun.counted_run``)."""
    run.sim.configure({"push": {"url": run.stack.push_url, **push}})
    run.wait(lambda: run.sim.pending_pushes() == 0, 120, "earlier pushes to drain")
    base = len(run.sim.accepted)
    window = run.open_window()
    began = time.perf_counter()
    numbers = mobiles(sends, prefix)
    lock = threading.Lock()
    ids: list[str] = []

    def post(part: list[str]) -> None:
        for n, mobile in enumerate(part):
            request_id = run.post(
                {"to": [mobile], "content": CODE.format(n=n), "category": category, "reference": f"bench-{n}"}
            )
            with lock:
                ids.append(request_id)

    # Four callers at once, as services calling the API would.
    threads = [threading.Thread(target=post, args=(numbers[k::4],)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    run.wait(lambda: len(run.sim.accepted) - base >= sends, 900, "every send to reach the provider")
    run.wait(lambda: run.sim.pending_pushes() == 0, 600, "every report to be pushed")
    run.wait(run.worker_idle, 120, "the submit workers to finish")
    time.sleep(1.0)
    run.wait(run.worker_idle, 120, "the submit workers to finish")
    run.close_window(window)
    elapsed = time.perf_counter() - began
    log(f"{sends} single-recipient {category} sends end to end in {elapsed:.1f} s")
    return {
        "recipients": sends,
        "requests": len(ids),
        "category": category,
        "submits": len(run.sim.accepted) - base,
        "elapsed_s": round(elapsed, 1),
        "invocations": window.invocations,
        "durations_ms": {
            fn: {"sum": round(sum(values), 1), "n": len(values)}
            for fn, values in run.durations(window).items()
        },
        "log_output": run.log_lines(window),
        "records": run.records(window),
        "billed": run.billed(window),
        "items": run.table_items(),
    }
