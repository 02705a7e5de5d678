"""The AWS fault hook (``smsgw_local.aws_faults``) against moto in process.

Each injected fault must reach the caller exactly as the real failure would: the same error
code through botocore's parser, retried (or not) by botocore's own retry modes, and for
``lost`` the call really applied. Retry delays are recorded instead of slept, so the tests
also see that botocore backed off before each retry.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import boto3
import botocore.endpoint
import pytest
from aws_lambda_powertools.utilities.parameters import SecretsProvider
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError
from botocore.config import Config
from botocore.exceptions import ClientError, ReadTimeoutError

from smsgw_local import aws_faults
from smsgw_local.aws_faults import AwsFaults, FaultSpecError, install, parse_spec, uninstall

REGION = "us-east-1"
TABLE = "faults-test"
SECRET = "faults-test-secret"


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The delays botocore waits before its retries (recorded, not slept)."""
    waited: list[float] = []
    monkeypatch.setattr(botocore.endpoint, "time", SimpleNamespace(sleep=waited.append))
    return waited


@pytest.fixture
def resources(aws: None) -> dict[str, str]:
    """A table, a queue and a secret in moto, made by clients without faults."""
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    dynamodb.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    queue = boto3.client("sqs", region_name=REGION).create_queue(QueueName="faults-test")["QueueUrl"]
    boto3.client("secretsmanager", region_name=REGION).create_secret(Name=SECRET, SecretString="s3cr3t")
    return {"queue": queue}


@pytest.fixture
def no_install() -> Iterator[None]:
    yield
    uninstall()


def client(
    service: str, faults: AwsFaults | None = None, *, attempts: int = 1, mode: str = "standard"
) -> Any:
    made = boto3.client(
        service,
        region_name=REGION,
        config=Config(retries={"total_max_attempts": attempts, "mode": mode}),
    )
    if faults is not None:
        faults.apply_to(made)
    return made


def item(key: str) -> dict[str, Any] | None:
    found: dict[str, Any] | None = (
        client("dynamodb").get_item(TableName=TABLE, Key={"pk": {"S": key}}).get("Item")
    )
    return found


def queued(url: str) -> int:
    attributes = client("sqs").get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
    )
    return int(attributes["Attributes"]["ApproximateNumberOfMessages"])


def failure(call: Callable[[], Any]) -> tuple[str, int | None]:
    """What a caller sees: the error code and HTTP status, or the exception's class."""
    try:
        call()
    except ClientError as err:
        return err.response["Error"]["Code"], err.response["ResponseMetadata"]["HTTPStatusCode"]
    except ReadTimeoutError:
        return "ReadTimeoutError", None
    return "ok", None


# -- what a caller sees, with retries off ------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "seen", "applied"),
    [
        ("throttle", ("ProvisionedThroughputExceededException", 400), False),
        ("error", ("InternalServerError", 500), False),
        ("timeout", ("ReadTimeoutError", None), False),
        ("lost", ("ReadTimeoutError", None), True),
    ],
)
def test_a_dynamodb_fault_reaches_the_caller_as_dynamodbs_own_failure(
    resources: dict[str, str], kind: str, seen: tuple[str, int | None], applied: bool
) -> None:
    # Given a PutItem that always gets the fault, and one attempt only
    table = client("dynamodb", AwsFaults(f"dynamodb.PutItem={kind}:1"))

    # When an item is put
    outcome = failure(lambda: table.put_item(TableName=TABLE, Item={"pk": {"S": kind}}))

    # Then the caller sees DynamoDB's own failure, and only `lost` applied the write
    assert outcome == seen
    assert (item(kind) is not None) is applied


@pytest.mark.parametrize(
    ("kind", "seen", "applied"),
    [
        ("throttle", ("RequestThrottled", 400), 0),
        ("error", ("ServiceUnavailable", 503), 0),
        ("timeout", ("ReadTimeoutError", None), 0),
        ("lost", ("ReadTimeoutError", None), 2),
    ],
)
def test_an_sqs_fault_reaches_the_caller_in_sqs_json_protocol(
    resources: dict[str, str], kind: str, seen: tuple[str, int | None], applied: int
) -> None:
    # Given a SendMessageBatch that always gets the fault, and one attempt only
    sqs = client("sqs", AwsFaults(f"sqs.SendMessageBatch={kind}:1"))
    entries = [{"Id": str(n), "MessageBody": f"chunk {n}"} for n in range(2)]

    # When two messages are sent in a batch
    outcome = failure(lambda: sqs.send_message_batch(QueueUrl=resources["queue"], Entries=entries))

    # Then the caller sees SQS's code (as boto3 reads SQS's JSON protocol), and only
    # `lost` queued the messages
    assert outcome == seen
    assert queued(resources["queue"]) == applied


@pytest.mark.parametrize(
    ("service", "spec", "call", "seen"),
    [
        (
            "events",
            "events.PutEvents=throttle:1",
            lambda c: c.put_events(Entries=[{"Source": "s", "DetailType": "d", "Detail": "{}"}]),
            ("ThrottlingException", 400),
        ),
        (
            "events",
            "events.PutEvents=error:1",
            lambda c: c.put_events(Entries=[{"Source": "s", "DetailType": "d", "Detail": "{}"}]),
            ("InternalException", 500),
        ),
        (
            "secretsmanager",
            "secretsmanager.GetSecretValue=throttle:1",
            lambda c: c.get_secret_value(SecretId=SECRET),
            ("ThrottlingException", 400),
        ),
        (
            "secretsmanager",
            "secretsmanager.GetSecretValue=error:1",
            lambda c: c.get_secret_value(SecretId=SECRET),
            ("InternalServiceError", 500),
        ),
    ],
)
def test_eventbridge_and_secrets_manager_faults_carry_their_services_codes(
    resources: dict[str, str], service: str, spec: str, call: Callable[[Any], Any], seen: tuple[str, int]
) -> None:
    assert failure(lambda: call(client(service, AwsFaults(spec)))) == seen


def test_an_operation_that_is_not_named_is_never_touched(resources: dict[str, str]) -> None:
    # Given faults on PutItem only
    faults = AwsFaults("dynamodb.PutItem=throttle:1")
    table = client("dynamodb", faults)

    # When other operations of the same client run
    table.update_item(
        TableName=TABLE,
        Key={"pk": {"S": "u"}},
        UpdateExpression="SET v = :v",
        ExpressionAttributeValues={":v": {"S": "x"}},
    )

    # Then they are applied and answered as usual
    assert item("u") == {"pk": {"S": "u"}, "v": {"S": "x"}}
    assert faults.injected == ()


# -- botocore's retries --------------------------------------------------------------------


def _count_up(table: Any, key: str) -> None:
    table.update_item(
        TableName=TABLE,
        Key={"pk": {"S": key}},
        UpdateExpression="ADD n :one",
        ExpressionAttributeValues={":one": {"N": "1"}},
    )


@pytest.mark.parametrize("mode", ["legacy", "standard"])
@pytest.mark.parametrize(
    ("kind", "seen", "applied"),
    [
        ("throttle", "ProvisionedThroughputExceededException", None),
        ("error", "InternalServerError", None),
        ("timeout", "ReadTimeoutError", None),
        ("lost", "ReadTimeoutError", "3"),
    ],
)
@pytest.mark.usefixtures("resources")
def test_botocore_retries_every_kind_and_lost_applies_once_per_attempt(
    sleeps: list[float], mode: str, kind: str, seen: str, applied: str | None
) -> None:
    # Given an UpdateItem that adds 1, failing on every attempt, three attempts allowed
    faults = AwsFaults(f"dynamodb.UpdateItem={kind}:1")
    table = client("dynamodb", faults, attempts=3, mode=mode)

    # When it is called once
    outcome = failure(lambda: _count_up(table, kind))

    # Then botocore made three attempts, waiting before each retry, and the caller sees the
    # last failure; a lost update was applied once per attempt, the others never
    assert outcome[0] == seen
    assert [i.kind for i in faults.injected] == [kind] * 3
    assert len(sleeps) == 2
    stored = item(kind)
    assert (stored["n"]["N"] if stored else None) == applied


@pytest.mark.parametrize("mode", ["legacy", "standard"])
def test_retries_absorb_faults_that_clear_and_the_caller_sees_only_success(
    resources: dict[str, str], sleeps: list[float], mode: str
) -> None:
    # Given PutItem throttled on half of its attempts, ten attempts allowed
    faults = AwsFaults("dynamodb.PutItem=throttle:0.5", seed=3)
    table = client("dynamodb", faults, attempts=10, mode=mode)

    # When twenty items are put
    retries = [
        table.put_item(TableName=TABLE, Item={"pk": {"S": f"p{n}"}})["ResponseMetadata"]["RetryAttempts"]
        for n in range(20)
    ]

    # Then every put succeeded, and botocore retried exactly the attempts that were throttled
    assert all(item(f"p{n}") for n in range(20))
    assert sum(retries) == len(faults.injected) == len(sleeps) > 0


@pytest.mark.parametrize(
    ("mode", "attempts"),
    [
        # botocore's legacy rule for SQS expects RequestThrottled with HTTP 403 (its old XML
        # API); SQS's JSON protocol answers 400, which legacy mode does not retry.
        ("legacy", 1),
        ("standard", 3),
    ],
)
def test_sqs_throttling_is_retried_in_standard_mode_only(
    resources: dict[str, str], sleeps: list[float], mode: str, attempts: int
) -> None:
    faults = AwsFaults("sqs.SendMessage=throttle:1")
    sqs = client("sqs", faults, attempts=3, mode=mode)

    outcome = failure(lambda: sqs.send_message(QueueUrl=resources["queue"], MessageBody="m"))

    assert outcome == ("RequestThrottled", 400)
    assert len(faults.injected) == attempts


def test_a_lost_conditional_write_is_refused_by_its_own_retry(
    resources: dict[str, str], sleeps: list[float]
) -> None:
    # Given a create-if-absent PutItem whose answer is lost on half of its attempts
    faults = AwsFaults("dynamodb.PutItem=lost:0.5", seed=5)
    table = client("dynamodb", faults, attempts=5)

    # When twelve items are created, each once
    outcomes = []
    for n in range(12):
        before = len(faults.injected)
        seen = failure(
            lambda n=n: table.put_item(
                TableName=TABLE, Item={"pk": {"S": f"c{n}"}}, ConditionExpression="attribute_not_exists(pk)"
            )
        )
        outcomes.append((seen[0], len(faults.injected) - before))

    # Then every item exists; a call whose first attempt was lost was told by its own retry
    # that the condition failed (the write it made itself), every other call succeeded
    assert all(item(f"c{n}") for n in range(12))
    assert any(seen == "ConditionalCheckFailedException" for seen, _ in outcomes)
    for seen, lost in outcomes:
        assert seen == (
            "ok" if lost == 0 else "ConditionalCheckFailedException" if lost < 5 else "ReadTimeoutError"
        )


# -- probability, seed, spec -----------------------------------------------------------


def test_probability_zero_never_fires(resources: dict[str, str], caplog: pytest.LogCaptureFixture) -> None:
    faults = AwsFaults("dynamodb.PutItem=throttle:0,dynamodb.PutItem=lost:0.0", seed=1)
    table = client("dynamodb", faults)

    for n in range(40):
        table.put_item(TableName=TABLE, Item={"pk": {"S": f"z{n}"}})

    assert faults.injected == ()
    assert "aws fault injected" not in caplog.text


def _run(seed: int) -> list[tuple[str, int]]:
    faults = AwsFaults("dynamodb.PutItem=throttle:0.3,dynamodb.PutItem=timeout:0.2", seed=seed)
    table = client("dynamodb", faults, attempts=2)
    outcomes = []
    for n in range(30):
        seen = failure(lambda n=n: table.put_item(TableName=TABLE, Item={"pk": {"S": f"s{n}"}}))[0]
        outcomes.append((seen, len(faults.injected)))
    return outcomes


def test_the_same_seed_injects_the_same_faults(resources: dict[str, str], sleeps: list[float]) -> None:
    # When the same calls run twice with one seed, and once with another
    first, again, other = _run(42), _run(42), _run(43)

    # Then the first two saw the same faults at the same calls; the other seed did not
    assert first == again
    assert first != other
    assert {seen for seen, _ in first} == {"ok", "ProvisionedThroughputExceededException", "ReadTimeoutError"}


@pytest.mark.parametrize(
    ("spec", "named", "problem"),
    [
        ("dynamodb.PutItem", "dynamodb.PutItem", "not in the form"),
        ("dynamodb=throttle:0.1", "dynamodb=throttle:0.1", "not in the form"),
        ("dynamo.PutItem=throttle:0.1", "dynamo.PutItem", "did you mean 'dynamodb'"),
        ("dynamodb.PutIten=throttle:0.1", "dynamodb.PutIten", "did you mean 'PutItem'"),
        ("dynamodb.PutItem=slow:0.1", "slow", "unknown kind 'slow'"),
        ("dynamodb.PutItem=throttle:1.5", "throttle:1.5", "not a number from 0 to 1"),
        ("dynamodb.PutItem=throttle:often", "throttle:often", "not a number from 0 to 1"),
        ("sqs.SendMessage=error:0.1,dynamodb.PutItem=lost:nan", "lost:nan", "not a number from 0 to 1"),
        ("dynamodb.PutItem=lost:0.1,dynamodb.PutItem=lost:0.2", "dynamodb.PutItem=lost:0.2", "given twice"),
        ("dynamodb.*=throttle:0.6,dynamodb.PutItem=lost:0.5", "dynamodb.PutItem", "add up to 1.1"),
        ("s3.PutObject=throttle:0.1", "s3.PutObject", "s3 speaks rest-xml"),
    ],
)
def test_a_bad_spec_is_refused_with_the_entry_and_the_problem(spec: str, named: str, problem: str) -> None:
    with pytest.raises(FaultSpecError) as raised:
        parse_spec(spec)
    assert named in str(raised.value)
    assert problem in str(raised.value)


def test_a_spec_reads_every_entry_spaces_and_wildcards_included() -> None:
    rules = parse_spec(
        " dynamodb.TransactWriteItems=throttle:0.2, sqs.SendMessageBatch=error:0.1 ,s3.*=lost:1,"
    )
    assert [(r.service, r.operation, r.kind, r.probability) for r in rules] == [
        ("dynamodb", "TransactWriteItems", "throttle", 0.2),
        ("sqs", "SendMessageBatch", "error", 0.1),
        ("s3", "*", "lost", 1.0),
    ]


def test_each_injected_fault_is_one_log_line_naming_the_operation_and_the_kind(
    resources: dict[str, str], sleeps: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    # Given BatchWriteItem throttled on every attempt, and two attempts
    table = client("dynamodb", AwsFaults("dynamodb.*=throttle:1"), attempts=2)
    caplog.set_level(logging.WARNING, logger="smsgw_local.aws_faults")

    # When a batch is written
    failure(
        lambda: table.batch_write_item(RequestItems={TABLE: [{"PutRequest": {"Item": {"pk": {"S": "b"}}}}]})
    )

    # Then each attempt left one warning that names the operation and the kind
    lines = [r.getMessage() for r in caplog.records if "aws fault injected" in r.getMessage()]
    assert len(lines) == 2
    assert all(r.levelno == logging.WARNING for r in caplog.records if "aws fault injected" in r.getMessage())
    assert all("dynamodb.BatchWriteItem throttle" in line for line in lines)


# -- install: every client created afterwards ------------------------------------------


def test_install_reaches_every_client_created_afterwards_until_uninstalled(
    resources: dict[str, str], no_install: None
) -> None:
    # Given boto3's default session in use already, then the faults installed
    boto3.client("secretsmanager", region_name=REGION)
    faults = install("secretsmanager.GetSecretValue=throttle:1,dynamodb.GetItem=error:1", seed=9)
    config = Config(retries={"total_max_attempts": 1})

    # When clients are made every way the handlers make them
    made = [
        boto3.client("secretsmanager", region_name=REGION, config=config),
        boto3.session.Session(region_name=REGION).client("secretsmanager", config=config),
    ]
    table = boto3.resource("dynamodb", region_name=REGION, config=config).Table(TABLE)

    # Then each has the faults: a plain client, a new session's, a resource's, and the
    # client Powertools makes for itself
    for secrets in made:
        assert failure(lambda s=secrets: s.get_secret_value(SecretId=SECRET)) == ("ThrottlingException", 400)
    assert failure(lambda: table.get_item(Key={"pk": "x"})) == ("InternalServerError", 500)
    with pytest.raises(GetParameterError, match="ThrottlingException"):
        SecretsProvider(boto_config=config).get(SECRET)
    assert aws_faults.installed() is faults
    assert len(faults.injected) == 4

    # And once uninstalled, a new client is left alone
    uninstall()
    fresh = boto3.client("secretsmanager", region_name=REGION)
    assert fresh.get_secret_value(SecretId=SECRET)["SecretString"] == "s3cr3t"
    assert aws_faults.installed() is None


def test_applied_to_a_session_it_reaches_the_clients_that_session_creates(resources: dict[str, str]) -> None:
    faults = AwsFaults("dynamodb.DescribeTable=throttle:1")
    session = boto3.session.Session(region_name=REGION)
    faults.apply_to(session)
    config = Config(retries={"total_max_attempts": 1})

    described = failure(lambda: session.client("dynamodb", config=config).describe_table(TableName=TABLE))
    other = boto3.client("dynamodb", region_name=REGION, config=config).describe_table(TableName=TABLE)

    assert described == ("ProvisionedThroughputExceededException", 400)
    assert other["Table"]["TableName"] == TABLE


def test_an_injected_answer_is_the_protocols_error_document(resources: dict[str, str]) -> None:
    # Given a client that records the raw answers it receives
    bodies: list[tuple[int, dict[str, Any], dict[str, str]]] = []
    sqs = client("sqs", AwsFaults("sqs.SendMessage=throttle:1"))
    sqs.meta.events.register(
        "response-received.sqs.SendMessage",
        lambda response_dict, **_: bodies.append(
            (
                response_dict["status_code"],
                json.loads(response_dict["body"]),
                {name.lower(): value for name, value in response_dict["headers"].items()},
            )
        ),
    )

    failure(lambda: sqs.send_message(QueueUrl=resources["queue"], MessageBody="m"))

    # Then it was SQS's JSON error, with the query-compatible code header SQS adds
    status, body, headers = bodies[0]
    assert status == 400
    assert body["__type"] == "com.amazonaws.sqs#RequestThrottled"
    assert headers["x-amzn-query-error"] == "RequestThrottled;Sender"
    assert headers["content-type"] == "application/x-amz-json-1.0"


# -- over HTTP, as in the local stack ------------------------------------------------------


@pytest.mark.e2e
def test_a_lost_call_over_http_is_applied_by_the_server_once_per_attempt(
    monkeypatch: pytest.MonkeyPatch, sleeps: list[float]
) -> None:
    # Given a moto server, reached over a socket as the handlers reach it in the local stack
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://{host}:{port}")
        client("dynamodb").create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        faults = AwsFaults("dynamodb.UpdateItem=lost:1")
        table = client("dynamodb", faults, attempts=2)

        # When an update that adds 1 is lost on both of its attempts
        outcome = failure(lambda: _count_up(table, "http"))

        # Then the caller saw a read timeout, and the server applied the update twice
        assert outcome == ("ReadTimeoutError", None)
        assert item("http") == {"pk": {"S": "http"}, "n": {"N": "2"}}
    finally:
        server.stop()
