"""Latency and fault injection: what a gateway must survive, on demand and deterministic."""

from __future__ import annotations

import time

import pytest
import requests
from sim_helpers import OPER_ID, Receiver, mobiles, post_submit, result_code, submit_body

from guodu_simulator import Simulator


def test_fixed_latency_delays_every_answer(sim: Simulator) -> None:
    # Given a fixed latency of 150 ms
    sim.configure({"latency_ms": 150})
    # When a submit is made, Then its answer takes at least that long and is still correct
    started = time.monotonic()
    assert result_code(post_submit(sim)) == "03"
    assert time.monotonic() - started >= 0.15


def test_latency_range_is_honoured(sim: Simulator) -> None:
    # Given a latency between 60 and 90 ms, Then each answer takes at least 60 ms
    sim.configure({"latency_ms": 60, "latency_max_ms": 90})
    for _ in range(3):
        started = time.monotonic()
        post_submit(sim)
        assert time.monotonic() - started >= 0.06


def test_next_codes_queue_answers_then_returns_to_normal(sim: Simulator) -> None:
    # Given the next two submits are set to answer -1
    sim.queue_faults("-1", "-1")
    # When three valid submits are made
    codes = [result_code(post_submit(sim)) for _ in range(3)]
    # Then -1, -1, then normal service; the -1s accepted nothing
    assert codes == ["-1", "-1", "03"]
    assert len(sim.accepted) == 1
    assert [(r.result_code, r.fault) for r in sim.refused] == [("-1", "code"), ("-1", "code")]


def test_code_rate_of_one_answers_that_code_always(sim: Simulator) -> None:
    # Given "05" with probability 1.0 (e.g. the password was changed on the platform)
    sim.configure({"faults": {"code_rates": {"05": 1.0}}})
    # Then even a correct submit answers 05, and nothing is accepted
    assert [result_code(post_submit(sim)) for _ in range(3)] == ["05"] * 3
    assert sim.accepted == []


def test_code_rate_mixes_failures_with_successes(sim: Simulator) -> None:
    # Given -1 at a rate of 0.5 (fixed seed), When 40 submits are made
    sim.configure({"faults": {"code_rates": {"-1": 0.5}}})
    codes = [result_code(post_submit(sim)) for _ in range(40)]
    # Then both answers occur, and only the 03s were accepted
    assert set(codes) == {"-1", "03"}
    assert len(sim.accepted) == codes.count("03")


def test_injected_personalised_success_code_01_still_accepts(sim: Simulator) -> None:
    # Given the next submit answers 01 (never produced by validation)
    sim.queue_faults("01")
    # When a valid batch is submitted, Then 01 with a MsgId, recorded as accepted
    data = post_submit(sim, submit_body(DesMobile=mobiles(2))).json()
    assert data["ResultCode"] == "01"
    assert sim.accepted[0].msg_id == data["MsgId"]
    assert sim.accepted[0].result_code == "01"


def test_injected_success_code_never_accepts_an_invalid_request(sim: Simulator) -> None:
    # Given the next submit answers 00, When the request itself is invalid, Then its real refusal
    sim.queue_faults("00")
    assert result_code(post_submit(sim, submit_body(DesMobile="12"))) == "06"
    assert sim.accepted == []


def test_http_500_fault(sim: Simulator) -> None:
    # Given HTTP 500 for every submit
    sim.configure({"faults": {"http_500_rate": 1.0}})
    # Then the client sees 500 and nothing is accepted
    assert post_submit(sim).status_code == 500
    assert sim.accepted == []
    assert sim.refused[0].fault == "http_500"
    assert sim.refused[0].result_code is None


def test_dropped_connection_fault(sim: Simulator) -> None:
    # Given every connection dropped after the request is read
    sim.configure({"faults": {"drop_rate": 1.0}})
    # Then the client gets no HTTP answer at all, and nothing is accepted
    with pytest.raises(requests.ConnectionError):
        post_submit(sim)
    assert sim.accepted == []
    assert sim.refused[0].fault == "drop"


def test_timeout_fault_outlasts_the_client(sim: Simulator) -> None:
    # Given a timeout fault that holds the answer for 3 s
    sim.configure({"faults": {"timeout_rate": 1.0, "timeout_seconds": 3.0}})
    # When the client waits only 0.3 s, Then it times out, and nothing is accepted
    with pytest.raises(requests.ReadTimeout):
        post_submit(sim, timeout=0.3)
    assert sim.accepted == []
    assert sim.refused[0].fault == "timeout"


def test_slow_answer_fault_answers_late_but_normally(sim: Simulator) -> None:
    # Given slow answers of 0.2 s
    sim.configure({"faults": {"slow_rate": 1.0, "slow_seconds": 0.2}})
    started = time.monotonic()
    # Then the submit is still accepted, only later
    assert result_code(post_submit(sim)) == "03"
    assert time.monotonic() - started >= 0.2
    assert len(sim.accepted) == 1


def test_accept_then_drop_records_an_accepted_submit_without_answering(
    pushing_sim: Simulator, receiver: Receiver
) -> None:
    # Given the next submit is accepted and its answer lost
    pushing_sim.queue_faults("accept_then_drop")
    # When a valid submit to 2 numbers is made, Then the client sees a broken connection
    with pytest.raises(requests.ConnectionError):
        post_submit(pushing_sim, submit_body(DesMobile=mobiles(2)))
    # And yet the platform accepted it: MsgId assigned, balance charged, reports pushed
    [record] = pushing_sim.accepted
    assert record.fault == "accept_then_drop"
    assert pushing_sim.balance(OPER_ID) == 1_000_000 - 2
    reports = receiver.wait_for_items(2)
    assert {item["msgId"] for item in reports} == {record.msg_id}


def test_accept_then_drop_rate_and_refusals(sim: Simulator) -> None:
    # Given accept_then_drop on every submit, When the request is invalid, Then it is refused normally
    sim.configure({"faults": {"accept_then_drop_rate": 1.0}})
    assert result_code(post_submit(sim, submit_body(OperPass="bad"))) == "05"
    # And a valid one is accepted but never answered
    with pytest.raises(requests.ConnectionError):
        post_submit(sim)
    assert len(sim.accepted) == 1


def test_accept_then_truncate_accepts_and_breaks_the_answer_off_half_way(sim: Simulator) -> None:
    # Given accept_then_truncate on every submit, When a valid submit is made,
    # Then the answer's head arrives with half its body and the client cannot read it
    sim.configure({"faults": {"accept_then_truncate_rate": 1.0}})
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        post_submit(sim)
    # And yet the platform accepted it; an invalid request is still refused normally
    [record] = sim.accepted
    assert record.fault == "accept_then_truncate"
    assert result_code(post_submit(sim, submit_body(OperPass="bad"))) == "05"


def test_transport_faults_can_be_queued_through_the_admin_api(sim: Simulator) -> None:
    # Given the admin API queues an HTTP 500 then a drop
    answer = requests.post(
        sim.base_url + "/_sim/config", json={"faults": {"next": ["http_500", "drop"]}}, timeout=5
    )
    assert answer.json()["faults"]["next"] == ["http_500", "drop"]
    # Then the next submits see exactly those, then normal service
    assert post_submit(sim).status_code == 500
    with pytest.raises(requests.ConnectionError):
        post_submit(sim)
    assert result_code(post_submit(sim)) == "03"


def test_an_unknown_fault_name_is_refused(sim: Simulator) -> None:
    # Given a typo in a queued fault, Then the admin API answers 400 and changes nothing
    answer = requests.post(sim.base_url + "/_sim/config", json={"faults": {"next": ["http500"]}}, timeout=5)
    assert answer.status_code == 400
    assert "http500" in answer.json()["error"]
    assert sim.config.faults.next == []
