"""Signed callbacks: every event of a request reaches its callback URL (a real HTTP server
here), signed; failures are retried until delivered, or dead-lettered; no URL reaches
inside the network.

The real send API, worker, push receiver and callback sender handlers against moto; the
template's EventBridge rule puts the events on the callback queue, as in the cloud.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import boto3
import pytest

from guodu_simulator import Simulator
from smsgw.domain.callbacks import verify
from smsgw.services.callbacks import MAX_RECEIVES, RETRY_DELAYS, Skipped
from smsgw_local.provision import Provisioned
from tests.callback_receiver import CallbackReceiver
from tests.conftest import FakeContext, sample_event
from tests.integration.conftest import Api, Pusher, Worker, make_stack, queued_messages, sqs_event


@pytest.fixture
def stack(aws: None, simulator: Simulator) -> Provisioned:
    return make_stack(simulator.submit_url, CallbackAllowLoopback="true")


@pytest.fixture
def receiver() -> Iterator[CallbackReceiver]:
    with CallbackReceiver() as server:
        yield server


class Sender:
    """Plays the callback queue's event source for the callback sender."""

    def __init__(self, module: ModuleType, stack: Provisioned) -> None:
        self.module = module
        self.url = stack.ref("CallbackQueue")
        self.arn = stack.attribute("CallbackQueue", "Arn")
        self.sqs = boto3.client("sqs")
        # A retry's delay (30 s and more) is what SQS waits; here the next poll sees it.
        delay = module.graph.queue.retry
        self.delays: list[int] = []

        def record(receipt: str, seconds: int) -> None:
            self.delays.append(seconds)
            delay(receipt, 0)

        module.graph.queue.retry = record

    def drain(self, rounds: int = 40) -> None:
        for _ in range(rounds):
            messages = self.sqs.receive_message(
                QueueUrl=self.url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"]
            ).get("Messages", [])
            if not messages:
                return
            result = self.module.handler(sqs_event(messages, self.arn), FakeContext("smsgw-callback-sender"))
            failed = {f["itemIdentifier"] for f in result["batchItemFailures"]}
            for message in messages:
                if message["MessageId"] not in failed:
                    self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"])


@pytest.fixture
def sender(stack: Provisioned, load_handler: Callable[..., ModuleType]) -> Sender:
    spec = stack.functions["CallbackSenderFunction"]
    return Sender(load_handler(spec.code_dir, spec.environment), stack)


def report(msg_id: str, mobile: str) -> dict[str, Any]:
    return {
        "msg": "发送成功",
        "mobile": mobile,
        "msgId": msg_id,
        "reportTime": "2026-11-24 12:00:05",
        "status": 0,
    }


def test_every_event_of_a_request_reaches_its_callback_url_signed(
    *,
    api: Api,
    worker: Worker,
    pusher: Pusher,
    simulator: Simulator,
    sender: Sender,
    receiver: CallbackReceiver,
) -> None:
    # Given a request with a callback URL, submitted and reported delivered
    _, reply = api.post({"to": ["13800138000"], "content": "x", "callback_url": receiver.url})
    worker.drain()
    pusher.push([report(simulator.accepted[0].msg_id, "13800138000")])
    # When the callback sender runs
    sender.drain()
    # Then the receiver got each event once, as JSON, with its event id in a header
    kinds = sorted(json.loads(c.body)["type"] for c in receiver.delivered)
    assert kinds == ["Recipients Delivered", "Request Submitted"]
    secret = api.call("GET", "/v1/callback")[1]["secret"]
    for call in receiver.delivered:
        body = json.loads(call.body)
        assert body["detail"]["request_id"] == reply["id"]
        assert call.headers["Smsgw-Event-Id"] == body["detail"]["event_id"]
        # And each is signed under the caller's secret, over its timestamp and exact body
        assert verify(secret, call.headers["Smsgw-Signature"], call.body)
        # And a forged signature, another secret or a changed body fails the check
        forged = call.headers["Smsgw-Signature"].split("v1=")[0] + "v1=" + "0" * 64
        assert not verify(secret, forged, call.body)
        assert not verify("whsec_someone-else", call.headers["Smsgw-Signature"], call.body)
        assert not verify(secret, call.headers["Smsgw-Signature"], call.body.replace(b'"type"', b'"Type"'))


def test_a_receiver_that_fails_its_first_calls_still_gets_every_event(
    api: Api, worker: Worker, simulator: Simulator, sender: Sender
) -> None:
    with CallbackReceiver(fail_first=3) as receiver:
        messages = [{"to": "13800138000", "content": "a"}, {"to": "13900139000", "content": "b"}]
        _, reply = api.post({"messages": messages, "callback_url": receiver.url})
        simulator.queue_faults("06")
        worker.drain()
        sender.drain()
    # Then after three failures every event was delivered, with growing delays between tries
    delivered = {json.loads(c.body)["detail"]["event_id"] for c in receiver.delivered}
    attempted = {json.loads(c.body)["detail"]["event_id"] for c in receiver.calls}
    assert delivered == attempted
    assert len([c for c in receiver.calls if c.status == 500]) == 3
    # each event's n-th failure waits the n-th delay: 30 s, then 60 s...
    assert len(sender.delays) == 3
    assert set(sender.delays) <= set(RETRY_DELAYS[:3])
    assert sender.delays[0] == RETRY_DELAYS[0]
    assert all(json.loads(c.body)["detail"]["request_id"] == reply["id"] for c in receiver.calls)


def test_the_callers_default_url_is_used_when_a_request_names_none(
    api: Api, worker: Worker, sender: Sender, receiver: CallbackReceiver
) -> None:
    status, settings = api.call("PUT", "/v1/callback", {"url": receiver.url})
    assert (status, settings["url"]) == (200, receiver.url)
    _, reply = api.post({"to": ["13800138000"], "content": "x"})
    worker.drain()
    sender.drain()
    assert [json.loads(c.body)["detail"]["request_id"] for c in receiver.delivered] == [reply["id"]]
    # And another caller's requests never go there
    api.post({"to": ["13800138000"], "content": "y"}, caller="someone-else")
    worker.drain()
    sender.drain()
    assert len(receiver.delivered) == 1


def test_a_callback_failing_for_good_is_dead_lettered_after_its_last_try(
    api: Api, worker: Worker, sender: Sender, stack: Provisioned
) -> None:
    with CallbackReceiver(fail_first=1_000) as receiver:
        api.post({"to": ["13800138000"], "content": "x", "callback_url": receiver.url})
        worker.drain()
        sender.drain(rounds=MAX_RECEIVES + 3)
    # Then it was tried MAX_RECEIVES times, with delays growing to more than a day in all,
    # and waits in the dead-letter queue (the alarm watches it)
    assert len(receiver.calls) == MAX_RECEIVES
    assert sender.delays == sorted(sender.delays)
    assert sum(sender.delays[: MAX_RECEIVES - 1]) >= 24 * 3600
    (parked,) = queued_messages(stack, "CallbackDeadLetterQueue")
    assert json.loads(parked["Body"])["detail-type"] == "Request Submitted"


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.8/hook",
        "http://192.168.1.20/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00::1]/hook",
        "http://100.64.0.1/hook",
        "ftp://203.0.113.7/hook",
        "http://user:pw@callbacks.invalid/hook",
        "not a url",
    ],
)
def test_a_callback_url_that_could_reach_inside_is_refused_naming_the_field(
    aws: None, simulator: Simulator, load_api: Callable[[Provisioned], Api], url: str
) -> None:
    # Given the cloud's settings (no loopback)
    api = load_api(make_stack(simulator.submit_url))
    for status, reply in [
        api.post({"to": ["13800138000"], "content": "x", "callback_url": url}),
        api.call("PUT", "/v1/callback", {"url": url}),
    ]:
        assert status == 400
        assert reply["error"]["details"][0]["field"] in {"callback_url", "url"}


def test_loopback_is_refused_in_the_cloud_even_by_name(
    aws: None, simulator: Simulator, load_api: Callable[[Provisioned], Api]
) -> None:
    api = load_api(make_stack(simulator.submit_url))
    for url in ("http://127.0.0.1:8080/hook", "http://localhost/hook", "http://[::1]/hook"):
        status, reply = api.post({"to": ["13800138000"], "content": "x", "callback_url": url})
        assert (status, reply["error"]["details"][0]["field"]) == (400, "callback_url")


def test_the_sample_event_of_the_callback_sender_is_handled(sender: Sender) -> None:
    event = sample_event("callback_sender/sqs_event.json")
    # The sample's body is read as an event of the bus; its request is unknown here
    outcome = sender.module.graph.service.deliver(event["Records"][0]["body"], receive_count=1)
    assert outcome == Skipped("no request")
    # And the handler is done with the message: nothing to deliver, nothing to retry
    assert sender.module.handler(event, FakeContext()) == {"batchItemFailures": []}
