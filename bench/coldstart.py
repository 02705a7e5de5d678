"""1. Cold start: import plus initialisation of each handler, median of fresh processes.

Each sample is a new interpreter of the runtime-only environment with the function's
environment (from template.yaml), timing ``import app`` (which runs the module's
initialisation: settings, clients, resolvers) from inside the process. Interpreter
start-up and Lambda's own runtime bootstrap are not included; the whole process's wall
time is reported beside it. Three layouts:

- ``venv``: the repository's code in ``.venv-runtime``, bytecode cached (what the budget
  is judged on);
- ``shipped``: the layer and functions as ``sam build`` ships them (``runtime.build_shipped``:
  the layer's bytecode compiled ahead of time by ``layers/shared/Makefile``), none written
  at run time (Lambda's /opt and /var/task are read-only);
- ``no_bytecode``: the same layer without its ``.pyc`` files, as the default python builder
  shipped it: every module of the layer compiled on every cold start.

Samples of every handler and layout are interleaved, so a burst of load on the machine
spreads over all of them instead of one.
"""

from __future__ import annotations

import json
import re
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.runtime import FunctionEnv, Runtime, Shipped, handler_env

BUDGET_MS = 250.0
REFERENCE_MS = 370.0  # a plain Powertools REST handler with Tracer and a table (TOOLING_NOTES)

_SCRIPT = """
import json, resource, sys, time
w0, c0 = time.perf_counter(), time.process_time()
sys.path[:0] = [sys.argv[1], sys.argv[2]]
import app
w1, c1 = time.perf_counter(), time.process_time()
hwm = [int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:")]
print(json.dumps({"ms": (w1 - w0) * 1000, "cpu_ms": (c1 - c0) * 1000,
                  "rss_kb": hwm[0] if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""

_IMPORTTIME = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|( +)(\S+)$")


def _layouts(shipped: Shipped | None) -> dict[str, tuple[Callable[[FunctionEnv], tuple[Path, Path]], bool]]:
    layouts: dict[str, tuple[Callable[[FunctionEnv], tuple[Path, Path]], bool]] = {
        "venv": (lambda f: (f.code_dir, f.code_dir.parents[1] / "layers" / "shared"), False),
    }
    if shipped is not None:
        layouts["shipped"] = (lambda f: (shipped.functions / f.folder, shipped.layer), True)
        layouts["no_bytecode"] = (lambda f: (shipped.functions / f.folder, shipped.layer_no_bytecode), True)
    return layouts


def _run_once(
    runtime: Runtime, function: FunctionEnv, code: Path, layer: Path, readonly: bool
) -> dict[str, float]:
    env = handler_env(function)
    if readonly:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    started = time.perf_counter()
    out = subprocess.run(
        [str(runtime.python), "-c", _SCRIPT, str(code), str(layer)],
        capture_output=True,
        text=True,
        env=env,
        cwd=str(code),
        timeout=120,
        check=False,
    )
    process_ms = (time.perf_counter() - started) * 1000
    if out.returncode != 0:
        raise RuntimeError(f"{function.logical_id} did not import: {out.stderr.strip()[-800:]}")
    sample: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    sample["process_ms"] = process_ms
    return sample


def breakdown(runtime: Runtime, function: FunctionEnv, runs: int) -> list[dict[str, Any]]:
    """What ``import app`` spends its time on (``-X importtime``; median of ``runs``)."""
    per_name: dict[str, list[float]] = {}
    for _ in range(runs):
        out = subprocess.run(
            [
                str(runtime.python),
                "-X",
                "importtime",
                "-c",
                _SCRIPT,
                str(function.code_dir),
                str(function.code_dir.parents[1] / "layers" / "shared"),
            ],
            capture_output=True,
            text=True,
            env=handler_env(function),
            cwd=str(function.code_dir),
            timeout=120,
            check=False,
        )
        sample = json.loads(out.stdout.strip().splitlines()[-1])
        lines = [m for m in (_IMPORTTIME.match(line) for line in out.stderr.splitlines()) if m]
        children: dict[str, float] = {}
        app_total = 0.0
        for match in lines:
            depth = (len(match.group(3)) - 1) // 2
            name = match.group(4)
            if depth == 0:
                if name == "app":
                    app_total = int(match.group(2)) / 1000
                    break
                children.clear()
            elif depth == 1:
                group = "smsgw (the gateway's library)" if name.startswith("smsgw") else name
                children[group] = children.get(group, 0.0) + int(match.group(2)) / 1000
        children["app module body (settings, clients, resolver)"] = max(
            0.0, app_total - sum(children.values())
        )
        children["(total import app, importtime's own count)"] = app_total
        children["(wall time, with importtime's overhead)"] = sample["ms"]
        for name, value in children.items():
            per_name.setdefault(name, []).append(value)
    rows = [{"what": name, "ms": round(statistics.median(values), 1)} for name, values in per_name.items()]
    return sorted(rows, key=lambda r: -r["ms"] if not r["what"].startswith("(") else 1e9)


def measure(
    runtime: Runtime,
    functions: dict[str, FunctionEnv],
    shipped: Shipped | None,
    *,
    samples: int,
    breakdown_runs: int,
    warmup: bool,
    log: Callable[[str], None],
) -> dict[str, Any]:
    layouts = _layouts(shipped)
    # One untimed run of each, so the venv's bytecode cache exists and files are in the page cache.
    if warmup:
        for name, (paths, readonly) in layouts.items():
            for function in functions.values():
                _run_once(runtime, function, *paths(function), readonly)
            log(f"cold start: {name} warmed")
    results: dict[str, dict[str, list[dict[str, float]]]] = {f: {n: [] for n in layouts} for f in functions}
    for i in range(samples):
        for name, (paths, readonly) in layouts.items():
            for logical, function in functions.items():
                results[logical][name].append(_run_once(runtime, function, *paths(function), readonly))
        log(f"cold start: sample {i + 1}/{samples}")
    handlers: dict[str, Any] = {}
    for logical, by_layout in results.items():
        handlers[logical] = {
            name: {
                "median_ms": round(statistics.median(s["ms"] for s in runs), 1),
                "cpu_median_ms": round(statistics.median(s["cpu_ms"] for s in runs), 1),
                "process_median_ms": round(statistics.median(s["process_ms"] for s in runs), 1),
                "min_ms": round(min(s["ms"] for s in runs), 1),
                "max_ms": round(max(s["ms"] for s in runs), 1),
                "rss_after_import_mb": round(statistics.median(s["rss_kb"] for s in runs) / 1024, 1),
                "samples": len(runs),
            }
            for name, runs in by_layout.items()
        }
        # Judged on CPU time: importing is CPU-bound (the files are in the page cache after the
        # untimed run), and CPU time is what the same import costs on a core of its own; on a
        # shared machine the wall time also holds other people's work. Both are reported.
        handlers[logical]["budget_met"] = handlers[logical]["venv"]["cpu_median_ms"] <= BUDGET_MS
    return {
        "budget_ms": BUDGET_MS,
        "reference_ms": REFERENCE_MS,
        "samples": samples,
        "layouts": list(layouts),
        "handlers": handlers,
        "breakdown": {logical: breakdown(runtime, f, breakdown_runs) for logical, f in functions.items()},
        "layer_distributions": shipped.dists if shipped else [],
        "shipped_how": shipped.how if shipped else "",
        "shipped_inventory": shipped.inventory if shipped else {},
    }
