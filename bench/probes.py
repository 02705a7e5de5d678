"""Why: 5. push handling, 6. warm CPU and 7. peak memory need each handler alone in a fresh process.

The probe (``bench/probe``) runs with the runtime-only interpreter; its AWS is a moto
server in a process of its own (the template's resources made there), and the submit
worker and the balance check talk HTTP to a Guodu simulator in this process (keep-alive,
no latency), so the probe's CPU is the handler's alone. The send probe also sends the
largest request the API accepts (peak memory), and leaves behind one 1,000-recipient
request per worker invocation, so that each submits chunks nobody has submitted yet.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.hook import _capacity
from bench.runtime import (
    BENCH_PUSH_TOKEN,
    BENCH_SECRET,
    EVENTS,
    REPO,
    FunctionEnv,
    Runtime,
    function_envs,
    handler_env,
)
from guodu_simulator import Simulator, SimulatorConfig
from smsgw_local.moto_server import MotoServer

MEMORY_LIMIT_MB = 256
ROOM_FRACTION = 0.75  # "with room to spare": at most three quarters of the function's memory

KINDS = {
    "SendApiFunction": "send",
    "SubmitWorkerFunction": "worker",
    "PushReceiverFunction": "push",
    "BalanceCheckFunction": "balance",
}


def _run_probe(
    runtime: Runtime, function: FunctionEnv, config: dict[str, Any], env: dict[str, str], work: Path
) -> dict[str, Any]:
    config_path = work / f"{function.logical_id}.json"
    out_path = work / f"{function.logical_id}.out.json"
    config = {
        **config,
        "out": str(out_path),
        "events_dir": str(EVENTS),
        "code_dir": str(function.code_dir),
        "layer_dir": str(REPO / "layers" / "shared"),
    }
    config_path.write_text(json.dumps(config), encoding="utf-8")
    env = {**env, "PYTHONPATH": str(REPO)}  # the bench package only: nothing is installed
    done = subprocess.run(
        [str(runtime.python), "-m", "bench.probe", str(config_path)],
        capture_output=True,
        text=True,
        env=env,
        cwd=str(function.code_dir),
        timeout=900,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"probe of {function.logical_id} failed: {done.stderr.strip()[-1500:]}")
    result: dict[str, Any] = json.loads(out_path.read_text(encoding="utf-8"))
    return result


def measure(
    runtime: Runtime,
    functions: dict[str, FunctionEnv],
    *,
    send_sizes: tuple[int, ...],
    largest_send: int,
    reps: dict[str, int],
    log: Callable[[str], None],
) -> dict[str, Any]:
    config = SimulatorConfig(seed=7, log_submits=False).add_account("bench", BENCH_SECRET)
    warmup = 2
    results: dict[str, Any] = {}
    moto = MotoServer()
    tmp = tempfile.mkdtemp(prefix="smsgw-probe-")
    with _capacity.billing(tmp):  # its DynamoDB requests billed (section 5's write units)
        moto.start()
    try:
        # The same functions, their resources made in the moto server and their clients sent to it.
        served = function_envs(endpoint_url=moto.wait_ready())
        with Simulator(config) as simulator:
            requests: list[str] = []
            for logical, kind in KINDS.items():
                if logical not in functions:
                    continue
                probe: dict[str, Any] = {"kind": kind, "reps": reps, "warmup": warmup, "record_dir": tmp}
                env = handler_env(served[logical], GUODU_SUBMIT_URLS=simulator.submit_url)
                if kind == "send":
                    probe.update(
                        send_sizes=list(send_sizes),
                        largest_send=largest_send,
                        leave_requests=reps["worker_batch"] + warmup,
                    )
                elif kind == "worker":
                    probe.update(requests=requests)
                elif kind == "push":
                    probe.update(push_token=BENCH_PUSH_TOKEN)
                log(f"probe: {logical}")
                result = _run_probe(runtime, functions[logical], probe, env, Path(tmp))
                requests = result.pop("requests", requests)
                results[logical] = result
        records = [
            json.loads(line)
            for path in Path(tmp).glob("*.jsonl")
            for line in path.read_text(encoding="utf-8").splitlines()
        ]
        billed = _capacity.read(tmp, 0.0, float("inf"))
    finally:
        moto.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return summarise(results, records, billed)


def summarise(
    results: dict[str, Any], records: list[dict[str, Any]], billed: list[dict[str, Any]]
) -> dict[str, Any]:
    cpu: dict[str, Any] = {}
    memory: dict[str, Any] = {}
    windows: dict[str, list[tuple[float, float]]] = {}
    for logical, result in results.items():
        for name, workload in result["workloads"].items():
            windows[name] = workload.pop("windows")
            calls = _calls(_within(records, windows[name]))
            cpu[name] = {
                "function": logical,
                **workload,
                "aws_calls_per_invocation": {op: round(n / workload["reps"], 2) for op, n in calls.items()},
                "aws_calls_total_per_invocation": round(sum(calls.values()) / workload["reps"], 2),
            }
        peak = result["peak_rss_kb"] / 1024
        memory[logical] = {
            "rss_after_import_mb": round(result["rss_after_import_kb"] / 1024, 1),
            "peak_rss_warm_mb": round(result["peak_rss_warm_kb"] / 1024, 1),
            "peak_rss_mb": round(peak, 1),
            "largest_send": result.get("largest_send"),
            "limit_mb": MEMORY_LIMIT_MB,
            "fits_with_room": peak <= MEMORY_LIMIT_MB * ROOM_FRACTION,
            "python": result["python"],
        }
    return {
        "cpu": cpu,
        "memory": memory,
        "room_fraction": ROOM_FRACTION,
        "push": push(cpu, windows, records, billed),
    }


def _within(lines: list[dict[str, Any]], windows: list[tuple[float, float]]) -> list[dict[str, Any]]:
    return [line for line in lines if any(t0 <= line["t"] <= t1 for t0, t1 in windows)]


def _calls(records: list[dict[str, Any]]) -> dict[str, int]:
    return dict(
        Counter(f"{record['svc']}.{record['op']}" for record in sorted(records, key=lambda r: r["op"]))
    )


PUSH_SHAPES = {"grouped": ("push_250_grouped", 2), "scattered": ("push_250_scattered", 25)}


def push(
    cpu: dict[str, Any], windows: dict[str, Any], records: list[dict[str, Any]], billed: list[dict[str, Any]]
) -> dict[str, Any]:
    """5. Push handling, from the push probe: wall time per 250-report packet against the moto
    server, the AWS requests the handler made inside each timed packet, and their write units
    (``costs.dynamodb_units`` on the moto server's billed lines)."""
    from bench.costs import dynamodb_units

    def figures(workload: str, msg_ids: int) -> dict[str, Any]:
        w = cpu[workload]
        calls = _calls(_within(records, windows[workload]))
        return {
            "wru_per_packet": round(
                dynamodb_units(_within(billed, windows[workload]), [])["wru"] / w["reps"], 1
            ),
            "msg_ids_per_packet": msg_ids,
            "ms_median": round(w["wall_ms_median"], 1),
            "ms_p90": round(w["wall_ms_p90"], 1),
            "reports_per_s": round(250 / w["wall_ms_median"] * 1000),
            "aws_requests_per_packet": {op: round(n / w["reps"], 1) for op, n in sorted(calls.items())},
            "aws_requests_total_per_packet": round(sum(calls.values()) / w["reps"], 1),
        }

    if "push_250_grouped" not in cpu:
        return {}
    shapes = {
        shape: figures(workload, n) | {"packets_per_msg_id": max(1, 200 // (250 // n))}
        for shape, (workload, n) in PUSH_SHAPES.items()
    }
    baseline = figures("push_250_one_write_per_report", 2)
    return {
        "packet_items": 250,
        "packets": cpu["push_250_grouped"]["reps"],
        "shapes": shapes,
        "baseline": dict.fromkeys(shapes, baseline),
    }
