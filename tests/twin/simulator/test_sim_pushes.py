"""Status-report pushes (document section 3.2) and their faults."""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta

import requests
from sim_helpers import Receiver, make_config, mobiles, post_submit, result_code, submit_body, wait_until

from guodu_simulator import Simulator
from guodu_simulator.protocol import BEIJING

REPORT_TIME = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")


def test_reports_carry_the_documents_fields_and_types(pushing_sim: Simulator, receiver: Receiver) -> None:
    # Given a delivered submit to two numbers
    msg_id = post_submit(pushing_sim, submit_body(DesMobile=mobiles(2))).json()["MsgId"]
    # When the reports are pushed
    items = receiver.wait_for_items(2)
    # Then each is exactly the document's object: msg, mobile, msgId, reportTime, status (an int)
    for item in items:
        assert list(item) == ["msg", "mobile", "msgId", "reportTime", "status"]
        assert item["msg"] == "发送成功"
        assert item["status"] == 0
        assert type(item["status"]) is int
        assert item["msgId"] == msg_id
        assert REPORT_TIME.fullmatch(item["reportTime"])
    assert sorted(item["mobile"] for item in items) == mobiles(2).split(",")
    # And they came as a JSON array POSTed with the document's content type
    packet = receiver.snapshot()[0]
    assert packet.headers["Content-Type"] == "application/json;charset=UTF-8"
    assert packet.raw.startswith(b"[")


def test_failed_deliveries_use_carrier_style_codes(receiver: Receiver) -> None:
    # Given a delivery ratio of 0
    config = make_config(receiver.url)
    config.push.delivery_ratio = 0.0
    with Simulator(config) as sim:
        post_submit(sim, submit_body(DesMobile=mobiles(20)))
        items = receiver.wait_for_items(20)
    # Then every report is a failure: status 2 and a carrier reason
    assert {item["status"] for item in items} == {2}
    assert {item["msg"] for item in items} <= {"UNDELIV", "EXPIRED", "MK:0001"}


def test_delivery_ratio_is_honoured_with_a_seed(receiver: Receiver) -> None:
    # Given a delivery ratio of 0.7 and a fixed seed, When 200 numbers are sent
    config = make_config(receiver.url)
    config.push.delivery_ratio = 0.7
    with Simulator(config) as sim:
        post_submit(sim, submit_body(DesMobile=mobiles(200)))
        items = receiver.wait_for_items(200)
    # Then roughly 70% are delivered (the seed makes this exact run repeatable)
    delivered = sum(1 for item in items if item["status"] == 0)
    assert 110 <= delivered <= 170


def test_packets_hold_at_most_250_items_and_never_lose_one(receiver: Receiver) -> None:
    # Given a long batching window so that 600 reports are due together
    config = make_config(receiver.url)
    config.push.batch_window_seconds = 0.5
    with Simulator(config) as sim:
        for start in range(0, 600, 200):
            assert result_code(post_submit(sim, submit_body(DesMobile=mobiles(200, start)))) == "00"
        items = receiver.wait_for_items(600)
        assert sim.wait_for_pushes(5)
    # Then no packet holds more than 250 items, and every number got exactly one report
    sizes = [len(packet.items) for packet in receiver.snapshot()]
    assert max(sizes) == 250
    assert all(size <= 250 for size in sizes)
    assert sorted(item["mobile"] for item in items) == sorted(mobiles(600).split(","))


def test_a_packet_answered_non_200_is_retried_until_accepted(
    pushing_sim: Simulator, receiver: Receiver
) -> None:
    # Given a receiver that answers 503 twice, then 200
    receiver.statuses.extend([503, 503])
    # When one report is pushed
    post_submit(pushing_sim)
    receiver.wait_for_items(1)
    assert pushing_sim.wait_for_pushes(5)
    # Then the same packet was delivered on the third attempt
    [packet] = pushing_sim.pushes
    assert packet.attempts == 3
    assert packet.outcome == "delivered"
    assert packet.status == 200


def test_a_packet_never_accepted_is_counted_as_failed(receiver: Receiver) -> None:
    # Given a receiver that always answers 500, and 2 retries
    receiver.statuses.extend([500] * 10)
    config = make_config(receiver.url)
    config.push.retries = 2
    with Simulator(config) as sim:
        post_submit(sim)
        assert sim.wait_for_pushes(5)
        # Then after 3 attempts the packet is failed, visible in the admin state
        state = requests.get(sim.base_url + "/_sim/pushes", timeout=5).json()
    assert state["failed"] == 1
    assert state["packets"][0]["attempts"] == 3
    assert state["packets"][0]["status"] == 500
    assert receiver.items() == []


def test_unreachable_push_url_is_retried_then_failed() -> None:
    # Given a push URL where nothing listens
    config = make_config("http://127.0.0.1:9/push")
    config.push.retries = 1
    with Simulator(config) as sim:
        post_submit(sim)
        assert sim.wait_for_pushes(5)
        [packet] = sim.pushes
    # Then both attempts are recorded and the packet failed with no HTTP status
    assert (packet.attempts, packet.outcome, packet.status) == (2, "failed", None)


def test_future_send_time_holds_the_reports(pushing_sim: Simulator, receiver: Receiver) -> None:
    # Given one submit scheduled 5 s ahead (Beijing time) and one to send now
    later = (datetime.now(BEIJING) + timedelta(seconds=5)).strftime("%Y%m%d%H%M%S")
    post_submit(pushing_sim, submit_body(DesMobile="13900000001", SendTime=later))
    post_submit(pushing_sim, submit_body(DesMobile="13900000002"))
    # When the immediate one has been reported
    receiver.wait_for_items(1)
    time.sleep(0.2)
    # Then the scheduled one is still held back
    assert [item["mobile"] for item in receiver.items()] == ["13900000002"]
    assert pushing_sim.pending_pushes() == 1


def test_duplicate_packet_fault_pushes_each_packet_twice(receiver: Receiver) -> None:
    # Given duplicate packets at a rate of 1
    config = make_config(receiver.url)
    config.push.duplicate_rate = 1.0
    with Simulator(config) as sim:
        post_submit(sim, submit_body(DesMobile=mobiles(3)))
        receiver.wait_for_items(6)
        assert sim.wait_for_pushes(5)
        records = sim.pushes
    # Then the receiver got the same packet twice
    first, second = receiver.snapshot()
    assert first.items == second.items
    assert [record.duplicate_of for record in records] == [None, records[0].id]


def test_out_of_order_fault_shuffles_items(receiver: Receiver) -> None:
    # Given shuffled packets, When 50 reports are due in one packet
    config = make_config(receiver.url)
    config.push.out_of_order_rate = 1.0
    config.push.delay_max_seconds = 0.0
    with Simulator(config) as sim:
        post_submit(sim, submit_body(DesMobile=mobiles(50)))
        items = receiver.wait_for_items(50)
        assert sim.pushes[0].shuffled
    # Then their order differs from the order of DesMobile (all of them still there)
    pushed = [item["mobile"] for item in items]
    assert pushed != mobiles(50).split(",")
    assert sorted(pushed) == mobiles(50).split(",")


def test_early_reports_arrive_before_the_submit_answer(receiver: Receiver) -> None:
    # Given every submit's reports pushed before its HTTP answer
    config = make_config(receiver.url)
    config.push.early_rate = 1.0
    with Simulator(config) as sim:
        # When the submit returns
        msg_id = post_submit(sim, submit_body(DesMobile=mobiles(2))).json()["MsgId"]
        # Then the receiver already holds its reports (no waiting)
        assert {item["msgId"] for item in receiver.items()} == {msg_id}
        assert len(receiver.items()) == 2
        assert sim.accepted[0].early_reports


def test_report_loss_fault_sends_no_report(receiver: Receiver) -> None:
    # Given every report lost ("not every MT gets a report")
    config = make_config(receiver.url)
    config.push.loss_rate = 1.0
    with Simulator(config) as sim:
        assert result_code(post_submit(sim)) == "03"
        assert sim.wait_for_pushes(2)
        # Then nothing is pushed
        assert not wait_until(lambda: bool(receiver.items()), timeout=0.2)
        assert sim.pushes == []


def test_no_push_url_means_no_pushes(sim: Simulator) -> None:
    # Given no push URL, When a submit is accepted, Then nothing is scheduled
    assert result_code(post_submit(sim)) == "03"
    assert sim.pending_pushes() == 0
    assert sim.pushes == []
