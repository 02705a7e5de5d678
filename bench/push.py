"""5. Push handling: a 250-item packet stored and acknowledged (warm), and reports per second.

The push receiver handler runs in this process against in-process moto (``mock_aws``),
its table, secret and bus made from template.yaml, as the integration tests do; each
packet is an API Gateway event built from ``events/push_receiver/report_packet.json``.
Two shapes of packet: *grouped* (the reports of whole submits together: 250 reports of
two new MsgIds) and *scattered* (250 reports of 25 MsgIds, ten each, as the simulator's
default timing produces; the same 25 MsgIds for 20 packets in a row, so that each ends
with the 200 reports of a whole submit and its item grows as it does in production,
since a MsgId's reports are kept on its own item). The baseline stores the same reports
one ``PutItem`` each (first report wins, the same eight writer threads), against the same
moto, in the same run. In-process moto is CPU-bound here, so the times say how much work
each design asks of DynamoDB; the request counts are exact, and the write units are
estimated from the items' sizes before and after each write (``costs.dynamodb_units``).
"""

from __future__ import annotations

import contextlib
import copy
import importlib.util
import json
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, redirect_stdout
from pathlib import Path
from types import ModuleType
from typing import Any

from bench.runtime import BENCH_PUSH_TOKEN, BENCH_SECRET, EVENTS

PACKET = 250
SHAPES = {"grouped": 2, "scattered": 25}
# Packets in a row that bring reports of the same MsgIds (200 numbers each at the end).
PACKETS_PER_MSG_ID = {"grouped": 1, "scattered": 200 // (PACKET // SHAPES["scattered"])}
BASELINE_THREADS = 8


class _Context:
    function_name = "smsgw-bench-push-receiver"
    function_version = "$LATEST"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:smsgw-bench-push-receiver"
    log_group_name = "/aws/lambda/smsgw-bench-push-receiver"
    log_stream_name = "bench"

    def __init__(self) -> None:
        self.aws_request_id = str(uuid.uuid4())

    def get_remaining_time_in_millis(self) -> int:
        return 29_000


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _load(code_dir: Path, environment: dict[str, str]) -> ModuleType:
    with _environment(environment):
        name = f"bench_handler_{code_dir.name}_{uuid.uuid4().hex[:8]}"
        spec = importlib.util.spec_from_file_location(name, code_dir / "app.py")
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load {code_dir / 'app.py'}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        return module


class _Packets:
    """Packets of ``msg_ids`` MsgIds; the same MsgIds (their next numbers) for ``repeat``
    packets in a row. ``make`` returns the MsgIds new in this packet, to be linked first."""

    def __init__(self) -> None:
        self.serial = 0
        self.ids: list[str] = []
        self.round = 0
        self.repeat = 1

    def restart(self, repeat: int) -> None:
        self.round, self.repeat = 0, repeat

    def make(self, msg_ids: int) -> tuple[list[str], list[dict[str, Any]]]:
        fresh = self.round % self.repeat == 0
        if fresh:
            self.serial += 1
            self.ids = [f"{self.serial:012d}{m:08d}" for m in range(msg_ids)]
        per = PACKET // msg_ids
        offset = (self.round % self.repeat) * per
        self.round += 1
        items = [
            {
                "msg": "发送成功" if n % 20 else "UNDELIV",
                "mobile": f"13{(self.serial * 10_000 + m * 200 + offset + n) % 10**9:09d}",
                "msgId": msg_id,
                "reportTime": "2026-11-24 12:00:05",
                "status": 0 if n % 20 else 2,
            }
            for m, msg_id in enumerate(self.ids)
            for n in range(per)
        ]
        return (self.ids if fresh else []), items


def measure(
    *,
    packets: int,
    warmup: int,
    log: Callable[[str], None],
    own_records: Callable[[float, float], list[dict[str, Any]]],
) -> dict[str, Any]:
    import boto3
    from moto import mock_aws

    from smsgw_local.provision import provision

    results: dict[str, Any] = {"packet_items": PACKET, "packets": packets, "shapes": {}, "baseline": {}}
    # The handler's log lines and metrics go where Lambda would send them: not this terminal.
    with mock_aws(), open(os.devnull, "w", encoding="utf-8") as sink, redirect_stdout(sink):
        provisioned = provision(
            parameters={"GuoduSubmitUrl": "http://127.0.0.1:9/HttpQuickProcess/submitJson"},
            secret_values={
                "ProviderSecret": json.dumps({"oper_id": "bench", "oper_pass": BENCH_SECRET}),
                "PushTokenSecret": BENCH_PUSH_TOKEN,
            },
        )
        spec = provisioned.functions["PushReceiverFunction"]
        handler = _load(spec.code_dir, spec.environment).handler
        table = provisioned.ref("MessagesTable")
        db = boto3.client("dynamodb", region_name="us-east-1")
        sample = json.loads((EVENTS / "push_receiver" / "report_packet.json").read_text(encoding="utf-8"))
        sample["path"] = f"/v1/guodu/push/{BENCH_PUSH_TOKEN}"
        sample["pathParameters"] = {"token": BENCH_PUSH_TOKEN}
        maker = _Packets()

        def link(msg_ids: list[str]) -> None:
            for m, msg_id in enumerate(msg_ids):
                db.put_item(
                    TableName=table,
                    Item={
                        "pk": {"S": f"MSG#{msg_id}"},
                        "sk": {"S": "LINK"},
                        "kind": {"S": "link"},
                        "request_id": {"S": str(uuid.UUID(int=maker.serial))},
                        "chunk": {"N": str(m)},
                        "reference": {"S": "bench"},
                    },
                )

        def push(items: list[dict[str, Any]]) -> float:
            event = copy.deepcopy(sample)
            event["body"] = json.dumps(items, ensure_ascii=False)
            began = time.perf_counter()
            answer = handler(event, _Context())
            elapsed = (time.perf_counter() - began) * 1000
            if answer["statusCode"] != 200:
                raise RuntimeError(f"push answered {answer['statusCode']}: {answer['body'][:200]}")
            return elapsed

        pool = ThreadPoolExecutor(max_workers=BASELINE_THREADS)

        def baseline(items: list[dict[str, Any]]) -> float:
            def write(item: dict[str, Any]) -> None:
                with contextlib.suppress(db.exceptions.ConditionalCheckFailedException):
                    db.put_item(
                        TableName=table,
                        Item={
                            "pk": {"S": f"RPT#{item['msgId']}"},
                            "sk": {"S": item["mobile"]},
                            "status": {"S": str(item["status"])},
                            "msg": {"S": item["msg"]},
                            "report_time": {"S": item["reportTime"]},
                        },
                        ConditionExpression="attribute_not_exists(pk)",
                    )

            began = time.perf_counter()
            list(pool.map(write, items))
            return (time.perf_counter() - began) * 1000

        def shape_run(shape: str, msg_ids: int) -> None:
            maker.restart(1)
            for _ in range(warmup):
                ids, items = maker.make(msg_ids)
                link(ids)
                push(items)
            maker.restart(PACKETS_PER_MSG_ID[shape])
            runs: dict[str, tuple[list[float], list[dict[str, Any]]]] = {"push": ([], []), "base": ([], [])}
            for _ in range(packets):
                ids, items = maker.make(msg_ids)
                link(ids)
                for name, call in (("push", push), ("base", baseline)):
                    start = time.time()
                    runs[name][0].append(call(items))
                    runs[name][1].extend(own_records(start, time.time()))
            results["shapes"][shape] = _figures(*runs["push"], packets, msg_ids)
            results["shapes"][shape]["packets_per_msg_id"] = PACKETS_PER_MSG_ID[shape]
            results["baseline"][shape] = _figures(*runs["base"], packets, msg_ids)
            log(f"push handling: {shape} packets measured")

        for shape, msg_ids in SHAPES.items():
            shape_run(shape, msg_ids)
        pool.shutdown()
    return results


def _figures(times: list[float], records: list[dict[str, Any]], packets: int, msg_ids: int) -> dict[str, Any]:
    from bench.costs import dynamodb_units

    calls: dict[str, int] = {}
    for record in records:
        op = f"{record['svc']}.{record['op']}"
        calls[op] = calls.get(op, 0) + 1
    # The links were put before the window; a report write returns the item it found (ALL_OLD).
    units = dynamodb_units(records, [])
    ordered = sorted(times)
    return {
        "wru_per_packet": round(units["wru"] / packets, 1),
        "msg_ids_per_packet": msg_ids,
        "ms_median": round(statistics.median(ordered), 1),
        "ms_p90": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))], 1),
        "reports_per_s": round(PACKET * len(ordered) / (sum(ordered) / 1000), 0),
        "aws_requests_per_packet": {op: round(n / packets, 1) for op, n in sorted(calls.items())},
        "aws_requests_total_per_packet": round(sum(calls.values()) / packets, 1),
    }
