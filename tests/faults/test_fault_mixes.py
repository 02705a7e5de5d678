"""Recipients through the whole local stack while the platform fails in every documented way.

For each fault mix, about a hundred recipients (a broadcast, personalised requests of many
small chunks, a marketing send with opted-out numbers, plus junk numbers refused at
intake) go through the real API, queue, worker and push receiver against the Guodu
simulator. When the gateway has settled, the ledger must balance:

    accepted = submitted + failed (with a reason) + unknown + expired + dead-lettered

and the gateway's story must agree with the simulator's: no number submitted twice, every
submitted recipient has the MsgId the platform gave, every pushed report stored once and
joined to its recipient, states only ever moving forward (watched while the mix runs).
"""

from __future__ import annotations

import itertools
import json
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.conftest import wait_until
from tests.faults.conftest import (
    FINAL,
    POLL_SECONDS,
    PUSH_SETTINGS,
    RANK,
    SETTLE_TIMEOUT_SECONDS,
    WORKER_READ_TIMEOUT_SECONDS,
    Gateway,
    Ledger,
)

pytestmark = pytest.mark.faults

SUBMITTED_CLASS = frozenset({"submitted", "delivered"})
AMBIGUOUS_CODES = frozenset(
    {"read_timeout", "connection_lost", "broken_answer", "bad_reply", "stale_claim", "http_500", "http_502"}
)
# Faults with which the platform accepts a submit and then never answers it whole.
ACCEPTING_FAULTS = frozenset({"accept_then_drop", "accept_then_truncate", "accept_then_502"})
EVERY_SUBMIT_FAULT = (
    "06",
    "99",
    "accept_then_drop",
    "-1",
    "http_500",
    "http_503",
    "drop",
    "05",
    "timeout",
    "accept_then_truncate",
    "accept_then_502",
)
INVALID_NUMBER = "12345"


@dataclass(frozen=True)
class Mix:
    """A fault mix: the simulator's settings and what the gateway may answer to them."""

    name: str
    faults: dict[str, Any] = field(default_factory=dict)
    push: dict[str, Any] = field(default_factory=dict)
    # Account errors: keep the faults on this long after the first request is sent, then
    # fix the account (the faults are cleared): the chunks must wait it out.
    heal_after_seconds: float = 0.0
    allow_unknown: bool = False  # ambiguous submits (no answer) end "unknown"
    ambiguous_codes: frozenset[str] = AMBIGUOUS_CODES  # what an unknown recipient's code may be
    allow_failed: bool = False  # the platform refuses a request (06-10)
    allow_dead_letters: bool = False
    # What must show in the simulator's record, or the mix tested nothing: refusal codes
    # or fault names, ACCEPTING_FAULTS, and the push faults "duplicate", "shuffled", "early".
    exercised: tuple[str, ...] = ()
    late_reports: bool = False  # afterwards, push contradicting and repeated reports
    # Workers are killed: an answer the platform gave may die with its worker (stale_claim).
    workers_killed: bool = False


MIXES = [
    Mix("clean"),
    Mix("result -1 20%", faults={"code_rates": {"-1": 0.2}, "next": ["-1"]}, exercised=("-1",)),
    Mix(
        "http 500 20%",
        # A 500 may come from a proxy after the platform took the submit: ambiguous.
        faults={"http_500_rate": 0.2, "next": ["http_500"]},
        allow_unknown=True,
        ambiguous_codes=frozenset({"http_500"}),
        exercised=("http_500",),
    ),
    Mix("http 503 20%", faults={"http_503_rate": 0.2, "next": ["http_503"]}, exercised=("http_503",)),
    Mix(
        "timeouts",
        # Held a little longer than the worker waits: the worker's read timeout fires. One
        # only: each costs the worker's whole read timeout (10 s, not settable per stack).
        faults={"timeout_seconds": WORKER_READ_TIMEOUT_SECONDS + 1.5, "next": ["timeout"]},
        allow_unknown=True,
        ambiguous_codes=frozenset({"read_timeout"}),
        exercised=("timeout",),
    ),
    Mix(
        "dropped",
        faults={"drop_rate": 0.15, "next": ["drop"]},
        allow_unknown=True,
        ambiguous_codes=frozenset({"connection_lost"}),
        exercised=("drop",),
    ),
    Mix(
        "accept_then_drop",
        faults={"accept_then_drop_rate": 0.15, "next": ["accept_then_drop"]},
        allow_unknown=True,
        ambiguous_codes=frozenset({"connection_lost"}),
        exercised=("accept_then_drop",),
    ),
    Mix(
        "accept_then_truncate",
        faults={"accept_then_truncate_rate": 0.15, "next": ["accept_then_truncate"]},
        allow_unknown=True,
        ambiguous_codes=frozenset({"broken_answer"}),
        exercised=("accept_then_truncate",),
    ),
    Mix(
        "accept_then_502",
        faults={"accept_then_502_rate": 0.15, "next": ["accept_then_502"]},
        allow_unknown=True,
        ambiguous_codes=frozenset({"http_502"}),
        exercised=("accept_then_502",),
    ),
    Mix("slow answers", faults={"slow_rate": 0.3, "slow_seconds": 1.0, "next": ["slow"]}),
    Mix(
        "account 05",
        faults={"code_rates": {"05": 1.0}},
        heal_after_seconds=4.0,
        exercised=("05",),
    ),
    Mix(
        "push faults",
        # Rates high enough that 14 submits and ~30 packets always show each fault.
        push={"duplicate_rate": 0.3, "out_of_order_rate": 0.5, "early_rate": 0.5},
        exercised=("duplicate", "shuffled", "early"),
        late_reports=True,
    ),
    Mix(
        "everything",
        faults={
            # Each kind at least once, then a little of everything.
            "next": list(EVERY_SUBMIT_FAULT),
            "code_rates": {"-1": 0.05, "05": 0.03},
            "http_500_rate": 0.05,
            "http_503_rate": 0.05,
            "drop_rate": 0.03,
            "accept_then_drop_rate": 0.03,
            "slow_rate": 0.05,
            "slow_seconds": 0.5,
            "timeout_seconds": WORKER_READ_TIMEOUT_SECONDS + 1.5,
        },
        push={"duplicate_rate": 0.2, "out_of_order_rate": 0.3, "early_rate": 0.2},
        allow_unknown=True,
        allow_failed=True,
        allow_dead_letters=True,
        exercised=EVERY_SUBMIT_FAULT,
        late_reports=True,
    ),
]


# -- the workload ---------------------------------------------------------------------


def numbers(mix_no: int, start: int, count: int) -> list[str]:
    """Mainland mobiles no other mix uses: 139 + the mix's number + a serial."""
    return [f"139{mix_no:02d}{serial:06d}" for serial in range(start, start + count)]


@dataclass
class Workload:
    bodies: list[dict[str, Any]]
    opted_out: list[str]


def workload(mix_no: int) -> Workload:
    """84 accepted recipients in 14 chunks (14 submits), 1 refused at intake, 2 opted out."""
    broadcast = numbers(mix_no, 0, 40)
    as_written = f"+86 {broadcast[0][:3]}-{broadcast[0][3:7]}-{broadcast[0][7:]}"  # a duplicate
    bodies: list[dict[str, Any]] = [
        {
            "to": [*broadcast, INVALID_NUMBER, as_written],
            "content": f"【测试】您的订单{mix_no}已发货，请注意查收。",
            "reference": f"mix-{mix_no}-broadcast",
        }
    ]
    serial = 100
    for request in range(3):
        messages = []
        for content in range(4):
            for mobile in numbers(mix_no, serial, 3):
                messages.append(
                    {"to": mobile, "content": f"【测试】尊敬的客户，您的验证码是{request}{content}2026。"}
                )
            serial += 3
        bodies.append({"messages": messages, "reference": f"mix-{mix_no}-personal-{request}"})
    marketing = numbers(mix_no, 900, 10)
    bodies.append(
        {
            "to": marketing,
            "content": "【测试】新品上市，全场八折。退订回T",
            "category": "marketing",
            "reference": f"mix-{mix_no}-marketing",
        }
    )
    return Workload(bodies, opted_out=marketing[:2])


# -- running a mix ----------------------------------------------------------------------


def state_regressions(history: dict[str, list[str]]) -> list[str]:
    """Recipients whose observed states moved backwards, or changed once final."""
    problems = []
    for mobile, states in history.items():
        for before, after in itertools.pairwise(states):
            if RANK[after] < RANK[before] or before in FINAL:
                problems.append(f"{mobile}: {' -> '.join(states)}")
                break
    return problems


class MixRun:
    def __init__(self, gateway: Gateway, mix: Mix, mix_no: int) -> None:
        self.gateway = gateway
        self.mix = mix
        self.mix_no = mix_no
        self.replies: list[dict[str, Any]] = []
        self.history: dict[str, list[str]] = defaultdict(list)
        self.healed = False
        self.sent_at = 0.0

    def start(self) -> None:
        gateway = self.gateway
        # The previous mix left nothing behind (it waited for that), but be sure of it.
        wait_until(lambda: gateway.queue_depth() == 0, timeout=30)
        gateway.sim("POST", "reset")
        gateway.sim(
            "POST",
            "config",
            {
                "push": {**PUSH_SETTINGS, "url": gateway.stack.push_url, **self.mix.push},
                "faults": self.mix.faults,
            },
        )
        gateway.clear_lane_pause()
        load = workload(self.mix_no)
        for mobile in load.opted_out:
            gateway.opt_out(mobile)
        self.sent_at = time.monotonic()
        self.replies = [gateway.send(body) for body in load.bodies]

    @property
    def request_ids(self) -> list[str]:
        return [reply["id"] for reply in self.replies]

    def observe(self) -> dict[str, dict[str, Any]]:
        # Two at a time: the local API runs two send-api processes.
        with ThreadPoolExecutor(max_workers=2) as pool:
            statuses = dict(
                zip(self.request_ids, pool.map(self.gateway.status, self.request_ids), strict=True)
            )
        for status in statuses.values():
            for recipient in status["recipients"]:
                seen = self.history[recipient["to"]]
                if not seen or seen[-1] != recipient["status"]:
                    seen.append(recipient["status"])
        return statuses

    def heal_when_due(self) -> None:
        if not self.mix.heal_after_seconds or self.healed:
            return
        if time.monotonic() - self.sent_at >= self.mix.heal_after_seconds:
            self.gateway.sim("POST", "config", {"faults": {"code_rates": {}}})
            self.healed = True

    def dead_lettered(self) -> dict[str, str]:
        """Mobile -> the reason its chunk is on the dead-letter queue (this mix's only)."""
        mine = set(self.request_ids)
        found: dict[str, str] = {}
        for message in self.gateway.dead_letters():
            ref = json.loads(message["Body"])
            if ref.get("request_id") not in mine:
                continue
            reason = message.get("MessageAttributes", {}).get("reason", {}).get("StringValue", "max receives")
            for mobile in self.gateway.chunks(ref["request_id"])[ref["chunk"]]["to"]:
                found[mobile] = reason
        return found

    def settle(self) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
        """Watch until the queue is empty, the pushes are done and every recipient is final
        or dead-lettered; the last statuses and the dead-lettered recipients."""
        deadline = time.monotonic() + SETTLE_TIMEOUT_SECONDS
        while True:
            statuses = self.observe()
            self.heal_when_due()
            waiting = [r for s in statuses.values() for r in s["recipients"] if r["status"] not in FINAL]
            quiet = (
                self.gateway.queue_depth() == 0
                and self.gateway.sim("GET", "health")["pending_pushes"] == 0
                and all(r["status"] == "queued" for r in waiting)
            )
            if quiet:
                dead = self.dead_lettered()
                if all(r["to"] in dead for r in waiting) or time.monotonic() > deadline:
                    return self.observe(), dead
            elif time.monotonic() > deadline:
                return statuses, self.dead_lettered()
            time.sleep(POLL_SECONDS)


@dataclass
class MixResult:
    """Where a settled mix stands, by the gateway and by the simulator."""

    run: MixRun
    statuses: dict[str, dict[str, Any]]  # request id -> GET /v1/messages/{id}
    dead: dict[str, str]  # mobile -> why its chunk is on the dead-letter queue
    submits: dict[str, Any]  # /_sim/submits
    pushes: dict[str, Any]  # /_sim/pushes

    @property
    def recipients(self) -> dict[str, dict[str, Any]]:
        return {r["to"]: r for s in self.statuses.values() for r in s["recipients"]}

    @property
    def accepted_by_mobile(self) -> dict[str, list[dict[str, Any]]]:
        """The platform's accepted submits that hold each number."""
        found: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for record in self.submits["accepted"]:
            for mobile in record["mobiles"]:
                found[mobile].append(record)
        return found


def draw_ledger(mix: Mix, result: MixResult) -> Ledger:
    ledger = Ledger(mix.name)
    for reply in result.run.replies:
        ledger.accepted += reply["recipients"]
        ledger.rejected += len(reply["rejected"])
        ledger.opted_out += reply.get("opted_out_count", 0)
    for mobile, recipient in result.recipients.items():
        state = recipient["status"]
        if state == "delivered":
            ledger.delivered += 1
        elif state == "failed" and recipient["provider_msg_id"]:
            ledger.report_failed += 1
        elif state == "failed":
            ledger.failed += 1
        elif state == "submitted":
            ledger.awaiting_report += 1
        elif state == "unknown":
            ledger.unknown += 1
        elif state == "expired":
            ledger.expired += 1
        elif mobile in result.dead:
            ledger.dead_lettered += 1
        else:
            ledger.lost += 1
    ledger.sim_accepted = len(result.submits["accepted"])
    # By what the platform did: a fault's name (http_500, drop, timeout) or the code it answered.
    ledger.sim_refused = Counter(
        r["fault"] if r["fault"] not in (None, "code") else str(r["result_code"])
        for r in result.submits["refused"]
    )
    packets = result.pushes["packets"]
    ledger.packets = len(packets)
    ledger.duplicated = sum(1 for p in packets if p["duplicate_of"] is not None)
    ledger.shuffled = sum(1 for p in packets if p["shuffled"])
    ledger.early = sum(1 for p in packets if p["early"])
    return ledger


def balance_problems(ledger: Ledger, result: MixResult) -> list[str]:
    """The ledger balances, and the status counts agree with the recipients listed."""
    problems: list[str] = []
    recipients = result.recipients
    if not ledger.balanced:
        lost = sorted(m for m, r in recipients.items() if r["status"] == "queued" and m not in result.dead)
        problems.append(f"the ledger does not balance; lost or still queued: {lost[:10]}")
    if len(recipients) != ledger.accepted:
        problems.append(f"{ledger.accepted} recipients accepted, {len(recipients)} listed by the status API")
    if ledger.awaiting_report:
        problems.append(f"{ledger.awaiting_report} submitted recipients never got their pushed report")
    for reply in result.run.replies:
        status = result.statuses[reply["id"]]
        listed = Counter(r["status"] for r in status["recipients"])
        counts = status["counts"]
        if counts["total"] != reply["recipients"]:
            problems.append(f"{reply['id']}: counts.total {counts['total']}, {reply['recipients']} accepted")
        problems += [
            f"{reply['id']}: counts.{state} {counts[state]} but {listed[state]} listed"
            for state in ("queued", "submitted", "delivered", "failed", "unknown", "expired")
            if counts[state] != listed[state]
        ]
    return problems


def submit_problems(mix: Mix, result: MixResult) -> list[str]:
    """No number submitted twice; what the gateway says was sent, the platform accepted."""
    problems: list[str] = []
    recipients, accepted = result.recipients, result.accepted_by_mobile
    twice = {m: [r["msg_id"] for r in rs] for m, rs in accepted.items() if len(rs) > 1}
    if twice:
        problems.append(f"numbers submitted more than once: {dict(list(twice.items())[:5])}")
    for mobile, recipient in recipients.items():
        state, msg_id, platform = recipient["status"], recipient["provider_msg_id"], accepted.get(mobile, [])
        if state in SUBMITTED_CLASS or (state == "failed" and msg_id):
            if msg_id not in {r["msg_id"] for r in platform}:
                problems.append(f"{mobile} is {state} with MsgId {msg_id}, which the platform never gave it")
        elif state == "failed" and not (recipient["provider_code"] and recipient["detail"]):
            problems.append(f"{mobile} failed without a reason: {recipient}")
        elif state == "unknown" and recipient["provider_code"] not in mix.ambiguous_codes:
            problems.append(
                f"{mobile} is unknown after {recipient['provider_code']}, not an ambiguous submit"
            )
        elif (
            state == "unknown"
            and any(r["fault"] not in ACCEPTING_FAULTS for r in platform)
            and not (mix.workers_killed and recipient["provider_code"] == "stale_claim")
        ):
            problems.append(f"{mobile} is unknown, but the platform accepted and answered it")
        elif state not in ("unknown", *SUBMITTED_CLASS, "failed") and platform:
            problems.append(f"{mobile} is {state} at the gateway, but the platform accepted it")
    for mobile, records in accepted.items():
        if mobile not in recipients:
            problems.append(f"the platform was sent {mobile}, which no request of this mix accepted")
        elif records[0]["fault"] in ACCEPTING_FAULTS and recipients[mobile]["status"] != "unknown":
            shown = recipients[mobile]["status"]
            problems.append(f"{mobile}: its submit got no whole answer, yet it is {shown}")
    return problems


def report_problems(gateway: Gateway, result: MixResult) -> list[str]:
    """Every pushed report acknowledged, stored once, and shown on its recipient."""
    problems: list[str] = []
    reported: dict[tuple[str, str], dict[str, Any]] = {}
    for packet in result.pushes["packets"]:
        if packet["outcome"] != "delivered" or packet["status"] != 200:
            problems.append(f"push packet {packet['id']} ended {packet['outcome']} (HTTP {packet['status']})")
        for item in packet["items"]:
            reported.setdefault((item["msgId"], item["mobile"]), item)
    recipients = result.recipients
    stored = {msg_id: gateway.stored_reports(msg_id) for msg_id in {msg_id for msg_id, _ in reported}}
    for (msg_id, mobile), item in reported.items():
        if stored[msg_id][mobile] != 1:
            problems.append(f"report {msg_id}/{mobile} stored {stored[msg_id][mobile]} times")
        recipient = recipients.get(mobile)
        if recipient is None or recipient["provider_msg_id"] != msg_id:
            continue  # a report of a submit the gateway holds as unknown: stored, not joined
        expected = "delivered" if item["status"] == 0 else "failed"
        if (recipient["status"], recipient["detail"]) != (expected, item["msg"]):
            problems.append(f"{mobile}: reported {expected} ({item['msg']}), shown {recipient['status']}")
    return problems


def expectation_problems(gateway: Gateway, mix: Mix, ledger: Ledger, result: MixResult) -> list[str]:
    """What this mix allows, and proof that its faults happened."""
    problems: list[str] = []
    # An unknown chunk stands for a submit that left and got no answer: never more of them
    # than the platform saw submits it dropped, held or accepted without answering.
    accepted = result.submits["accepted"]
    accepted_faults = Counter(r["fault"] for r in accepted if r["fault"] in ACCEPTING_FAULTS)
    unanswered_accepted = sum(accepted_faults.values())
    unanswered = (
        ledger.sim_refused["drop"]
        + ledger.sim_refused["timeout"]
        + ledger.sim_refused["http_500"]
        + unanswered_accepted
    )
    unknown_chunks = sum(
        1
        for request_id in result.run.request_ids
        for chunk in gateway.chunks(request_id).values()
        if chunk["st"] == "unknown"
    )
    if unknown_chunks > unanswered:
        problems.append(f"{unknown_chunks} chunks unknown, but only {unanswered} submits went unanswered")
    if ledger.unknown and not mix.allow_unknown:
        problems.append(f"{ledger.unknown} recipients unknown, with no ambiguous fault in this mix")
    if ledger.failed and not mix.allow_failed:
        problems.append(f"{ledger.failed} recipients failed at submit, with no refusal code in this mix")
    if ledger.dead_lettered and not mix.allow_dead_letters:
        reasons = sorted(set(result.dead.values()))
        problems.append(f"{ledger.dead_lettered} recipients dead-lettered: {reasons}")
    seen = Counter(ledger.sim_refused)
    seen.update(accepted_faults)
    seen.update(
        duplicate=ledger.duplicated,
        shuffled=ledger.shuffled,
        early=ledger.early,
    )
    problems += [f"the mix never exercised {name}" for name in mix.exercised if not seen[name]]
    return problems


def push_late_reports(gateway: Gateway, run: MixRun, pushes: dict[str, Any]) -> list[str]:
    """A contradicting report for settled recipients, and a whole packet again: nothing moves."""
    before = run.observe()
    recipients = [r for s in before.values() for r in s["recipients"]]
    settled = [r for r in recipients if r["status"] in ("delivered", "failed") and r["provider_msg_id"]]
    contradicting = [
        {
            "msg": "UNDELIV" if r["status"] == "delivered" else "发送成功",
            "mobile": r["to"],
            "msgId": r["provider_msg_id"],
            "reportTime": "2099-12-31 23:59:59",
            "status": 2 if r["status"] == "delivered" else 0,
        }
        for r in settled[:20]
    ]
    problems = []
    for packet in ([contradicting] if contradicting else []) + [p["items"] for p in pushes["packets"][:1]]:
        answer = gateway.push(packet)
        if answer != 200:
            problems.append(f"a late packet got HTTP {answer}")
    after = run.observe()
    for request_id, status in before.items():
        if after[request_id]["counts"] != status["counts"]:
            problems.append(f"{request_id}: counts {status['counts']} became {after[request_id]['counts']}")
        was = {r["to"]: (r["status"], r["detail"]) for r in status["recipients"]}
        now = {r["to"]: (r["status"], r["detail"]) for r in after[request_id]["recipients"]}
        problems += [f"{m}: {was[m]} became {now[m]} after a late report" for m in was if was[m] != now[m]]
    return problems


@pytest.mark.parametrize("mix", MIXES, ids=[mix.name.replace(" ", "-") for mix in MIXES])
def test_every_accepted_recipient_is_accounted_for(
    gateway: Gateway, mix: Mix, record_ledger: Callable[[Ledger], None]
) -> None:
    """Given the simulator failing as the mix says (and the gateway's default pacing),
    when about a hundred recipients are sent in broadcast, personalised and marketing
    requests,
    then every accepted recipient ends submitted (with the platform's MsgId), failed with a
    reason, unknown (only after an ambiguous submit), expired or dead-lettered; no number is
    submitted twice; every report pushed is stored once and shown; no state moves back."""
    began = time.monotonic()
    run = MixRun(gateway, mix, MIXES.index(mix))
    run.start()
    statuses, dead = run.settle()
    result = MixResult(run, statuses, dead, gateway.sim("GET", "submits"), gateway.sim("GET", "pushes"))
    ledger = draw_ledger(mix, result)
    problems = [
        *balance_problems(ledger, result),
        *submit_problems(mix, result),
        *report_problems(gateway, result),
        *[f"state moved backwards: {p}" for p in state_regressions(run.history)],
        *expectation_problems(gateway, mix, ledger, result),
    ]
    if mix.late_reports:
        problems += push_late_reports(gateway, run, result.pushes)
    ledger.seconds = time.monotonic() - began
    record_ledger(ledger)

    assert not problems, "\n".join([ledger.line(), *problems])
