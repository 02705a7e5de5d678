"""Cancel, and scheduled sends the gateway holds until shortly before their time.

The real send API, worker, push receiver and reconciler handlers against moto and the
Guodu simulator (a real HTTP server).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import pytest

from guodu_simulator import Simulator
from smsgw_local.provision import Provisioned
from tests.conftest import FakeContext, rewire
from tests.integration.conftest import Api, EventSink, Pusher, Worker, make_stack, queued_messages

HOURS_AHEAD = 2
RELEASE_LEAD = 300


@pytest.fixture
def stack(aws: None, simulator: Simulator) -> Provisioned:
    return make_stack(simulator.submit_url, FrequencyCapsVerification="1/1d")


def at_release() -> float:
    """How much later than now the reconciler must think it is to release a send made now."""
    return HOURS_AHEAD * 3600 - RELEASE_LEAD + 5


def scheduled(api: Api, numbers: list[str], **extra: Any) -> dict[str, Any]:
    send_at = (datetime.now(UTC) + timedelta(hours=HOURS_AHEAD)).isoformat()
    status, reply = api.post({"to": numbers, "content": "【示例】提醒", "send_at": send_at, **extra})
    assert status == 202, reply
    return dict(reply)


def cancel(api: Api, request_id: str, caller: str = "k1a2b3c4d5") -> tuple[int, Any]:
    return api.call("DELETE", f"/v1/messages/{request_id}", caller=caller)


def test_a_scheduled_send_is_held_and_cancelled_before_release_sends_nothing(
    *,
    api: Api,
    worker: Worker,
    simulator: Simulator,
    event_sink: EventSink,
    reconcile: Any,
    stack: Provisioned,
) -> None:
    # Given a send two hours ahead: held by the gateway, nothing on the send queue
    reply = scheduled(api, ["13800138000", "13900139000"])
    assert queued_messages(stack) == []
    assert api.get(reply["id"])[1]["status"] == "accepted"
    # When it is cancelled
    status, answer = cancel(api, reply["id"])
    # Then both recipients are cancelled, none had left
    assert status == 200
    assert (answer["cancelled"], answer["already_left"]) == (2, 0)
    _, view = api.get(reply["id"])
    assert {r["status"] for r in view["recipients"]} == {"cancelled"}
    # And at its release time nothing goes to the platform
    reconcile(later=at_release())
    worker.drain()
    assert simulator.accepted == []
    # And the cancellation was announced once (a second DELETE answers the same, announces nothing)
    assert cancel(api, reply["id"])[1]["cancelled"] == 2
    (event,) = [
        e for e in event_sink.of_type("Recipients Cancelled") if e["detail"]["request_id"] == reply["id"]
    ]
    assert event["detail"]["count"] == 2
    # And the request completes
    reconcile(later=at_release() + 60)
    assert api.get(reply["id"])[1]["status"] == "completed"


def test_a_released_send_goes_with_its_send_time_and_a_late_cancel_says_what_left(
    api: Api, worker: Worker, simulator: Simulator, reconcile: Any
) -> None:
    reply = scheduled(api, ["13800138000"])
    # When its release time comes
    swept = reconcile(later=at_release())
    assert swept["requests_released"] == 1
    worker.drain()
    # Then it went to the platform, with its send time for the platform to keep
    (submit,) = simulator.accepted
    assert submit.send_time
    # And a cancel now cancels nothing: it had left
    status, answer = cancel(api, reply["id"])
    assert (status, answer["cancelled"], answer["already_left"]) == (200, 0, 1)


def test_a_number_opted_out_before_release_is_skipped(
    *,
    api: Api,
    stack: Provisioned,
    load_worker: Callable[..., Worker],
    pusher: Pusher,
    simulator: Simulator,
    event_sink: EventSink,
    reconcile: Any,
) -> None:
    worker = load_worker(stack, queue="MarketingQueue")  # the marketing lane
    # Given a marketing send held for later, and one of its numbers replying TD meanwhile
    reply = scheduled(api, ["13800138000", "13900139000"], category="marketing")
    pusher.push([{"SrcMobile": "13900139000", "Content": "TD"}], content_type="application/json")
    # When it is released
    reconcile(later=at_release())
    worker.drain()
    # Then only the other number went, the opted-out one is shown so and announced skipped
    (submit,) = simulator.accepted
    assert list(submit.mobiles) == ["13800138000"]
    _, view = api.get(reply["id"])
    shown = {r["to"]: r["status"] for r in view["recipients"]}
    assert shown == {"13800138000": "submitted", "13900139000": "opted_out"}
    (skipped,) = event_sink.of_type("Recipients Skipped")
    assert skipped["detail"]["recipients"] == [{"to": "13900139000", "reason": "opted_out"}]


def test_a_cap_reached_before_release_is_honoured_at_release(
    api: Api, stack: Provisioned, load_worker: Callable[..., Worker], simulator: Simulator, reconcile: Any
) -> None:
    worker = load_worker(stack, queue="VerificationQueue")  # the verification lane
    # Given a one-time code held for later (caps: one a day), then one sent now to that number
    reply = scheduled(api, ["13800138000"], category="verification")
    assert api.post({"to": ["13800138000"], "content": "123456", "category": "verification"})[0] == 202
    worker.drain()
    # When the held one is released
    reconcile(later=at_release())
    worker.drain()
    # Then it does not go: the number is over its cap, and the request has nothing left to send
    assert len(simulator.accepted) == 1
    _, view = api.get(reply["id"])
    assert [(r["status"], r["detail"]) for r in view["recipients"]] == [("rejected", "frequency_capped")]


def test_cancelling_a_queued_send_before_the_worker_takes_it_sends_nothing(
    api: Api, worker: Worker, simulator: Simulator
) -> None:
    _, reply = api.post({"to": ["13800138000"], "content": "x"})
    assert cancel(api, reply["id"])[1]["cancelled"] == 1
    worker.drain()
    assert simulator.accepted == []
    assert api.get(reply["id"])[1]["recipients"][0]["status"] == "cancelled"


def test_another_callers_or_an_unknown_request_cannot_be_cancelled(api: Api) -> None:
    reply = scheduled(api, ["13800138000"])
    for request_id, caller in [
        (reply["id"], "someone-else"),
        ("7c0e2f5a-0000-4000-8000-000000000000", "k1a2b3c4d5"),
    ]:
        status, answer = cancel(api, request_id, caller=caller)
        assert (status, answer["error"]["code"]) == (404, "not_found")
    assert api.get(reply["id"])[1]["recipients"][0]["status"] == "queued"


def test_a_send_scheduled_a_few_minutes_ahead_goes_to_the_platform_at_once(
    aws: None,
    simulator: Simulator,
    load_api: Callable[[Provisioned], Api],
    load_worker: Callable[..., Worker],
) -> None:
    stack = make_stack(simulator.submit_url)
    api, worker = load_api(stack), load_worker(stack)
    send_at = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    api.post({"to": ["13800138000"], "content": "x", "send_at": send_at})
    worker.drain()
    (submit,) = simulator.accepted
    assert submit.send_time


def test_a_release_whose_answer_was_lost_still_queues_the_chunk(
    *,
    api: Api,
    worker: Worker,
    simulator: Simulator,
    stack: Provisioned,
    load_handler: Callable[..., ModuleType],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a held send, and DynamoDB applying the release but its answer lost (botocore's
    # retry then fails the condition: the release reads False although it was applied)
    reply = scheduled(api, ["13800138000"])
    spec = stack.functions["ReconcilerFunction"]
    module = load_handler(spec.code_dir, spec.environment)
    graph = rewire(module, clock=lambda: time.time() + at_release())
    release = graph.store.chunks.release_chunk

    def applied_then_lost(*args: Any, **kwargs: Any) -> bool:
        release(*args, **kwargs)
        return False

    monkeypatch.setattr(graph.store.chunks, "release_chunk", applied_then_lost)
    module.handler({}, FakeContext("smsgw-reconciler", timeout_ms=60_000))
    # When the worker drains the queue
    worker.drain()
    # Then the chunk went all the same: it was queued, not stranded
    assert len(simulator.accepted) == 1
    assert api.get(reply["id"])[1]["recipients"][0]["status"] == "submitted"
