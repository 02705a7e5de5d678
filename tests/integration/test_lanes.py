"""Lanes: one per category, each with its queue, its event source and (optionally) its own
Guodu account. The handlers against moto, the platform a real HTTP server (the simulator).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from datetime import datetime

import boto3
import pytest

from guodu_simulator import Simulator, SimulatorConfig
from smsgw_local.provision import Provisioned
from tests.integration.conftest import Api, Worker, make_stack, queued_messages


def received(record: object) -> float:
    return datetime.fromisoformat(record.received_at).timestamp()  # type: ignore[attr-defined]


def test_a_code_is_submitted_before_bulk_that_was_queued_before_it(
    aws: None,
    simulator: Simulator,
    load_api: Callable[[Provisioned], Api],
    load_worker: Callable[..., Worker],
) -> None:
    # Given a platform limit of 10 submits a second and a backlog of 40 bulk chunks (8,000
    # numbers, four seconds at the limit) being worked off by three workers
    stack = make_stack(simulator.submit_url, GuoduMaxSubmitsPerSecond=10, QuietHours="off")
    api = load_api(stack)
    api.post({"to": [f"138{i:08d}" for i in range(40 * 200)], "content": "【示例】账单已出"})
    stop = threading.Event()

    def work(worker: Worker) -> None:
        while not stop.is_set():
            if worker.poll_once() == 0:
                time.sleep(0.02)

    workers = [load_worker(stack) for _ in range(3)] + [load_worker(stack, queue="VerificationQueue")]
    threads = [threading.Thread(target=work, args=(w,), daemon=True) for w in workers]
    for thread in threads:
        thread.start()
    try:
        deadline = time.monotonic() + 30
        while len(simulator.accepted) < 8 and time.monotonic() < deadline:
            time.sleep(0.02)
        # When a one-time code is sent in the middle of it
        _, code = api.post(
            {"to": ["13912345678"], "content": "【示例】验证码 1234", "category": "verification"}
        )
        while len(simulator.accepted) < 41 and time.monotonic() < deadline + 30:
            time.sleep(0.05)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    # Then the code went out ahead of most of the bulk queued before it (how soon after its
    # 202 is a timing: `make bench`, section 11)
    (submit,) = [s for s in simulator.accepted if s.mobiles == ["13912345678"]]
    later_bulk = [
        s for s in simulator.accepted if s.mobiles != ["13912345678"] and received(s) > received(submit)
    ]
    assert len(later_bulk) >= 10, len(later_bulk)
    assert api.get(code["id"])[1]["recipients"][0]["status"] == "submitted"
    # And all 41 went out, and no sliding second carried more than the limit
    assert len(simulator.accepted) == 41
    moments = sorted(received(s) for s in simulator.accepted)
    assert max(sum(1 for t in moments if s <= t < s + 1) for s in moments) <= 10


def test_each_category_is_queued_on_its_own_lane(aws: None, load_api: Callable[[Provisioned], Api]) -> None:
    stack = make_stack()
    api = load_api(stack)
    for category in ("verification", "transactional", "marketing"):
        api.post({"to": ["13800138000"], "content": "【示例】x，退订回T", "category": category})
    lanes = {
        queue: [json.loads(m["Body"])["c"] for m in queued_messages(stack, queue)]
        for queue in ("VerificationQueue", "SendQueue", "MarketingQueue")
    }
    assert lanes == {
        "VerificationQueue": ["verification"],
        "SendQueue": ["transactional"],
        "MarketingQueue": ["marketing"],
    }


def test_a_chunk_on_the_wrong_lane_is_handed_to_its_own_and_sent_there(
    aws: None,
    simulator: Simulator,
    load_api: Callable[[Provisioned], Api],
    load_worker: Callable[..., Worker],
) -> None:
    # Given a marketing chunk whose message sits on the transactional lane (queued before
    # lanes existed: its message names no category)
    stack = make_stack(simulator.submit_url, QuietHours="off")
    api = load_api(stack)
    _, reply = api.post({"to": ["13800138000"], "content": "【店】上新，退订回T", "category": "marketing"})
    sqs = boto3.client("sqs")
    for message in queued_messages(stack, "MarketingQueue"):
        sqs.delete_message(QueueUrl=stack.ref("MarketingQueue"), ReceiptHandle=message["ReceiptHandle"])
    sqs.send_message(
        QueueUrl=stack.ref("SendQueue"),
        MessageBody=json.dumps({"v": 1, "request_id": reply["id"], "chunk": 0}),
    )
    # When the transactional lane's worker takes it
    load_worker(stack).drain()
    # Then it did not submit it (its lane may be another account), but gave it back and
    # handed it to the marketing lane, whose worker sends it
    assert simulator.accepted == []
    assert api.get(reply["id"])[1]["recipients"][0]["status"] == "queued"
    load_worker(stack, queue="MarketingQueue").drain()
    assert [s.mobiles for s in simulator.accepted] == [["13800138000"]]
    assert api.get(reply["id"])[1]["recipients"][0]["status"] == "submitted"


@pytest.fixture
def marketing_platform() -> Simulator:
    config = SimulatorConfig().add_account("mkt-acct", "mkt-password", balance=1_000_000)
    return Simulator(config)


def test_a_lane_with_its_own_account_reaches_its_own_platform_with_its_own_credentials(
    aws: None,
    simulator: Simulator,
    marketing_platform: Simulator,
    load_api: Callable[[Provisioned], Api],
    load_worker: Callable[..., Worker],
) -> None:
    # Given marketing on an account of its own, at an address of its own, with a long
    # sender prefix, and codes and notices on the shared account
    with marketing_platform:
        stack = make_stack(
            simulator.submit_url,
            lane_accounts={"marketing": ("mkt-acct", "mkt-password")},
            MarketingGuoduSubmitUrls=marketing_platform.submit_url,
            MarketingGuoduAccountPrefix="1069012345678901",
            QuietHours="off",
        )
        api = load_api(stack)
        api.post({"to": ["13800138000"], "content": "【示例】账单已出"})
        api.post({"to": ["13900139000"], "content": "【示例】验证码 1234", "category": "verification"})
        api.post({"to": ["13700137000"], "content": "【店】上新，退订回T", "category": "marketing"})
        # When every lane's worker drains its queue
        for queue in ("SendQueue", "VerificationQueue", "MarketingQueue"):
            load_worker(stack, queue=queue).drain()
        # Then marketing reached its own platform with its own OperID, and only it did
        assert [(s.oper_id, s.mobiles) for s in marketing_platform.accepted] == [
            ("mkt-acct", ["13700137000"])
        ]
        assert sorted((s.oper_id, s.mobiles[0]) for s in simulator.accepted) == [
            ("acct", "13800138000"),
            ("acct", "13900139000"),
        ]
        # And an extension is checked against the sender prefix of the lane's account: 5
        # digits fit the shared account's 20, not marketing's (16 digits used)
        status, _ = api.post({"to": ["13700137001"], "content": "【店】x，退订回T", "extension": "12345"})
        assert status == 202
        status, error = api.post(
            {
                "to": ["13700137001"],
                "content": "【店】x，退订回T",
                "extension": "12345",
                "category": "marketing",
            }
        )
        assert status == 400
        assert error["error"]["details"][0]["field"] == "extension"


def test_accounts_have_rate_limits_of_their_own(
    aws: None,
    simulator: Simulator,
    marketing_platform: Simulator,
    load_api: Callable[[Provisioned], Api],
    load_worker: Callable[..., Worker],
) -> None:
    # Given the shared account limited to 2 a second and marketing's own account to 4
    with marketing_platform:
        stack = make_stack(
            simulator.submit_url,
            lane_accounts={"marketing": ("mkt-acct", "mkt-password")},
            MarketingGuoduSubmitUrls=marketing_platform.submit_url,
            MarketingGuoduMaxSubmitsPerSecond="4",
            GuoduMaxSubmitsPerSecond=2,
            QuietHours="off",
        )
        api = load_api(stack)
        api.post(
            {
                "messages": [{"to": f"137{i:08d}", "content": f"【店】第{i}号，退订回T"} for i in range(8)],
                "category": "marketing",
            }
        )
        began = time.monotonic()
        load_worker(stack, queue="MarketingQueue").drain()
        # Then marketing went at its own account's pace (8 in about 2 s), not at the shared 2/s
        assert len(marketing_platform.accepted) == 8
        assert time.monotonic() - began < 3.5
        moments = sorted(received(s) for s in marketing_platform.accepted)
        assert max(sum(1 for t in moments if s <= t < s + 1) for s in moments) <= 4
