"""``SMSGW_AWS_FAULTS`` in the local stack: faults in every function's processes, none in
the stack's own calls.

The faults named here hit what the stack does itself (provisioning, the SQS poller) and
what only a probe function does, never the send path: what the gateway decides under AWS
faults is for the fault mixes; this is the plumbing they stand on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from smsgw_local.runtime import process_seed
from smsgw_local.stack import LocalGateway, StackError
from smsgw_local.template import load_template
from tests.conftest import wait_until
from tests.e2e.conftest import Gateway, fast_simulator, mobile
from tests.twin.probe import probe_pool

pytestmark = pytest.mark.e2e

PROBE = "AwsProbeFunction"
# A function that calls DynamoDB with one attempt per call and tells what each call saw.
PROBE_HANDLER = """
import os

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError, ReadTimeoutError

dynamodb = boto3.client("dynamodb", config=Config(retries={"total_max_attempts": 1}))


def outcome(call):
    try:
        call()
    except ClientError as err:
        return err.response["Error"]["Code"]
    except ReadTimeoutError:
        return "ReadTimeoutError"
    return "ok"


def handler(event, context):
    table = os.environ["TABLE"]
    key = {"pk": {"S": event["pk"]}, "sk": {"S": "probe"}}
    return {
        "scan": outcome(lambda: dynamodb.scan(TableName=table, Limit=1)),
        "get": outcome(lambda: dynamodb.get_item(TableName=table, Key=key)),
        "delete": outcome(lambda: dynamodb.delete_item(TableName=table, Key=key)),
    }
"""
FAULTS = ",".join(
    [
        # the stack's own calls: provisioning and the SQS poller (exempt)
        "dynamodb.CreateTable=error:1",
        "sqs.CreateQueue=throttle:1",
        "secretsmanager.CreateSecret=error:1",
        "sqs.ReceiveMessage=error:1",
        "sqs.DeleteMessageBatch=timeout:1",
        # calls only the probe makes
        "dynamodb.Scan=throttle:1",
        "dynamodb.DeleteItem=lost:1",
    ]
)


@pytest.fixture
def probe_template(tmp_path: Path) -> Path:
    code_dir = tmp_path / "probe"
    code_dir.mkdir()
    (code_dir / "app.py").write_text(PROBE_HANDLER, encoding="utf-8")
    template = load_template()
    template["Resources"][PROBE] = {
        "Type": "AWS::Serverless::Function",
        "Properties": {
            "FunctionName": {"Fn::Sub": "${AWS::StackName}-aws-probe"},
            "CodeUri": str(code_dir),
            "Handler": "app.handler",
            "Timeout": 10,
            "Environment": {"Variables": {"TABLE": {"Ref": "MessagesTable"}}},
        },
    }
    path = tmp_path / "template.yaml"
    path.write_text(yaml.safe_dump(template, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def test_faults_hit_the_functions_processes_and_spare_the_stacks_own_calls(
    probe_template: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # Given the stack started with faults on its own provisioning and poller calls, and on
    # calls only a probe function makes
    with LocalGateway(
        api_port=0,
        simulator_port=0,
        moto_port=0,
        env={},
        simulator=fast_simulator(),
        template_path=probe_template,
        aws_faults=FAULTS,
        aws_faults_seed=7,
    ) as stack:
        assert stack.provisioned is not None
        table = stack.provisioned.ref("MessagesTable")
        key: dict[str, Any] = {"pk": {"S": "aws-probe"}, "sk": {"S": "probe"}}
        stack.client("dynamodb").put_item(TableName=table, Item=key)

        # When the probe calls DynamoDB, and a message is sent through the real API
        seen = stack.invoke(PROBE, {"pk": "aws-probe"})
        gateway = Gateway(stack)
        request_id = gateway.send(mobile())
        submitted = wait_until(lambda: gateway.recipient_states(request_id) & {"submitted", "delivered"}, 20)
        left = stack.client("dynamodb").get_item(TableName=table, Key=key).get("Item")
    output = capfd.readouterr()

    # Then the probe's calls failed as DynamoDB fails them, the lost delete was applied,
    # and a call that was not named went through
    assert seen.ok, seen.error
    assert seen.payload == {
        "scan": "ProvisionedThroughputExceededException",
        "get": "ok",
        "delete": "ReadTimeoutError",
    }
    assert left is None
    # And the stack provisioned, polled and deleted messages unharmed: the message was submitted
    assert submitted
    # And each injected fault was one line of the output of the function that met it, and
    # only those were injected: none in provisioning, none in the poller
    faults = [line for line in (output.out + output.err).splitlines() if "aws fault injected" in line]
    probe = [line for line in faults if line.startswith("AwsProbe ")]
    assert len(probe) == 2, faults
    assert "| [WARNING] aws fault injected: dynamodb.Scan throttle" in probe[0]
    assert "| [WARNING] aws fault injected: dynamodb.DeleteItem lost" in probe[1]
    assert len(faults) == len(probe)


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"SMSGW_AWS_FAULTS": "dynamodb.PutItem=throttle:2"}, "dynamodb.PutItem=throttle:2"),
        ({"SMSGW_AWS_FAULTS": "sqs.SendMesageBatch=error:0.1"}, "did you mean 'SendMessageBatch'"),
        ({"SMSGW_AWS_FAULTS": "sqs.SendMessageBatch=error:0.1", "SMSGW_AWS_FAULTS_SEED": "x"}, "SEED"),
    ],
)
def test_a_bad_fault_setting_stops_the_stack_before_it_starts(env: dict[str, str], named: str) -> None:
    with pytest.raises(StackError, match="SMSGW_AWS_FAULTS") as raised:
        LocalGateway(env=env)
    assert named in str(raised.value)


def test_the_settings_come_from_the_environment_and_a_missing_seed_is_chosen() -> None:
    given = LocalGateway(
        env={"SMSGW_AWS_FAULTS": " sqs.SendMessageBatch=error:0.1 ", "SMSGW_AWS_FAULTS_SEED": "12"}
    )
    chosen = LocalGateway(env={"SMSGW_AWS_FAULTS": "sqs.SendMessageBatch=error:0.1"})
    overridden = LocalGateway(env={"SMSGW_AWS_FAULTS": "sqs.SendMessageBatch=error:0.1"}, aws_faults="")

    assert (given.aws_faults, given.aws_faults_seed) == ("sqs.SendMessageBatch=error:0.1", 12)
    assert chosen.aws_faults_seed >= 0
    assert overridden.aws_faults == ""


SEED_HANDLER = """
import os

from smsgw_local import aws_faults


def handler(event, context):
    return {"seed": aws_faults.installed().seed, "pid": os.getpid()}
"""


def _seeds(code_dir: Path, seed: int) -> list[int]:
    pool = probe_pool(
        code_dir,
        SEED_HANDLER,
        name="seed",
        size=2,
        aws_faults="dynamodb.PutItem=throttle:0.5",
        aws_faults_seed=seed,
    )
    pool.start()
    try:
        answers = [pool.invoke({}) for _ in range(2)]
    finally:
        pool.stop()
    assert all(answer.ok for answer in answers), [answer.error for answer in answers]
    assert len({answer.payload["pid"] for answer in answers}) == 2
    return [answer.payload["seed"] for answer in answers]


def test_each_worker_process_draws_from_its_own_seed_and_the_stack_seed_replays_them(tmp_path: Path) -> None:
    # Given a function with two processes and faults on
    # When its pool starts twice with one seed, and once with another
    first, again, other = _seeds(tmp_path, 5), _seeds(tmp_path, 5), _seeds(tmp_path, 6)

    # Then its two processes drew from different seeds, the same ones again for the same
    # stack seed, and other ones for another
    assert first[0] != first[1]
    assert first == again == [process_seed(5, "SeedFunction", n) for n in (1, 2)]
    assert not set(first) & set(other)
