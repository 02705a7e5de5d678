"""Why: 10. the limiter's promise is about many processes at once, which no unit test exercises.

The rate limiter's sliding-window maximum: many worker processes against one moto server
and the Guodu simulator, at a given limit (section 10 of the report, and
tests/integration/test_rate_window.py).

Each worker process runs threads that loop as the submit worker does: take a slot on the
account's timeline (``SubmitRateLimiter.acquire``, waking just before it), write a claim
to DynamoDB, then submit to the simulator (``GuoduClient.submit``) with the permit's
``use`` right before the request is sent. The simulator stamps what it receives; the
busiest one-second window of those stamps, wherever it begins, is the figure.

**Time scale.** This machine has two cores and one moto process that answers a few hundred
writes a second, so 1,000 submits a second cannot be driven for real. A run at a limit
above ``REAL_TIME_UP_TO`` slows the clock the workers and the limiter see by ``scale``
(one second of theirs lasts ``scale`` real seconds): every wait, slot and slack is in
their time, and the simulator's stamps are converted to it. What that changes: DynamoDB
and HTTP take ``scale`` times less of their time than of ours, i.e. the run behaves as if
AWS answered in about a twentieth of moto's latency, which is closer to DynamoDB's
single-digit milliseconds than moto's tens. The split across items, the number of
workers and the conditional writes are the real ones.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, cast

from botocore.exceptions import ClientError

REAL_TIME_UP_TO = 50  # submits a second this machine drives for real
TEMPLATE_LANE = "transactional"


class _Counting:
    """A DynamoDB client that counts the rate limit's writes and refusals."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.writes = 0
        self.refused = 0

    def update_item(self, **kwargs: Any) -> Any:
        rate = str(kwargs["Key"]["pk"]["S"]).startswith("RATE#")
        try:
            return self._client.update_item(**kwargs)
        except ClientError as err:
            if rate and err.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                self.refused += 1
            raise
        finally:
            self.writes += rate


def _worker_process(spec: dict[str, Any], results: Any) -> None:
    """One worker process: ``spec["threads"]`` threads until the run's end (their time)."""
    import boto3

    from smsgw.adapters.throttle import RateLimit, SubmitRateLimiter, Throttled, lookahead
    from smsgw.provider.client import GuoduClient
    from smsgw.provider.guodu import Credentials, SubmitRequest

    scale, origin = spec["scale"], spec["origin"]

    def clock() -> float:
        return float(origin + (time.time() - origin) / scale)

    def sleep(seconds: float) -> None:
        time.sleep(seconds * scale)

    rate = RateLimit(spec["rate"])
    credentials = Credentials(spec["oper_id"], spec["oper_pass"])
    stats = {"submits": 0, "throttled": 0, "missed": 0, "writes": 0, "refused": 0}
    lock = threading.Lock()

    def loop(number: int) -> None:
        db = boto3.client("dynamodb", endpoint_url=spec["endpoint"], region_name="us-east-1")
        counting = _Counting(db)
        limiter = SubmitRateLimiter(
            cast(Any, counting),
            spec["table"],
            rate,
            lane=TEMPLATE_LANE,
            lookahead_seconds=lookahead(TEMPLATE_LANE, (TEMPLATE_LANE,), rate.max_wait_seconds),
            clock=clock,
            sleep=sleep,
        )
        guodu = GuoduClient(spec["submit_url"], lambda: credentials)
        claim_key = {"pk": {"S": f"REQ#bench-{os.getpid()}-{number}"}, "sk": {"S": "CHUNK#00000"}}
        mobile = f"139{os.getpid() % 10_000:04d}{number:04d}"
        done = {"submits": 0, "throttled": 0, "missed": 0}
        while clock() < spec["end"]:
            try:
                permit = limiter.acquire(1, deadline=clock() + 30, lead=0.02)
            except Throttled:
                done["throttled"] += 1
                continue
            # The claim, as the worker writes it between its slot and its submit.
            db.update_item(
                TableName=spec["table"],
                Key=claim_key,
                UpdateExpression="ADD attempts :one",
                ExpressionAttributeValues={":one": {"N": "1"}},
            )
            try:
                guodu.submit(SubmitRequest((mobile,), "【示例】限速"), credentials, before_send=permit.use)
            except Throttled:
                done["throttled"] += 1
                continue
            done["submits"] += 1
            done["missed"] += permit.missed
        with lock:
            for name, value in done.items():
                stats[name] += value
            stats["writes"] += counting.writes
            stats["refused"] += counting.refused

    threads = [threading.Thread(target=loop, args=(n,)) for n in range(spec["threads"])]
    while time.time() < spec["start_real"]:
        time.sleep(0.005)
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    results.put(stats)


def busiest_window(moments: list[float], window: float = 1.0) -> int:
    """The most moments in any half-open window of ``window`` seconds, wherever it begins."""
    ordered = sorted(moments)
    best, first = 0, 0
    for last, moment in enumerate(ordered):
        while ordered[first] <= moment - window:
            first += 1
        best = max(best, last - first + 1)
    return best


def run(
    rate: int,
    *,
    seconds: float,
    processes: int,
    threads: int,
    scale: float | None = None,
    log: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """Drive ``processes`` × ``threads`` workers against a limit of ``rate`` submits a
    second for ``seconds`` (their time); what the platform received."""
    import boto3

    from guodu_simulator import Simulator, SimulatorConfig
    from smsgw.adapters.throttle import MARGIN_SECONDS, SLACK_SECONDS, RateLimit, timelines
    from smsgw_local.moto_server import MotoServer
    from smsgw_local.provision import provision

    scale = scale if scale is not None else max(1.0, rate / REAL_TIME_UP_TO)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ.setdefault(name, "testing")  # moto takes any
    moto = MotoServer()
    moto.start()
    config = SimulatorConfig(log_submits=False).add_account("ratewindow", "ratewindow-pass", balance=10**9)
    simulator = Simulator(config)
    try:
        endpoint = moto.wait_ready()
        session = boto3.session.Session(region_name="us-east-1")  # the fake keys set above
        provisioned = provision(
            parameters={"GuoduSubmitUrl": "http://127.0.0.1:9/x"}, session=session, endpoint_url=endpoint
        )
        simulator.start()
        lead_real = 1.5  # for every process to import and start
        origin = time.time() + lead_real
        spec = {
            "endpoint": endpoint,
            "table": provisioned.ref("MessagesTable"),
            "submit_url": simulator.submit_url,
            "oper_id": "ratewindow",
            "oper_pass": "ratewindow-pass",
            "rate": rate,
            "scale": scale,
            "origin": origin,
            "start_real": origin,
            "end": origin + seconds,
            "threads": threads,
        }
        context = multiprocessing.get_context("spawn")
        results = context.Queue()
        workers = [context.Process(target=_worker_process, args=(spec, results)) for _ in range(processes)]
        for worker in workers:
            worker.start()
        stats = [results.get(timeout=seconds * scale + 300) for _ in workers]
        for worker in workers:
            worker.join(timeout=30)
        real = [datetime.fromisoformat(r.received_at).timestamp() for r in simulator.accepted]
        moments = sorted(origin + (t - origin) / scale for t in real)
    finally:
        simulator.stop()
        moto.stop()
    busiest = busiest_window(moments)
    # The steady part: from the first second to the end, the rate achieved.
    steady = [t for t in moments if origin + 1 <= t < origin + seconds]
    achieved = (len(steady) - 1) / max(1e-9, steady[-1] - steady[0]) if len(steady) > 1 else 0.0
    total = {name: sum(s[name] for s in stats) for name in stats[0]}
    items = {name: len(line.submits) for name, line in timelines(RateLimit(rate)).items()}
    result = {
        "limit_submits_per_s": rate,
        "scale": scale,
        "seconds": seconds,
        "workers": processes * threads,
        "processes": processes,
        "submits": len(moments),
        "busiest_window": busiest,
        "held": busiest <= rate,
        "achieved_per_s": round(achieved, 1),
        "share_of_limit": round(achieved / rate, 3),
        "ceiling_share": round(1 / (1 + SLACK_SECONDS + MARGIN_SECONDS), 3),
        "items": items["pool"],
        "limiter_writes_per_submit": round(total["writes"] / max(1, total["submits"]), 2),
        "refused_writes_per_submit": round(total["refused"] / max(1, total["submits"]), 2),
        "slots_missed": total["missed"],
        "throttled": total["throttled"],
    }
    log(f"rate window at {rate}/s: busiest window {busiest}, {achieved:.1f}/s, {json.dumps(total)}")
    return result


def measure(rates: tuple[int, ...], *, seconds: float, log: Callable[[str], None]) -> dict[str, Any]:
    """Section 10: each rate in turn, with enough workers to press on the limit."""
    runs = []
    for rate in rates:
        with contextlib.suppress(KeyboardInterrupt):
            runs.append(run(rate, seconds=seconds, processes=4, threads=4 if rate <= 200 else 6, log=log))
    from smsgw.adapters.throttle import MARGIN_SECONDS, SLACK_SECONDS

    return {"runs": runs, "slack_seconds": SLACK_SECONDS, "margin_seconds": MARGIN_SECONDS}
