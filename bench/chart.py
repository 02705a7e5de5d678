"""Why: the figures of the report on one page, ``benchmarks.png`` (matplotlib, no display)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

BLUE, ORANGE, GREEN, GREY, RED = "#3b6ea8", "#e08a2e", "#4c9a5b", "#9a9a9a", "#c0392b"


def draw(r: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(3, 3, figsize=(17, 14))
    fig.suptitle(f"smsgw benchmarks ({r['mode']} mode, {r['generated']})", fontsize=13)
    _coldstart(axes[0][0], r.get("coldstart") or {})
    _throughput(axes[0][1], r.get("throughput") or {})
    _timeline(axes[0][2], r.get("throughput") or {})
    _cost(axes[1][0], r.get("cost") or {})
    _push(axes[1][1], r.get("push") or {})
    _memory(axes[1][2], r.get("memory") or {})
    _lanes(axes[2][0], axes[2][1], r.get("lanes") or {})
    _rate_window(axes[2][2], r.get("rate_window") or {})
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _short(name: str) -> str:
    return name.removesuffix("Function")


def _coldstart(ax: Any, c: dict[str, Any]) -> None:
    handlers = c.get("handlers") or {}
    names = list(handlers)
    layouts = [
        ("venv", BLUE, "venv"),
        ("shipped", GREEN, "as sam build ships it"),
        ("no_bytecode", ORANGE, "shipped without bytecode"),
    ]
    width = 0.27
    for i, (key, colour, label) in enumerate(layouts):
        values = [handlers[n].get(key, {}).get("cpu_median_ms", 0) for n in names]
        ax.bar([x + (i - 1) * width for x in range(len(names))], values, width, color=colour, label=label)
    ax.axhline(c.get("budget_ms", 250), color=RED, linestyle="--", label="budget")
    ax.axhline(c.get("reference_ms", 370), color=GREY, linestyle=":", label="Powertools REST + Tracer")
    ax.set_xticks(range(len(names)), [_short(n) for n in names], fontsize=8)
    ax.set_ylabel("CPU ms (median)")
    ax.set_title("1. Cold start: import + init")
    ax.legend(fontsize=7)


def _throughput(ax: Any, t: dict[str, Any]) -> None:
    labels, values, colours = [], [], []
    for scenario in t.get("scenarios", []):
        label = (
            "local stack,\nno provider limit"
            if "no provider limit" in scenario["label"]
            else "local stack,\ndefaults"
        )
        labels.append(label)
        values.append(scenario["recipients_per_s"])
        colours.append(BLUE)
    model = t.get("lambda_model", {})
    if model:
        labels.append("Lambda\n(model)")
        values.append(model["limited_recipients_per_s"])
        colours.append(GREY)
    naive = t.get("naive", {}).get("recipients_per_s", 0)
    labels.append("naive client")
    values.append(naive)
    colours.append(ORANGE)
    ax.bar(range(len(values)), values, color=colours)
    ax.set_yscale("log")
    if naive:
        ax.axhline(naive * t.get("ratio_budget", 50), color=RED, linestyle="--", label="budget: 50× naive")
        ax.legend(fontsize=7)
    ax.set_xticks(range(len(labels)), labels, fontsize=7)
    ax.set_ylabel("recipients/s (log)")
    ax.set_title(f"4. Throughput: {t.get('ratio', 0):,.0f}× the naive client")


def _timeline(ax: Any, t: dict[str, Any]) -> None:
    for scenario, colour in zip(t.get("scenarios", []), (BLUE, GREEN, GREY), strict=False):
        points = scenario.get("timeline") or []
        if points:
            ax.plot([p[0] for p in points], [p[1] for p in points], color=colour, label=scenario["label"])
    naive = t.get("naive", {}).get("recipients_per_s", 0)
    end = max((p[0] for s in t.get("scenarios", []) for p in s.get("timeline") or []), default=1)
    ax.plot([0, end], [0, naive * end], color=ORANGE, label="naive client")
    ax.set_xlabel("seconds from the first POST")
    ax.set_ylabel("recipients at the provider")
    ax.set_title("4. Recipients submitted over time")
    ax.legend(fontsize=7)


def _cost(ax: Any, costs: dict[str, Any]) -> None:
    runs = [(k, v) for k, v in costs.items() if isinstance(v, dict) and "lines" in v]
    if not runs:
        return
    services = list(runs[0][1]["lines"])
    palette = [
        "#3b6ea8",
        "#7fa7d3",
        "#e08a2e",
        "#f2c185",
        "#4c9a5b",
        "#95c99f",
        "#8e6bb5",
        "#c0392b",
        "#9a9a9a",
        "#d4a017",
        "#555555",
    ]
    bottoms = [0.0] * len(runs)
    for i, service in enumerate(services):
        values = [run["lines"][service]["usd_per_million"] for _, run in runs]
        ax.bar(range(len(runs)), values, bottom=bottoms, color=palette[i % len(palette)], label=service)
        bottoms = [b + v for b, v in zip(bottoms, values, strict=True)]
    what_if = runs[0][1].get("what_if", {}).get("usd_per_million")
    labels = [k for k, _ in runs]
    if what_if is not None:
        ax.bar(
            len(labels),
            what_if,
            color="#cccccc",
            hatch="//",
            label="scattered, an item per (MsgId, packet) (model)",
        )
        labels.append("scattered,\nwhat if")
    straightforward = runs[0][1]["straightforward"]["usd_per_million"]
    ax.bar(len(labels), straightforward, color=GREY, label="straightforward design (model)")
    labels.append("straight-\nforward")
    ax.axhline(runs[0][1]["budget_usd_per_million"], color=RED, linestyle="--", label="budget")
    ax.set_xticks(range(len(labels)), labels, fontsize=8)
    ax.set_ylabel("USD per million recipients")
    ax.set_title("3. AWS cost per million recipients")
    ax.legend(fontsize=6, ncol=2)


def _push(ax: Any, p: dict[str, Any]) -> None:
    shapes = list(p.get("shapes") or {})
    model = p.get("lambda_model") or {}
    width = 0.2
    series = [
        ("push receiver, moto server", BLUE, "", [p["shapes"][s]["reports_per_s"] for s in shapes]),
        ("one PutItem per report, moto", ORANGE, "", [p["baseline"][s]["reports_per_s"] for s in shapes]),
        (
            "push receiver, Lambda (model)",
            BLUE,
            "//",
            [model.get(s, {}).get("reports_per_s", 0) for s in shapes],
        ),
        (
            "one PutItem per report, Lambda (model)",
            ORANGE,
            "//",
            [model.get("one_write_per_report", {}).get("reports_per_s", 0) for _ in shapes],
        ),
    ]
    for i, (label, colour, hatch, values) in enumerate(series):
        xs = [x + (i - 1.5) * width for x in range(len(shapes))]
        ax.bar(xs, values, width, color=colour, hatch=hatch, alpha=0.6 if hatch else 1.0, label=label)
    ax.set_xticks(range(len(shapes)), shapes)
    ax.set_ylabel("reports/s")
    ax.set_title("5. Push handling, 250-report packets")
    ax.legend(fontsize=6)


def _memory(ax: Any, m: dict[str, Any]) -> None:
    names = list(m)
    ax.bar(range(len(names)), [m[n]["peak_rss_mb"] for n in names], color=BLUE, label="peak RSS")
    ax.bar(range(len(names)), [m[n]["rss_after_import_mb"] for n in names], color=GREEN, label="after import")
    ax.axhline(256, color=RED, linestyle="--", label="function memory (256 MB)")
    ax.axhline(192, color=GREY, linestyle=":", label="75%")
    ax.set_xticks(range(len(names)), [_short(n) for n in names], fontsize=8)
    ax.set_ylabel("MB")
    ax.set_title("7. Peak memory per handler")
    ax.legend(fontsize=7)


def _lanes(ax: Any, bulk_ax: Any, lane: dict[str, Any]) -> None:
    ax.set_title("11. A code's 202 → submit under a bulk backlog")
    bulk_ax.set_title("11. Bulk submits a second meanwhile")
    if not lane:
        ax.text(0.5, 0.5, "not measured", ha="center", transform=ax.transAxes)
        return
    waits = lane.get("code_waits") or []
    ax.scatter([t for t, _ in waits], [ms for _, ms in waits], color=BLUE, s=14, label="each code")
    budget = 2000 + lane.get("simulator_latency_ms", 0)
    ax.axhline(budget, color=RED, linestyle="--", label=f"budget p99 {budget:,.0f} ms")
    ax.axhline(lane["code_wait_ms"]["p99"], color=ORANGE, linestyle=":", label="p99 measured")
    ax.set_xlabel("s since the first code")
    ax.set_ylabel("ms")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=7)
    per_second = lane.get("bulk_per_second") or []
    bulk_ax.bar(range(len(per_second)), per_second, color=GREY, label="bulk submits")
    limit = lane.get("limit_submits_per_s", 0)
    bulk_ax.axhline(limit, color=RED, linestyle="--", label=f"limit {limit}/s")
    bulk_ax.axhline(limit * 0.9, color=ORANGE, linestyle=":", label="90 %")
    codes = lane.get("codes_at_s") or []
    bulk_ax.scatter(
        codes, [limit * 1.05] * len(codes), color=BLUE, marker="v", s=12, label="a code submitted"
    )
    bulk_ax.set_xlabel("s since the first bulk submit")
    bulk_ax.legend(fontsize=7)


def _rate_window(ax: Any, w: dict[str, Any]) -> None:
    runs = w.get("runs") or []
    ax.set_title("10. Busiest sliding second / limit")
    if not runs:
        ax.text(0.5, 0.5, "not measured", ha="center", transform=ax.transAxes)
        return
    labels = [f"{run['limit_submits_per_s']:,}/s" for run in runs]
    ax.bar(
        labels,
        [run["busiest_window"] / run["limit_submits_per_s"] for run in runs],
        color=BLUE,
        label="busiest window",
    )
    ax.bar(labels, [run["share_of_limit"] for run in runs], color=GREEN, width=0.4, label="average rate")
    ax.axhline(1.0, color=RED, linestyle="--", label="the limit")
    ax.set_ylim(0, 1.15)
    ax.set_ylabel("share of the limit")
    ax.legend(fontsize=7)
