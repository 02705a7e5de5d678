"""Find, follow and hear back, end to end: the local stack over real sockets (the API, the
worker and reconciler processes, moto server, the Guodu simulator), a callback receiver
that is a real HTTP server, and the bus's events read from an SQS queue a rule feeds.

The stack holds sends scheduled more than a minute ahead and releases them two minutes
before their time (so a send 100 s ahead is due for release at once: the reconciler is
invoked by the test instead of waiting for its minute), and retries a failed callback
after 1 s, 2 s, 4 s...
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from smsgw.domain.callbacks import verify
from smsgw_local.schedules import scheduled_event
from smsgw_local.stack import LocalGateway
from tests.callback_receiver import CallbackReceiver
from tests.conftest import wait_until
from tests.e2e.conftest import fast_simulator, mobile

pytestmark = pytest.mark.e2e

KEY_A, KEY_B = "follow-key-a", "follow-key-b"
SECRET = "whsec_local-test-secret-of-key-a"


class Bus:
    """Every event on the gateway's bus, through a rule with an SQS target."""

    def __init__(self, stack: LocalGateway) -> None:
        self.sqs, events = stack.client("sqs"), stack.client("events")
        self.url = self.sqs.create_queue(QueueName="follow-sink")["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        bus = stack.provisioned.ref("EventBus") if stack.provisioned else ""
        events.put_rule(Name="follow-sink", EventBusName=bus, EventPattern=json.dumps({"source": ["smsgw"]}))
        events.put_targets(Rule="follow-sink", EventBusName=bus, Targets=[{"Id": "sink", "Arn": arn}])
        self.seen: list[dict[str, Any]] = []

    def of(self, detail_type: str, request_id: str) -> list[dict[str, Any]]:
        while batch := self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10).get(
            "Messages", []
        ):
            for message in batch:
                self.seen.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"])
        return [
            e
            for e in self.seen
            if e["detail-type"] == detail_type and e["detail"].get("request_id") == request_id
        ]


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalGateway]:
    with LocalGateway(
        api_port=0,
        simulator_port=0,
        moto_port=0,
        env={"SMSGW_API_KEYS": f"{KEY_A},{KEY_B}", "SMSGW_CALLBACK_SECRET": SECRET},
        simulator=fast_simulator(),
        parameters={
            "ScheduledHoldSeconds": 60,
            "ScheduledReleaseLeadSeconds": 120,
            "CallbackRetryBaseSeconds": 1,
        },
    ) as running:
        yield running


@pytest.fixture(scope="module")
def bus(stack: LocalGateway) -> Bus:
    return Bus(stack)


class Client:
    def __init__(self, stack: LocalGateway, key: str) -> None:
        self.base = stack.api_url
        self.http = requests.Session()
        self.http.headers["x-api-key"] = key

    def send(self, body: dict[str, Any]) -> dict[str, Any]:
        response = self.http.post(f"{self.base}/v1/messages", json=body, timeout=30)
        assert response.status_code == 202, response.text
        reply: dict[str, Any] = response.json()
        return reply

    def get(self, path: str, **query: str) -> dict[str, Any]:
        response = self.http.get(f"{self.base}{path}", params=query, timeout=30)
        assert response.status_code == 200, response.text
        reply: dict[str, Any] = response.json()
        return reply

    def cancel(self, request_id: str) -> dict[str, Any]:
        response = self.http.delete(f"{self.base}/v1/messages/{request_id}", timeout=30)
        assert response.status_code == 200, response.text
        reply: dict[str, Any] = response.json()
        return reply


@pytest.fixture(scope="module")
def a(stack: LocalGateway) -> Client:
    return Client(stack, KEY_A)


@pytest.fixture(scope="module")
def b(stack: LocalGateway) -> Client:
    return Client(stack, KEY_B)


def reconcile(stack: LocalGateway) -> dict[str, int]:
    invocation = stack.invoke(
        "ReconcilerFunction", scheduled_event("rule", account=stack.account, region=stack.region)
    )
    assert invocation.ok, invocation.error
    result: dict[str, int] = invocation.payload
    return result


def test_search_finds_the_callers_own_newest_first_in_pages(a: Client, b: Client) -> None:
    # Given three requests of A to a number with a reference, and one of B to the same number
    number, reference = mobile(), f"order-{uuid.uuid4().hex[:8]}"
    mine = []
    for _ in range(3):
        mine.append(a.send({"to": [number], "content": "【测试】您好", "reference": reference})["id"])
        time.sleep(1.1)  # a second apart: created_at orders them
    theirs = b.send({"to": [number], "content": "【测试】您好", "reference": reference})["id"]
    for query in ({"reference": reference}, {"to": number}):
        # When A searches, two a page
        first = a.get("/v1/messages", limit="2", **query)
        second = a.get("/v1/messages", limit="2", cursor=first["next_cursor"], **query)
        # Then A gets exactly its three, newest first, over two pages
        assert [m["id"] for m in first["messages"] + second["messages"]] == mine[::-1], query
        assert second["next_cursor"] is None
    # And B finds only its own
    assert [m["id"] for m in b.get("/v1/messages", to=number)["messages"]] == [theirs]


def test_a_request_ends_completed_with_counts_and_request_completed_is_published(
    stack: LocalGateway, a: Client, bus: Bus
) -> None:
    numbers = [mobile(), mobile()]
    request_id = a.send({"to": numbers, "content": "【测试】您好"})["id"]
    # When every report is in and the reconciler has run
    wait_until(lambda: a.get(f"/v1/messages/{request_id}")["counts"]["delivered"] == 2, timeout=30)
    wait_until(lambda: reconcile(stack) and a.get(f"/v1/messages/{request_id}")["completed_at"], timeout=30)
    # Then the request is completed with its counts, and Request Completed was published once
    view = a.get(f"/v1/messages/{request_id}")
    assert (view["status"], view["counts"]["delivered"], view["counts"]["total"]) == ("completed", 2, 2)
    reconcile(stack)
    (event,) = wait_until(lambda: bus.of("Request Completed", request_id), timeout=15)
    assert event["detail"]["counts"] == view["counts"]


def test_a_refusal_at_submit_is_published_once(stack: LocalGateway, a: Client, bus: Bus) -> None:
    assert stack.simulator is not None
    stack.simulator.queue_faults("07")
    request_id = a.send({"to": [mobile()], "content": "【测试】您好"})["id"]
    wait_until(lambda: a.get(f"/v1/messages/{request_id}")["recipients"][0]["status"] == "failed", timeout=30)
    reconcile(stack)
    events = wait_until(lambda: bus.of("Recipients Failed", request_id), timeout=15)
    time.sleep(1)
    assert len(bus.of("Recipients Failed", request_id)) == len(events) == 1
    assert (events[0]["detail"]["stage"], events[0]["detail"]["provider_code"]) == ("submit", "07")


def later(seconds: int) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


def test_a_scheduled_send_cancelled_before_release_sends_nothing(
    stack: LocalGateway, a: Client, bus: Bus
) -> None:
    assert stack.simulator is not None
    number = mobile()
    request_id = a.send({"to": [number], "content": "【测试】提醒", "send_at": later(100)})["id"]
    # When it is cancelled before the reconciler releases it, and then the reconciler runs
    answer = a.cancel(request_id)
    reconcile(stack)
    time.sleep(1)
    # Then nothing reached the platform, and the answer said so
    assert (answer["cancelled"], answer["already_left"]) == (1, 0)
    assert number not in {m for submit in stack.simulator.accepted for m in submit.mobiles}
    assert a.get(f"/v1/messages/{request_id}")["recipients"][0]["status"] == "cancelled"
    assert len(wait_until(lambda: bus.of("Recipients Cancelled", request_id), timeout=15)) == 1


def test_a_scheduled_send_cancelled_after_release_reports_what_had_left(
    stack: LocalGateway, a: Client
) -> None:
    assert stack.simulator is not None
    numbers = [mobile(), mobile()]
    request_id = a.send({"to": numbers, "content": "【测试】提醒", "send_at": later(100)})["id"]
    # When the reconciler releases it and the worker hands it to the platform (with its SendTime)
    reconcile(stack)
    submit = wait_until(
        lambda: next((s for s in stack.simulator.accepted if set(s.mobiles) == set(numbers)), None),  # type: ignore[union-attr]
        timeout=30,
    )
    assert submit.send_time
    # Then a cancel cancels nothing, and says both had left
    answer = a.cancel(request_id)
    assert (answer["cancelled"], answer["already_left"]) == (0, 2)


def test_a_callback_receiver_gets_every_event_signed_even_after_failing_its_first_calls(
    stack: LocalGateway, a: Client
) -> None:
    with CallbackReceiver(fail_first=2) as receiver:
        request_id = a.send({"to": [mobile()], "content": "【测试】您好", "callback_url": receiver.url})["id"]
        wait_until(lambda: a.get(f"/v1/messages/{request_id}")["counts"]["delivered"] == 1, timeout=30)
        reconcile(stack)
        kinds = {"Request Submitted", "Recipients Delivered", "Request Completed"}

        def delivered() -> set[str]:
            return {json.loads(c.body)["type"] for c in receiver.delivered}

        wait_until(lambda: reconcile(stack) and delivered() >= kinds, timeout=60, interval=1)
    # Then each event came, signed with the caller's secret over its timestamp and body
    assert delivered() >= kinds
    assert len([c for c in receiver.calls if c.status == 500]) == 2
    secret = a.get("/v1/callback")["secret"]
    assert secret == SECRET
    for call in receiver.delivered:
        assert verify(secret, call.headers["Smsgw-Signature"], call.body)
        assert json.loads(call.body)["detail"]["request_id"] == request_id
        # And a forged signature fails verification
        forged = f"t={int(time.time())},v1={'0' * 64}"
        assert not verify(secret, forged, call.body)
        assert not verify(secret, call.headers["Smsgw-Signature"], call.body + b" ")
