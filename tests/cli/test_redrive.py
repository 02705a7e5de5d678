"""``smsgw redrive``: dead-lettered sends back to the send queue, against moto.

The queues come from template.yaml (``smsgw_local.provision``), so their names and their
redrive policy are the stack's own. Messages are put on the dead-letter queue the two
ways they get there in production: parked by the worker (``SendQueue.park``, with a
``reason``) and moved by SQS after maxReceiveCount (no attribute).
"""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import boto3
import pytest

from guodu_simulator import Simulator, SimulatorConfig
from smsgw.adapters.queue import SendQueue, encode_ref
from smsgw.domain.model import ChunkRef
from smsgw_cli.commands import redrive
from smsgw_cli.main import main
from smsgw_local.provision import Provisioned, provision
from tests.cli.conftest import Run
from tests.integration.conftest import Api, Worker

REQUEST_A = "0b4f6c1e-8d2a-4f7e-9c11-2a6f5e3d9b01"
REQUEST_B = "7d1c2e3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f"
PASSWORD = "test-only-password"


# -- the stack and its queues ---------------------------------------------------------
@pytest.fixture
def stack(aws: None) -> Provisioned:
    return provision(parameters={"GuoduSubmitUrl": "http://127.0.0.1:9/x"})


class Queues:
    def __init__(self, stack: Provisioned) -> None:
        self.sqs = boto3.client("sqs")
        self.send = stack.ref("SendQueue")
        self.dlq = stack.ref("SendDeadLetterQueue")
        self.parker = SendQueue(self.sqs, self.send, dead_letter_url=self.dlq)

    def park(self, request_id: str, chunk: int, reason: str = "unknown ResultCode 99") -> None:
        """As the worker parks a chunk (an unknown ResultCode, say)."""
        self.parker.park(encode_ref(ChunkRef(request_id, chunk)), reason)

    def dead_letter(self, request_id: str, chunk: int) -> None:
        """As SQS leaves a chunk after its last failed attempt: the body, no attribute."""
        self.sqs.send_message(QueueUrl=self.dlq, MessageBody=encode_ref(ChunkRef(request_id, chunk)))

    def counts(self, url: str) -> tuple[int, int]:
        """(visible, in flight) messages of a queue."""
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return (
            int(attributes["ApproximateNumberOfMessages"]),
            int(attributes["ApproximateNumberOfMessagesNotVisible"]),
        )

    def take_all(self, url: str) -> list[dict[str, Any]]:
        """Every message of a queue (received and deleted), with its attributes."""
        taken: list[dict[str, Any]] = []
        while True:
            batch = self.sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
            ).get("Messages", [])
            if not batch:
                return taken
            for message in batch:
                taken.append(message)
                self.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])

    def chunks(self, url: str) -> list[tuple[str, int]]:
        return sorted(
            (b["request_id"], b["chunk"]) for b in (json.loads(m["Body"]) for m in self.take_all(url))
        )


@pytest.fixture
def queues(stack: Provisioned) -> Queues:
    return Queues(stack)


RunRedrive = Callable[..., Run]


@pytest.fixture
def smsgw_redrive(queues: Queues, capsys: pytest.CaptureFixture[str]) -> RunRedrive:
    """``smsgw redrive`` on the stack's queues (short polling: moto has no false empties)."""

    def run(*args: str, stdin: bytes | None = None) -> Run:
        if stdin is not None:
            sys.stdin = io.TextIOWrapper(io.BytesIO(stdin))
        capsys.readouterr()
        code = main(
            ["redrive", "--queue-url", queues.send, "--dlq-url", queues.dlq, "--wait-seconds", "0", *args]
        )
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return run


@pytest.fixture(autouse=True)
def _restore_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", sys.stdin)


# -- dry run --------------------------------------------------------------------------
def test_a_dry_run_lists_the_messages_and_moves_nothing(queues: Queues, smsgw_redrive: RunRedrive) -> None:
    # Given two chunks parked by the worker and one left by SQS after its last attempt
    queues.park(REQUEST_A, 0)
    queues.park(REQUEST_A, 1, reason="chunk not found")
    queues.dead_letter(REQUEST_B, 3)
    # When the operator looks with --dry-run
    run = smsgw_redrive("--dry-run")
    # Then each message is listed with its request, chunk, receive count and reason
    assert run.code == 0, run.err
    lines = run.out.splitlines()
    assert lines[0] == "would move:"
    assert lines[1].split() == [
        "MESSAGE",
        "ID",
        "REQUEST",
        "ID",
        "CHUNK",
        "RECEIVES",
        "FIRST",
        "RECEIVED",
        "REASON",
    ]
    rows = {tuple(line.split()[1:3]): line for line in lines[2:5]}
    assert set(rows) == {(REQUEST_A, "0"), (REQUEST_A, "1"), (REQUEST_B, "3")}
    assert rows[(REQUEST_A, "0")].endswith("unknown ResultCode 99")
    assert rows[(REQUEST_A, "1")].endswith("chunk not found")
    assert rows[(REQUEST_B, "3")].split()[-1] == "-"  # moved by SQS: no reason attribute
    assert all(row.split()[3] == "1" for row in rows.values())  # this scan's receive
    assert "would move 3, skipped 0, failed 0 (dry run: nothing was moved)" in run.out
    # And nothing moved, and every message is visible again at once (none left in flight)
    assert queues.counts(queues.dlq) == (3, 0)
    assert queues.counts(queues.send) == (0, 0)


def test_a_dry_run_in_json_lists_the_same(queues: Queues, smsgw_redrive: RunRedrive) -> None:
    # Given one parked chunk
    queues.park(REQUEST_A, 4)
    # When the operator asks for a dry run in JSON
    run = smsgw_redrive("--dry-run", "--json")
    # Then the JSON names the queues, the message and the summary; nothing moved
    assert run.code == 0, run.err
    reply = json.loads(run.out)
    assert reply["dry_run"] is True
    assert reply["dead_letter_queue"] == queues.dlq
    assert reply["summary"] == {"would_move": 1, "skipped": 0, "failed": 0}
    [message] = reply["would_move"]
    assert message["request_id"] == REQUEST_A
    assert message["chunk"] == 4
    assert message["reason"] == "unknown ResultCode 99"
    assert message["receive_count"] == 1
    assert message["first_received"].endswith("Z")
    assert queues.counts(queues.dlq) == (1, 0)


# -- moving ---------------------------------------------------------------------------
def test_a_redrive_moves_every_message_to_the_send_queue(queues: Queues, smsgw_redrive: RunRedrive) -> None:
    # Given twelve dead-lettered chunks (more than one batch of ten), some parked
    for chunk in range(12):
        if chunk % 3:
            queues.dead_letter(REQUEST_A, chunk)
        else:
            queues.park(REQUEST_A, chunk)
    # When the operator redrives them without being asked
    run = smsgw_redrive("--yes")
    # Then all twelve moved, and the summary says so
    assert run.code == 0, run.err
    assert run.out.splitlines()[-1] == "moved 12, skipped 0, failed 0"
    # And the send queue holds each chunk once, with its body and without the reason
    moved = queues.take_all(queues.send)
    assert sorted(json.loads(m["Body"])["chunk"] for m in moved) == list(range(12))
    assert all(m["Body"] == encode_ref(ChunkRef(REQUEST_A, json.loads(m["Body"])["chunk"])) for m in moved)
    assert all("reason" not in m.get("MessageAttributes", {}) for m in moved)
    # And the dead-letter queue is empty
    assert queues.counts(queues.dlq) == (0, 0)


def test_it_asks_before_moving_and_moves_nothing_without_a_yes(
    queues: Queues, smsgw_redrive: RunRedrive
) -> None:
    # Given two dead-lettered chunks
    queues.dead_letter(REQUEST_A, 0)
    queues.dead_letter(REQUEST_A, 1)
    # When the operator runs it without --yes and answers "n"
    run = smsgw_redrive(stdin=b"n\n")
    # Then the question named the queues and the count, nothing moved, exit 1
    assert run.code == 1
    assert "holds about 2 messages" in run.err
    assert "to smsgw-local-send? [y/N]" in run.err
    assert "nothing moved" in run.err
    assert queues.counts(queues.dlq) == (2, 0)
    # When they run it again and answer "y"
    run = smsgw_redrive(stdin=b"y\n")
    # Then both moved
    assert run.code == 0, run.err
    assert "moved 2, skipped 0, failed 0" in run.out
    assert queues.chunks(queues.send) == [(REQUEST_A, 0), (REQUEST_A, 1)]


def test_request_id_moves_only_that_requests_chunks(queues: Queues, smsgw_redrive: RunRedrive) -> None:
    # Given chunks of two requests in the dead-letter queue
    queues.dead_letter(REQUEST_A, 0)
    queues.park(REQUEST_B, 0)
    queues.dead_letter(REQUEST_A, 1)
    queues.dead_letter(REQUEST_B, 1)
    # When the operator redrives request A only
    run = smsgw_redrive("--request-id", REQUEST_A, "--yes")
    # Then A's chunks moved and B's were skipped, saying why
    assert run.code == 0, run.err
    assert "moved 2, skipped 2, failed 0" in run.out
    assert run.out.count("other request") == 2
    assert queues.chunks(queues.send) == [(REQUEST_A, 0), (REQUEST_A, 1)]
    # And B's chunks are still in the dead-letter queue, visible again at once
    assert queues.counts(queues.dlq) == (2, 0)
    assert queues.chunks(queues.dlq) == [(REQUEST_B, 0), (REQUEST_B, 1)]


def test_max_moves_at_most_n_and_leaves_the_rest_visible(queues: Queues, smsgw_redrive: RunRedrive) -> None:
    # Given five dead-lettered chunks
    for chunk in range(5):
        queues.dead_letter(REQUEST_A, chunk)
    # When the operator moves at most two
    run = smsgw_redrive("--max", "2", "--yes")
    # Then two moved and three wait, visible, in the dead-letter queue
    assert run.code == 0, run.err
    assert run.out.splitlines()[-1].startswith("moved 2, ")
    assert queues.counts(queues.send) == (2, 0)
    assert queues.counts(queues.dlq) == (3, 0)


def test_a_message_that_is_no_chunk_reference_is_skipped(queues: Queues, smsgw_redrive: RunRedrive) -> None:
    # Given a parked message that is not a chunk reference (the worker would park it again)
    queues.parker.park("not json", "bad message: not a chunk reference")
    queues.dead_letter(REQUEST_A, 0)
    # When the operator redrives
    run = smsgw_redrive("--yes")
    # Then the chunk moved, the other one stayed, and the user sees why
    assert run.code == 0, run.err
    assert "moved 1, skipped 1, failed 0" in run.out
    assert "not a chunk message" in run.out
    assert queues.counts(queues.dlq) == (1, 0)


def test_the_same_chunk_is_moved_once_per_run(queues: Queues, smsgw_redrive: RunRedrive) -> None:
    # Given one chunk dead-lettered twice (two messages, as when the worker parks it again)
    queues.park(REQUEST_A, 0)
    queues.park(REQUEST_A, 0)
    # When the operator redrives
    run = smsgw_redrive("--yes")
    # Then one copy moved, the other stays, and the run ended
    assert run.code == 0, run.err
    assert "moved 1, skipped 1, failed 0" in run.out
    assert "chunk already moved in this run" in run.out
    assert queues.counts(queues.send) == (1, 0)
    assert queues.counts(queues.dlq) == (1, 0)


# -- partial failures -----------------------------------------------------------------
class FlakySqs:
    """The real (moto) client, except that SendMessageBatch and DeleteMessageBatch refuse
    the entries of chosen chunks: ``times`` times each, or always (``None``). A refused
    entry is not acted on, as SQS does with a batch entry it reports in ``Failed``."""

    def __init__(self, real: Any, *, send: dict[int, int | None], delete: dict[int, int | None]) -> None:
        self._real = real
        self._plans = {"send": dict(send), "delete": dict(delete)}
        self.calls = {"send": 0, "delete": 0}
        self.handles: dict[str, int] = {}  # receipt handle -> chunk, to refuse deletes by chunk

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def _refuse(self, step: str, chunk: int) -> bool:
        plan = self._plans[step]
        if chunk not in plan:
            return False
        left = plan[chunk]
        if left is None:
            return True
        if left == 0:
            return False
        plan[chunk] = left - 1
        return True

    def _split(
        self, step: str, entries: list[dict[str, Any]], chunk_of: Callable[[dict[str, Any]], int]
    ) -> Any:
        self.calls[step] += 1
        refused = [e for e in entries if self._refuse(step, chunk_of(e))]
        kept = [e for e in entries if e not in refused]
        failed = [
            {"Id": e["Id"], "SenderFault": False, "Code": "InternalError", "Message": "try again"}
            for e in refused
        ]
        return kept, failed

    def send_message_batch(
        self, QueueUrl: str, Entries: list[dict[str, Any]]
    ) -> Any:  # boto3's argument names
        kept, failed = self._split("send", Entries, lambda e: json.loads(e["MessageBody"])["chunk"])
        reply = self._real.send_message_batch(QueueUrl=QueueUrl, Entries=kept) if kept else {}
        return {"Successful": reply.get("Successful", []), "Failed": [*reply.get("Failed", []), *failed]}

    def delete_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> Any:
        kept, failed = self._split("delete", Entries, lambda e: self.handles[e["ReceiptHandle"]])
        reply = self._real.delete_message_batch(QueueUrl=QueueUrl, Entries=kept) if kept else {}
        return {"Successful": reply.get("Successful", []), "Failed": [*reply.get("Failed", []), *failed]}

    def receive_message(self, **kwargs: Any) -> Any:
        reply = self._real.receive_message(**kwargs)
        for message in reply.get("Messages", []):
            self.handles[message["ReceiptHandle"]] = json.loads(message["Body"])["chunk"]
        return reply


@pytest.fixture
def flaky(monkeypatch: pytest.MonkeyPatch) -> Callable[..., FlakySqs]:
    """Make ``smsgw redrive`` use a FlakySqs with this plan."""

    def install(*, send: dict[int, int | None], delete: dict[int, int | None]) -> FlakySqs:
        client = FlakySqs(boto3.client("sqs"), send=send, delete=delete)
        monkeypatch.setattr(redrive, "sqs_client", lambda _queues: client)
        return client

    return install


def test_entries_refused_in_a_batch_are_retried_until_they_pass(
    queues: Queues, smsgw_redrive: RunRedrive, flaky: Callable[..., FlakySqs]
) -> None:
    # Given six dead-lettered chunks, and SQS refusing some entries of a batch at first:
    # chunks 1 and 4 twice when sent, chunk 2 once when deleted
    for chunk in range(6):
        queues.dead_letter(REQUEST_A, chunk)
    client = flaky(send={1: 2, 4: 2}, delete={2: 1})
    # When the operator redrives
    run = smsgw_redrive("--yes")
    # Then the refused entries were sent again until they passed: every chunk moved once
    assert run.code == 0, run.err
    assert "moved 6, skipped 0, failed 0" in run.out
    assert client.calls == {"send": 3, "delete": 2}
    assert queues.chunks(queues.send) == [(REQUEST_A, n) for n in range(6)]
    assert queues.counts(queues.dlq) == (0, 0)


def test_entries_that_keep_failing_are_reported_and_nothing_is_lost(
    queues: Queues, smsgw_redrive: RunRedrive, flaky: Callable[..., FlakySqs]
) -> None:
    # Given three dead-lettered chunks; SQS never takes chunk 0 on the send queue, and
    # never deletes chunk 1 from the dead-letter queue
    for chunk in range(3):
        queues.dead_letter(REQUEST_A, chunk)
    flaky(send={0: None}, delete={1: None})
    # When the operator redrives
    run = smsgw_redrive("--yes")
    # Then the run reports what could not be moved, at which step, and exits 2
    assert run.code == 2
    assert "moved 1, skipped 0, failed 2" in run.out
    header, *rows = run.out.split("failed:\n")[1].split("\n\n")[0].splitlines()
    assert header.split() == ["MESSAGE", "ID", "REQUEST", "ID", "CHUNK", "STEP", "ERROR"]
    assert [row.split()[1:] for row in rows] == [
        [REQUEST_A, "0", "send", "InternalError:", "try", "again"],
        [REQUEST_A, "1", "delete", "InternalError:", "try", "again"],
    ]
    assert "still in the dead-letter queue" in run.err
    assert "run the same command again" in run.err
    # And nothing is lost: chunk 0 is still in the dead-letter queue (visible), chunk 1 is
    # in both queues (a harmless duplicate), chunk 2 moved
    assert queues.chunks(queues.send) == [(REQUEST_A, 1), (REQUEST_A, 2)]
    assert queues.chunks(queues.dlq) == [(REQUEST_A, 0), (REQUEST_A, 1)]


# -- where the queues are -------------------------------------------------------------
def test_the_queues_are_read_from_a_stacks_outputs(
    queues: Queues, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a CloudFormation stack whose outputs name the queues, as the template's do
    cloudformation = boto3.client("cloudformation")
    outputs = {"SendQueueUrl": queues.send, "SendDeadLetterQueueUrl": queues.dlq}
    template = {
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {name: {"Value": value} for name, value in outputs.items()},
    }
    cloudformation.create_stack(StackName="smsgw-prod", TemplateBody=json.dumps(template))
    queues.park(REQUEST_A, 0)
    # When the operator names the stack only
    code = main(["redrive", "--stack", "smsgw-prod", "--dry-run", "--wait-seconds", "0"])
    out, err = capsys.readouterr()
    # Then the stack's queues were used
    assert code == 0, err
    assert f"from {queues.dlq}" in err
    assert "(stack smsgw-prod)" in err
    assert "would move 1, skipped 0, failed 0" in out


def test_a_stack_without_the_outputs_is_refused(aws: None, capsys: pytest.CaptureFixture[str]) -> None:
    # Given a stack that is not this gateway's
    template = {"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}}
    boto3.client("cloudformation").create_stack(StackName="other", TemplateBody=json.dumps(template))
    # When the operator names it
    code = main(["redrive", "--stack", "other", "--dry-run"])
    # Then exit 1, saying which outputs are missing
    assert code == 1
    assert "stack 'other' has no output SendQueueUrl or SendDeadLetterQueueUrl" in capsys.readouterr().err


def test_without_any_queue_setting_it_says_how_to_give_one(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given no queue URLs, no stack, and no AWS_ENDPOINT_URL
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    # When the operator runs a dry run
    code = main(["redrive", "--dry-run"])
    # Then exit 1, listing the three ways to say which queues
    err = capsys.readouterr().err
    assert code == 1
    assert "--stack NAME" in err
    assert "--queue-url and --dlq-url" in err
    assert "AWS_ENDPOINT_URL" in err


@pytest.mark.e2e
def test_the_local_stacks_queues_are_found_through_aws_endpoint_url(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the local stack's moto server with the template's queues, as `make run` has it
    from smsgw_local.moto_server import MotoServer

    server = MotoServer("127.0.0.1", 0)
    server.start()
    try:
        url = server.wait_ready()
        session = boto3.session.Session(region_name="us-east-1")
        provision(parameters={"GuoduSubmitUrl": "http://127.0.0.1:9/x"}, session=session, endpoint_url=url)
        sqs = session.client("sqs", endpoint_url=url)
        dlq = sqs.get_queue_url(QueueName="smsgw-local-send-dlq")["QueueUrl"]
        sqs.send_message(QueueUrl=dlq, MessageBody=encode_ref(ChunkRef(REQUEST_A, 0)))
        # When the operator points AWS_ENDPOINT_URL at it and gives nothing else
        monkeypatch.setenv("AWS_ENDPOINT_URL", url)
        code = main(["redrive", "--yes", "--wait-seconds", "0"])
        out, err = capsys.readouterr()
        # Then the local stack's queues were found by name and the chunk moved
        assert code == 0, err
        assert f"(the local stack at {url})" in err
        assert "moved 1, skipped 0, failed 0" in out
        send = sqs.get_queue_url(QueueName="smsgw-local-send")["QueueUrl"]
        [message] = sqs.receive_message(QueueUrl=send).get("Messages", [])
        assert message["Body"] == encode_ref(ChunkRef(REQUEST_A, 0))
    finally:
        server.stop()


# -- with the real worker -------------------------------------------------------------
@pytest.fixture
def simulator() -> Iterator[Simulator]:
    with Simulator(SimulatorConfig().add_account("acct", PASSWORD, balance=10_000_000)) as sim:
        yield sim


def test_chunks_dead_lettered_by_a_wrong_password_are_submitted_after_the_fix_and_a_redrive(
    aws: None,
    simulator: Simulator,
    load_handler: Callable[..., ModuleType],
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given a stack whose provider secret holds a wrong password (the platform answers 05),
    # five attempts per chunk, no retry delay
    stack = provision(
        parameters={
            "GuoduSubmitUrl": simulator.submit_url,
            "SubmitMaxAttempts": 5,
            "RetryBaseSeconds": 0,
        },
        secret_values={
            "ProviderSecret": json.dumps({"oper_id": "acct", "oper_pass": "an-old-password"}),
            "PushTokenSecret": "test-push-token",
        },
    )
    send_api, submit_worker = stack.functions["SendApiFunction"], stack.functions["SubmitWorkerFunction"]
    api = Api(load_handler(send_api.code_dir, send_api.environment))
    # The worker as Lambda runs it, without the lane's pause between failures (it only slows a test)
    worker_env = {**submit_worker.environment, "LANE_PAUSE_BASE_SECONDS": "0"}
    numbers = [f"138{i:08d}" for i in range(201)]  # two chunks: 200 + 1
    _, reply = api.post({"to": numbers, "content": "【示例】您好"})
    # And the worker that tried each chunk five times, until SQS dead-lettered both
    Worker(load_handler(submit_worker.code_dir, worker_env), stack).drain()
    assert [r.result_code for r in simulator.refused] == ["05"] * 10
    queues = Queues(stack)
    assert queues.counts(queues.dlq) == (2, 0)
    _, view = api.get(reply["id"])
    assert view["counts"]["queued"] == 201
    # When the operator fixes the password and redrives
    boto3.client("secretsmanager").put_secret_value(
        SecretId=stack.ref("ProviderSecret"),
        SecretString=json.dumps({"oper_id": "acct", "oper_pass": PASSWORD}),
    )
    code = main(
        ["redrive", "--queue-url", queues.send, "--dlq-url", queues.dlq, "--yes", "--wait-seconds", "0"]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "moved 2, skipped 0, failed 0" in out
    # And a worker (a fresh container: it reads the new secret) drains the send queue
    Worker(load_handler(submit_worker.code_dir, worker_env), stack).drain()
    # Then both chunks were submitted once, and every recipient is submitted
    assert sorted(len(s.mobiles) for s in simulator.accepted) == [1, 200]
    _, view = api.get(reply["id"], limit="500")
    assert view["status"] == "submitted"
    assert view["counts"]["submitted"] == 201
    assert queues.counts(queues.dlq) == (0, 0)


# -- every lane -----------------------------------------------------------------------
LANE_QUEUES = {
    "verification": ("VerificationQueue", "VerificationDeadLetterQueue"),
    "transactional": ("SendQueue", "SendDeadLetterQueue"),
    "marketing": ("MarketingQueue", "MarketingDeadLetterQueue"),
}


def _stack_with_lanes(stack: Provisioned) -> None:
    """A CloudFormation stack whose outputs name every lane's queues, as the template's do."""
    outputs = {}
    for queue, dlq in LANE_QUEUES.values():
        outputs[f"{queue}Url"] = stack.ref(queue)
        outputs[f"{dlq}Url"] = stack.ref(dlq)
    template = {
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {name: {"Value": value} for name, value in outputs.items()},
    }
    boto3.client("cloudformation").create_stack(StackName="smsgw-lanes", TemplateBody=json.dumps(template))


def test_every_lanes_dead_letters_go_back_to_their_own_lanes_queue(
    stack: Provisioned, queues: Queues, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a chunk parked on each lane's dead-letter queue
    _stack_with_lanes(stack)
    for number, (queue, dlq) in enumerate(LANE_QUEUES.values()):
        SendQueue(queues.sqs, stack.ref(queue), dead_letter_url=stack.ref(dlq)).park(
            encode_ref(ChunkRef(REQUEST_A, number)), "gave up after 8 attempts"
        )
    # When the operator redrives the stack, naming no lane
    code = main(["redrive", "--stack", "smsgw-lanes", "--yes", "--wait-seconds", "0"])
    out, err = capsys.readouterr()
    # Then each chunk went back to its own lane's queue, and every dead-letter queue is empty
    assert code == 0, err
    for lane in LANE_QUEUES:
        assert f"lane {lane}:" in out
    for number, (queue, dlq) in enumerate(LANE_QUEUES.values()):
        assert queues.chunks(stack.ref(queue)) == [(REQUEST_A, number)]
        assert queues.counts(stack.ref(dlq)) == (0, 0)


def test_lane_redrives_that_lane_only(
    stack: Provisioned, queues: Queues, capsys: pytest.CaptureFixture[str]
) -> None:
    _stack_with_lanes(stack)
    for number, (queue, dlq) in enumerate(LANE_QUEUES.values()):
        SendQueue(queues.sqs, stack.ref(queue), dead_letter_url=stack.ref(dlq)).park(
            encode_ref(ChunkRef(REQUEST_A, number)), "gave up"
        )
    code = main(["redrive", "--stack", "smsgw-lanes", "--lane", "verification", "--yes", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    reply = json.loads(out)
    assert (reply["lane"], reply["summary"]["moved"]) == ("verification", 1)
    assert queues.chunks(stack.ref("VerificationQueue")) == [(REQUEST_A, 0)]
    assert queues.counts(stack.ref("SendDeadLetterQueue")) == (1, 0)
    assert queues.counts(stack.ref("MarketingDeadLetterQueue")) == (1, 0)
