"""Why: the report opens with each measurement against its budget, and why a budget is missed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Row = dict[str, Any]


def _verdict(met: bool, missed: str = "missed") -> str:
    return "**met**" if met else f"**{missed}**"


def _short(name: str) -> str:
    return name.removesuffix("Function")


def coldstart(r: dict[str, Any]) -> Row | None:
    c = r.get("coldstart") or {}
    if not c:
        return None
    budget = c["budget_ms"]
    handlers = c["handlers"]
    cpu = {n: h["venv"]["cpu_median_ms"] for n, h in handlers.items()}
    wall = {n: h["venv"]["median_ms"] for n, h in handlers.items()}
    shipped = {n: h["shipped"]["cpu_median_ms"] for n, h in handlers.items() if "shipped" in h}
    bare = [h["no_bytecode"]["cpu_median_ms"] for h in handlers.values() if "no_bytecode" in h]
    missed = {n: v for n, v in cpu.items() if v > budget}
    why = ""
    if missed:
        worst = max(missed, key=lambda n: missed[n])
        over = missed[worst] - budget
        top = [row for row in c["breakdown"].get(worst, []) if not row["what"].startswith("(")][:3]
        why = (
            f"{len(missed)} of {len(cpu)} handlers are over, the worst ({_short(worst)}) by {over:.0f} ms "
            f"({over / budget * 100:.0f}%). Its biggest parts: "
            + ", ".join(f"{row['what']} {row['ms']:.0f} ms" for row in top)
            + ". Importing boto3 and making the first client take most of the budget by themselves."
        )
    else:
        why = f"every handler within {budget:.0f} ms CPU in the runtime venv."
    if shipped:
        over_shipped = [n for n, v in shipped.items() if v > budget]
        why += (
            f" As `sam build` ships it (the layer's bytecode compiled ahead of time) the imports take"
            f" {min(shipped.values()):.0f}–{max(shipped.values()):.0f} ms CPU"
            + (
                f", {len(over_shipped)} of {len(shipped)} over the budget"
                if over_shipped
                else ", every handler within the budget"
            )
            + (
                f"; without that bytecode (the default python builder) {min(bare):.0f}–{max(bare):.0f} ms."
                if bare
                else "."
            )
        )
    ratios = {n: h["ratio"] for n, h in handlers.items() if "ratio" in h}
    ratio_budget = c.get("ratio_budget", 0.7)
    over_ratio = [n for n, r in ratios.items() if r > ratio_budget]
    if ratios:
        yardstick = c["baseline"]["venv"]["cpu_median_ms"]
        why += (
            f" Against the yardstick of the same run ({yardstick:.0f} ms CPU) the handlers take"
            f" {min(ratios.values()):.2f}–{max(ratios.values()):.2f}×"
            + (
                f"; over {ratio_budget:.2f}×: {', '.join(_short(n) for n in over_ratio)}."
                if over_ratio
                else f", every one within {ratio_budget:.2f}×."
            )
        )
    return {
        "n": 1,
        "what": "cold start (import + init)",
        "measured": ", ".join(
            f"{_short(n)} {v:.0f} ms CPU ({wall[n]:.0f} wall"
            + (f", {ratios[n]:.2f}×" if n in ratios else "")
            + ")"
            for n, v in cpu.items()
        ),
        "budget": f"≤ {budget:.0f} ms each"
        + (f"; ≤ {ratio_budget:.2f}× a Powertools REST handler with Tracer" if ratios else ""),
        "verdict": _verdict(not missed and not over_ratio),
        "why": why,
    }


def provider_calls(r: dict[str, Any]) -> Row | None:
    p = r.get("provider_calls") or {}
    if not p:
        return None
    bulk, pers = p["bulk"], p.get("personalised", {})
    ok = bulk["submits_per_1000"] <= 5 and pers.get("submits") == pers.get("protocol_minimum")
    return {
        "n": 2,
        "what": "provider calls per 1,000 recipients",
        "measured": f"bulk {bulk['submits_per_1000']:g}; personalised, {pers.get('contents')} contents: "
        f"{pers.get('submits')} submits for {pers.get('messages', 0):,} "
        f"(minimum {pers.get('protocol_minimum')})",
        "budget": "5 (the protocol minimum)",
        "verdict": _verdict(ok),
    }


def cost(r: dict[str, Any]) -> Row | None:
    costs = r.get("cost") or {}
    s, g = costs.get("scattered"), costs.get("grouped", {})
    if not s:
        return None
    budget = s["budget_usd_per_million"]
    usd = s["usd_per_million"]
    top = sorted(s["lines"].items(), key=lambda kv: -kv[1]["usd_per_million"])[:2]
    shape = f"{s['push_items_per_packet']:g} reports of {s['push_msg_ids_per_packet']:g} MsgIds a packet"
    largest = ", ".join(f"{k} ${v['usd_per_million']:.3f}" for k, v in top)
    if s["budget_met"]:
        why = (
            f"met with ${budget - usd:.3f} to spare ({(budget - usd) / budget * 100:.0f}%) when reports"
            f" arrive scattered ({shape}); the largest parts: {largest}."
        )
    else:
        why = (
            f"over by ${usd - budget:.3f} ({(usd - budget) / budget * 100:.0f}%) when reports arrive"
            f" scattered ({shape}): {largest}."
        )
    writes = s.get("dynamodb", {}).get("report_writes") or {}
    if writes:
        why += (
            f" The push receiver writes once per MsgId a packet (per 50 of its numbers), on the MsgId's own"
            f" item, but each write is billed by that whole item, which grows with every packet up to"
            f" {writes['largest_item_bytes'] / 1024:.1f} KB: {writes['wru_per_write']:g} write units a write,"
            f" {writes['wru'] / s['recipients']:.2f} per recipient ({s['wru_per_recipient']} in all); with"
            f" grouped reports the same code costs ${g.get('usd_per_million', 0):.2f}."
        )
    secrets = s["lines"].get("Secrets Manager", {})
    api = s["lines"].get("API Gateway (REST)", {}).get("count", 0)
    if api:
        why += (
            f" Secrets Manager: {secrets.get('count', 0):,} calls for {api:,} API requests"
            f" ({secrets.get('count', 0) / api:.2f} each, ${secrets.get('usd_per_million', 0):.3f})."
        )
    what_if = s.get("what_if")
    if what_if:
        why += (
            " Writing each packet's reports of a MsgId to an item of their own would bring the total to"
            f" ${what_if['usd_per_million']:.2f} (model, section 3)."
        )
    return {
        "n": 3,
        "what": "AWS cost per million recipients (bulk, tracked)",
        "measured": f"${usd:.2f} scattered reports, "
        f"${g.get('usd_per_million', 0):.2f} grouped; "
        f"{s['aws_requests_per_1000']:g} AWS requests per 1,000",
        "budget": f"≤ ${budget:.2f}",
        "verdict": _verdict(s["budget_met"]),
        "why": why,
    }


def throughput(r: dict[str, Any]) -> Row | None:
    t = r.get("throughput") or {}
    if not t.get("naive"):
        return None
    ratio = t["ratio"]
    return {
        "n": 4,
        "what": "pipeline throughput vs naive client",
        "measured": f"{t['pipeline']['recipients_per_s']:,.0f} vs {t['naive']['recipients_per_s']:.1f} "
        f"recipients/s: {ratio:,.0f}×" + _limit_note(t["pipeline"]),
        "budget": f"≥ {t['ratio_budget']}×",
        "verdict": _verdict(ratio >= t["ratio_budget"]),
        "why": "" if ratio >= t["ratio_budget"] else _throughput_why(t),
    }


def _limit_note(pipeline: dict[str, Any]) -> str:
    use = pipeline.get("rate_limit") or {}
    if not use.get("limit_submits_per_s"):
        return ""
    verdict = "limited" if use["limited"] else "not limited"
    return (
        f" ({verdict} by `GuoduMaxSubmitsPerSecond` = {use['limit_submits_per_s']}:"
        f" busiest second {use['busiest_second_submits']} submits; {use.get('given_up', 0):,} of"
        f" {use['reservations']:,} rate-limit slots given up)"
    )


def _throughput_why(t: dict[str, Any]) -> str:
    pipeline, naive = t["pipeline"], t["naive"]["recipients_per_s"]
    latency = pipeline.get("aws_latency_ms") or {}
    slowest = max(latency.items(), key=lambda kv: kv[1].get("median", 0), default=None)
    text = (
        f"missed by {(1 - t['ratio'] / t['ratio_budget']) * 100:.0f}% on this machine, where one moto "
        "process on two shared cores answers every AWS call"
    )
    if slowest:
        text += f" (slowest: {slowest[0]}, {slowest[1]['median']:g} ms median)"
    model = t.get("lambda_model")
    if model:
        text += (
            "; in Lambda the same design would submit about "
            f"{model['limited_recipients_per_s']:,.0f} recipients/s (model), "
            f"{model['limited_recipients_per_s'] / naive:,.0f}× the naive client"
        )
    return text + " (section 4)."


def push(r: dict[str, Any]) -> Row | None:
    p = r.get("push") or {}
    if not p.get("shapes"):
        return None
    gs, ss = p["shapes"]["grouped"], p["shapes"]["scattered"]
    gb = p["baseline"]["grouped"]
    model = p.get("lambda_model") or {}
    base = model.get("one_write_per_report", {})
    measured = (
        f"against a moto server: {gs['ms_median']:.0f} ms grouped ({gs['reports_per_s']:,.0f} reports/s), "
        f"{ss['ms_median']:.0f} ms scattered ({ss['reports_per_s']:,.0f}/s), one write per report "
        f"{gb['ms_median']:.0f} ms ({gb['reports_per_s']:,.0f}/s)"
    )
    verdict, why = "reported", ""
    if model.get("grouped") and model.get("scattered") and base:
        measured += (
            f"; Lambda (model): {model['grouped']['ms']} ms grouped, "
            f"{model['scattered']['ms']} ms scattered, "
            f"{base['ms']} ms one write per report"
        )
        faster = model["grouped"]["ms"] < base["ms"] and model["scattered"]["ms"] < base["ms"]
        verdict = "**faster** than one write per report" if faster else "**slower** when scattered"
        if not faster:
            why = (
                f"a scattered packet needs {ss['aws_requests_total_per_packet']:g} requests (one write per"
                " MsgId per 50 of its numbers, eight at a time, the raw packet and the events) against the"
                " baseline's 250."
            )
    return {
        "n": 5,
        "what": "push handling, 250-report packet (warm)",
        "measured": measured,
        "budget": "against one write per report",
        "verdict": verdict,
        "why": why,
    }


def cpu(r: dict[str, Any]) -> Row | None:
    c = r.get("cpu") or {}
    if not c:
        return None
    names = {
        "send_1": "send 1",
        "send_10000": "send 10,000",
        "worker_batch": "worker batch",
        "push_250_grouped": "push 250",
    }
    return {
        "n": 6,
        "what": "warm CPU per invocation",
        "measured": ", ".join(
            f"{label} {c[k]['cpu_ms_median']:.1f} ms" for k, label in names.items() if k in c
        ),
        "budget": "reported",
        "verdict": "reported",
    }


def memory(r: dict[str, Any]) -> Row | None:
    m = r.get("memory") or {}
    if not m:
        return None
    worst = max(m, key=lambda n: m[n]["peak_rss_mb"])
    fits = all(h["fits_with_room"] for h in m.values())
    return {
        "n": 7,
        "what": "peak memory per handler",
        "measured": ", ".join(f"{_short(n)} {h['peak_rss_mb']:.0f} MB" for n, h in m.items()),
        "budget": "fits 256 MB with room (≤ 192 MB)",
        "verdict": _verdict(fits),
        "why": "" if fits else f"{worst} peaks at {m[worst]['peak_rss_mb']} MB",
    }


def capacity(r: dict[str, Any]) -> Row | None:
    cap = r.get("capacity") or {}
    if not cap:
        return None
    return {
        "n": 8,
        "what": "capacity for 10 million a day",
        "measured": f"peak {cap['peak_per_s']:,.0f}/s; ~${cap['monthly_usd_variable']:,.0f}/month variable",
        "budget": "[capacity.md](capacity.md)",
        "verdict": "written",
    }


INTAKE_BUDGET_SECONDS = 10


def intake(r: dict[str, Any]) -> Row | None:
    shapes = r.get("intake") or {}
    if not shapes:
        return None
    slowest = max(shapes, key=lambda s: shapes[s]["seconds"])
    met = shapes[slowest]["seconds"] < INTAKE_BUDGET_SECONDS
    return {
        "n": 9,
        "what": "intake of the largest admissible request",
        "measured": ", ".join(f"{s} {v['recipients']:,} in {v['seconds']:.1f} s" for s, v in shapes.items()),
        "budget": f"< {INTAKE_BUDGET_SECONDS} s each (local stack)",
        "verdict": _verdict(met),
        "why": "" if met else f"{slowest} takes {shapes[slowest]['seconds']:.1f} s",
    }


CODE_BUDGET_SECONDS = 2.0  # plus the provider's latency
BULK_SHARE_BUDGET = 0.90


def rate_window(r: dict[str, Any]) -> Row | None:
    runs = (r.get("rate_window") or {}).get("runs") or []
    if not runs:
        return None
    held = all(run["held"] for run in runs)
    return {
        "n": 10,
        "what": "rate limit: busiest sliding second, many worker processes",
        "measured": ", ".join(
            f"limit {run['limit_submits_per_s']:,}/s: {run['busiest_window']:,}"
            f" ({run['share_of_limit'] * 100:.0f}% of the limit on average"
            + (f", clock ×1/{run['scale']:g}" if run["scale"] > 1 else "")
            + ")"
            for run in runs
        ),
        "budget": "≤ the limit in every window",
        "verdict": _verdict(held),
        "why": "" if held else "a window held more than the limit",
    }


def lanes(r: dict[str, Any]) -> Row | None:
    lane = r.get("lanes") or {}
    if not lane:
        return None
    waits, latency = lane["code_wait_ms"], lane["simulator_latency_ms"]
    budget_ms = CODE_BUDGET_SECONDS * 1000 + latency
    # Bulk takes what codes leave: judged on every submit while both waited, from bulk's
    # first submit to its last (bulk alone and bulk's own share are in section 11).
    share = lane.get("limit_used_share") or 0.0
    codes_met, bulk_met = waits["p99"] <= budget_ms, share >= BULK_SHARE_BUDGET
    why = []
    if not codes_met:
        why.append(f"codes p99 {waits['p99']:,} ms over {budget_ms:,.0f} ms")
    if not bulk_met:
        why.append(
            f"bulk and codes used {share * 100:.0f}% of the limit; {lane.get('slots_missed', '?')} slots"
            f" were given up by workers woken more than {lane.get('slack_ms', 50)} ms late (section 11)"
        )
    return {
        "n": 11,
        "what": f"a code's 202 → submit under a {lane['backlog_recipients']:,}-recipient backlog;"
        " bulk's share",
        "measured": f"{lane['codes']} codes: median {waits['median']:,} ms, p99 {waits['p99']:,} ms;"
        f" bulk {lane['bulk_submits_per_s']:g} submits/s, with the codes {share * 100:.1f}% of"
        f" {lane['limit_submits_per_s']}/s"
        + (f" (bulk alone {alone}/s)" if (alone := lane.get("bulk_alone_submits_per_s")) else ""),
        "budget": f"p99 ≤ {budget_ms:,.0f} ms (2 s + the provider's {latency:g} ms); bulk takes ≥ 90%"
        " of the limit (with what codes take)",
        "verdict": _verdict(codes_met and bulk_met),
        "why": "; ".join(why),
    }


def single_cost(r: dict[str, Any]) -> Row | None:
    costs = r.get("cost") or {}
    found = {k.removeprefix("single_"): v for k, v in costs.items() if k.startswith("single_")}
    if not found:
        return None
    return {
        "n": "3b",
        "what": "AWS cost per million single-recipient sends (a code, a notice), tracked",
        "measured": ", ".join(
            f"{k} ${v['usd_per_million']:.2f} ({v['aws_requests_per_1000']:g} AWS requests per 1,000)"
            for k, v in found.items()
        ),
        "budget": "reported (the bulk budget is per recipient of bulk sends)",
        "verdict": "reported",
        "why": "",
    }


ROWS: tuple[Callable[[dict[str, Any]], Row | None], ...] = (
    coldstart,
    provider_calls,
    cost,
    single_cost,
    throughput,
    push,
    cpu,
    memory,
    capacity,
    intake,
    rate_window,
    lanes,
)


def rows(r: dict[str, Any]) -> list[Row]:
    return [row for make in ROWS if (row := make(r)) is not None]
