"""Why: throughput and cost are measured on the real handlers in the local twin: pipeline
throughput (4), the naive client, and the full run whose AWS requests are counted for the
cost model (2, 3).

The stack is ``smsgw_local.LocalGateway`` started from a copy of template.yaml whose only
difference is two variables in ``Globals``: ``PYTHONPATH`` (``bench/hook``, so that
Python loads the bench's ``sitecustomize`` in every function worker) and
``SMSGW_BENCH_AWS_LOG_DIR``. That hook records every botocore call the handlers make;
the same recorder in this process records the SQS poller's calls (Lambda's event source
mapping, which AWS bills as SQS requests). Handler output (their CloudWatch log lines)
is captured by pointing this process's stdout/stderr, which the workers inherit, at a
file. Nothing in a handler or in the local stack knows about any of it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import requests
import yaml

from bench.hook import _awsrecorder, _capacity
from bench.runtime import REPO
from guodu_simulator import Simulator, SimulatorConfig
from smsgw.adapters.throttle import SLACK_SECONDS
from smsgw.provider.guodu import Credentials, SubmitRequest
from smsgw_local.provision import Provisioned
from smsgw_local.stack import LocalGateway
from smsgw_local.template import load_template

HOOK_DIR = REPO / "bench" / "hook"
CONTENT = "【示例】您的验证码是123456，5分钟内有效。"
WORKER = "SubmitWorkerFunction"
NUMBERS_PER_SUBMIT = 200
_REPORT = re.compile(r"^(\S+)\s*\| REPORT RequestId: \S+ Duration: ([\d.]+) ms")


def mobiles(count: int, prefix: str) -> list[str]:
    """``count`` distinct valid mobiles; ``prefix`` (3 digits, 13x-19x) keeps runs apart."""
    return [f"{prefix}{i:08d}" for i in range(count)]


def derived_template(work: Path, log_dir: Path) -> Path:
    template = load_template()
    variables = template.setdefault("Globals", {}).setdefault("Function", {}).setdefault("Environment", {})
    variables = variables.setdefault("Variables", {})
    # The hook, and the local stack's worker module from this same checkout.
    variables["PYTHONPATH"] = os.pathsep.join([str(HOOK_DIR), str(REPO / "local")])
    variables[_awsrecorder.ENV_DIR] = str(log_dir)
    work.mkdir(parents=True, exist_ok=True)
    path = work / "template.yaml"
    path.write_text(yaml.safe_dump(template, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


class _ReportLines(logging.Handler):
    """Lambda-style REPORT lines of the local runtime: duration per invocation."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.durations: list[tuple[float, str, float]] = []

    def emit(self, record: logging.LogRecord) -> None:
        found = _REPORT.match(record.getMessage())
        if found:
            self.durations.append((record.created, found.group(1), float(found.group(2))))


@contextlib.contextmanager
def _output_to(path: Path) -> Iterator[None]:
    """Point fds 1 and 2 (inherited by the workers) at ``path``."""
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    saved = os.dup(1), os.dup(2)
    target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(target, 1)
    os.dup2(target, 2)
    os.close(target)
    try:
        yield
    finally:
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])


def _proc_stat(pid: str) -> tuple[int, float] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / ticks


def _category(pid: str) -> str:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return "other"
    if "moto_server" in cmdline:
        return "moto server"
    if "_worker" in cmdline:
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            return "function workers"
        for entry in environ:
            if entry.startswith(b"AWS_LAMBDA_FUNCTION_NAME="):
                return "worker: " + entry.split(b"=", 1)[1].decode()
        return "function workers"
    return "other"


def cpu_snapshot() -> dict[str, Any]:
    """CPU seconds so far of this process, of its children by role, and of the machine."""
    me = str(os.getpid())
    used: dict[str, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        stat = _proc_stat(entry)
        if stat is None:
            continue
        parent, seconds = stat
        if entry == me:
            used["bench process (API front, SQS poller, simulator)"] = seconds
        elif str(parent) == me:
            role = _category(entry)
            used[role] = used.get(role, 0.0) + seconds
    with open("/proc/stat", encoding="ascii") as handle:
        cpu = [int(v) for v in handle.readline().split()[1:]]
    return {"by_role": used, "busy": sum(cpu) - cpu[3] - cpu[4], "total": sum(cpu), "at": time.monotonic()}


def cpu_between(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    wall = after["at"] - before["at"]
    roles = {
        role: round((seconds - before["by_role"].get(role, 0.0)) / wall, 2)
        for role, seconds in after["by_role"].items()
        if wall > 0
    }
    busy = (after["busy"] - before["busy"]) / max(1, after["total"] - before["total"])
    return {"cores_used_by_role": roles, "machine_busy_fraction": round(busy, 2), "cores": os.cpu_count()}


@dataclass
class Window:
    started: float
    ended: float = 0.0
    log_from: int = 0
    log_to: int = 0
    invocations: dict[str, int] = field(default_factory=dict)


class StackRun:
    """A LocalGateway from the derived template, with its AWS requests and logs recorded."""

    def __init__(
        self,
        work: Path,
        *,
        aws_dir: Path,
        simulator: SimulatorConfig,
        parameters: dict[str, Any] | None = None,
        log: Callable[[str], None],
    ) -> None:
        self.work = work
        self.aws_dir = aws_dir
        self.log_path = work / "handler-output.log"
        self.template = derived_template(work, self.aws_dir)
        self._simulator = simulator
        self._parameters = dict(parameters or {})
        self._log = log
        self.reports = _ReportLines()
        self._stack: LocalGateway | None = None
        self._exit = contextlib.ExitStack()
        self.http = requests.Session()

    def __enter__(self) -> StackRun:
        _awsrecorder.install(str(self.aws_dir))  # this process's own calls: the SQS poller
        runtime_log = logging.getLogger("smsgw_local.runtime")
        runtime_log.addHandler(self.reports)
        runtime_log.setLevel(logging.DEBUG)
        self._exit.callback(runtime_log.removeHandler, self.reports)
        self._exit.enter_context(_output_to(self.log_path))
        started = time.perf_counter()
        stack = LocalGateway(
            api_port=0,
            simulator_port=0,
            moto_port=0,
            env={},
            simulator=self._simulator,
            parameters=self._parameters,
            template_path=self.template,
        )
        self._exit.callback(stack.stop)
        with _capacity.billing(str(self.aws_dir)):  # the stack's moto server bills DynamoDB
            stack.start()
        if stack.init_errors:
            raise RuntimeError(f"functions failed to start: {stack.init_errors}")
        self._stack = stack
        self._log(f"local stack up in {time.perf_counter() - started:.1f} s")
        return self

    def __exit__(self, *exc: object) -> None:
        self._exit.close()

    # -- helpers -----------------------------------------------------------------------
    @property
    def stack(self) -> LocalGateway:
        if self._stack is None:
            raise RuntimeError("the local stack is not started")
        return self._stack

    @property
    def provisioned(self) -> Provisioned:
        if self.stack.provisioned is None:
            raise RuntimeError("the local stack is not provisioned")
        return self.stack.provisioned

    @property
    def sim(self) -> Simulator:
        if self.stack.simulator is None:
            raise RuntimeError("the local stack runs no simulator")
        return self.stack.simulator

    def post(self, body: dict[str, Any]) -> str:
        response = self.http.post(
            f"{self.stack.api_url}/v1/messages",
            json=body,
            headers={"x-api-key": self.stack.api_key},
            timeout=120,
        )
        if response.status_code != 202:
            raise RuntimeError(f"POST /v1/messages answered {response.status_code}: {response.text[:300]}")
        request_id: str = response.json()["id"]
        return request_id

    def status(self, request_id: str) -> dict[str, Any]:
        response = self.http.get(
            f"{self.stack.api_url}/v1/messages/{request_id}",
            params={"limit": "1"},
            headers={"x-api-key": self.stack.api_key},
            timeout=60,
        )
        response.raise_for_status()
        data: dict[str, Any] = response.json()
        return data

    def accepted_submits(self) -> int:
        return len(self.sim.accepted)

    def wait(self, predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.05) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise TimeoutError(f"gave up waiting for {what} after {timeout:.0f} s")
            time.sleep(interval)

    def worker_idle(self) -> bool:
        sources = self.stack.event_sources.get(WORKER, [])
        return all(source.idle() for source in sources)

    def invocations(self) -> dict[str, int]:
        return {name: self.stack.stats(name).invocations for name in self.stack.pools}

    def open_window(self) -> Window:
        return Window(started=time.time(), log_from=_size(self.log_path), invocations=self.invocations())

    def close_window(self, window: Window) -> None:
        window.ended = time.time()
        window.log_to = _size(self.log_path)
        now = self.invocations()
        window.invocations = {name: now[name] - window.invocations.get(name, 0) for name in now}

    def records(self, window: Window) -> list[dict[str, Any]]:
        """AWS calls of the functions and of the SQS poller inside the window."""
        found: list[dict[str, Any]] = []
        for path in sorted(self.aws_dir.glob("*.jsonl")):
            with path.open(encoding="utf-8") as handle:
                for line in handle:
                    record = json.loads(line)
                    if not window.started <= record["t"] <= window.ended:
                        continue
                    if record["fn"] or record["th"].startswith("sqs-"):
                        found.append(record)
        return found

    def billed(self, window: Window) -> list[dict[str, Any]]:
        """DynamoDB units of the functions' requests inside the window (the moto server's)."""
        return _capacity.read(str(self.aws_dir), window.started, window.ended)

    def durations(self, window: Window) -> dict[str, list[float]]:
        by_function: dict[str, list[float]] = {}
        for created, function, ms in self.reports.durations:
            if window.started <= created <= window.ended + 1:
                by_function.setdefault(function, []).append(ms)
        return by_function

    def log_lines(self, window: Window) -> dict[str, dict[str, Any]]:
        """Handler output inside the window, per function: lines, bytes (prefix removed), metrics."""
        out: dict[str, dict[str, Any]] = {}
        with self.log_path.open("rb") as handle:
            handle.seek(window.log_from)
            data = handle.read(max(0, window.log_to - window.log_from))
        for raw in data.splitlines():
            text = raw.decode("utf-8", "replace")
            if " | " not in text:
                continue
            function, message = text.split(" | ", 1)
            entry: dict[str, Any] = out.setdefault(function.strip(), {"lines": 0, "bytes": 0, "metrics": []})
            entry["lines"] += 1
            entry["bytes"] += len(message.encode("utf-8"))
            if message.startswith("{") and '"CloudWatchMetrics"' in message:
                entry["metrics"] = sorted(set(entry["metrics"]) | _metric_names(message))
        return out

    def table_items(self) -> list[dict[str, Any]]:
        client = self.stack.client("dynamodb")
        table = self.provisioned.ref("MessagesTable")
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"TableName": table}
        while True:
            page = client.scan(**kwargs)
            items.extend(page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def credentials(self) -> Credentials:
        secret = self.stack.client("secretsmanager").get_secret_value(
            SecretId=self.provisioned.ref("ProviderSecret")
        )
        data = json.loads(secret["SecretString"])
        return Credentials(data["oper_id"], data["oper_pass"])


def _metric_names(line: str) -> set[str]:
    """Names of the metrics in one EMF log line."""
    try:
        data = json.loads(line)
        directives = data["_aws"]["CloudWatchMetrics"]
        return {metric["Name"] for directive in directives for metric in directive["Metrics"]}
    except (ValueError, KeyError, TypeError):
        return set()


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


# -- 4. throughput --------------------------------------------------------------------
def throughput(
    run: StackRun, *, recipients: int, per_post: int, prefix: str, log: Callable[[str], None]
) -> dict[str, Any]:
    """POST ``recipients`` in requests of ``per_post``; time until every request is submitted."""
    run.sim.configure({"push": {"url": None}})  # reports are not part of this measurement
    numbers = mobiles(recipients, prefix)
    expected = sum(
        math.ceil(len(numbers[i : i + per_post]) / NUMBERS_PER_SUBMIT) for i in range(0, recipients, per_post)
    )
    base = run.accepted_submits()
    timeline: list[tuple[float, int]] = []
    post_ms: list[float] = []
    stop = threading.Event()
    t0 = time.perf_counter()

    def sample() -> None:
        while not stop.is_set():
            submitted = sum(len(r.mobiles) for r in run.sim.accepted[base:])
            timeline.append((round(time.perf_counter() - t0, 3), submitted))
            stop.wait(0.2)

    sampler = threading.Thread(target=sample, name="bench-sampler", daemon=True)
    window = run.open_window()
    cpu_before = cpu_snapshot()
    sampler.start()
    ids: list[str] = []
    for start in range(0, recipients, per_post):
        began = time.perf_counter()
        ids.append(run.post({"to": numbers[start : start + per_post], "content": CONTENT}))
        post_ms.append((time.perf_counter() - began) * 1000)
    posted_s = time.perf_counter() - t0
    run.wait(lambda: run.accepted_submits() - base >= expected, 1800, "every chunk to reach the provider")
    provider_s = time.perf_counter() - t0
    pending = set(ids)

    def all_submitted() -> bool:
        for request_id in list(pending):
            if run.status(request_id)["status"] == "submitted":
                pending.discard(request_id)
        return not pending

    run.wait(all_submitted, 600, "every request to be recorded submitted", interval=0.25)
    done_s = time.perf_counter() - t0
    stop.set()
    sampler.join()
    cpu_after = cpu_snapshot()
    run.close_window(window)
    timeline.append((round(done_s, 3), recipients))
    calls = run.records(window)
    log(f"throughput: {recipients} recipients in {done_s:.1f} s")
    limit = run.provisioned.context.parameters.get("GuoduMaxSubmitsPerSecond")
    return {
        "rate_limit": rate_limit_use(calls, run.sim.accepted[base:], int(limit or 0)),
        "recipients": recipients,
        "requests": len(ids),
        "per_request": per_post,
        "submits": expected,
        "posted_s": round(posted_s, 2),
        "to_provider_s": round(provider_s, 2),
        "submitted_s": round(done_s, 2),
        "recipients_per_s": round(recipients / done_s, 1),
        "post_ms": [round(ms, 1) for ms in post_ms],
        "aws_requests": len(calls),
        "aws_requests_per_s": round(len(calls) / done_s, 1),
        "aws_latency_ms": _latencies(calls),
        "cpu": cpu_between(cpu_before, cpu_after),
        "worker_durations_ms": _summary(run.durations(window).get("SubmitWorker", [])),
        "timeline": timeline,
        "simulator_latency_ms": run.sim.config.latency_ms,
    }


def busiest_window(starts: list[float], window: float = 1.0) -> int:
    """The most starts in any half-open window of ``window`` seconds, wherever it begins."""
    ordered = sorted(starts)
    best, first = 0, 0
    for last, moment in enumerate(ordered):
        while ordered[first] <= moment - window:
            first += 1
        best = max(best, last - first + 1)
    return best


def received_seconds(records: list[Any]) -> list[float]:
    return [datetime.fromisoformat(record.received_at).timestamp() for record in records]


def rate_limit_use(calls: list[dict[str, Any]], accepted: list[Any], limit: int) -> dict[str, Any]:
    """Whether ``GuoduMaxSubmitsPerSecond`` held the run back, and what the limiter cost.

    The limiter (``smsgw.adapters.throttle.SubmitRateLimiter``) takes a slot on its
    account's timeline with one conditional write (refused when the timeline is full within
    the worker's look-ahead); a worker woken more than ``SLACK_SECONDS`` after its slot gives
    it up and takes another. The provider's side: submits received in the busiest sliding
    one-second window."""
    reservations = [
        c
        for c in calls
        if c["svc"] == "dynamodb"
        and c["op"] == "UpdateItem"
        and c["p"].get("key", "").startswith("RATE#")
        and c["p"].get("key", "").endswith("|GCRA")
    ]
    granted = [c for c in reservations if not c.get("err")]
    starts = received_seconds(accepted)
    per_second: dict[int, int] = {}
    for moment in starts:
        per_second[int(moment)] = per_second.get(int(moment), 0) + 1
    span = (max(starts) - min(starts)) if len(starts) > 1 else 0.0
    busiest = busiest_window(starts)
    refused = len(reservations) - len(granted)
    return {
        "limit_submits_per_s": limit,
        "reservations": len(reservations),
        "refused": refused,
        "given_up": max(0, len(granted) - len(accepted)) if limit else 0,
        "slack_seconds": SLACK_SECONDS,
        "busiest_second_submits": busiest,
        "seconds_at_limit": sum(1 for n in per_second.values() if limit and n >= limit),
        "mean_submits_per_s": round((len(starts) - 1) / span, 1) if span else 0.0,
        # Held back: the provider got the limit in some window, or workers often found it full.
        "limited": bool(limit) and (busiest >= limit or refused > 0.01 * max(1, len(reservations))),
    }


def _latencies(calls: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """How long moto took to answer each kind of call (median and p90, ms), busiest first."""
    by_op: dict[str, list[float]] = {}
    for call in calls:
        by_op.setdefault(f"{call['svc']}.{call['op']}", []).append(call["ms"])
    ordered = sorted(by_op.items(), key=lambda kv: -len(kv[1]))
    return {op: _summary(values) for op, values in ordered}


def _summary(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)
    return {
        "n": len(ordered),
        "median": round(ordered[len(ordered) // 2], 1),
        "p90": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))], 1),
        "mean": round(sum(ordered) / len(ordered), 1),
    }


def naive(run: StackRun, *, numbers: int, prefix: str, log: Callable[[str], None]) -> dict[str, Any]:
    """The provider's sample-code client: one number per submit, a new connection each time."""
    credentials = run.credentials()
    url = run.sim.submit_url
    accepted = 0
    began = time.perf_counter()
    for mobile in mobiles(numbers, prefix):
        body = SubmitRequest((mobile,), CONTENT).body(credentials)
        answer = requests.post(
            url,
            data=body,
            headers={"Content-Type": "application/json;charset=UTF-8", "Connection": "close"},
            timeout=30,
        )
        accepted += answer.ok and answer.json().get("ResultCode") in ("00", "03")
    elapsed = time.perf_counter() - began
    rate = numbers / elapsed
    log(f"naive client: {numbers} numbers in {elapsed:.1f} s")
    return {
        "numbers": numbers,
        "accepted": accepted,
        "elapsed_s": round(elapsed, 2),
        "recipients_per_s": round(rate, 2),
        "extrapolated_100k_s": round(100_000 / rate, 0),
        "simulator_latency_ms": run.sim.config.latency_ms,
    }


# -- 3. the counted run -----------------------------------------------------------------
def counted_run(
    run: StackRun,
    *,
    recipients: int,
    per_post: int,
    prefix: str,
    push: dict[str, Any],
    log: Callable[[str], None],
) -> dict[str, Any]:
    """A bulk send with delivery tracking, end to end; every AWS request inside is counted.

    ``push`` sets the simulator's report timing, which decides how reports are packed."""
    run.sim.configure({"push": {"url": run.stack.push_url, **push}})
    run.wait(lambda: run.sim.pending_pushes() == 0, 120, "earlier pushes to drain")
    numbers = mobiles(recipients, prefix)
    expected = sum(
        math.ceil(len(numbers[i : i + per_post]) / NUMBERS_PER_SUBMIT) for i in range(0, recipients, per_post)
    )
    base = run.accepted_submits()
    pushes_before = len(run.sim.pushes)
    window = run.open_window()
    began = time.perf_counter()
    ids = [
        run.post({"to": numbers[start : start + per_post], "content": CONTENT, "reference": "bench-cost"})
        for start in range(0, recipients, per_post)
    ]
    run.wait(lambda: run.accepted_submits() - base >= expected, 1800, "every chunk to reach the provider")
    run.wait(lambda: run.sim.pending_pushes() == 0, 600, "every report to be pushed")
    run.wait(run.worker_idle, 120, "the submit workers to finish")
    time.sleep(1.0)  # the last worker batch's writes after its final submit
    run.wait(run.worker_idle, 120, "the submit workers to finish")
    run.close_window(window)
    elapsed = time.perf_counter() - began
    packets = [p for p in run.sim.pushes[pushes_before:] if p.kind == "report"]
    per_packet = [(len(p.items), len({item["msgId"] for item in p.items})) for p in packets]
    settled = 0
    for request_id in ids:
        counts = run.status(request_id)["counts"]
        settled += counts.get("delivered", 0) + counts.get("failed", 0)
    log(f"counted run: {recipients} recipients end to end in {elapsed:.1f} s")
    return {
        "recipients": recipients,
        "requests": len(ids),
        "per_request": per_post,
        "submits": run.accepted_submits() - base,
        "elapsed_s": round(elapsed, 1),
        "settled": settled,
        "push_packets": len(packets),
        "push_attempts": sum(p.attempts for p in packets),
        "push_items": sum(len(p.items) for p in packets),
        "push_msg_ids_per_packet": round(sum(k for _, k in per_packet) / max(1, len(per_packet)), 1),
        "push_items_per_packet": round(sum(n for n, _ in per_packet) / max(1, len(per_packet)), 1),
        "push_msg_id_groups": sum(k for _, k in per_packet),
        "push_per_packet": per_packet,
        "invocations": window.invocations,
        "durations_ms": {
            fn: _summary(values) | {"sum": round(sum(values), 1)}
            for fn, values in run.durations(window).items()
        },
        "log_output": run.log_lines(window),
        "records": run.records(window),
        "billed": run.billed(window),
        "items": run.table_items(),
        "simulator_push": {
            "delay_s": [run.sim.config.push.delay_min_seconds, run.sim.config.push.delay_max_seconds],
            "batch_window_s": run.sim.config.push.batch_window_seconds,
            "delivery_ratio": run.sim.config.push.delivery_ratio,
        },
    }


def personalised(run: StackRun, *, messages: int, contents: int, prefix: str) -> dict[str, Any]:
    """Provider calls for a personalised send: equal contents are grouped."""
    numbers = mobiles(messages, prefix)
    texts = [f"【示例】尊敬的会员，您的第{k + 1}号优惠券已到账。" for k in range(contents)]
    body = {"messages": [{"to": n, "content": texts[i % contents]} for i, n in enumerate(numbers)]}
    base = run.accepted_submits()
    minimum = sum(math.ceil(len(numbers[k::contents]) / NUMBERS_PER_SUBMIT) for k in range(contents))
    run.post(body)
    run.wait(lambda: run.accepted_submits() - base >= minimum, 300, "the personalised send's submits")
    time.sleep(0.5)
    submits = sum(1 for r in run.sim.accepted[base:] if r.content in texts)
    return {"messages": messages, "contents": contents, "submits": submits, "protocol_minimum": minimum}


def intake(run: StackRun, *, shapes: dict[str, tuple[int, str]]) -> dict[str, Any]:
    """Seconds from POST to 202 for the largest request the API admits in each shape
    (``shapes``: shape -> (size, number prefix)): ``bulk`` (one content to
    MaxRecipientsPerRequest numbers), ``personalised`` (MaxMessagesPerRequest messages,
    each its own content: a chunk each) and ``verification`` (MaxCappedRecipientsPerRequest
    numbers, each counted against its frequency caps). Each send drains before the next."""
    results: dict[str, Any] = {}
    for shape, (size, prefix) in shapes.items():
        numbers = mobiles(size, prefix)
        if shape == "personalised":
            body: dict[str, Any] = {
                "messages": [
                    {"to": n, "content": f"【示例】您的取件码是{i:06d}。"} for i, n in enumerate(numbers)
                ]
            }
        else:
            category = "verification" if shape == "verification" else "transactional"
            body = {"to": numbers, "content": "【示例】您的验证码是123456。", "category": category}
        began = time.perf_counter()
        request_id = run.post(body)
        seconds = time.perf_counter() - began
        results[shape] = {
            "size": size,
            "seconds": round(seconds, 2),
            "recipients": run.status(request_id)["counts"]["total"],
        }
        run.wait(lambda: _queue_empty(run), 900, f"the {shape} send to be submitted", interval=0.5)
    return results


LANE_QUEUES = ("VerificationQueue", "SendQueue", "MarketingQueue")


def _queue_empty(run: StackRun) -> bool:
    """Every lane's queue is empty (nothing waiting, nothing in flight)."""
    for logical in LANE_QUEUES:
        attributes = run.stack.client("sqs").get_queue_attributes(
            QueueUrl=run.provisioned.ref(logical),
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        waiting = int(attributes["ApproximateNumberOfMessages"])
        if waiting + int(attributes["ApproximateNumberOfMessagesNotVisible"]):
            return False
    return True
