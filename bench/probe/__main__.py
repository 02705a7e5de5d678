"""Why: warm CPU and peak memory must be one handler's own, so each runs in a fresh process.

``python -m bench.probe CONFIG.json`` (the bench runs it with the runtime-only interpreter
and the function's environment, whose ``AWS_ENDPOINT_URL`` is a moto server in a process
of its own). It imports the handler as Lambda would (its code folder, then the layer, on
``sys.path``), runs each workload a few times to warm up and then ``reps`` times, on fresh
data each time (a new request, new MsgIds), timing each invocation with
``time.process_time()`` (CPU of this process: our code, Powertools, botocore's serialising,
signing and parsing; moto and the provider's simulator run in other processes) and
``perf_counter`` (wall, which includes the local HTTP round trips to moto). Peak RSS
comes from ``/proc`` at the end, after the largest workload. Handler output (logs, EMF
metrics) goes to /dev/null, having been formatted.

Standard library only, besides the handler's own dependencies.
"""

from __future__ import annotations

import copy
import json
import os
import resource
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

CONTENT = "【示例】您的验证码是123456，5分钟内有效。"


class Context:
    """The parts of the Lambda context handlers and Powertools read."""

    def __init__(self, function_name: str) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = 256
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}"
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "probe"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def numbers(count: int, start: int = 0) -> list[str]:
    return [f"13{(start + i) % 10**9:09d}" for i in range(count)]


def _status_kb(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def rss_kb() -> int:
    """Peak RSS of this program. ``VmHWM``, not ``ru_maxrss``: Linux carries ``ru_maxrss``
    over ``exec`` from the parent at ``fork``, so a child of a big process reports the
    parent's size; the high-water mark belongs to this process image alone."""
    return _status_kb("VmHWM") or int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def current_rss_kb() -> int:
    return _status_kb("VmRSS")


Workload = tuple[Callable[[], Any], Callable[[], Any]]  # (untimed preparation, timed call)


def measure(workload: Workload, reps: int, warmup: int) -> dict[str, Any]:
    prepare, call = workload
    for _ in range(warmup):
        prepare()
        call()
    cpu: list[float] = []
    wall: list[float] = []
    windows: list[tuple[float, float]] = []  # when each timed call ran (the recorder's clock)
    for _ in range(reps):
        prepare()
        t0, c0, w0 = time.time(), time.process_time(), time.perf_counter()
        call()
        cpu.append((time.process_time() - c0) * 1000)
        wall.append((time.perf_counter() - w0) * 1000)
        windows.append((t0, time.time()))
    cpu.sort()
    wall.sort()
    return {
        "reps": reps,
        "cpu_ms_median": statistics.median(cpu),
        "cpu_ms_p90": cpu[min(len(cpu) - 1, int(len(cpu) * 0.9))],
        "wall_ms_median": statistics.median(wall),
        "wall_ms_p90": wall[min(len(wall) - 1, int(len(wall) * 0.9))],
        "windows": windows,
    }


class Probe:
    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.events_dir = Path(config["events_dir"])
        self.handler: Callable[[dict[str, Any], Any], Any] | None = None
        self.function = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "probe")

    def sample(self, name: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.events_dir / name).read_text(encoding="utf-8"))
        return data

    def load(self) -> float:
        from bench.hook import _awsrecorder

        # Every AWS call of every session made from now on is recorded: the bench counts the
        # handler's inside the timed windows (its own preparations fall outside them).
        _awsrecorder.install(self.config["record_dir"])
        sys.path[:0] = [self.config["code_dir"], self.config["layer_dir"]]
        started = time.perf_counter()
        module = __import__("app")
        self.handler = module.handler
        return (time.perf_counter() - started) * 1000

    def invoke(self, event: dict[str, Any]) -> Any:
        if self.handler is None:
            raise RuntimeError("the handler is not loaded")
        return self.handler(event, Context(self.function))

    def _table(self) -> tuple[Any, str]:
        """A client of this probe's own, for the untimed preparations."""
        import boto3

        return boto3.session.Session().client("dynamodb"), os.environ["MESSAGES_TABLE"]

    # -- send API ---------------------------------------------------------------------
    def post(self, body: dict[str, Any]) -> Callable[[], Any]:
        event = self.sample("send_api/post_messages.json")
        for headers in (event["headers"], event["multiValueHeaders"]):
            headers.pop("Idempotency-Key", None)
        event["body"] = json.dumps(body, ensure_ascii=False)

        def call() -> Any:
            result = self.invoke(copy.copy(event))
            if result["statusCode"] != 202:
                raise RuntimeError(f"send answered {result['statusCode']}: {result['body'][:300]}")
            return result

        return call

    # -- submit worker ----------------------------------------------------------------
    def sqs_batch(self) -> Workload:
        """The five chunks of a 1,000-recipient request, a request the send probe left for
        each invocation (a submitted chunk is not submitted again)."""
        template = self.sample("submit_worker/sqs_chunk.json")["Records"][0]
        requests = iter(self.config["requests"])
        event: dict[str, Any] = {}

        def prepare() -> None:
            request_id = next(requests)
            records = []
            for chunk in range(5):
                record = copy.deepcopy(template)
                record["messageId"] = f"{request_id}-{chunk}"
                record["body"] = json.dumps({"v": 1, "request_id": request_id, "chunk": chunk})
                records.append(record)
            event["Records"] = records

        def call() -> Any:
            result = self.invoke(event)
            if result.get("batchItemFailures"):
                raise RuntimeError(f"worker failed items: {result}")
            return result

        return prepare, call

    # -- push receiver ----------------------------------------------------------------
    def push(self, msg_ids_per_packet: int) -> Workload:
        """Packets of 250 reports of ``msg_ids_per_packet`` MsgIds. The same MsgIds (their next
        numbers) come back packet after packet until each has the 200 reports of a submit: a
        MsgId's reports are kept on its item, which grows, and each write returns it. A new
        MsgId's link (the worker's) is written first, untimed."""
        event = self.sample("push_receiver/report_packet.json")
        token = self.config["push_token"]
        event["path"] = f"/v1/guodu/push/{token}"
        event["pathParameters"] = {"token": token}
        event["requestContext"]["path"] = f"/live/v1/guodu/push/{token}"
        per_msg = 250 // msg_ids_per_packet
        repeat = max(1, 200 // per_msg)
        state = {"serial": 0, "round": 0}
        client, table = self._table()
        packet: dict[str, Any] = {}

        def prepare() -> None:
            turn = state["round"] % repeat
            state["round"] += 1
            if turn == 0:
                state["serial"] += 1
            items = []
            for m in range(msg_ids_per_packet):
                msg_id = f"{msg_ids_per_packet:02d}{state['serial']:010d}{m:08d}"
                if turn == 0:
                    link = {
                        "pk": {"S": f"MSG#{msg_id}"},
                        "sk": {"S": "LINK"},
                        "kind": {"S": "link"},
                        "request_id": {"S": "0b4f6c1e-8d2a-4f7e-9c11-2a6f5e3d9b01"},
                        "chunk": {"N": str(m)},
                        "reference": {"S": "bench"},
                    }
                    client.put_item(TableName=table, Item=link)
                for n, mobile in enumerate(numbers(per_msg, m * 1000 + turn * per_msg)):
                    items.append(
                        {
                            "msg": "发送成功" if n % 20 else "UNDELIV",
                            "mobile": mobile,
                            "msgId": msg_id,
                            "reportTime": "2026-11-24 12:00:05",
                            "status": 0 if n % 20 else 2,
                        }
                    )
            packet.update(event, body=json.dumps(items, ensure_ascii=False))

        def call() -> Any:
            result = self.invoke(dict(packet))
            if result["statusCode"] != 200:
                raise RuntimeError(f"push answered {result['statusCode']}: {result['body'][:300]}")
            return result

        return prepare, call

    def push_baseline(self) -> Workload:
        """The same 250 reports stored one PutItem each (first report wins), eight threads;
        new MsgIds each time."""
        from concurrent.futures import ThreadPoolExecutor

        client, table = self._table()
        pool = ThreadPoolExecutor(max_workers=8)
        items: list[dict[str, Any]] = []
        serial = iter(range(10**6))

        def prepare() -> None:
            batch = next(serial)
            items[:] = [
                {
                    "pk": {"S": f"RPT#{batch:012d}{m:08d}"},
                    "sk": {"S": mobile},
                    "status": {"S": "0"},
                    "msg": {"S": "发送成功"},
                    "report_time": {"S": "2026-11-24 12:00:05"},
                }
                for m in range(2)
                for mobile in numbers(125, m * 1000)
            ]

        def write(item: dict[str, Any]) -> None:
            client.put_item(TableName=table, Item=item, ConditionExpression="attribute_not_exists(pk)")

        return prepare, lambda: list(pool.map(write, items))

    # -- balance check ----------------------------------------------------------------
    def balance(self) -> Callable[[], Any]:
        return lambda: self.invoke({"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}})

    def workloads(self) -> dict[str, tuple[Workload, int]]:
        reps = self.config["reps"]
        kind = self.config["kind"]
        if kind == "send":
            return {
                f"send_{n}": (_untimed(self.post({"to": numbers(n), "content": CONTENT})), reps[f"send_{n}"])
                for n in self.config["send_sizes"]
            }
        if kind == "worker":
            return {"worker_batch": (self.sqs_batch(), reps["worker_batch"])}
        if kind == "push":
            return {
                "push_250_grouped": (self.push(2), reps["push"]),
                "push_250_scattered": (self.push(25), reps["push"]),
                "push_250_one_write_per_report": (self.push_baseline(), reps["push"]),
            }
        return {"balance": (_untimed(self.balance()), reps.get("balance", 5))}

    def run(self) -> dict[str, Any]:
        out: dict[str, Any] = {"python": sys.version.split()[0]}
        out["import_ms"] = self.load()
        out["rss_after_import_kb"] = current_rss_kb()
        results: dict[str, Any] = {}
        warmup = self.config.get("warmup", 2)
        for name, (workload, reps) in self.workloads().items():
            results[name] = measure(workload, reps, warmup)
        out["workloads"] = results
        out["peak_rss_warm_kb"] = rss_kb()
        largest = self.config.get("largest_send")
        if largest:
            started = time.perf_counter()
            self.post({"to": numbers(largest), "content": CONTENT})()
            out["largest_send"] = {"recipients": largest, "wall_ms": (time.perf_counter() - started) * 1000}
        out["peak_rss_kb"] = rss_kb()
        # Requests of 1,000 recipients (five chunks) for the worker probe, one per invocation.
        out["requests"] = [
            json.loads(self.post({"to": numbers(1000, 5000 + 1000 * k), "content": CONTENT})()["body"])["id"]
            for k in range(self.config.get("leave_requests", 0))
        ]
        return out


def _untimed(call: Callable[[], Any]) -> Workload:
    """A workload that needs no preparation (each call makes its own fresh data)."""
    return (lambda: None), call


def main(argv: list[str]) -> int:
    config = json.loads(Path(argv[1]).read_text(encoding="utf-8"))
    sink = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115 - for the life of the process
    real_stdout = sys.stdout
    sys.stdout = sink
    try:
        result = Probe(config).run()
    finally:
        sys.stdout = real_stdout
    Path(config["out"]).write_text(json.dumps(result), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
