"""The local AWS keeps DynamoDB's promises: conditional writes and transactions are atomic,
and a cancelled transaction leaves every item it named as it was; SQS read on its quick
clock still hides what is in flight or delayed (smsgw_local.moto_fidelity)."""

from __future__ import annotations

import threading
import time
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from smsgw_local.provision import Provisioned


@pytest.fixture
def table(stack: Provisioned) -> str:
    name: str = stack.ref("MessagesTable")
    db = boto3.client("dynamodb")
    db.put_item(TableName=name, Item={"pk": {"S": "A"}, "sk": {"S": "a"}, "v": {"N": "1"}})
    # Other items, so that a rollback that rebuilt the table would have something to lose.
    for n in range(20):
        db.put_item(TableName=name, Item={"pk": {"S": f"other-{n}"}, "sk": {"S": "x"}, "v": {"N": str(n)}})
    return name


def _items(name: str) -> dict[str, Any]:
    pages = boto3.client("dynamodb").get_paginator("scan").paginate(TableName=name)
    return {f"{i['pk']['S']}/{i['sk']['S']}": i for page in pages for i in page["Items"]}


def _update(name: str, pk: str, value: int, condition: str | None = None) -> dict[str, Any]:
    op: dict[str, Any] = {
        "TableName": name,
        "Key": {"pk": {"S": pk}, "sk": {"S": pk.lower()}},
        "UpdateExpression": "SET v = :v",
        "ExpressionAttributeValues": {":v": {"N": str(value)}},
    }
    if condition:
        op["ConditionExpression"] = condition
    return {"Update": op}


def _put(name: str, pk: str) -> dict[str, Any]:
    return {"Put": {"TableName": name, "Item": {"pk": {"S": pk}, "sk": {"S": pk.lower()}, "v": {"N": "9"}}}}


def test_a_transaction_that_passes_writes_every_item(table: str) -> None:
    before = _items(table)
    boto3.client("dynamodb").transact_write_items(
        TransactItems=[_update(table, "A", 2, "v = :v OR attribute_exists(v)"), _put(table, "B")]
    )
    after = _items(table)
    assert after["A/a"]["v"] == {"N": "2"}
    assert after["B/b"]["v"] == {"N": "9"}
    assert {k: v for k, v in after.items() if k not in ("A/a", "B/b")} == {
        k: v for k, v in before.items() if k != "A/a"
    }


def test_a_cancelled_transaction_leaves_every_item_as_it_was(table: str) -> None:
    before = _items(table)
    with pytest.raises(ClientError) as raised:
        boto3.client("dynamodb").transact_write_items(
            TransactItems=[
                _update(table, "A", 2),  # would pass
                _put(table, "B"),  # would pass: a new item
                _update(table, "C", 3, "attribute_exists(pk)"),  # fails: no such item
            ]
        )
    assert raised.value.response["Error"]["Code"] == "TransactionCanceledException"
    assert _items(table) == before


def test_a_transaction_naming_one_item_twice_is_refused_and_writes_nothing(table: str) -> None:
    before = _items(table)
    with pytest.raises(ClientError) as raised:
        boto3.client("dynamodb").transact_write_items(
            TransactItems=[_put(table, "B"), _update(table, "A", 2), _update(table, "A", 3)]
        )
    assert raised.value.response["Error"]["Code"] == "ValidationException"
    assert _items(table) == before


def test_racing_transactions_for_one_item_have_one_winner(table: str) -> None:
    """Eight workers try to take the same item in a transaction that also writes a record
    of their own: exactly one takes it, and only its record is written."""
    db = boto3.client("dynamodb")
    start = threading.Barrier(8)
    won: list[int] = []
    refused: list[str] = []

    def take(n: int) -> None:
        start.wait()
        try:
            db.transact_write_items(
                TransactItems=[
                    {
                        "Update": {
                            "TableName": table,
                            "Key": {"pk": {"S": "A"}, "sk": {"S": "a"}},
                            "UpdateExpression": "SET holder = :n",
                            "ConditionExpression": "attribute_not_exists(holder)",
                            "ExpressionAttributeValues": {":n": {"N": str(n)}},
                        }
                    },
                    _put(table, f"TAKEN-{n}"),
                ]
            )
            won.append(n)
        except ClientError as err:
            refused.append(err.response["Error"]["Code"])

    threads = [threading.Thread(target=take, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    items = _items(table)
    assert len(won) == 1
    assert refused == ["TransactionCanceledException"] * 7
    assert items["A/a"]["holder"] == {"N": str(won[0])}
    assert [k for k in items if k.startswith("TAKEN-")] == [f"TAKEN-{won[0]}/taken-{won[0]}"]


def test_sqs_read_on_the_quick_clock_still_hides_messages_in_flight_and_delayed(aws: None) -> None:
    # Given a queue of moto's SQS, read through the clock that builds no datetimes
    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName="fidelity", Attributes={"VisibilityTimeout": "1"})["QueueUrl"]
    sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(n), "MessageBody": f"m{n}"} for n in range(3)])
    sqs.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=2)
    # When the three due are received
    first = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    # Then, while they are in flight, nothing is received: the delayed one is not due yet
    assert sorted(m["Body"] for m in first) == ["m0", "m1", "m2"]
    assert sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []) == []
    # And once their visibility timeout has passed they come back, and then the delayed one
    time.sleep(1.2)
    again = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert sorted(m["Body"] for m in again) == ["m0", "m1", "m2"]
    sqs.delete_message_batch(
        QueueUrl=url,
        Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(again)],
    )
    time.sleep(1.0)
    last = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert [m["Body"] for m in last] == ["later"]
