"""The push receiver against moto: reports and MO packets as the platform pushes them.

Requests are sent through the real send API and submitted by the real worker to the
Guodu simulator; the tests then push what the platform would push back.
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast
from urllib.parse import quote_plus

import boto3
import pytest

from guodu_simulator import Simulator
from smsgw_local.provision import Provisioned
from tests.conftest import FakeContext, rewire, sample_event
from tests.integration.conftest import PUSH_TOKEN, Api, EventSink, Pusher, Worker, make_stack, table_items


@pytest.fixture
def stack(aws: None, simulator: Simulator) -> Provisioned:
    return make_stack(simulator.submit_url)


def report(
    msg_id: str, mobile: str, status: int = 0, msg: str = "发送成功", at: str = "2026-11-24 12:00:05"
) -> dict[str, Any]:
    return {"msg": msg, "mobile": mobile, "msgId": msg_id, "reportTime": at, "status": status}


def submitted(
    api: Api, worker: Worker, simulator: Simulator, numbers: list[str], **extra: Any
) -> tuple[str, dict[str, str]]:
    """Send and submit; returns the request id and each number's MsgId."""
    _, reply = api.post({"to": numbers, "content": "【示例】您好", **extra})
    worker.drain()
    return reply["id"], {m: s.msg_id for s in simulator.accepted for m in s.mobiles}


def recipients(api: Api, request_id: str) -> dict[str, dict[str, Any]]:
    _, view = api.get(request_id, limit="5000")
    return {r["to"]: r for r in view["recipients"]}


def test_a_250_item_packet_is_stored_acknowledged_and_shown(
    api: Api, worker: Worker, simulator: Simulator, pusher: Pusher
) -> None:
    # Given 250 submitted recipients (two submits: 200 + 50)
    numbers = [f"138{i:08d}" for i in range(250)]
    request_id, msg_ids = submitted(api, worker, simulator, numbers, reference="camp-9")
    # When the platform pushes one packet with a report for each: every fifth one failed
    packet = [
        report(msg_ids[m], m, status=2 if i % 5 == 0 else 0, msg="UNDELIV" if i % 5 == 0 else "发送成功")
        for i, m in enumerate(numbers)
    ]
    status, body = pusher.push(packet)
    # Then it is acknowledged with the configured body
    assert (status, body) == (200, "success")
    # And every recipient shows its outcome, the carrier's words and when it was reported
    shown = recipients(api, request_id)
    assert shown[numbers[0]]["status"] == "failed"
    assert (shown[numbers[0]]["provider_code"], shown[numbers[0]]["detail"]) == ("2", "UNDELIV")
    assert shown[numbers[1]]["status"] == "delivered"
    # the report time in ISO 8601 with its offset, the platform's own text beside it
    assert shown[numbers[1]]["reported_at"] == "2026-11-24T12:00:05+08:00"
    assert shown[numbers[1]]["reported_at_raw"] == "2026-11-24 12:00:05"
    _, view = api.get(request_id)
    assert (view["counts"]["delivered"], view["counts"]["failed"], view["counts"]["submitted"]) == (
        200,
        50,
        0,
    )


def test_the_same_packet_again_changes_nothing(
    api: Api, worker: Worker, simulator: Simulator, pusher: Pusher, stack: Provisioned
) -> None:
    numbers = [f"139{i:08d}" for i in range(20)]
    request_id, msg_ids = submitted(api, worker, simulator, numbers)
    packet = [report(msg_ids[m], m) for m in numbers]
    assert pusher.push(packet)[0] == 200
    before = (api.get(request_id)[1], table_items(stack, "MSG#"))
    # When the platform pushes it again (it does: its docs warn of duplicates)
    assert pusher.push(packet)[0] == 200
    # Then no state or counter moved
    assert (api.get(request_id)[1], table_items(stack, "MSG#")) == before


def test_a_contradicting_late_report_does_not_move_a_final_state(
    api: Api, worker: Worker, simulator: Simulator, pusher: Pusher
) -> None:
    request_id, msg_ids = submitted(api, worker, simulator, ["13800138000"])
    pusher.push([report(msg_ids["13800138000"], "13800138000", status=0)])
    # When a later packet says the same message failed
    status, _ = pusher.push(
        [report(msg_ids["13800138000"], "13800138000", status=2, msg="EXPIRED", at="2026-11-25 00:00:00")]
    )
    # Then it is acknowledged (it is stored raw) but the recipient stays delivered
    assert status == 200
    shown = recipients(api, request_id)["13800138000"]
    assert (shown["status"], shown["reported_at_raw"]) == ("delivered", "2026-11-24 12:00:05")
    assert api.get(request_id)[1]["counts"]["delivered"] == 1


def test_a_wrong_token_gets_403_and_stores_nothing(pusher: Pusher, stack: Provisioned) -> None:
    status, body = pusher.push([report("1", "13800138000")], token="guessed-" + PUSH_TOKEN)
    assert status == 403
    assert json.loads(body)["error"]["code"] == "forbidden"
    assert table_items(stack) == []


def test_a_source_outside_the_allow_list_gets_403_and_stores_nothing(
    aws: None, load_pusher: Callable[..., Pusher]
) -> None:
    stack = make_stack(PushAllowedIps="221.179.172.68, 124.251.7.0/24")
    pusher = load_pusher(stack)
    assert pusher.push([report("1", "13800138000")], source_ip="203.0.113.9")[0] == 403
    assert table_items(stack) == []
    assert pusher.push([report("1", "13800138000")], source_ip="124.251.7.68")[0] == 200


def test_251_items_are_refused(pusher: Pusher, stack: Provisioned) -> None:
    packet = [report("1", f"138{i:08d}") for i in range(251)]
    status, body = pusher.push(packet)
    assert status == 413
    assert json.loads(body)["error"]["code"] == "too_many_items"
    assert table_items(stack, "MSG#") == []  # nothing read from it; the raw packet alone is kept
    assert len(table_items(stack, "RAW#")) == 1


@pytest.mark.parametrize("body", ["{not json", "[]", '"a string"', '[{"hello": "world"}]', "[1, 2]"])
def test_a_malformed_body_gets_400(pusher: Pusher, stack: Provisioned, body: str) -> None:
    status, answer = pusher.push(body)
    assert status == 400
    assert json.loads(answer)["error"]["code"] == "malformed_packet"
    assert table_items(stack, "MSG#") == []
    assert table_items(stack, "MO#") == []


@pytest.mark.parametrize("body", ["not base64 at all!", "W3sibXNnSWQiOiIxIn1", "[{}]"])
def test_a_body_marked_base64_that_is_not_base64_gets_400(
    pusher: Pusher, stack: Provisioned, body: str
) -> None:
    # Given a push whose event says isBase64Encoded but whose body does not decode
    event = copy.deepcopy(sample_event("push_receiver/report_packet.json"))
    event.update(path=f"/v1/guodu/push/{PUSH_TOKEN}", pathParameters={"token": PUSH_TOKEN})
    event.update(body=body, isBase64Encoded=True)
    # When it reaches the receiver
    response = pusher.module.handler(event, FakeContext("smsgw-push-receiver"))
    # Then it is refused as malformed (400, so the sender knows it is not a passing fault),
    # nothing is stored, and the platform is not asked to push it again (that is a 5xx)
    assert response["statusCode"] == 400
    assert json.loads(response["body"])["error"]["code"] == "malformed_packet"
    assert table_items(stack) == []


def test_a_body_over_the_size_limit_gets_413(pusher: Pusher, stack: Provisioned) -> None:
    status, _ = pusher.push("[" + " " * 1_100_000 + "]")
    assert status == 413
    assert table_items(stack) == []


def test_unreadable_items_are_kept_raw_and_the_rest_stored(
    api: Api, worker: Worker, simulator: Simulator, pusher: Pusher, stack: Provisioned
) -> None:
    request_id, msg_ids = submitted(api, worker, simulator, ["13800138000"])
    packet = [report(msg_ids["13800138000"], "13800138000"), report("1", "not-a-number")]
    assert pusher.push(packet)[0] == 200
    assert recipients(api, request_id)["13800138000"]["status"] == "delivered"
    (raw,) = table_items(stack, "RAW#")
    import zlib

    assert json.loads(zlib.decompress(raw["body"]["B"])) == packet


class PushForwarder:
    """A real HTTP endpoint that hands each POST to the push receiver handler, as API
    Gateway does: lets the simulator push while a submit is still waiting for its answer."""

    def __init__(self, pusher: Pusher) -> None:
        forward = pusher.push

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status, answer = forward(body.decode("utf-8"), token=self.path.rsplit("/", 1)[-1])
                data = answer.encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/v1/guodu/push/{PUSH_TOKEN}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def forwarder(pusher: Pusher) -> Iterator[PushForwarder]:
    forwarder = PushForwarder(pusher)
    yield forwarder
    forwarder.close()


def test_a_report_arriving_before_its_link_still_ends_on_the_right_recipient(
    api: Api, worker: Worker, simulator: Simulator, forwarder: PushForwarder, event_sink: EventSink
) -> None:
    # Given a platform that pushes the reports before it answers the submit
    simulator.configure({"push": {"url": forwarder.url, "early_rate": 1.0, "delivery_ratio": 1.0}})
    _, reply = api.post({"to": ["13800138000", "13900139000"], "content": "x", "reference": "early-1"})
    # When the worker submits (the reports arrive and are stored while it waits)
    worker.drain()
    assert simulator.wait_for_pushes(timeout=10)
    # Then both recipients end delivered, on the right request
    shown = recipients(api, reply["id"])
    assert {r["status"] for r in shown.values()} == {"delivered"}
    # And the delivery is announced with the request id and reference, once linked
    delivered = event_sink.of_type("Recipients Delivered")
    announced = {
        r["to"]
        for e in delivered
        if e["detail"]["request_id"] == reply["id"]
        for r in e["detail"]["recipients"]
    }
    assert announced == {"13800138000", "13900139000"}
    assert {e["detail"]["reference"] for e in delivered} == {"early-1"}


def test_reports_pushed_by_the_simulator_end_as_it_reported(
    api: Api, worker: Worker, simulator: Simulator, forwarder: PushForwarder
) -> None:
    simulator.configure(
        {
            "push": {
                "url": forwarder.url,
                "delivery_ratio": 0.5,
                "delay_min_seconds": 0.0,
                "delay_max_seconds": 0.1,
            }
        }
    )
    numbers = [f"137{i:08d}" for i in range(40)]
    _, reply = api.post({"to": numbers, "content": "x"})
    worker.drain()
    assert simulator.wait_for_pushes(timeout=10)
    pushed = {item["mobile"]: item["status"] for p in simulator.pushes for item in p.items}
    shown = recipients(api, reply["id"])
    assert {m: ("delivered" if s == 0 else "failed") for m, s in pushed.items()} == {
        m: r["status"] for m, r in shown.items()
    }


def test_events_reach_a_rule_target_with_request_id_and_reference(
    api: Api, worker: Worker, simulator: Simulator, pusher: Pusher, event_sink: EventSink
) -> None:
    request_id, msg_ids = submitted(
        api, worker, simulator, ["13800138000", "13900139000"], reference="order-42"
    )
    pusher.push(
        [
            report(msg_ids["13800138000"], "13800138000"),
            report(msg_ids["13900139000"], "13900139000", 2, "UNDELIV"),
        ]
    )
    (submitted_event,) = event_sink.of_type("Request Submitted")
    (delivered,) = event_sink.of_type("Recipients Delivered")
    (failed,) = event_sink.of_type("Recipients Failed")
    for event in (submitted_event, delivered, failed):
        assert event["source"] == "smsgw"
        assert (event["detail"]["request_id"], event["detail"]["reference"]) == (request_id, "order-42")
        assert event["detail"]["version"] == "1"
    assert [r["to"] for r in delivered["detail"]["recipients"]] == ["13800138000"]
    assert failed["detail"]["recipients"][0]["detail"] == "UNDELIV"


def inbound(mobile: str, content: str, **extra: str) -> list[dict[str, str]]:
    return [
        {
            "SrcMobile": mobile,
            "Content": quote_plus(content),
            "RecvTime": "2026-11-24 12:30:00",
            "AppendID": "",
            **extra,
        }
    ]


def test_an_inbound_td_opts_out_of_marketing_but_not_transactional(
    api: Api, pusher: Pusher, event_sink: EventSink
) -> None:
    # Given the person at 13800138000 replies "TD"
    assert pusher.push(inbound("13800138000", " td "))[0] == 200
    # When a marketing send includes that number
    status, reply = api.post(
        {"to": ["13800138000", "13900139000"], "content": "大促，退订回T", "category": "marketing"}
    )
    # Then it is skipped and reported as opted out
    assert status == 202
    assert reply["recipients"] == 1
    assert reply["opted_out"] == ["13800138000"]
    assert api.get(reply["id"])[1]["counts"]["opted_out"] == 1
    # But a transactional send (a one-time code) still reaches it
    status, reply = api.post({"to": ["13800138000"], "content": "验证码 123456"})
    assert (status, reply["recipients"]) == (202, 1)
    # And both the inbound message and the opt-out were announced
    (mo,) = event_sink.of_type("Inbound Message Received")
    assert (mo["detail"]["mobile"], mo["detail"]["content"]) == ("13800138000", " td ")
    (opt_out,) = event_sink.of_type("Recipient Opted Out")
    assert opt_out["detail"] == {**opt_out["detail"], "mobile": "13800138000", "keyword": "td"}


def test_a_marketing_send_to_only_opted_out_numbers_sends_nothing(
    api: Api, pusher: Pusher, stack: Provisioned
) -> None:
    pusher.push(inbound("13800138000", "退订"))
    status, reply = api.post({"to": ["13800138000"], "content": "大促", "category": "marketing"})
    assert (status, reply["recipients"], reply["opted_out"]) == (202, 0, ["13800138000"])
    assert api.get(reply["id"])[1]["status"] == "completed"  # nothing to send: every recipient final


@pytest.mark.parametrize(
    ("body", "content_type", "content"),
    [
        (inbound("13800138000", "您好 请回电"), "application/json", "您好 请回电"),
        (
            [{"mobile": "+86 138-0013-8000", "content": "plain 文本", "moTime": "2026-11-24 12:30:00"}],
            "application/json",
            "plain 文本",
        ),
        (
            "SrcMobile=13800138000&Content=%E9%80%80%E8%AE%A2&RecvTime=2026-11-24+12%3A30%3A00&AppendID=",
            "application/x-www-form-urlencoded",
            "退订",
        ),
    ],
)
def test_inbound_messages_are_read_in_every_known_form(
    pusher: Pusher, stack: Provisioned, body: Any, content_type: str, content: str
) -> None:
    assert pusher.push(body, content_type=content_type)[0] == 200
    (stored,) = table_items(stack, "MO#13800138000")
    assert stored["content"]["S"] == content


def test_opt_outs_can_be_seen_and_removed(api: Api, pusher: Pusher) -> None:
    pusher.push(inbound("13800138000", "T"))
    event = api.module  # the API handler module serves /v1/opt-outs too
    status, view = call(event, "GET", "+86 138 0013 8000")
    assert (status, view["mobile"], view["keyword"], view["source"]) == (200, "13800138000", "t", "mo")
    assert call(event, "DELETE", "13800138000")[0] == 204
    assert call(event, "GET", "13800138000")[0] == 404
    assert call(event, "PUT", "13800138000")[0] == 201
    assert call(event, "PUT", "13800138000")[0] == 200
    assert call(event, "GET", "12345")[0] == 400


def test_an_opt_out_path_is_read_percent_decoded_as_api_gateway_passes_it(api: Api) -> None:
    # API Gateway (REST) passes the path still percent-encoded, as the client wrote it
    assert call(api.module, "PUT", "%2B86%20138%200013%208000")[0] == 201
    status, view = call(api.module, "GET", "%2B8613800138000")
    assert (status, view["mobile"]) == (200, "13800138000")
    assert call(api.module, "DELETE", "138-0013-8000")[0] == 204


def call(module: Any, method: str, mobile: str) -> tuple[int, Any]:
    from tests.conftest import FakeContext, sample_event

    event = sample_event("send_api/get_message.json")
    event.update(
        httpMethod=method,
        resource="/v1/opt-outs/{mobile}",
        path=f"/v1/opt-outs/{mobile}",
        pathParameters={"mobile": mobile},
        queryStringParameters=None,
        multiValueQueryStringParameters=None,
    )
    response = module.handler(event, FakeContext())
    return response["statusCode"], json.loads(response["body"]) if response["body"] else None


def test_events_are_retried_then_the_push_fails_so_the_platform_pushes_again(
    api: Api, worker: Worker, simulator: Simulator, pusher: Pusher, event_sink: EventSink
) -> None:
    request_id, msg_ids = submitted(api, worker, simulator, ["13800138000"])
    packet = [report(msg_ids["13800138000"], "13800138000")]
    # (the receiver's EventBridge client fails until told otherwise; its retries do not wait)
    events = boto3.client("events")
    real = events.put_events
    events.put_events = lambda **kw: {
        "FailedEntryCount": len(kw["Entries"]),
        "Entries": [{"ErrorCode": "InternalFailure"}] * len(kw["Entries"]),
    }
    rewire(pusher.module, events=events, sleep=lambda _: None)
    # When EventBridge keeps failing, the push is answered 503 (the report is stored)
    assert pusher.push(packet)[0] == 503
    assert recipients(api, request_id)["13800138000"]["status"] == "delivered"
    # And when the platform pushes again, the delivery is announced after all
    events.put_events = real  # type: ignore[method-assign]
    assert pusher.push(packet)[0] == 200
    assert len(event_sink.of_type("Recipients Delivered")) == 1


def test_during_a_token_rotation_the_old_and_the_new_push_url_both_work(
    stack: Provisioned, load_pusher: Callable[..., Pusher]
) -> None:
    # Given the push token was rotated (the platform may still use the old URL a while)
    boto3.client("secretsmanager").put_secret_value(
        SecretId=stack.ref("PushTokenSecret"), SecretString="new-token-42"
    )
    pusher = load_pusher(stack)
    packet = [report("1", "13800138000")]
    # Then both tokens are accepted, and anything else is not
    assert pusher.push(packet, token="new-token-42")[0] == 200
    assert pusher.push(packet, token=PUSH_TOKEN)[0] == 200
    assert pusher.push(packet, token="older-token")[0] == 403


def test_a_never_rotated_token_costs_no_failing_lookup_per_push(stack: Provisioned, pusher: Pusher) -> None:
    # Given a push token that was never rotated (no previous version to ask for)
    calls: list[str] = []
    secrets = boto3.client("secretsmanager")

    def counting(params: dict[str, Any], **_: object) -> None:
        if params.get("VersionStage") == "AWSPREVIOUS":
            calls.append("previous")

    secrets.meta.events.register("before-parameter-build.secrets-manager.GetSecretValue", counting)
    rewire(pusher.module, secretsmanager=secrets)
    # When the platform pushes five packets
    for _ in range(5):
        assert pusher.push([report("1", "13800138000")])[0] == 200
    # Then the previous version was looked for once, not once per push
    assert calls == ["previous"]


def test_a_msg_id_linked_between_the_parts_of_its_write_is_known_linked(stack: Provisioned) -> None:
    """Over 50 reports of one MsgId are written in parts, in parallel. When the worker links
    the MsgId between two parts, the packet must count it linked (so the push announces its
    reports): the worker announces only the reports stored before it looked."""
    from smsgw.adapters.dynamo import Lifetime
    from smsgw.adapters.links import LinkStore
    from smsgw.domain.reports import Report

    db = boto3.client("dynamodb")
    table = stack.ref("MessagesTable")
    calls: list[dict[str, Any]] = []

    class LinkedAfterTheFirstPart:
        """DynamoDB, where the worker records the submit right after the first part landed."""

        def __getattr__(self, name: str) -> Any:
            return getattr(db, name)

        def update_item(self, **kwargs: Any) -> Any:
            answer = db.update_item(**kwargs)
            calls.append(kwargs)
            if len(calls) == 1:
                db.update_item(
                    TableName=table,
                    Key={"pk": {"S": "MSG#m-1"}, "sk": {"S": "LINK"}},
                    UpdateExpression="SET request_id = :r, #c = :n",
                    ExpressionAttributeNames={"#c": "chunk"},
                    ExpressionAttributeValues={":r": {"S": "req-1"}, ":n": {"N": "0"}},
                )
            return answer

    class LastPartFirst:
        """The thread pool ran the second part before the first."""

        def map(self, fn: Callable[[Any], Any], items: Any) -> Any:
            return list(reversed([fn(item) for item in reversed(list(items))]))

    store = LinkStore(
        cast(Any, LinkedAfterTheFirstPart()), table, lifetime=Lifetime(30), pool=cast(Any, LastPartFirst())
    )
    reports = [Report("m-1", f"138{i:08d}", "0", "发送成功", "2026-11-24 12:00:05") for i in range(60)]
    recorded = store.record_reports(reports)
    assert len(recorded.newly) == 60
    assert recorded.links["m-1"].request_id == "req-1"
