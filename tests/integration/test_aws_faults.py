"""The guarantees under faults on the AWS side, one case of issue 10 each.

The handlers run against moto with the fault hook of ``smsgw_local.aws_faults`` on their
own clients: DynamoDB and SQS answer as they do when they throttle, fail, time out, or
apply a write and lose its answer (which botocore then retries). The provider is the
Guodu simulator, whose record says what the platform really received.
"""

from __future__ import annotations

import gc
import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import boto3
import botocore.client
import pytest

from guodu_simulator import Simulator
from smsgw.adapters.chunks import ChunkStore
from smsgw.adapters.table import MessageTable
from smsgw.domain.model import ChunkRef
from smsgw_local import aws_faults
from smsgw_local.aws_faults import AwsFaults, parse_spec
from smsgw_local.provision import Provisioned
from tests.conftest import FakeContext, rewire
from tests.integration.conftest import Api, EventSink, Pusher, Worker, make_stack, queued_messages

SERVICES = ("dynamodb", "sqs", "secretsmanager", "events")


@pytest.fixture
def stack(aws: None, simulator: Simulator) -> Provisioned:
    return make_stack(simulator.submit_url)


@pytest.fixture
def hooked() -> Iterator[Callable[[Callable[[], Any]], tuple[Any, AwsFaults]]]:
    """Load a handler with the fault hook on every client it makes (no fault yet: set
    ``faults.rules``, or ``faults.script``, when the test wants one)."""

    def load(make: Callable[[], Any]) -> tuple[Any, AwsFaults]:
        faults = aws_faults.install("", seed=10, services=SERVICES)
        try:
            return make(), faults
        finally:
            aws_faults.uninstall()

    yield load
    aws_faults.uninstall()


def when_the_platform_answers(
    simulator: Simulator, monkeypatch: pytest.MonkeyPatch, then: Callable[[], None]
) -> None:
    """Run ``then`` as the platform answers a submit (once): the worker gets the answer
    into a world where ``then`` has happened."""
    answer, done = simulator.handle_submit, []

    def answering(*args: Any) -> Any:
        result = answer(*args)
        if not done:
            done.append(True)
            then()
        return result

    monkeypatch.setattr(simulator, "handle_submit", answering)


def recipient(api: Api, request_id: str) -> dict[str, Any]:
    status, view = api.get(request_id)
    assert status == 200
    first: dict[str, Any] = view["recipients"][0]
    return first


# -- 1. a DynamoDB error after the platform answered -------------------------------------


def test_an_accepted_submit_is_recorded_with_its_msg_id_though_dynamodb_failed_as_it_answered(
    *,
    api: Api,
    stack: Provisioned,
    load_worker: Callable[..., Worker],
    simulator: Simulator,
    hooked: Callable[..., tuple[Worker, AwsFaults]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a worker whose DynamoDB fails every write from the moment the platform answers
    worker, faults = hooked(lambda: load_worker(stack))
    when_the_platform_answers(
        simulator,
        monkeypatch,
        lambda: setattr(
            faults, "rules", parse_spec("dynamodb.TransactWriteItems=error:1,dynamodb.UpdateItem=error:1")
        ),
    )
    _, reply = api.post({"to": ["13800138000"], "content": "【示例】您好"})
    # When it submits (the platform accepts), then DynamoDB comes back and the queue drains
    worker.poll_once()
    held = queued_messages(stack)
    faults.rules = ()
    worker.drain()
    # Then the answer waited on the queue as a settle order, and was written: the recipient
    # is submitted with the platform's MsgId, sent once, and nothing is unknown
    assert [json.loads(m["Body"])["settle"]["msg_id"] for m in held] == [simulator.accepted[0].msg_id]
    (submit,) = simulator.accepted
    shown = recipient(api, reply["id"])
    assert (shown["status"], shown["provider_msg_id"]) == ("submitted", submit.msg_id)
    assert api.get(reply["id"])[1]["status"] == "submitted"


def test_a_minus_1_answer_whose_record_failed_is_retried_not_left_unknown(
    *,
    api: Api,
    stack: Provisioned,
    load_worker: Callable[..., Worker],
    simulator: Simulator,
    hooked: Callable[..., tuple[Worker, AwsFaults]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given the platform answers -1 (nothing went out), and DynamoDB fails as it answers:
    # the release of the claim and the lane's pause cannot be written
    worker, faults = hooked(lambda: load_worker(stack))
    simulator.queue_faults("-1")
    when_the_platform_answers(
        simulator, monkeypatch, lambda: setattr(faults, "rules", parse_spec("dynamodb.*=error:1"))
    )
    _, reply = api.post({"to": ["13800138000"], "content": "【示例】您好"})
    worker.poll_once()
    faults.rules = ()
    worker.drain()
    # Then the chunk was given back and sent again: submitted, once accepted
    assert [r.result_code for r in simulator.refused] == ["-1"]
    assert len(simulator.accepted) == 1
    assert recipient(api, reply["id"])["status"] == "submitted"


# -- 2. botocore retries a conditional write that was applied --------------------------


def test_writes_whose_answers_were_lost_are_known_as_the_attempts_own(
    aws: None,
    simulator: Simulator,
    load_api: Callable[[Provisioned], Api],
    load_worker: Callable[..., Worker],
    hooked: Callable[..., tuple[Worker, AwsFaults]],
) -> None:
    # Given DynamoDB applying the settle and the count, and losing each answer once
    stack = make_stack(simulator.submit_url)
    api, sink = load_api(stack), EventSink(stack)
    worker, faults = hooked(lambda: load_worker(stack))
    faults.script("dynamodb.TransactWriteItems", "lost", None, "lost")  # the settle, its retry; the count
    _, reply = api.post({"to": ["13800138000"], "content": "【示例】您好"}, key="lost-1")
    worker.drain()
    # Then botocore's retries met the attempt's own writes and knew them: sent once,
    # submitted with its MsgId, the request complete, announced once
    assert [(i.operation, i.kind) for i in faults.injected] == [
        ("TransactWriteItems", "lost"),
        ("TransactWriteItems", "lost"),
    ]
    (submit,) = simulator.accepted
    shown = recipient(api, reply["id"])
    assert (shown["status"], shown["provider_msg_id"]) == ("submitted", submit.msg_id)
    assert api.get(reply["id"])[1]["status"] == "submitted"
    assert len(sink.of_type("Request Submitted")) == 1


def test_a_claim_retried_by_botocore_after_its_answer_was_lost_is_the_claimers_own(
    api: Api, stack: Provisioned, hooked: Callable[..., tuple[ChunkStore, AwsFaults]]
) -> None:
    # Given a store whose client retries (as every client but the worker's claims does)
    _, reply = api.post({"to": ["13800138000"], "content": "【示例】您好"})
    store, faults = hooked(lambda: MessageTable(boto3.client("dynamodb"), stack.ref("MessagesTable")).chunks)
    faults.script("dynamodb.UpdateItem", "lost")
    # When a claim is applied, its answer lost, and botocore retries it
    claim = store.claim_chunk(ChunkRef(reply["id"], 0), token="attempt-1", lease_seconds=60)
    # Then the retry's failed condition is read as the attempt's own claim, not another's
    assert claim.claimed
    assert claim.chunk is not None
    assert claim.chunk.attempts == 1
    assert [(i.operation, i.kind) for i in faults.injected] == [("UpdateItem", "lost")]
    # And another attempt's claim is refused as before
    assert not store.claim_chunk(ChunkRef(reply["id"], 0), token="attempt-2", lease_seconds=60).claimed


def test_a_completion_check_retried_after_its_answer_was_lost_backs_off_one_step_not_two(
    api: Api,
    stack: Provisioned,
    load_worker: Callable[..., Worker],
    hooked: Callable[..., tuple[MessageTable, AwsFaults]],
) -> None:
    # Given a submitted request waiting for its report, on the due index for completion
    _, reply = api.post({"to": ["13800138000"], "content": "【示例】您好"})
    load_worker(stack).drain()
    table, faults = hooked(lambda: MessageTable(boto3.client("dynamodb"), stack.ref("MessagesTable")))
    request = table.requests.get_request(reply["id"], consistent=True)
    assert request is not None
    faults.script("dynamodb.UpdateItem", "lost")
    # When the reconciler's first look is written, its answer lost, and botocore retries it
    table.due.reschedule(
        f"REQ#{reply['id']}", "META", due_at=int(time.time()) + 60, checks=request.due_checks + 1
    )
    # Then the look is counted once: the next check comes after the first step of the
    # back-off, not the second
    assert [(i.operation, i.kind) for i in faults.injected] == [("UpdateItem", "lost")]
    looked = table.requests.get_request(reply["id"], consistent=True)
    assert looked is not None
    assert looked.due_checks == 1


def test_a_claim_whose_answer_was_lost_in_the_worker_is_given_back_before_anything_is_sent(
    api: Api,
    stack: Provisioned,
    load_worker: Callable[..., Worker],
    simulator: Simulator,
    hooked: Callable[..., tuple[Worker, AwsFaults]],
) -> None:
    # Given the worker's claim applied and its answer lost (the worker's claims are not
    # retried by botocore: a claim that stood while botocore waited would, should the
    # worker die then, read "maybe sent" for a chunk never sent)
    worker, faults = hooked(lambda: load_worker(stack))
    faults.script("dynamodb.UpdateItem", None, "lost")  # the rate limit's slot, then the claim
    _, reply = api.post({"to": ["13800138000"], "content": "【示例】您好"})
    worker.poll_once()
    # Then nothing was sent, the claim was given back, and the chunk waits to go, held
    assert simulator.accepted == []
    assert recipient(api, reply["id"])["status"] == "queued"
    chunk = MessageTable(boto3.client("dynamodb"), stack.ref("MessagesTable")).chunks.get_chunk(
        ChunkRef(reply["id"], 0)
    )
    assert chunk is not None
    assert (chunk.state.value, chunk.attempts) == ("queued", 0)
    held = worker.sqs.get_queue_attributes(QueueUrl=worker.url, AttributeNames=["All"])["Attributes"]
    assert held["ApproximateNumberOfMessagesDelayed"] == "1"


# -- 3. an intake stopped half-way -------------------------------------------------------


def test_an_intake_stopped_half_way_is_accepted_and_finished_by_the_reconciler(
    *,
    stack: Provisioned,
    load_api: Callable[[Provisioned], Api],
    worker: Worker,
    simulator: Simulator,
    hooked: Callable[..., tuple[Api, AwsFaults]],
    load_handler: Callable[..., ModuleType],
) -> None:
    # Given SQS refusing every message of the API's intake
    api, faults = hooked(lambda: load_api(stack))
    faults.rules = parse_spec("sqs.SendMessageBatch=error:1")
    # When a client sends 600 numbers (no Idempotency-Key)
    status, reply = api.post({"to": [f"138{i:08d}" for i in range(600)], "content": "【示例】通知"})
    # Then it has its 202 (the request is stored: nothing to retry, nothing to send twice)
    assert status == 202
    assert api.get(reply["id"])[1]["status"] == "accepting"
    assert queued_messages(stack) == []
    # And when the reconciler runs, a few minutes later, with SQS back
    faults.rules = ()
    spec = stack.functions["ReconcilerFunction"]
    reconciler = load_handler(spec.code_dir, spec.environment)
    rewire(reconciler, clock=lambda: time.time() + 300)
    swept = reconciler.handler({}, FakeContext("smsgw-reconciler", timeout_ms=60_000))
    worker.drain()
    # Then the request was queued and sent whole, each number once
    assert swept["intakes_finished"] == 1
    sent = [m for s in simulator.accepted for m in s.mobiles]
    assert sorted(sent) == [f"138{i:08d}" for i in range(600)]
    assert api.get(reply["id"], limit="5000")[1]["counts"]["submitted"] == 600


# -- 4. the deadline holds with the limiter off; the secret is read before the claim ---


def test_a_worker_out_of_time_gives_the_chunk_back_even_with_no_rate_limit(
    aws: None,
    simulator: Simulator,
    load_api: Callable[[Provisioned], Api],
    load_worker: Callable[..., Worker],
) -> None:
    stack = make_stack(simulator.submit_url, GuoduMaxSubmitsPerSecond=0)
    api, worker = load_api(stack), load_worker(stack)
    _, reply = api.post({"to": ["13800138000"], "content": "【示例】您好"})
    # When an invocation with one second left gets the message
    (message,) = worker.sqs.receive_message(QueueUrl=worker.url, MessageSystemAttributeNames=["All"])[
        "Messages"
    ]
    result = worker.module.handler(
        worker.event([message]), FakeContext("smsgw-submit-worker", timeout_ms=1_000)
    )
    # Then it did not submit (the timeout would kill it mid-call): the chunk is queued again
    assert simulator.accepted == []
    assert result["batchItemFailures"] == []
    assert recipient(api, reply["id"])["status"] == "queued"
    waiting = worker.sqs.get_queue_attributes(QueueUrl=worker.url, AttributeNames=["All"])["Attributes"]
    assert (
        int(waiting["ApproximateNumberOfMessages"]) + int(waiting["ApproximateNumberOfMessagesDelayed"]) == 1
    )
    # And the next invocation, with its whole time, sends it once
    worker.drain()
    assert len(simulator.accepted) == 1


def test_a_secret_that_cannot_be_read_leaves_nothing_claimed(
    api: Api,
    stack: Provisioned,
    load_worker: Callable[..., Worker],
    simulator: Simulator,
    hooked: Callable[..., tuple[Worker, AwsFaults]],
) -> None:
    # Given Secrets Manager failing when a fresh worker needs the provider's credentials
    worker, faults = hooked(lambda: load_worker(stack))
    faults.rules = parse_spec("secretsmanager.GetSecretValue=error:1")
    _, reply = api.post({"to": ["13800138000"], "content": "【示例】您好"})
    worker.poll_once()
    # Then nothing was claimed: the recipient is still queued, not "maybe sent"
    assert recipient(api, reply["id"])["status"] == "queued"
    # And once Secrets Manager is back it goes out, once
    faults.rules = ()
    worker.drain()
    assert len(simulator.accepted) == 1
    assert recipient(api, reply["id"])["status"] == "submitted"


# -- 5. scheduled sends outlive their records ----------------------------------------


def records(stack: Provisioned, request_id: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = boto3.client("dynamodb").query(
        TableName=stack.ref("MessagesTable"),
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"REQ#{request_id}"}},
    )["Items"]
    return items


RETENTION = 30 * 86_400


@pytest.mark.parametrize("ahead", [timedelta(days=60), timedelta(minutes=8)], ids=["held", "submitted"])
def test_a_scheduled_send_keeps_its_records_until_after_it_goes(
    api: Api, worker: Worker, stack: Provisioned, ahead: timedelta
) -> None:
    # Given a send scheduled ahead: 60 days (the gateway holds it), or 8 minutes (it is
    # submitted at once with the platform's SendTime)
    send_at = datetime.now(UTC) + ahead
    _, reply = api.post({"to": ["13800138000"], "content": "【示例】预约", "send_at": send_at.isoformat()})
    worker.drain()
    items = records(stack, reply["id"])
    link = recipient(api, reply["id"])["provider_msg_id"]
    if link:
        items.append(
            boto3.client("dynamodb").get_item(
                TableName=stack.ref("MessagesTable"), Key={"pk": {"S": f"MSG#{link}"}, "sk": {"S": "LINK"}}
            )["Item"]
        )
    # Then every record (request, chunk, its count and the MsgId's link once submitted)
    # lives RetentionDays (30) after the send time, not after the day it was accepted
    kinds = {i["sk"]["S"].split("#")[0] for i in items if "expires_at" in i}
    assert {"META", "CHUNK"} <= kinds
    if ahead < timedelta(days=1):
        assert {"COUNTED", "LINK"} <= kinds
    assert all(
        int(i["expires_at"]["N"]) >= send_at.timestamp() + RETENTION - 5 for i in items if "expires_at" in i
    )


# -- 6. waiting uses up no receives ------------------------------------------------------


def test_waiting_for_a_paused_lane_hands_the_message_on_and_uses_up_no_receive(
    api: Api, worker: Worker, stack: Provisioned, simulator: Simulator
) -> None:
    # Given the lane paused for ten minutes (the platform kept failing)
    boto3.client("dynamodb").put_item(
        TableName=stack.ref("MessagesTable"),
        Item={"pk": {"S": "RATE#guodu"}, "sk": {"S": "PAUSE"}, "until": {"N": str(time.time() + 600)}},
    )
    api.post({"to": ["13800138000"], "content": "【示例】您好"})
    # When the worker gets the message
    worker.poll_once()
    # Then the message was let go and a fresh copy queued, due when the pause ends: its
    # receives start again from nothing, so waiting never nears the dead-letter queue
    attributes = worker.sqs.get_queue_attributes(QueueUrl=worker.url, AttributeNames=["All"])["Attributes"]
    assert attributes["ApproximateNumberOfMessagesNotVisible"] == "0"
    assert attributes["ApproximateNumberOfMessagesDelayed"] == "1"
    assert simulator.accepted == []
    assert queued_messages(stack, "SendDeadLetterQueue") == []


# -- 8. every client has timeouts and standard retries --------------------------------


@pytest.mark.parametrize(
    "function", ["SendApiFunction", "SubmitWorkerFunction", "PushReceiverFunction", "ReconcilerFunction"]
)
def test_every_client_a_function_makes_has_short_timeouts_and_standard_retries(
    stack: Provisioned, load_handler: Callable[..., ModuleType], function: str
) -> None:
    before = {id(o) for o in gc.get_objects() if isinstance(o, botocore.client.BaseClient)}
    spec = stack.functions[function]
    module = load_handler(spec.code_dir, spec.environment)
    made = [o for o in gc.get_objects() if isinstance(o, botocore.client.BaseClient) and id(o) not in before]
    assert made, module
    for made_client in made:
        config = made_client.meta.config
        assert config.connect_timeout <= 2
        assert config.read_timeout <= 5
        assert config.retries["mode"] == "standard"


# -- 9. the limits that keep intake within seconds ------------------------------------


def test_requests_larger_than_intake_can_finish_are_refused_naming_the_field(api: Api) -> None:
    personal = {"messages": [{"to": f"138{i:08d}", "content": f"码{i}"} for i in range(1_001)]}
    status, answer = api.post(personal)
    assert (status, answer["error"]["details"][0]["field"]) == (400, "messages")
    codes = {"to": [f"139{i:08d}" for i in range(1_001)], "content": "验证码 1", "category": "verification"}
    status, answer = api.post(codes)
    assert (status, answer["error"]["details"][0]["field"]) == (400, "to")
    assert "verification" in answer["error"]["details"][0]["message"]


# -- 10. a report that never comes -----------------------------------------------------


def test_a_recipient_with_no_report_in_time_ends_unknown_and_a_late_report_still_settles_it(
    *,
    api: Api,
    worker: Worker,
    stack: Provisioned,
    simulator: Simulator,
    load_handler: Callable[..., ModuleType],
    pusher: Pusher,
    event_sink: EventSink,
) -> None:
    _, reply = api.post({"to": ["13800138000", "13900139000"], "content": "【示例】您好", "reference": "r-9"})
    worker.drain()
    (submit,) = simulator.accepted
    # Given one of the two numbers got its report
    report = {"msg": "发送成功", "mobile": "13800138000", "msgId": submit.msg_id, "status": 0}
    assert pusher.push([{**report, "reportTime": "2026-11-24 12:00:05"}])[0] == 200
    # When the reconciler runs after ReportTimeoutHours (72)
    spec = stack.functions["ReconcilerFunction"]
    reconciler = load_handler(spec.code_dir, spec.environment)
    rewire(reconciler, clock=lambda: time.time() + 73 * 3600)
    swept = reconciler.handler({}, FakeContext("smsgw-reconciler", timeout_ms=60_000))
    # Then the silent one is unknown (no_report), announced, and the reported one delivered
    _, view = api.get(reply["id"])
    shown = {r["to"]: (r["status"], r["detail"]) for r in view["recipients"]}
    assert shown == {"13800138000": ("delivered", "发送成功"), "13900139000": ("unknown", "no_report")}
    assert view["counts"]["unknown"] == 1
    assert swept["recipients_unknown"] == 1
    (event,) = event_sink.of_type("Recipients Unknown")
    assert event["detail"]["reason"] == "no_report"
    assert [r["to"] for r in event["detail"]["recipients"]] == ["13900139000"]
    assert event["detail"]["reference"] == "r-9"
    # And a run again changes and announces nothing more
    assert (
        reconciler.handler({}, FakeContext("smsgw-reconciler", timeout_ms=60_000))["recipients_unknown"] == 0
    )
    # And a late report still settles it
    late = {"msg": "DELIVRD", "mobile": "13900139000", "msgId": submit.msg_id, "status": 0}
    assert pusher.push([{**late, "reportTime": "2026-11-27 12:00:05"}])[0] == 200
    assert api.get(reply["id"])[1]["recipients"][1]["status"] == "delivered"
