"""Recipients through the whole local stack while AWS fails: the fault mixes of the AWS side.

Each mix starts a local stack whose handler processes get ``SMSGW_AWS_FAULTS`` (seeded):
DynamoDB, SQS, EventBridge and Secrets Manager throttle, fail, time out, or apply a call
and lose its answer (which botocore retries), at every call site of the send, submit and
push paths. One mix also kills submit-worker processes (SIGKILL) while they work. The
client behaves as a careful user's: an Idempotency-Key on every send, and a retry with
the same key on a 5xx; reads retried on a 5xx too. When the gateway has settled, the
ledger must balance, cross-checked with the simulator's own record:

    accepted = delivered + failed (with a reason) + expired + unknown + dead-lettered

- no number accepted twice by the platform;
- no recipient ``unknown`` whose submit never reached the platform;
- no request left ``accepting``, no recipient left ``queued`` once the queue is drained.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from guodu_simulator import SimulatorConfig
from smsgw_local.stack import LocalStack
from smsgw_local.template import load_template
from tests.faults.conftest import FAULT_PARAMETERS, POLL_SECONDS, PUSH_SETTINGS, Gateway, Ledger
from tests.faults.test_fault_mixes import (
    FINAL,
    Mix,
    MixResult,
    MixRun,
    balance_problems,
    draw_ledger,
    report_problems,
    state_regressions,
    submit_problems,
)

pytestmark = pytest.mark.faults

SETTLE_SECONDS = 150.0
FAULT_LINE = "aws fault injected: "
RETRIES = 8


@dataclass(frozen=True)
class AwsMix:
    name: str
    faults: str
    kill_workers: bool = False


AWS_MIXES = [
    AwsMix("dynamodb throttled", "dynamodb.*=throttle:0.2"),
    AwsMix("dynamodb errors", "dynamodb.*=error:0.12"),
    AwsMix("timeouts", "dynamodb.*=timeout:0.1,sqs.*=timeout:0.1,events.*=timeout:0.1"),
    AwsMix("answers lost", "dynamodb.*=lost:0.15,sqs.*=lost:0.15"),
    AwsMix(
        "sqs, events, secrets",
        "sqs.*=error:0.15,events.*=throttle:0.3,secretsmanager.*=error:0.3",
    ),
    AwsMix(
        "the issue's mix",
        "dynamodb.TransactWriteItems=throttle:0.2,dynamodb.UpdateItem=lost:0.1,sqs.SendMessageBatch=error:0.1",
    ),
    AwsMix("workers killed", "dynamodb.UpdateItem=lost:0.05", kill_workers=True),
]
# What the gateway may answer under AWS faults: never an ambiguous submit of the platform
# (the simulator is well); unknown only where a worker stopped mid-submit (killed).
PLATFORM_WELL = Mix("aws", allow_dead_letters=True, ambiguous_codes=frozenset({"stale_claim"}))


@pytest.fixture(params=AWS_MIXES, ids=[m.name.replace(" ", "-").replace(",", "") for m in AWS_MIXES])
def aws_mix(request: pytest.FixtureRequest) -> AwsMix:
    mix: AwsMix = request.param
    return mix


# A killed worker's messages come back after the queue's visibility timeout (180 s in the
# template): the kill mix runs with a shorter one, still above the worker's 30 s timeout.
KILL_MIX_VISIBILITY_SECONDS = 40


def short_visibility_template(folder: Path) -> Path:
    template = load_template()
    template["Resources"]["SendQueue"]["Properties"]["VisibilityTimeout"] = KILL_MIX_VISIBILITY_SECONDS
    path = folder / "template.yaml"
    path.write_text(yaml.safe_dump(template, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


@contextlib.contextmanager
def output_to(path: Path) -> Iterator[None]:
    """Point fds 1 and 2, which the stack's processes inherit, at ``path``."""
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
        for fd, kept in zip((1, 2), saved, strict=True):
            os.dup2(kept, fd)
            os.close(kept)


@pytest.fixture
def handler_output(tmp_path: Path) -> Path:
    return tmp_path / "handlers.log"


@pytest.fixture
def faulty_stack(aws_mix: AwsMix, tmp_path: Path, handler_output: Path) -> Iterator[LocalStack]:
    config = SimulatorConfig(seed=20_26)
    config.log_submits = False
    if aws_mix.kill_workers:
        # Answers that take a while: a killed worker is often one in the middle of a submit.
        config.latency_ms = 300
    parameters = {**FAULT_PARAMETERS, "IntakeGraceSeconds": 3}
    template = short_visibility_template(tmp_path) if aws_mix.kill_workers else None
    with (
        output_to(handler_output),
        LocalStack(
            template_path=template,
            api_port=0,
            simulator_port=0,
            moto_port=0,
            env={},
            simulator=config,
            parameters=parameters,
            aws_faults=aws_mix.faults,
            aws_faults_seed=AWS_MIXES.index(aws_mix) + 1,
            schedule_seconds=2,
        ) as stack,
    ):
        yield stack


class CarefulClient(Gateway):
    """The gateway's API as a careful client uses it: keys on sends, retries on 5xx."""

    def _retried(self, call: Callable[[], requests.Response], *, ok: tuple[int, ...]) -> requests.Response:
        response: requests.Response | None = None
        for attempt in range(RETRIES):
            try:
                response = call()
            except requests.RequestException:
                response = None
            if response is not None and response.status_code in ok:
                return response
            if response is not None and response.status_code < 500:
                break
            time.sleep(min(2.0, 0.2 * 2**attempt))
        assert response is not None, "no answer at all"
        raise AssertionError(f"{response.status_code}: {response.text[:300]}")

    def send(self, body: dict[str, Any]) -> dict[str, Any]:
        key = f"mix-{body.get('reference')}"
        url = f"{self.stack.api_url}/v1/messages"
        answer = self._retried(
            lambda: self.http.post(url, json=body, headers={"Idempotency-Key": key}, timeout=35), ok=(202,)
        )
        reply: dict[str, Any] = answer.json()
        return reply

    def status(self, request_id: str) -> dict[str, Any]:
        url = f"{self.stack.api_url}/v1/messages/{request_id}?limit=5000"
        data: dict[str, Any] = self._retried(lambda: self.http.get(url, timeout=35), ok=(200,)).json()
        return data

    def opt_out(self, mobile: str) -> None:
        url = f"{self.stack.api_url}/v1/opt-outs/{mobile}"
        self._retried(lambda: self.http.put(url, timeout=35), ok=(200, 201))

    def queue_depth(self) -> int:
        """Every message on the lanes' send queues: visible, in flight, or delayed (held)."""
        depth = 0
        for queue in self.send_queues:
            attributes = self.stack.client("sqs").get_queue_attributes(
                QueueUrl=queue, AttributeNames=["All"]
            )["Attributes"]
            depth += sum(
                int(attributes[name])
                for name in (
                    "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible",
                    "ApproximateNumberOfMessagesDelayed",
                )
            )
        return depth


class WorkerKiller:
    """SIGKILLs a random submit-worker process every so often, as a crash would."""

    def __init__(self, stack: LocalStack, every: float = 0.7) -> None:
        self._pool = stack.pools["SubmitWorkerFunction"]
        self._every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._random = random.Random(7)
        self.killed = 0

    def __enter__(self) -> WorkerKiller:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            pids = self._pool.pids()
            if pids:
                try:
                    os.kill(self._random.choice(pids), signal.SIGKILL)
                    self.killed += 1
                except ProcessLookupError:
                    pass


def settle(run: MixRun, gateway: CarefulClient) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """Watch until the queue is empty and every recipient is final or dead-lettered (and
    no request is still being accepted), or time runs out."""
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        statuses = run.observe()
        waiting = [r for s in statuses.values() for r in s["recipients"] if r["status"] not in FINAL]
        accepting = [i for i, s in statuses.items() if s["status"] == "accepting"]
        quiet = gateway.queue_depth() == 0 and gateway.sim("GET", "health")["pending_pushes"] == 0
        if quiet and not accepting and all(r["status"] == "queued" for r in waiting):
            dead = run.dead_lettered()
            if all(r["to"] in dead for r in waiting) or time.monotonic() > deadline:
                return run.observe(), dead
        if time.monotonic() > deadline:
            return statuses, run.dead_lettered()
        time.sleep(POLL_SECONDS)


# A worker killed in the round trip of its claim (the claim applied, its answer not yet
# back) leaves a claim that reads "may have been sent" for a chunk that never left: the
# gateway cannot tell it from a worker killed a moment later, after its request left. The
# claim is the last step before the request leaves, so this window is one DynamoDB round
# trip; a kill mix may meet it once or twice, never more.
CLAIM_ROUND_TRIP_CHUNKS = 2


def aws_problems(result: MixResult, *, workers_killed: bool) -> list[str]:
    """What only AWS faults could break: intake left half-way, an unknown never sent."""
    problems = [
        f"{request_id} is still {status['status']}"
        for request_id, status in result.statuses.items()
        if status["status"] == "accepting"
    ]
    reached = {m for record in result.submits["accepted"] for m in record["mobiles"]}
    for refused in result.submits["refused"]:
        reached.update(refused.get("mobiles") or [])
    never_sent = [
        mobile
        for mobile, recipient in result.recipients.items()
        if recipient["status"] == "unknown" and mobile not in reached
    ]
    stale = {m for m in never_sent if result.recipients[m]["provider_code"] == "stale_claim"}
    chunks = {
        (request_id, number)
        for request_id in result.run.request_ids
        for number, chunk in result.run.gateway.chunks(request_id).items()
        if stale & set(chunk["to"])
    }
    if workers_killed and len(stale) == len(never_sent) and len(chunks) <= CLAIM_ROUND_TRIP_CHUNKS:
        return problems
    problems += [f"{mobile} is unknown, but its submit never reached the platform" for mobile in never_sent]
    return problems


def injected(output: str) -> dict[str, int]:
    """The faults the handler processes logged, by kind."""
    kinds: dict[str, int] = {}
    for line in output.splitlines():
        if FAULT_LINE in line:
            kind = line.split(FAULT_LINE, 1)[1].split()[1]
            kinds[kind] = kinds.get(kind, 0) + 1
    return kinds


@pytest.mark.timeout(300)
def test_every_accepted_recipient_is_accounted_for_under_aws_faults(
    faulty_stack: LocalStack,
    handler_output: Path,
    aws_mix: AwsMix,
    record_ledger: Callable[[Ledger], None],
) -> None:
    """Given the local stack's handlers meeting the mix's AWS faults (and, in one mix, their
    worker processes killed at random), when about a hundred recipients are sent as a
    careful client sends them, then every accepted recipient ends in a final state that
    tells the truth, none is sent twice, no intake is left half-way."""
    began = time.monotonic()
    gateway = CarefulClient(faulty_stack)
    mix_no = 50 + AWS_MIXES.index(aws_mix)
    run = MixRun(gateway, Mix(f"aws {aws_mix.name}", push={**PUSH_SETTINGS, "retries": 8}), mix_no)
    killed = 0
    if aws_mix.kill_workers:
        with WorkerKiller(faulty_stack) as killer:
            run.start()
            time.sleep(8)
        killed = killer.killed
    else:
        run.start()
    statuses, dead = settle(run, gateway)
    result = MixResult(run, statuses, dead, gateway.sim("GET", "submits"), gateway.sim("GET", "pushes"))
    ledger = draw_ledger(run.mix, result)
    faults = injected(handler_output.read_text(encoding="utf-8", errors="replace"))
    shown = [f"{k} {n}" for k, n in sorted(faults.items())] + ([f"SIGKILL {killed}"] if killed else [])
    ledger.mix = f"aws: {aws_mix.name} [{', '.join(shown)}]"
    allowed = Mix(
        "aws",
        allow_dead_letters=True,
        allow_unknown=aws_mix.kill_workers,
        ambiguous_codes=PLATFORM_WELL.ambiguous_codes,
        workers_killed=aws_mix.kill_workers,
    )
    problems = [
        *balance_problems(ledger, result),
        *submit_problems(allowed, result),
        *report_problems(gateway, result),
        *[f"state moved backwards: {p}" for p in state_regressions(run.history)],
        *aws_problems(result, workers_killed=aws_mix.kill_workers),
    ]
    if not faults or (aws_mix.kill_workers and not killed):
        problems.append("no AWS fault was injected (or no worker killed): the mix tested nothing")
    if ledger.unknown and not aws_mix.kill_workers:
        problems.append(f"{ledger.unknown} recipients unknown, with a platform that answered every submit")
    ledger.seconds = time.monotonic() - began
    record_ledger(ledger)
    assert not problems, "\n".join([ledger.line(), *problems])
