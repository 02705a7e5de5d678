"""When submits may leave: the shared rate limit, the lane pause, validity and quiet hours."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import boto3
import pytest

from guodu_simulator import Simulator
from smsgw.domain.times import BEIJING
from smsgw_local.provision import Provisioned
from tests.integration.conftest import Api, Worker, make_stack, queued_messages


def second_of(iso: str) -> int:
    return int(datetime.fromisoformat(iso).timestamp())


def test_the_rate_limit_holds_with_several_workers_at_once(
    aws: None,
    simulator: Simulator,
    load_api: Callable[[Provisioned], Api],
    load_worker: Callable[..., Worker],
) -> None:
    # Given a platform limit of 3 submits a second and 24 chunks of 200 waiting
    stack = make_stack(simulator.submit_url, GuoduMaxSubmitsPerSecond=3)
    api = load_api(stack)
    api.post({"to": [f"138{i:08d}" for i in range(24 * 200)], "content": "通知"})
    # When four workers drain the queue at the same time (each its own container)
    workers = [load_worker(stack) for _ in range(4)]
    threads = [threading.Thread(target=w.drain) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    # Then all 24 went out, and no second saw more than 3 of them
    assert len(simulator.accepted) == 24
    per_second = Counter(second_of(s.received_at) for s in simulator.accepted)
    assert max(per_second.values()) <= 3, per_second
    assert sum(1 for w in workers if w.invocations) >= 3  # they really did share the work


def test_a_failing_platform_pauses_the_whole_lane(
    aws: None,
    simulator: Simulator,
    load_api: Callable[[Provisioned], Api],
    load_worker: Callable[..., Worker],
) -> None:
    # Given a platform answering -1 twice, then well again
    stack = make_stack(simulator.submit_url)
    api = load_api(stack)
    worker = load_worker(
        stack, LANE_PAUSE_FAILURES="2", LANE_PAUSE_BASE_SECONDS="2", LANE_PAUSE_WINDOW_SECONDS="30"
    )
    simulator.queue_faults("-1", "-1")
    api.post({"messages": [{"to": f"139{i:08d}", "content": f"m{i}"} for i in range(5)]})
    # When the worker drains the queue
    started = time.time()
    while len(simulator.accepted) < 5 and time.time() - started < 30:
        worker.poll_once()
    # Then after the second failure nothing at all went out for the pause
    assert len(simulator.accepted) == 5
    second_failure = max(datetime.fromisoformat(r.received_at) for r in simulator.refused)
    first_after = min(datetime.fromisoformat(s.received_at) for s in simulator.accepted)
    assert first_after - second_failure >= timedelta(seconds=1.9)


def test_a_chunk_past_its_validity_ends_expired_instead_of_late(
    api: Api, worker: Worker, simulator: Simulator, stack: Provisioned
) -> None:
    _, reply = api.post({"to": ["13800138000", "13900139000"], "content": "x", "valid_for": 60})
    # Given it waited longer than its validity (an outage, say)
    boto3.client("dynamodb").update_item(
        TableName=stack.ref("MessagesTable"),
        Key={"pk": {"S": f"REQ#{reply['id']}"}, "sk": {"S": "CHUNK#00000"}},
        UpdateExpression="SET valid_until = :past",
        ExpressionAttributeValues={":past": {"N": str(int(time.time()) - 1)}},
    )
    worker.drain()
    assert simulator.accepted == []
    _, view = api.get(reply["id"])
    assert view["counts"]["expired"] == 2
    assert {r["status"] for r in view["recipients"]} == {"expired"}
    assert view["status"] == "completed"  # expired is final


def test_valid_for_accepts_seconds_or_an_iso_duration(api: Api, stack: Provisioned) -> None:
    for valid_for in (3600, "PT1H"):
        status, reply = api.post({"to": ["13800138000"], "content": "x", "valid_for": valid_for})
        assert status == 202
        item = boto3.client("dynamodb").get_item(
            TableName=stack.ref("MessagesTable"),
            Key={"pk": {"S": f"REQ#{reply['id']}"}, "sk": {"S": "CHUNK#00000"}},
        )["Item"]
        assert abs(int(item["valid_until"]["N"]) - (time.time() + 3600)) < 60
    assert api.post({"to": ["13800138000"], "content": "x", "valid_for": 5})[0] == 400


def quiet_window_around_now() -> str:
    now = datetime.now(BEIJING)
    start, end = now - timedelta(hours=1), now + timedelta(hours=1)
    return f"{start:%H:%M}-{end:%H:%M}"


@pytest.fixture
def quiet_stack(aws: None, simulator: Simulator) -> Provisioned:
    return make_stack(simulator.submit_url, QuietHours=quiet_window_around_now())


@pytest.fixture
def quiet(
    quiet_stack: Provisioned, load_api: Callable[[Provisioned], Api], load_worker: Callable[..., Worker]
) -> tuple[Api, Worker]:
    """The send API and a marketing lane's worker of a stack whose quiet hours are now."""
    return load_api(quiet_stack), load_worker(quiet_stack, queue="MarketingQueue")


def test_marketing_in_quiet_hours_is_held_not_dropped(
    quiet_stack: Provisioned,
    quiet: tuple[Api, Worker],
    simulator: Simulator,
    load_worker: Callable[..., Worker],
) -> None:
    api, worker = quiet
    # Given a marketing send and a notice, both during quiet hours
    _, marketing = api.post({"to": ["13800138000"], "content": "大促，退订回T", "category": "marketing"})
    _, code = api.post({"to": ["13900139000"], "content": "验证码 123456"})
    worker.drain()
    load_worker(quiet_stack).drain()
    # Then the code went out and the marketing waits, queued, hidden until morning
    assert [s.mobiles for s in simulator.accepted] == [["13900139000"]]
    held = api.get(marketing["id"])[1]["recipients"][0]
    assert (held["status"], held["provider_code"]) == ("queued", "quiet_hours")
    assert held["detail"].startswith("marketing held until")
    sqs = boto3.client("sqs")
    attributes = sqs.get_queue_attributes(QueueUrl=quiet_stack.ref("MarketingQueue"), AttributeNames=["All"])[
        "Attributes"
    ]
    # held as a fresh message, delayed (SQS delays by 15 minutes at most: the message says
    # not before morning, and hops until then), so the wait uses up none of its receives
    assert attributes["ApproximateNumberOfMessagesDelayed"] == "1"
    assert (
        attributes["ApproximateNumberOfMessages"]
        == attributes["ApproximateNumberOfMessagesNotVisible"]
        == "0"
    )
    assert queued_messages(quiet_stack, "MarketingDeadLetterQueue") == []
    assert api.get(code["id"])[1]["recipients"][0]["status"] == "submitted"


def test_scheduled_marketing_inside_quiet_hours_is_rescheduled_to_their_end(
    quiet_stack: Provisioned, quiet: tuple[Api, Worker], simulator: Simulator
) -> None:
    api, worker = quiet
    # (the window's end as the stack was given it: "HH:MM-HH:MM", Beijing time)
    window_end = quiet_stack.functions["SubmitWorkerFunction"].environment["QUIET_HOURS"].split("-")[1]
    # (eight minutes ahead: nearer than ScheduledHoldSeconds, so it goes to the platform at once)
    send_at = datetime.now(UTC) + timedelta(minutes=8)
    api.post(
        {"to": ["13800138000"], "content": "大促", "category": "marketing", "send_at": send_at.isoformat()}
    )
    worker.drain()
    (submit,) = simulator.accepted
    assert submit.send_time[8:] == window_end.replace(":", "") + "00"
