"""Why: one command measures every part side by side in one run and writes the report.

``python -m bench [--quick] [--out DIR]``.

Full mode (``make bench``) writes ``docs/benchmarks.md``, ``docs/benchmarks.json``,
``docs/benchmarks.png`` and ``docs/capacity.md``; it builds ``.venv-runtime`` (Python
3.13 and the layer's requirements only) the first time. Quick mode uses tiny sizes, to
prove the benchmark runs (``tests/bench``); it writes to ``build/bench-quick`` unless
``--out`` says otherwise, and uses the dev interpreter if ``.venv-runtime`` is not built.

One module per measurement: ``coldstart`` (1), ``localrun`` (2, 3, 4), ``costs`` (3),
``probes`` (5, 6, 7), ``capacity`` (8), ``ratewindow`` (10), ``lanes`` (11, and
the single-recipient cost of 3); ``report`` and ``chart`` write them. A measurement that
fails is reported as an error; the others still run, and the exit status is 1.

``--only PART,...`` measures some parts only (``local``, ``lanes``, ``ratewindow``,
``coldstart``, ``probes``) and merges them into the report's existing
``benchmarks.json``: the report then says which command measured which section, and when.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import summary
from bench.runtime import REPO

ORIGINAL_STDERR = os.dup(2)


def log(message: str) -> None:
    """Progress, to the terminal even while the workers' output is being captured."""
    os.write(ORIGINAL_STDERR, f"[bench {time.strftime('%H:%M:%S')}] {message}\n".encode())


@dataclass(frozen=True)
class Sizes:
    coldstart_samples: int
    breakdown_runs: int
    reps: dict[str, int]
    largest_send: int
    throughput_recipients: int
    throughput_per_post: int
    naive_numbers: int
    counted_recipients: int
    personalised_messages: int
    personalised_contents: int
    intake: dict[str, tuple[int, str]]
    unlimited_scenario: bool
    build_runtime: bool
    lanes_backlog: int = 100_000
    lanes_codes: int = 50
    lanes_code_interval: float = 0.5
    single_sends: int = 300
    rate_window_rates: tuple[int, ...] = (20, 200, 1_000)
    rate_window_seconds: float = 5.0
    warmup: bool = True
    send_sizes: tuple[int, ...] = (1, 10_000)
    extra: dict[str, Any] = field(default_factory=dict)


FULL = Sizes(
    coldstart_samples=7,
    breakdown_runs=3,
    reps={"send_1": 200, "send_10000": 10, "worker_batch": 50, "push": 30, "balance": 10},
    largest_send=100_000,
    throughput_recipients=100_000,
    throughput_per_post=10_000,
    naive_numbers=300,
    counted_recipients=10_000,
    personalised_messages=1_000,
    personalised_contents=10,
    # The largest request of each shape the template's defaults admit.
    intake={"bulk": (100_000, "156"), "personalised": (1_000, "157"), "verification": (1_000, "158")},
    unlimited_scenario=True,
    build_runtime=True,
)
QUICK = Sizes(
    coldstart_samples=1,
    breakdown_runs=1,
    reps={"send_1": 5, "send_10000": 2, "worker_batch": 3, "push": 3, "balance": 2},
    largest_send=20_000,
    throughput_recipients=2_000,
    throughput_per_post=1_000,
    naive_numbers=20,
    counted_recipients=400,
    personalised_messages=100,
    personalised_contents=5,
    intake={"bulk": (10_000, "156"), "personalised": (100, "157"), "verification": (100, "158")},
    unlimited_scenario=False,
    build_runtime=False,
    warmup=False,
    lanes_backlog=1_000,
    lanes_codes=3,
    single_sends=10,
    rate_window_rates=(20,),
    rate_window_seconds=1.5,
)
PARTS = ("coldstart", "probes", "local", "lanes", "ratewindow")
SCATTERED = {"delay_min_seconds": 0.2, "delay_max_seconds": 1.0, "batch_window_seconds": 0.05}
GROUPED = {"delay_min_seconds": 0.5, "delay_max_seconds": 0.5, "batch_window_seconds": 0.05}


def _isolate_from_aws() -> None:
    """Never reach a real AWS account, whatever the shell holds."""
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        }
    )
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "GUODU_SUBMIT_URL"):
        os.environ.pop(name, None)


class Bench:
    def __init__(self, sizes: Sizes, mode: str, work: Path, only: frozenset[str] = frozenset(PARTS)) -> None:
        self.sizes = sizes
        self.mode = mode
        self.work = work
        self.only = only
        self.aws_dir = work / "aws"
        self.r: dict[str, Any] = {"mode": mode, "errors": {}}
        self._counted: dict[str, Any] = {}

    def stage(self, name: str, call: Any) -> Any:
        self.r.setdefault("stages", []).append(name)
        began = time.perf_counter()
        log(f"{name} ...")
        try:
            value = call()
        except Exception as err:
            self.r["errors"][name] = f"{type(err).__name__}: {err}"
            log(f"{name} FAILED: {err}\n{traceback.format_exc()}")
            return None
        log(f"{name} done in {time.perf_counter() - began:.0f} s")
        return value

    # -- measurements ---------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        from bench import runtime

        started = time.perf_counter()
        self.r["environment"] = {"load_before": _load()}
        rt = None
        if self.only & {"coldstart", "probes"}:
            rt = self.stage(
                "runtime environment",
                lambda: runtime.ensure_runtime(create=self.sizes.build_runtime, log=log),
            )
        functions = self.stage("functions from template.yaml", runtime.function_envs)
        if rt is not None and functions is not None:
            if "coldstart" in self.only:
                shipped = self.stage(
                    "layer as sam build ships it",
                    lambda: runtime.build_shipped(rt, functions, self.work / "shipped", log=log),
                )
                self.r["coldstart"] = self.stage(
                    "1. cold start", lambda: self._coldstart(rt, functions, shipped)
                )
            if "probes" in self.only:
                probes = self.stage("6-7. warm CPU and memory", lambda: self._probes(rt, functions))
                if probes:
                    self.r["cpu"], self.r["memory"] = probes["cpu"], probes["memory"]
                    self.r["push"] = probes["push"]
        if "local" in self.only:
            self.stage("2-4. local stack runs", self._local)
        if "lanes" in self.only:
            self.r["lanes"] = self.stage("11. lanes: codes under a bulk backlog", self._lanes)
        if "ratewindow" in self.only:
            self.r["rate_window"] = self.stage("10. the limiter's sliding window", self._rate_window)
        if self._counted:
            self.stage("3. cost model", lambda: self._costs(functions or {}))
        if "local" in self.only:
            self.stage("8. capacity", self._capacity)
        self.r["environment"].update(_environment(rt))
        self.r["environment"]["load_after"] = _load()
        self.r["generated"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        self.r["elapsed_s"] = time.perf_counter() - started
        self.r["summary"] = summary.rows(self.r)
        return self.r

    def _coldstart(self, rt: Any, functions: Any, shipped: Any) -> Any:
        from bench import coldstart

        return coldstart.measure(
            rt,
            functions,
            shipped,
            samples=self.sizes.coldstart_samples,
            breakdown_runs=self.sizes.breakdown_runs,
            warmup=self.sizes.warmup,
            log=log,
        )

    def _probes(self, rt: Any, functions: Any) -> Any:
        from bench import probes

        return probes.measure(
            rt,
            functions,
            send_sizes=self.sizes.send_sizes,
            largest_send=self.sizes.largest_send,
            reps=self.sizes.reps,
            log=log,
        )

    def _local(self) -> None:
        from bench import localrun
        from guodu_simulator import SimulatorConfig
        from smsgw_local.template import load_template

        s = self.sizes
        simulator = SimulatorConfig(seed=7, log_submits=False, latency_ms=30)
        scenarios: list[dict[str, Any]] = []
        with localrun.StackRun(
            self.work / "stack-default", aws_dir=self.aws_dir, simulator=simulator, log=log
        ) as run:
            pipeline = localrun.throughput(
                run, recipients=s.throughput_recipients, per_post=s.throughput_per_post, prefix="150", log=log
            )
            limit = run.provisioned.context.parameters.get("GuoduMaxSubmitsPerSecond")
            pipeline["label"] = "local stack, template defaults" + (
                f" (provider limit {limit} submits/s)" if limit else ""
            )
            scenarios.append(pipeline)
            self.r["throughput"] = {"pipeline": pipeline, "scenarios": scenarios, "ratio_budget": 50}
            naive = localrun.naive(run, numbers=s.naive_numbers, prefix="151", log=log)
            self.r["throughput"]["naive"] = naive
            self.r["throughput"]["ratio"] = round(pipeline["recipients_per_s"] / naive["recipients_per_s"], 1)
            run.wait(lambda: run.sim.pending_pushes() == 0, 120, "the throughput run's reports to drain")
            for name, timing, prefix in (("scattered", SCATTERED, "152"), ("grouped", GROUPED, "153")):
                self._counted[name] = localrun.counted_run(
                    run,
                    recipients=s.counted_recipients,
                    per_post=min(s.counted_recipients, 10_000),
                    prefix=prefix,
                    push=timing,
                    log=log,
                )
            personalised = localrun.personalised(
                run, messages=s.personalised_messages, contents=s.personalised_contents, prefix="154"
            )
            self.r["intake"] = self.stage(
                "9. intake of the largest requests", lambda: localrun.intake(run, shapes=s.intake)
            )
        bulk = self._counted["scattered"]
        self.r["provider_calls"] = {
            "bulk": {
                "recipients": bulk["recipients"],
                "submits": bulk["submits"],
                "submits_per_1000": round(bulk["submits"] * 1000 / bulk["recipients"], 2),
            },
            "personalised": personalised,
        }
        if s.unlimited_scenario and "GuoduMaxSubmitsPerSecond" in load_template().get("Parameters", {}):
            with localrun.StackRun(
                self.work / "stack-unlimited",
                aws_dir=self.aws_dir,
                simulator=simulator,
                parameters={"GuoduMaxSubmitsPerSecond": 0},
                log=log,
            ) as run:
                unlimited = localrun.throughput(
                    run,
                    recipients=s.throughput_recipients,
                    per_post=s.throughput_per_post,
                    prefix="155",
                    log=log,
                )
            unlimited["label"] = "local stack, no provider limit (GuoduMaxSubmitsPerSecond=0)"
            scenarios.append(unlimited)

    def _lanes(self) -> dict[str, Any]:
        """A fresh stack (template defaults): codes under a bulk backlog, then single sends."""
        from bench import lanes, localrun
        from guodu_simulator import SimulatorConfig

        s = self.sizes
        simulator = SimulatorConfig(seed=9, log_submits=False, latency_ms=30)
        with localrun.StackRun(
            self.work / "stack-lanes", aws_dir=self.aws_dir, simulator=simulator, log=log
        ) as run:
            # Reports are not part of this measurement (as in section 4): pushed, they would
            # be a second load on the one moto process the workers wait on.
            run.sim.configure({"push": {"url": None}})
            result = lanes.codes_under_backlog(
                run,
                backlog=s.lanes_backlog,
                per_post=min(s.lanes_backlog, 10_000),
                codes=s.lanes_codes,
                interval=s.lanes_code_interval,
                log=log,
            )
            run.wait(lambda: run.sim.pending_pushes() == 0, 600, "the backlog's reports to drain")
            for category, prefix in (("verification", "172"), ("transactional", "173")):
                self._counted[f"single_{category}"] = lanes.single_sends(
                    run, sends=s.single_sends, category=category, prefix=prefix, push=SCATTERED, log=log
                )
        return result

    def _rate_window(self) -> dict[str, Any]:
        from bench import ratewindow

        return ratewindow.measure(
            self.sizes.rate_window_rates, seconds=self.sizes.rate_window_seconds, log=log
        )

    def _costs(self, functions: dict[str, Any]) -> None:
        from bench import costs
        from bench.capacity import parameters

        memory = {name: f.memory for name, f in functions.items()}
        retention = int(parameters().get("RetentionDays") or 30)
        self.r.setdefault("cost", {})
        self.r.setdefault("counted", {})
        for name, counted in self._counted.items():
            model = costs.model(counted, memory, retention)
            for key in ("push_items_per_packet", "push_msg_ids_per_packet"):
                if key in counted:
                    model[key] = counted[key]
            if "push_items_per_packet" in counted:
                model["what_if"] = costs.what_if_own_items(model)
            self.r["cost"][name] = model
            self.r["counted"][name] = {
                k: v for k, v in counted.items() if k not in ("records", "billed", "items")
            }

    def _capacity(self) -> None:
        from bench import capacity

        measured = {
            "cost": self.r["cost"]["scattered"],
            "counted": self.r["counted"]["scattered"],
            "cpu": self.r.get("cpu", {}),
        }
        plan = capacity.plan(measured)
        self.r["capacity"] = plan
        if self.r.get("push") and self.r.get("cpu"):
            self.r["push"]["lambda_model"] = capacity.push_model(self.r["push"], self.r["cpu"])
        if "throughput" in self.r:
            self.r["throughput"]["lambda_model"] = {
                "design_recipients_per_s": plan["design_recipients_per_s"],
                "limited_recipients_per_s": plan["limited_recipients_per_s"],
                "explanation": (
                    f"a chunk of 200 takes about {plan['chunk_ms_model']} ms in a worker (the provider's "
                    f"{capacity.PROVIDER_MS:g} ms + {plan['calls_per_chunk']} AWS calls × "
                    f"{capacity.DYNAMODB_MS:g} ms, assumed, + the "
                    f"measured CPU × {capacity.LAMBDA_CPU_FACTOR:.1f} for 256 MB"
                    + (
                        f" + {plan['limiter_wait_ms_model']:g} ms on average waiting for a rate-limit slot"
                        if plan["limiter_wait_ms_model"]
                        else ""
                    )
                    + "), "
                    "so one instance submits about "
                    f"{plan['worker_instance_recipients_per_s']:,.0f} recipients/s and "
                    "`SubmitMaxConcurrency` = "
                    f"{plan['worker_concurrency']} instances {plan['design_recipients_per_s']:,.0f}/s; "
                    + (
                        f"`GuoduMaxSubmitsPerSecond` = {plan['rate_limit_submits_per_s']} caps the lane at "
                        f"{plan['limited_recipients_per_s']:,.0f} recipients/s."
                        if plan["rate_limit_submits_per_s"]
                        else "no provider limit is set."
                    )
                ),
            }


def _load() -> str:
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "?"


def _environment(rt: Any) -> dict[str, Any]:
    import botocore
    import moto

    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="ascii", errors="replace").splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO, check=False
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    ).stdout
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "platform": platform.platform(),
        "commit": commit + (" (working tree has uncommitted changes)" if dirty.strip() else ""),
        "dev interpreter (local stack, moto)": (
            f"Python {platform.python_version()}, botocore {botocore.__version__}, moto {moto.__version__}"
        ),
        "runtime-only interpreter (cold start, CPU, memory)": (
            f"{_shown(rt.python)} (Python {rt.version}, boto3 {rt.boto3})"
            + (f"; {rt.note}" if rt.note else "")
            if rt
            else "unavailable"
        ),
        "boto3 pin": (
            "the dev environment's (requirements-dev.txt), not the exact version the Lambda runtime ships"
        ),
    }


def _shown(path: Path) -> str:
    """A path inside the repository as the repository sees it."""
    try:
        return str(path.relative_to(REPO))
    except ValueError:
        return str(path)


# The results each part writes (``cost``/``counted`` entries are merged key by key).
PART_KEYS = {
    "coldstart": ("coldstart",),
    "probes": ("cpu", "memory", "push"),
    "local": ("throughput", "provider_calls", "intake", "capacity"),
    "lanes": ("lanes",),
    "ratewindow": ("rate_window",),
}


def _merged(new: dict[str, Any], previous: Path, only: frozenset[str], command: str) -> dict[str, Any]:
    """``new`` (some parts) merged into the report at ``previous``, each part recording the
    command and time that measured it."""
    if not previous.exists():
        return new
    merged: dict[str, Any] = json.loads(previous.read_text(encoding="utf-8"))
    provenance = merged.setdefault("parts", {})
    for part in only:
        for key in PART_KEYS[part]:
            if key in new:
                merged[key] = new[key]
        provenance[part] = {
            "command": command,
            "generated": new["generated"],
            "elapsed_s": round(new["elapsed_s"]),
        }
    for key in ("cost", "counted"):
        merged.setdefault(key, {}).update(new.get(key) or {})
    # The errors of the stages run again are theirs now.
    kept = {k: v for k, v in merged.get("errors", {}).items() if k not in new.get("stages", [])}
    merged["errors"] = {**kept, **new["errors"]}
    merged["summary"] = summary.rows(merged)
    return merged


def render(source: Path, out: Path) -> int:
    """Write the report, chart and capacity page again from measured figures (no measuring)."""
    from bench import chart, report

    results = json.loads(source.read_text(encoding="utf-8"))
    results["summary"] = summary.rows(results)
    report.write(results, out)
    chart.draw(results, out / "benchmarks.png")
    log(f"rendered {out / 'benchmarks.md'} from {source}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__.splitlines()[0] if __doc__ else None
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes, to prove it runs")
    parser.add_argument(
        "--out", type=Path, help="where to write the report (default: docs/, or build/bench-quick)"
    )
    parser.add_argument(
        "--keep-work", action="store_true", help="keep the working folder (recordings, handler output)"
    )
    parser.add_argument(
        "--render", type=Path, metavar="JSON", help="only write the report again from a benchmarks.json"
    )
    parser.add_argument(
        "--only",
        metavar="PART,...",
        help=f"measure only these parts ({', '.join(PARTS)}), merged into the report's benchmarks.json",
    )
    args = parser.parse_args(argv)
    if args.render:
        return render(args.render, args.out or args.render.parent)
    _isolate_from_aws()
    mode = "quick" if args.quick else "full"
    out: Path = args.out or (REPO / "build" / "bench-quick" if args.quick else REPO / "docs")
    only = frozenset(part.strip() for part in (args.only or ",".join(PARTS)).split(",") if part.strip())
    if only - set(PARTS):
        parser.error(f"unknown parts: {', '.join(sorted(only - set(PARTS)))}")
    work = Path(tempfile.mkdtemp(prefix="smsgw-bench-"))
    log(f"{mode} run; working folder {work}; report to {out}")
    bench = Bench(QUICK if args.quick else FULL, mode, work, only)
    results = bench.run()
    command = (
        "python -m bench" + (" --quick" if args.quick else "") + (f" --only {args.only}" if args.only else "")
    )
    elapsed, errors = results["elapsed_s"], list(results["errors"])
    results = _merged(results, out / "benchmarks.json", only, command) if args.only else results
    from bench import report

    try:
        report.write(results, out)
    except Exception as err:
        results["errors"]["report"] = f"{type(err).__name__}: {err}"
        log(f"report FAILED: {traceback.format_exc()}")
        (out / "benchmarks.json").write_text(json.dumps(results, indent=1, default=str), encoding="utf-8")
    try:
        from bench import chart

        chart.draw(results, out / "benchmarks.png")
    except Exception as err:
        results["errors"]["chart"] = f"{type(err).__name__}: {err}"
        log(f"chart FAILED: {err}")
        report.write(results, out)
    if not args.keep_work:
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    log(
        f"wrote {out / 'benchmarks.md'}; measured in {elapsed:.0f} s"
        + (f"; errors: {errors}" if errors else "")
    )
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
