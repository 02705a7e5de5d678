"""The fault suite: recipients through the local stack while the simulator misbehaves.

One local stack serves every fault mix of a run (starting one costs a few seconds); each
mix resets the simulator, gives it its faults, sends its own recipients (numbers no other
mix uses), waits until the gateway has settled them, and then draws up a *ledger*: what
the gateway's own state says happened to every recipient (the status API, the dead-letter
queue, the table), checked against what the simulator saw (``/_sim/submits``,
``/_sim/pushes``). One line per mix is printed at the end of the run.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests

from guodu_simulator import SimulatorConfig
from smsgw_local.stack import LocalGateway
from tests.conftest import peek_queue

# The worker's read timeout, short so that the timeout mixes stay fast; the simulator
# holds a timed-out submit a little longer than this.
WORKER_READ_TIMEOUT_SECONDS = 2.0
FAULT_PARAMETERS: dict[str, Any] = {
    # Retries come back within seconds (1 s, then 2-3 s); the lane pause holds every
    # worker for a second (doubling) while the platform keeps failing.
    "RetryBaseSeconds": 2,
    "RetryMaxSeconds": 4,
    "GuoduReadTimeoutSeconds": int(WORKER_READ_TIMEOUT_SECONDS),
    "LanePauseSeconds": 1,
    # The marketing request of each mix must not wait for the morning.
    "QuietHours": "off",
    "LogLevel": "WARNING",
}
# Reports quickly, some failed, pushes retried quickly if the gateway ever refuses one.
PUSH_SETTINGS: dict[str, Any] = {
    "delivery_ratio": 0.9,
    "delay_min_seconds": 0.0,
    "delay_max_seconds": 0.3,
    "batch_window_seconds": 0.02,
    "retry_base_seconds": 0.1,
    "retries": 3,
}
SETTLE_TIMEOUT_SECONDS = 75.0
POLL_SECONDS = 0.25

LEDGER_LINES = pytest.StashKey[list[str]]()
MOBILE = re.compile(r"1[3-9][0-9]{9}")

# Recipient states, by how far along they are. A state never moves to a lower rank, and
# a final state (rank 2) never changes at all.
RANK = {"queued": 0, "submitted": 1, "delivered": 2, "failed": 2, "unknown": 2, "expired": 2}
FINAL = frozenset(state for state, rank in RANK.items() if rank == 2)


class Gateway:
    """The local stack as its users and its operator see it: the API, the queues, the table."""

    def __init__(self, stack: LocalGateway) -> None:
        self.stack = stack
        self.http = requests.Session()
        self.http.headers["x-api-key"] = stack.api_key
        provisioned = stack.provisioned
        assert provisioned is not None
        self.table = str(provisioned.ref("MessagesTable"))
        # Every lane's queue and dead-letter queue (a mix sends every category).
        self.send_queues = [
            str(provisioned.ref(q)) for q in ("VerificationQueue", "SendQueue", "MarketingQueue")
        ]
        self.dead_letter_queues = [
            str(provisioned.ref(q))
            for q in ("VerificationDeadLetterQueue", "SendDeadLetterQueue", "MarketingDeadLetterQueue")
        ]
        simulator = stack.simulator
        assert simulator is not None
        self.sim_url = simulator.base_url

    # -- the public API ---------------------------------------------------------------
    def send(self, body: dict[str, Any]) -> dict[str, Any]:
        response = self.http.post(f"{self.stack.api_url}/v1/messages", json=body, timeout=35)
        assert response.status_code == 202, response.text
        reply: dict[str, Any] = response.json()
        return reply

    def status(self, request_id: str) -> dict[str, Any]:
        response = self.http.get(f"{self.stack.api_url}/v1/messages/{request_id}?limit=5000", timeout=35)
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()
        assert data["next_cursor"] is None, "a mix's request fits in one page"
        return data

    def opt_out(self, mobile: str) -> None:
        response = self.http.put(f"{self.stack.api_url}/v1/opt-outs/{mobile}", timeout=35)
        assert response.status_code in (200, 201), response.text

    def push(self, items: list[dict[str, Any]]) -> int:
        """POST a report packet to the push URL, as the platform would."""
        assert self.stack.push_url is not None
        response = self.http.post(
            self.stack.push_url,
            json=items,
            headers={"Content-Type": "application/json;charset=UTF-8"},
            timeout=35,
        )
        return response.status_code

    # -- the simulator's record ---------------------------------------------------------
    def sim(self, method: str, name: str, body: Any = None) -> dict[str, Any]:
        response = self.http.request(method, f"{self.sim_url}/_sim/{name}", json=body, timeout=10)
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()
        return data

    # -- what an operator sees ----------------------------------------------------------
    def queue_depth(self) -> int:
        """Messages on the lanes' send queues, visible or not (being worked on, or waiting)."""
        depth = 0
        for queue in self.send_queues:
            attributes = self.stack.client("sqs").get_queue_attributes(
                QueueUrl=queue,
                AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
            )["Attributes"]
            depth += int(attributes["ApproximateNumberOfMessages"]) + int(
                attributes["ApproximateNumberOfMessagesNotVisible"]
            )
        return depth

    def dead_letters(self) -> list[dict[str, Any]]:
        """Every message on the lanes' dead-letter queues (looked at, then left there)."""
        return [m for queue in self.dead_letter_queues for m in peek_queue(self.stack.client("sqs"), queue)]

    def chunks(self, request_id: str) -> dict[int, dict[str, Any]]:
        """A request's chunks as stored: number -> state (``st``), numbers (``to``), ``code``."""
        found: dict[int, dict[str, Any]] = {}
        pages = self.stack.client("dynamodb").get_paginator("query")
        for page in pages.paginate(
            TableName=self.table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :c)",
            ExpressionAttributeValues={":pk": {"S": f"REQ#{request_id}"}, ":c": {"S": "CHUNK#"}},
            ConsistentRead=True,
        ):
            for item in page["Items"]:
                found[int(item["n"]["N"])] = {
                    "st": item["st"]["S"],
                    "to": item["to"]["S"].split(","),
                    "code": item.get("code", {}).get("S"),
                }
        return found

    def stored_reports(self, msg_id: str) -> Counter[str]:
        """How many stored reports each mobile has under one MsgId: every item of the MsgId's
        partition, counting the attributes named by a mobile (one per reported number)."""
        stored: Counter[str] = Counter()
        pages = self.stack.client("dynamodb").get_paginator("query")
        for page in pages.paginate(
            TableName=self.table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": f"MSG#{msg_id}"}},
            ConsistentRead=True,
        ):
            for item in page["Items"]:
                stored.update(name for name in item if MOBILE.fullmatch(name))
        return stored

    def clear_lane_pause(self) -> None:
        """Start a mix with the lane running: the pause an earlier mix tripped is its own."""
        self.stack.client("dynamodb").delete_item(
            TableName=self.table, Key={"pk": {"S": "RATE#guodu"}, "sk": {"S": "PAUSE"}}
        )


@dataclass
class Ledger:
    """What became of one mix's recipients, by the gateway's state and the simulator's."""

    mix: str
    accepted: int = 0  # recipients the 202 replies counted
    rejected: int = 0  # refused at intake (not Chinese mobiles): outside "accepted"
    opted_out: int = 0  # marketing numbers on the opt-out list: outside "accepted"
    delivered: int = 0
    report_failed: int = 0
    awaiting_report: int = 0
    failed: int = 0  # refused by the platform, with its code
    unknown: int = 0
    expired: int = 0
    dead_lettered: int = 0
    lost: int = 0  # queued, and in no queue: must stay 0
    sim_accepted: int = 0
    sim_refused: Counter[str] = field(default_factory=Counter)
    packets: int = 0
    duplicated: int = 0
    shuffled: int = 0
    early: int = 0
    seconds: float = 0.0

    @property
    def submitted(self) -> int:
        return self.delivered + self.report_failed + self.awaiting_report

    @property
    def balanced(self) -> bool:
        settled = self.submitted + self.failed + self.unknown + self.expired + self.dead_lettered
        return self.accepted == settled and self.lost == 0

    def line(self) -> str:
        refused = ",".join(f"{k}:{v}" for k, v in sorted(self.sim_refused.items())) or "0"
        return (
            f"{self.mix:<16} accepted={self.accepted:<3} = submitted {self.submitted}"
            f" (delivered {self.delivered}, failed by report {self.report_failed},"
            f" no report {self.awaiting_report}) + failed {self.failed} + unknown {self.unknown}"
            f" + expired {self.expired} + dead-lettered {self.dead_lettered}"
            f" [lost {self.lost}] | rejected {self.rejected}, opted out {self.opted_out}"
            f" | sim: submits accepted {self.sim_accepted}, refused {refused};"
            f" packets {self.packets} (dup {self.duplicated}, shuffled {self.shuffled},"
            f" early {self.early}) | {self.seconds:.1f} s"
        )


@pytest.fixture(scope="module")
def fault_stack() -> Iterator[LocalGateway]:
    config = SimulatorConfig(seed=20_26)
    config.log_submits = False
    with LocalGateway(
        api_port=0, simulator_port=0, moto_port=0, env={}, simulator=config, parameters=FAULT_PARAMETERS
    ) as stack:
        yield stack


@pytest.fixture(scope="module")
def gateway(fault_stack: LocalGateway) -> Gateway:
    return Gateway(fault_stack)


@pytest.fixture
def record_ledger(request: pytest.FixtureRequest) -> Callable[[Ledger], None]:
    lines = request.config.stash.setdefault(LEDGER_LINES, [])

    def record(ledger: Ledger) -> None:
        lines.append(ledger.line())
        print(ledger.line())  # shown with -s; the terminal summary shows it always

    return record


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    lines = config.stash.get(LEDGER_LINES, [])
    if lines:
        terminalreporter.section("fault ledgers (accepted = submitted + failed + unknown + expired + DLQ)")
        for line in lines:
            terminalreporter.write_line(line)
