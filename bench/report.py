"""Why: the figures become ``benchmarks.md``, ``benchmarks.json`` and ``capacity.md`` in one place.

``SECTIONS`` and ``FIGURES`` list what every report must hold; the test of the quick mode
checks them, not their values.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from bench import capacity, summary

SECTIONS = (
    "## Summary",
    "## 1. Cold start",
    "## 2. Provider calls",
    "## 3. AWS requests and cost per million recipients",
    "## 4. Pipeline throughput",
    "## 5. Push handling",
    "## 6. Warm CPU per invocation",
    "## 7. Memory",
    "## 8. Capacity",
    "## 9. Intake of the largest requests",
    "## 10. The rate limiter's sliding window",
    "## 11. Lanes: one-time codes under a bulk backlog",
    "## Method and environment",
)
HANDLERS = ("SendApiFunction", "SubmitWorkerFunction", "PushReceiverFunction", "BalanceCheckFunction")
FIGURES = (
    *(
        f"coldstart.handlers.{h}.{layout}.median_ms"
        for h in HANDLERS
        for layout in ("venv", "shipped", "no_bytecode")
    ),
    *(f"coldstart.handlers.{h}.{layout}.cpu_median_ms" for h in HANDLERS for layout in ("venv", "shipped")),
    *(f"coldstart.handlers.{h}.ratio" for h in HANDLERS),
    "coldstart.baseline.venv.cpu_median_ms",
    "provider_calls.bulk.submits_per_1000",
    "provider_calls.personalised.submits",
    "provider_calls.personalised.protocol_minimum",
    "cost.scattered.usd_per_million",
    "cost.scattered.aws_requests_per_1000",
    "cost.scattered.wru_per_recipient",
    "cost.grouped.usd_per_million",
    "throughput.pipeline.recipients_per_s",
    "throughput.naive.recipients_per_s",
    "throughput.ratio",
    "throughput.lambda_model.limited_recipients_per_s",
    "push.shapes.grouped.ms_median",
    "push.shapes.grouped.reports_per_s",
    "push.shapes.scattered.reports_per_s",
    "push.baseline.grouped.reports_per_s",
    "push.lambda_model.grouped.ms",
    "push.lambda_model.one_write_per_report.ms",
    "cpu.send_1.cpu_ms_median",
    "cpu.send_10000.cpu_ms_median",
    "cpu.worker_batch.cpu_ms_median",
    "cpu.push_250_grouped.cpu_ms_median",
    *(f"memory.{h}.peak_rss_mb" for h in HANDLERS),
    "capacity.peak_per_s",
    "capacity.worker_concurrency_needed",
    "capacity.push_concurrency_needed",
    "capacity.wru_peak_per_s",
    "intake.bulk.seconds",
    "intake.personalised.seconds",
    "intake.verification.seconds",
    "cost.single_verification.usd_per_million",
    "cost.single_transactional.usd_per_million",
    "lanes.code_wait_ms.median",
    "lanes.code_wait_ms.p99",
    "lanes.bulk_share_of_limit",
    "rate_window.runs.0.busiest_window",
)
Add = Callable[[str], None]
PART_SECTIONS = {
    "lanes": "section 11 and the single-recipient costs of section 3",
    "ratewindow": "section 10",
    "local": "sections 2, 3, 4, 8 and 9",
    "coldstart": "section 1",
    "probes": "sections 5, 6 and 7",
}


def lookup(data: Any, path: str) -> Any:
    for part in path.split("."):
        if isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        elif isinstance(data, dict) and part in data:
            data = data[part]
        else:
            return None
    return data


def _row(cells: Iterable[Any]) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _ms(value: Any) -> str:
    if value is None:
        return "—"
    return f"{value:,.0f}" if value >= 100 else f"{value:,.1f}"


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.3f}" if value < 10 else f"{value:,.1f}"
    return f"{value:,}"


def _pairs(data: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v:,}" if isinstance(v, int) else f"{k} {v}" for k, v in data.items()) or "—"


def markdown(r: dict[str, Any]) -> str:
    out: list[str] = []
    add: Add = out.append
    env = r["environment"]
    command = "python -m bench" + (" --quick" if r["mode"] == "quick" else "")
    add("# Benchmarks")
    add("")
    add(f"Written by `make bench` (`{command}`) on {r['generated']}, {r['mode']} mode, in")
    add(f"{r['elapsed_s']:.0f} s. Every figure below was measured in this one run on this machine")
    add(f"({env['cores']} cores, shared with other work: load average {env['load_before']} before,")
    add(f"{env['load_after']} after); figures labelled *model* are arithmetic on measured ones. The")
    for part, made in (r.get("parts") or {}).items():
        add(
            f"The part *{part}* ({PART_SECTIONS.get(part, part)}) was measured again later, on"
            f" {made['generated']}, by `{made['command']}` ({made['elapsed_s']} s), and merged in; the"
            " other parts are the run above's."
        )
    add("same figures are in [benchmarks.json](benchmarks.json), the chart is")
    add("[benchmarks.png](benchmarks.png), and the cost model and the quota arithmetic are in")
    add("[capacity.md](capacity.md).")
    if r["mode"] == "quick":
        add("")
        add("**Quick mode**: tiny sizes, to prove the benchmark runs. Its figures are not the project's.")
    add("")
    add("![benchmarks](benchmarks.png)")
    add("")
    add("## Summary")
    add("")
    add(_row(["#", "what", "measured", "budget", "verdict"]))
    add("|---|---|---|---|---|")
    for item in r["summary"]:
        add(_row([item["n"], item["what"], item["measured"], item["budget"], item["verdict"]]))
    add("")
    for item in r["summary"]:
        if item.get("why"):
            add(f"- **{item['n']}. {item['what']}**: {item['why']}")
    add("")
    if r.get("errors"):
        add("**Errors in this run:**")
        add("")
        for name, error in r["errors"].items():
            add(f"- {name}: `{error}`")
        add("")
    for section in (
        _coldstart,
        _provider,
        _cost,
        _throughput,
        _push,
        _cpu,
        _memory,
        _capacity,
        _intake,
        _rate_window,
        _lanes,
        _environment,
    ):
        section(r, add)
    return "\n".join(out) + "\n"


def _floor(c: dict[str, Any], add: Add) -> None:
    """The least any handler pays (coldstart.FLOOR_APP), so that a ratio can be read against it."""
    floor = c.get("floor") or {}
    if not floor:
        return
    add("")
    add(
        f"*Floor*: {floor['what']}, measured in the same run:"
        f" {floor['venv']['cpu_median_ms']:.0f} ms CPU, **{floor['ratio']:.2f}×** the yardstick."
        " Every handler pays at least this (it logs, counts and makes the table's client);"
        " above it, each pays for its own work: its other clients, its resolver or batch"
        " processor, its models and the gateway's code."
    )


def _yardsticks(c: dict[str, Any], add: Add) -> None:
    """What the ratios are taken against (the yardstick) and the least a handler pays (the floor)."""
    yardstick = (c.get("baseline") or {}).get("venv") or {}
    if yardstick:
        add("")
        add(
            f"*Ratio*: each handler's CPU time (venv) over that of {c['baseline']['what']}, measured in the"
            f" same run, interleaved with the handlers ({yardstick['cpu_median_ms']:.0f} ms CPU,"
            f" {yardstick['median_ms']:.0f} ms wall, median of {yardstick['samples']});"
            f" budget ≤ {c.get('ratio_budget', 0.7):.2f}×."
        )
    _floor(c, add)


def _coldstart(r: dict[str, Any], add: Add) -> None:
    c = r.get("coldstart") or {}
    budget = c.get("budget_ms", 250)
    add("## 1. Cold start")
    add("")
    add("`import app` (the module's initialisation included) in a fresh interpreter of the")
    add(f"runtime-only environment, median of {c.get('samples', '?')} processes per handler and layout;")
    add(f"budget {budget:.0f} ms (a plain Powertools REST handler with Tracer and a table: about")
    add(f"{c.get('reference_ms', 370):.0f} ms on these machines).")
    _yardsticks(c, add)
    add("")
    add(
        _row(
            [
                "handler",
                "venv, CPU (ms)",
                "venv, wall (ms)",
                "whole process (ms)",
                "as `sam build` ships it, CPU (ms)",
                "shipped without bytecode, CPU (ms)",
                "ratio",
                "budget",
            ]
        )
    )
    add("|---|---:|---:|---:|---:|---:|---:|---|")
    for name, h in (c.get("handlers") or {}).items():
        venv, shipped, bare = h.get("venv", {}), h.get("shipped", {}), h.get("no_bytecode", {})
        over = venv.get("cpu_median_ms", 0) - budget
        verdict = "met" if h.get("budget_met") else f"missed by {over:.0f} ms"
        if "ratio" in h:
            verdict += "; ratio " + ("met" if h.get("ratio_met") else "missed")
        cells = [venv.get("cpu_median_ms"), venv.get("median_ms"), venv.get("process_median_ms")]
        cells += [shipped.get("cpu_median_ms"), bare.get("cpu_median_ms")]
        ratio = f"{h['ratio']:.2f}×" if "ratio" in h else "–"
        add(_row([name, *map(_ms, cells), ratio, verdict]))
    add("")
    inventory = c.get("shipped_inventory") or {}
    built, loaded = inventory.get("sam_build") or {}, inventory.get("as_loaded") or {}
    add("- *venv*: the repository's code, bytecode cached: what the budget is judged on, by CPU time")
    add("  (importing is CPU-bound once the files are in the page cache; the wall time on this shared")
    add("  machine also holds other people's work, and matches the CPU time when the machine is idle).")
    add(f"- *as `sam build` ships it*: {c.get('shipped_how') or 'not built in this run'}.")
    if built:
        add(
            f"  The `sam build` layer holds {built['files']:,} files ({built['megabytes']} MB):"
            f" {built['py']:,} `.py` and {built['pyc']:,} `.pyc`"
            f" ({', '.join(built['pyc_tags'])}, {built['pyc_unchecked_hash']:,} of them unchecked-hash),"
            f" native modules {', '.join(f'`{m}`' for m in built['native_modules'])};"
        )
        add(
            f"  {inventory.get('pyc_same_source_and_flags', 0):,} of its `.pyc` carry the same header"
            " (interpreter, flags, source hash) as this machine's build"
            + _differing(inventory.get("pyc_differing") or [])
            + ", and the file lists match but for the native modules' names."
        )
    elif loaded:
        add(
            f"  The layer holds {loaded['files']:,} files: {loaded['py']:,} `.py`, {loaded['pyc']:,} `.pyc`"
            f" ({', '.join(loaded['pyc_tags'])}, {loaded['pyc_unchecked_hash']:,} unchecked-hash)."
        )
    add("  No bytecode is written at run time (Lambda's /opt and /var/task are read-only), so the")
    add("  functions' own `app.py`, which `sam build` copies as source, is compiled at each cold start;")
    add("  boto3 keeps its bytecode, as the runtime's own copy is assumed to.")
    add("- *without bytecode*: the same layer with every `.pyc` removed, as the default `python3.13`")
    add("  build method shipped it before layers/shared/Makefile (aws-lambda-builders compiles nothing):")
    add("  every module of the layer is compiled at every cold start. Kept to show what the Makefile saves.")
    add("- Not included: starting the interpreter and Lambda's runtime bootstrap (the *whole process*")
    add("  column shows the former).")
    add("")
    add("Where the time goes (`-X importtime`, venv layout, ms, median): each package's own import")
    add("time, with the standard-library modules it was first to load (`http.client` for botocore),")
    add("whichever module imported it; the gateway's own modules without the packages they import.")
    add("")
    for name, rows in (c.get("breakdown") or {}).items():
        parts = [
            f"{row['what']} {row['ms']:.0f}"
            for row in rows
            if not row["what"].startswith("(") and row["ms"] >= 3
        ]
        add(f"- **{name}**: {', '.join(parts)}.")
    add("")


def _differing(pycs: list[str]) -> str:
    """The .pyc whose source differs between the two builds: pip's console scripts name the
    interpreter that installed them on their first line."""
    if not pycs:
        return ""
    scripts = all(p.startswith("bin/") for p in pycs)
    listed = ", ".join(f"`{p}`" for p in pycs[:3]) + (" and others" if len(pycs) > 3 else "")
    return f" ({listed} differ" + (
        ": a console script, whose first line names its interpreter)" if scripts else ")"
    )


def _provider(r: dict[str, Any], add: Add) -> None:
    p = r.get("provider_calls") or {}
    bulk, pers = p.get("bulk", {}), p.get("personalised", {})
    add("## 2. Provider calls")
    add("")
    add("Submits counted by the simulator during the end-to-end runs.")
    add("")
    add(_row(["send", "recipients", "submits", "per 1,000 recipients", "protocol minimum per 1,000"]))
    add("|---|---:|---:|---:|---:|")
    recipients = bulk.get("recipients", 0)
    add(_row(["bulk, one content", f"{recipients:,}", bulk.get("submits"), bulk.get("submits_per_1000"), 5]))
    if pers:
        per_1000 = round(pers["submits"] * 1000 / pers["messages"], 1)
        minimum = round(pers["protocol_minimum"] * 1000 / pers["messages"], 1)
        label = f"personalised, {pers['contents']} distinct contents"
        add(_row([label, f"{pers['messages']:,}", pers["submits"], per_1000, minimum]))
    add("")
    add("The protocol takes one content and at most 200 numbers per submit, so the minimum is the sum")
    add("over distinct contents of ⌈numbers / 200⌉; equal contents of a personalised send are grouped")
    add("before chunking. A personalised send whose every message differs needs one submit per message.")
    add("")


def _cost(r: dict[str, Any], add: Add) -> None:
    costs = r.get("cost") or {}
    s, g = costs.get("scattered", {}), costs.get("grouped", {})
    add("## 3. AWS requests and cost per million recipients")
    add("")
    add("Every AWS request of the handlers and of the SQS event source, counted by a botocore hook in")
    add("the local stack's processes during a full run (POST → queue → submit → reports pushed and")
    add("stored → events), turned into billed units and priced at list prices (method in")
    add("[capacity.md](capacity.md)). Two timings of the provider's reports, because the report writes")
    add("depend on how reports arrive:")
    add("")
    add("- *scattered*: the simulator's default, each report due 0.2–1.0 s after its submit, pushed in")
    add("  50 ms batches: a packet holds a few reports of each of several MsgIds (as a busy platform's")
    add("  would: carriers report over seconds to minutes);")
    add("- *grouped*: all reports of a submit due at once: a packet holds whole submits.")
    add("")
    add("| | scattered | grouped |")
    add("|---|---:|---:|")
    rows = [
        ("recipients counted", "recipients"),
        ("AWS requests per 1,000 recipients", "aws_requests_per_1000"),
        ("DynamoDB write units per recipient", "wru_per_recipient"),
        ("reports per push packet", "push_items_per_packet"),
        ("MsgIds per push packet", "push_msg_ids_per_packet"),
        ("**USD per million recipients**", "usd_per_million"),
    ]
    for label, key in rows:
        add(_row([label, _fmt(s.get(key)), _fmt(g.get(key))]))
    add(_row(["budget", f"${s.get('budget_usd_per_million', 0.75):.2f}", ""]))
    add("")
    add("By service:")
    add("")
    add(
        _row(
            [
                "service",
                "scattered, per 1,000 recipients",
                "scattered, USD per million",
                "grouped, USD per million",
            ]
        )
    )
    add("|---|---:|---:|---:|")
    for name, line in (s.get("lines") or {}).items():
        other = (g.get("lines") or {}).get(name, {})
        per_1000 = f"{line['per_1000_recipients']:,} {line['unit']}"
        add(
            _row([name, per_1000, f"{line['usd_per_million']:.4f}", f"{other.get('usd_per_million', 0):.4f}"])
        )
    add("")
    add("AWS requests of the scattered run, by caller and operation:")
    add("")
    add("| caller and operation | requests | per 1,000 recipients |")
    add("|---|---:|---:|")
    for name, n in (s.get("aws_requests", {}).get("by_call") or {}).items():
        add(_row([name, n, round(n * 1000 / s["recipients"], 1)]))
    add("")
    dynamo = s.get("dynamodb", {})
    kinds = {k: v["items"] for k, v in (dynamo.get("items_by_kind") or {}).items()}
    add(f"DynamoDB write units by call (scattered): {_pairs(dynamo.get('wru_by_call', {}))}.")
    add(f"Items left in the table: {_pairs(kinds)}.")
    add("")
    what_if = s.get("what_if") or {}
    if what_if:
        add(f"**What if** (a model from the same run): {what_if['text']}")
        add("")
    _single_costs(costs, add)
    prices = "; ".join((s.get("prices") or {}).values())
    add(f"Prices: {s.get('prices_region', '')}, {s.get('prices_as_of', '')}: {prices}.")
    add("China regions are billed in CNY at other prices, not stated here.")
    add("")


def _single_costs(costs: dict[str, Any], add: Add) -> None:
    singles = {k.removeprefix("single_"): v for k, v in costs.items() if k.startswith("single_")}
    if singles:
        add("**Single-recipient sends** (the typical one-time code or notice): requests of one number")
        add("each, posted by four callers at once, end to end with their reports (scattered), counted and")
        add("priced the same way:")
        add("")
        add(
            _row(
                [
                    "send",
                    "recipients",
                    "AWS requests per 1,000",
                    "DynamoDB write units each",
                    "USD per million",
                ]
            )
        )
        add("|---|---:|---:|---:|---:|")
        for name, model in singles.items():
            add(
                _row(
                    [
                        name,
                        model["recipients"],
                        model["aws_requests_per_1000"],
                        model["wru_per_recipient"],
                        f"**{model['usd_per_million']:.2f}**",
                    ]
                )
            )
        add("")
        for name, model in singles.items():
            top = sorted(model["lines"].items(), key=lambda kv: -kv[1]["usd_per_million"])[:4]
            add(
                f"- *{name}*: "
                + ", ".join(f"{k} ${v['usd_per_million']:.3f}" for k, v in top)
                + "; by call: "
                + _pairs(
                    {
                        k: round(n * 1000 / model["recipients"], 1)
                        for k, n in (model.get("aws_requests", {}).get("by_call") or {}).items()
                    }
                )
                + " (per 1,000)."
            )
        add("")
        add("A one-number send pays per request what a bulk send pays per 200 numbers (the API call, the")
        add("intake writes, one submit's claim and settle, its events), so it costs more per recipient;")
        add("a code also pays its frequency caps (one conditional write per window).")
        add("")


def _throughput(r: dict[str, Any], add: Add) -> None:
    t = r.get("throughput") or {}
    p, n = t.get("pipeline", {}), t.get("naive", {})
    add("## 4. Pipeline throughput")
    add("")
    add(
        f"{p.get('recipients', 0):,} recipients POSTed in requests of "
        f"{p.get('per_request', 0):,} to the local"
    )
    add("stack, timed from the first POST until every request reads `submitted` in the status API;")
    add(
        f"the simulator answers each submit after {p.get('simulator_latency_ms', 30):g} ms. "
        "The naive client (the"
    )
    add("provider's sample code: one number per submit, a new connection each, one after another)")
    add(f"ran {n.get('numbers', 0)} numbers against the same simulator in the same run; its rate is")
    add("extrapolated to 100,000 numbers.")
    add("")
    add("| | recipients/s | 100,000 recipients take |")
    add("|---|---:|---:|")
    for scenario in t.get("scenarios", []):
        rate = scenario["recipients_per_s"]
        add(_row([scenario["label"], f"{rate:,.0f}", f"{100_000 / rate:,.0f} s"]))
    naive_rate, naive_s = n.get("recipients_per_s", 0), n.get("extrapolated_100k_s", 0)
    add(_row(["naive client (extrapolated)", f"{naive_rate:,.1f}", f"{naive_s:,.0f} s"]))
    add("")
    add(
        f"Ratio: **{t.get('ratio', 0):,.0f}×** the naive rate "
        f"(budget: at least {t.get('ratio_budget', 50)}×)."
    )
    add("")
    for scenario in t.get("scenarios", []):
        cpu = scenario.get("cpu", {})
        roles = ", ".join(f"{k} {v}" for k, v in (cpu.get("cores_used_by_role") or {}).items() if v >= 0.01)
        busy = cpu.get("machine_busy_fraction", 0) * 100
        worker = scenario.get("worker_durations_ms", {}).get("median", "—")
        add(
            f"- *{scenario['label']}*: POSTs done at {scenario['posted_s']} s, last chunk at the provider at "
            f"{scenario['to_provider_s']} s, all recorded at {scenario['submitted_s']} s; "
            f"{scenario['aws_requests']:,} AWS requests "
            f"({scenario['aws_requests_per_s']:,.0f}/s, all served by "
            f"one moto process); cores used: {roles}; the machine was {busy:.0f}% busy; a worker "
            f"invocation (5 chunks) took {worker} ms (median). {rate_limit_text(scenario)}"
        )
    add("")
    latency = (p.get("aws_latency_ms") or {}) if p else {}
    if latency:
        parts = [f"{op} {v['median']:g} ms (p90 {v['p90']:g}, {v['n']:,} calls)" for op, v in latency.items()]
        slowest = max(latency, key=lambda op: latency[op]["median"])
        why = (
            ", which moto implements by deep-copying the whole table (twice per transaction, for its"
            " rollback), so each gets slower as the table fills"
            if slowest.endswith("TransactWriteItems")
            else ""
        )
        add("What bounds it here: every AWS call of every function goes to one moto server process on two")
        add(f"shared cores, and moto answers slowly, the slowest being `{slowest}`{why}.")
        add("Median answer times in the default run: " + "; ".join(parts) + ".")
        add("DynamoDB answers such calls in single-digit milliseconds. The local figure is a floor for")
        add("the design, not its ceiling.")
        add("")
    model = t.get("lambda_model", {})
    if model:
        add(f"**In Lambda (model, not a measurement)**: {model['explanation']}")
        add("")


def rate_limit_text(scenario: dict[str, Any]) -> str:
    """Whether the provider limit (``GuoduMaxSubmitsPerSecond``) held the run back, and what the
    shared rate limiter cost it."""
    use = scenario.get("rate_limit") or {}
    if not use.get("limit_submits_per_s"):
        return "No provider limit was set."
    text = (
        f"Provider limit {use['limit_submits_per_s']} submits/s: the busiest one-second window (sliding,"
        f" by the simulator's clock) carried {use['busiest_second_submits']} submits (mean"
        f" {use['mean_submits_per_s']:g}/s), {use['seconds_at_limit']} clock second(s) reached the limit"
        f" and {use['refused']:,} of {use['reservations']:,} conditional writes on the rate limit's"
        " timeline were refused (full within the worker's look-ahead): "
        + ("**limited by it**." if use["limited"] else "**not limited by it**.")
    )
    if use.get("given_up"):
        text += (
            f" {use['given_up']:,} granted slots were given up"
            f" ({use['given_up'] / max(1, use['reservations']) * 100:.0f}% of the writes): a worker woken"
            f" more than {use.get('slack_seconds', 0.05):g} s after its slot takes another rather than"
            " overrun the limit, and the given-up slot counts against it."
        )
    return text


def _push(r: dict[str, Any], add: Add) -> None:
    p = r.get("push") or {}
    shapes = p.get("shapes") or {}
    repeat = (shapes.get("scattered") or {}).get("packets_per_msg_id", 20)
    add("## 5. Push handling")
    add("")
    add("The push receiver handler, warm, in its probe (section 6) against a moto server,")
    add(f"{p.get('packets', 0)} packets of")
    add(f"{p.get('packet_items', 250)} reports per shape: *grouped*, two new MsgIds a packet; *scattered*,")
    add(f"25 MsgIds a packet, ten reports each, the same 25 for {repeat} packets in a row, so that each")
    add("MsgId's item grows to the 200 reports of a whole submit as it does when the platform spreads")
    add("reports over packets. The baseline writes the same reports one `PutItem` each (first report")
    add("wins), with eight threads, against the same moto, in the same run. Times are wall times,")
    add("the local HTTP round trips to moto included. Write units are billed by the moto server from")
    add("each item's size before and after each write (section 3).")
    add("")
    add(
        _row(
            [
                "packet",
                "store and acknowledge, median (ms)",
                "p90 (ms)",
                "reports/s",
                "AWS requests",
                "write units",
                "baseline (ms)",
                "baseline reports/s",
                "baseline requests",
                "baseline write units",
            ]
        )
    )
    add("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for shape, f in shapes.items():
        b = p["baseline"][shape]
        cells = [f"{shape} ({f['msg_ids_per_packet']} MsgIds)", _ms(f["ms_median"]), _ms(f["ms_p90"])]
        cells += [
            f"{f['reports_per_s']:,.0f}",
            f["aws_requests_total_per_packet"],
            f.get("wru_per_packet", "—"),
        ]
        cells += [_ms(b["ms_median"]), f"{b['reports_per_s']:,.0f}", b["aws_requests_total_per_packet"]]
        cells += [b.get("wru_per_packet", "—")]
        add(_row(cells))
    add("")
    for shape, f in shapes.items():
        add(f"- {shape}: {_pairs(f['aws_requests_per_packet'])} per packet.")
    add("")
    add("A packet costs one `UpdateItem` per MsgId it holds reports of (per 50 of its numbers), on")
    add("the MsgId's own item, which returns the item as it was (`ALL_OLD`): what the write newly")
    add("settled and whether the MsgId is linked to a request, with no further read or counter write.")
    add("Moto evaluates update expressions in Python, so each of those `UpdateItem`s costs it several")
    add("times a `PutItem`: moto flatters the baseline. DynamoDB's price is per request and")
    add("item size (section 3); its latency is per round of requests. **In Lambda (model)**: the CPU")
    add(
        f"measured in section 6 × {capacity.LAMBDA_CPU_FACTOR:.1f}, plus the raw packet's put, the report"
        f" writes in rounds of {capacity.REPORT_WRITE_THREADS}"
    )
    add(f"at an *assumed* {capacity.DYNAMODB_MS:g} ms each, and the PutEvents at {capacity.EVENTS_MS:g} ms:")
    add("")
    model = p.get("lambda_model") or {}
    if model:
        add("| packet | Lambda time per packet (ms, model) | reports/s per instance (model) |")
        add("|---|---:|---:|")
        for name, m in model.items():
            add(_row([name.replace("_", " "), f"{m['ms']:,}", f"{m['reports_per_s']:,}"]))
        add("")


CPU_LABELS = {
    "send_1": "send API, 1 recipient",
    "send_10000": "send API, 10,000 recipients",
    "worker_batch": "submit worker, batch of 5 chunks (1,000 recipients)",
    "push_250_grouped": "push receiver, 250 reports of 2 MsgIds",
    "push_250_scattered": "push receiver, 250 reports of 25 MsgIds (their items growing over 20 packets)",
    "push_250_one_write_per_report": "baseline: the same 250 reports, one PutItem each",
    "balance": "balance check",
}


def _cpu(r: dict[str, Any], add: Add) -> None:
    c = r.get("cpu") or {}
    factor = capacity.LAMBDA_CPU_FACTOR
    add("## 6. Warm CPU per invocation")
    add("")
    add("`time.process_time()` per invocation in a fresh runtime-only process, on fresh data each time")
    add("(a new request, new MsgIds), AWS a moto server in another process (so its CPU is not counted),")
    add("the provider a simulator in another process. Lambda at 256 MB has 256/1769 of a vCPU:")
    add(f"× {factor:.1f} for its CPU time (*model*).")
    add("")
    add(
        _row(
            ["invocation", "CPU median (ms)", "p90 (ms)", "at 256 MB (ms, model)", "AWS calls", "repetitions"]
        )
    )
    add("|---|---:|---:|---:|---:|---:|")
    for name, w in c.items():
        cells = [_ms(w["cpu_ms_median"]), _ms(w["cpu_ms_p90"]), _ms(w["cpu_ms_median"] * factor)]
        add(_row([CPU_LABELS.get(name, name), *cells, w["aws_calls_total_per_invocation"], w["reps"]]))
    add("")


def _memory(r: dict[str, Any], add: Add) -> None:
    m = r.get("memory") or {}
    add("## 7. Memory")
    add("")
    add("Peak resident memory of each probe process (`VmHWM`; Linux carries `ru_maxrss` over `exec`")
    add("from the parent, so a child of the bench would report the bench's size), after the warm")
    add("workloads of section 6 and, for the send API, the largest request the API accepts. Lambda's")
    add("own runtime adds a few MB. Budget: fits 256 MB with room to spare (here: at most 75%, 192 MB).")
    add("")
    add("| handler | after import (MB) | after warm workloads (MB) | peak (MB) | verdict |")
    add("|---|---:|---:|---:|---|")
    for name, h in m.items():
        largest = h.get("largest_send")
        peak = f"{h['peak_rss_mb']}" + (f" (with {largest['recipients']:,} recipients)" if largest else "")
        verdict = "fits" if h["fits_with_room"] else "too close"
        add(_row([name, h["rss_after_import_mb"], h["peak_rss_warm_mb"], peak, verdict]))
    add("")


def _capacity(r: dict[str, Any], add: Add) -> None:
    c = r.get("capacity") or {}
    add("## 8. Capacity")
    add("")
    add(
        "The cost model and the quota arithmetic for 10 million recipients a day: [capacity.md](capacity.md)."
    )
    if c:
        add(
            f"In short: {c['peak_per_s']:,} recipients/s at peak needs {c['submits_peak_per_s']} provider "
            f"submits/s (limit {c.get('rate_limit_submits_per_s')}), {c['worker_concurrency_needed']} worker "
            f"and {c['push_concurrency_needed']} push receiver executions, "
            f"{c['wru_peak_per_s']:,.0f} DynamoDB "
            f"write units/s; about ${c['monthly_usd_variable']:,.0f} a month in variable charges."
        )
    add("")


INTAKE_LIMITS = {
    "bulk": "one content to `MaxRecipientsPerRequest` numbers",
    "personalised": "`MaxMessagesPerRequest` messages, every content different (a submit each)",
    "verification": "`MaxCappedRecipientsPerRequest` numbers, each counted against its frequency caps",
}


def _intake(r: dict[str, Any], add: Add) -> None:
    add("## 9. Intake of the largest requests")
    add("")
    add(
        "Seconds from `POST /v1/messages` to its `202`, in the local stack (moto server, so slower than"
        f" DynamoDB and SQS), for the largest request the API admits in each shape. Budget: under"
        f" {summary.INTAKE_BUDGET_SECONDS} s, far from API Gateway's 29 s. Above the limits, the API"
        " answers 400 naming the field."
    )
    add("")
    add(_row(["shape", "what", "recipients", "seconds to 202"]))
    add("|---|---|---:|---:|")
    for shape, what in INTAKE_LIMITS.items():
        figure = (r.get("intake") or {}).get(shape)
        if figure:
            add(_row([shape, what, f"{figure['recipients']:,}", figure["seconds"]]))
    add("")


def _rate_window(r: dict[str, Any], add: Add) -> None:
    w = r.get("rate_window") or {}
    add("## 10. The rate limiter's sliding window")
    add("")
    add("Worker processes (threads in each) loop as the submit worker does: take a slot on the")
    add("account's timeline in one moto server, write a claim, submit to the simulator, which stamps what")
    add("it receives. The busiest one-second window of those stamps, wherever it begins, against the")
    spread = w.get("slack_seconds", 0.05) + w.get("margin_seconds", 0.0)
    add(
        f"limit; slots are (1 + {w.get('slack_seconds', 0.05):g} + {w.get('margin_seconds', 0.0):g}) / N s"
        f" apart, so the ceiling is {1 / (1 + spread) * 100:.1f}% of the limit (`bench/ratewindow.py`)."
    )
    add("Above 50/s this machine cannot drive the rate for real (one moto process on two shared cores):")
    add("the workers' and the limiter's clock then runs `scale` times slower than ours, and the stamps")
    add("are read in that clock. AWS latencies then weigh `scale` times less in it, closer to DynamoDB's")
    add("milliseconds than to moto's tens; the items, the workers and the conditional writes are real.")
    add("")
    add(
        _row(
            [
                "limit (submits/s)",
                "clock",
                "workers (processes)",
                "items",
                "submits",
                "busiest window",
                "average rate",
                "share of the limit",
                "limiter writes / submit",
                "refused / submit",
                "slots given up",
            ]
        )
    )
    add("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for run in w.get("runs", []):
        add(
            _row(
                [
                    f"{run['limit_submits_per_s']:,}",
                    "real time" if run["scale"] == 1 else f"×1/{run['scale']:g}",
                    f"{run['workers']} ({run['processes']})",
                    run["items"],
                    f"{run['submits']:,}",
                    f"**{run['busiest_window']:,}**",
                    f"{run['achieved_per_s']:,}",
                    f"{run['share_of_limit'] * 100:.1f}%",
                    run["limiter_writes_per_submit"],
                    run["refused_writes_per_submit"],
                    run["slots_missed"],
                ]
            )
        )
    add("")


def _alone(lane: dict[str, Any]) -> str:
    """Bulk's rate while no code went, when that lasted long enough to be a rate."""
    alone = lane.get("bulk_alone_submits_per_s")
    return f"{alone}/s" if alone else "too short a span to tell (under 5 s)"


def _lanes(r: dict[str, Any], add: Add) -> None:
    lane = r.get("lanes") or {}
    add("## 11. Lanes: one-time codes under a bulk backlog")
    add("")
    if not lane:
        add("Not measured in this run.")
        add("")
        return
    waits = lane["code_wait_ms"]
    add(
        f"The local stack with the template's defaults (provider limit {lane['limit_submits_per_s']}"
        f" submits/s, the simulator answering after {lane['simulator_latency_ms']:g} ms; no reports"
        " pushed, as in section 4: on this machine they would load the one moto process the workers"
        " wait on):"
        f" {lane['backlog_recipients']:,} transactional recipients POSTed in requests of"
        f" {lane['per_post']:,} ({lane['backlog_submits']:,} submits) with the workers' event sources off"
        " (all of it queued before the first submit: on this host intake would share the one moto process"
        " with the workers; intake is section 9), then, once bulk was under way"
        f" ({lane['recipients_queued_before_first_code']:,} recipients still queued before the first code),"
        f" {lane['codes']} one-time codes (`category: verification`), one every"
        f" {lane['code_interval_s']:g} s."
        " A code's wait is from its 202 to the simulator's stamp of its submit."
    )
    add("")
    add(_row(["", "median", "p99", "min", "max"]))
    add("|---|---:|---:|---:|---:|")
    add(
        _row(
            [
                "code: 202 → submit (ms)",
                f"**{waits['median']:,}**",
                f"**{waits['p99']:,}**",
                f"{waits['min']:,}",
                f"{waits['max']:,}",
            ]
        )
    )
    add("")
    add(
        f"Bulk meanwhile: {lane['bulk_submits_per_s']:g} submits/s from its first submit to its last"
        f" ({lane['bulk_span_s']:g} s); with the codes, **{(lane.get('limit_used_share') or 0) * 100:.1f}%**"
        " of the limit was used over that span (the limiter's ceiling is"
        f" {lane.get('ceiling_share', 0) * 100:.1f}%:"
        " slots are (1 + slack + margin)/N s apart). Bulk alone (before the first code and after the last):"
        f" {_alone(lane)}; while the codes went, bulk"
        f" {lane.get('bulk_submits_per_s_during_codes')}/s and everything"
        f" {lane.get('all_submits_per_s_during_codes')}/s. {lane.get('slots_missed', 0)} of"
        f" {lane.get('limiter_writes', 0):,} slots taken were given up by a worker woken more than"
        f" {lane.get('slack_ms', 50)} ms after its slot (each costs the limit one slot);"
        f" {lane.get('limiter_refused', 0):,} of the"
        " limiter's conditional writes were refused. The busiest one-second window of all submits held"
        f" {lane['busiest_window']} (limit {lane['limit_submits_per_s']})."
        " Before lanes (the issue's measurement: five 10,000-number sends, then one code) a code left the"
        " queue 47.9 s after its 202."
    )
    add("")


def _environment(r: dict[str, Any], add: Add) -> None:
    add("## Method and environment")
    add("")
    for key, value in r["environment"].items():
        add(f"- {key}: {value}")
    add("- Timings are reported, never asserted: `tests/bench` runs the quick mode only to prove it runs.")
    for note in METHOD:
        add(f"- {note}")
    add("")


METHOD = (
    "Sections 5-7 come from one probe per handler: a fresh runtime-only process whose AWS is a moto"
    " server in a process of its own (its CPU is not the handler's), on fresh data each repetition (a"
    " new request, new MsgIds); before, an in-process fake answered AWS and granted every conditional"
    " write, so the worker re-submitted the same chunks with the rate limiter off. Section 5's times"
    " now include the local HTTP round trips to moto.",
    "DynamoDB units (sections 3, 5 and 8) are billed by the moto server itself from its stored items'"
    " sizes before and after each request (one write at a time); they were estimated before from"
    " request payloads and a replay of the run's writes. Moto counts numbers and maps a few bytes"
    " differently from DynamoDB's formula, and the push receiver's report writes, measured, cost more"
    " units than the old estimate said.",
    "Sections 2-4, 9 and 11 run the real handlers in the local stack (moto server, Guodu simulator);"
    " section 3 prices the AWS calls recorded there (botocore event hooks), DynamoDB units from item"
    " sizes. Section 10 drives the limiter from many processes against one moto server. Section 8 is"
    " arithmetic on the measured figures and the template's defaults.",
)


def write(results: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    text = json.dumps(results, indent=1, ensure_ascii=False, default=str) + "\n"
    (out / "benchmarks.json").write_text(text, encoding="utf-8")
    (out / "benchmarks.md").write_text(markdown(results), encoding="utf-8")
    cost = (results.get("cost") or {}).get("scattered")
    if cost and results.get("capacity"):
        measured = {
            "cost": cost,
            "counted": results["counted"]["scattered"],
            "cpu": results.get("cpu", {}),
            "generated": results["generated"],
            "mode": results["mode"],
        }
        page = capacity.markdown(measured, results["capacity"])
    else:
        page = (
            "# Capacity and cost model\n\nNot written: the run that measures it failed (see benchmarks.md).\n"
        )
    (out / "capacity.md").write_text(page, encoding="utf-8")
