"""The admin API under ``/_sim/`` that tests and the local stack drive."""

from __future__ import annotations

import requests
from sim_helpers import OPER_ID, OPER_PASS, Receiver, mobiles, post_submit, result_code, submit_body

from guodu_simulator import Simulator


def admin(sim: Simulator, method: str, name: str, body: object = None) -> requests.Response:
    return requests.request(method, f"{sim.base_url}/_sim/{name}", json=body, timeout=5)


def test_health(sim: Simulator) -> None:
    # Given a running simulator with one accepted submit
    post_submit(sim)
    # Then health says ok and counts it
    data = admin(sim, "GET", "health").json()
    assert data["status"] == "ok"
    assert data["accepted"] == 1
    assert data["base_url"] == sim.base_url


def test_submits_lists_accepted_and_refused(sim: Simulator) -> None:
    # Given one accepted batch and one refused submit
    body = submit_body(DesMobile=mobiles(2), text="你好 world", AppendID="01")
    msg_id = post_submit(sim, body).json()["MsgId"]
    post_submit(sim, submit_body(Content=""))
    # When the submits are listed
    data = admin(sim, "GET", "submits").json()
    # Then the accepted one has every field a test needs, and the refused one its code
    [accepted] = data["accepted"]
    assert accepted["msg_id"] == msg_id
    assert accepted["oper_id"] == OPER_ID
    assert accepted["mobiles"] == mobiles(2).split(",")
    assert accepted["content"] == "你好 world"
    assert accepted["raw_content"] == body["Content"]
    assert accepted["send_time"] == ""
    assert accepted["append_id"] == "01"
    assert accepted["result_code"] == "00"
    assert accepted["received_at"]
    [refused] = data["refused"]
    assert refused["result_code"] == "08"
    # And the password appears nowhere
    assert OPER_PASS not in admin(sim, "GET", "submits").text


def test_pushes_lists_packets(pushing_sim: Simulator, receiver: Receiver) -> None:
    # Given a delivered report
    post_submit(pushing_sim)
    receiver.wait_for_items(1)
    assert pushing_sim.wait_for_pushes(5)
    # Then the pushes endpoint shows the packet: kind, items, answer, attempts
    data = admin(pushing_sim, "GET", "pushes").json()
    [packet] = data["packets"]
    assert packet["kind"] == "report"
    assert packet["items"] == receiver.items()
    assert (packet["status"], packet["attempts"], packet["outcome"]) == (200, 1, "delivered")
    assert (data["delivered"], data["failed"], data["pending"]) == (1, 0, 0)


def test_config_partial_update_returns_the_effective_config(sim: Simulator) -> None:
    # Given a partial update of latency, a fault, a push setting and the balance
    patch = {
        "latency_ms": 5,
        "faults": {"code_rates": {"-1": 0.25}},
        "push": {"delivery_ratio": 0.5},
        "accounts": {OPER_ID: {"balance": 42}},
    }
    data = admin(sim, "POST", "config", patch).json()
    # Then the answer is the whole effective config, with the change and the rest untouched
    assert data["latency_ms"] == 5
    assert data["faults"]["code_rates"] == {"-1": 0.25}
    assert data["push"]["delivery_ratio"] == 0.5
    assert data["push"]["max_items"] == 250
    assert data["accounts"][OPER_ID]["balance"] == 42
    # And the password is never shown
    assert data["accounts"][OPER_ID]["password"] == "***"
    assert admin(sim, "GET", "config").json() == data
    assert sim.balance(OPER_ID) == 42


def test_config_can_add_an_account(sim: Simulator) -> None:
    # Given a second account added at run time, Then it can submit
    admin(
        sim, "POST", "config", {"accounts": {"second": {"password": "second-test-pass", "account_code": "7"}}}
    )
    body = submit_body(OperID="second", OperPass="second-test-pass")
    assert result_code(post_submit(sim, body)) == "03"


def test_bad_config_is_refused_whole(sim: Simulator) -> None:
    # Given patches with an unknown field, a bad type, an out-of-range rate
    for patch in (
        {"latency": 5},
        {"latency_ms": "5"},
        {"push": {"delivery_ratio": 2}},
        {"faults": {"drop_rate": 0.5, "nope": 1}},
        {"port": 1},
        {"max_mobiles": 201},  # the document's limits are never loosened
        {"max_content_chars": 501},
        [1, 2],
    ):
        answer = admin(sim, "POST", "config", patch)
        # Then 400 with a message, and nothing changed
        assert answer.status_code == 400, patch
        assert answer.json()["error"]
    assert sim.config.faults.drop_rate == 0.0
    assert sim.config.latency_ms == 0.0


def test_reset_clears_logs_and_queues_and_restores_defaults(sim: Simulator) -> None:
    # Given submits, a queued fault, a changed setting and a spent balance
    post_submit(sim)
    post_submit(sim, submit_body(OperPass="bad"))
    sim.queue_faults("-1")
    sim.configure({"latency_ms": 50})
    # When reset
    assert admin(sim, "POST", "reset").status_code == 200
    # Then the logs are empty, the queue gone, the settings and balance back to the start
    assert admin(sim, "GET", "submits").json() == {"accepted": [], "refused": []}
    assert sim.config.latency_ms == 0.0
    assert sim.balance(OPER_ID) == 1_000_000
    assert result_code(post_submit(sim)) == "03"


def test_unknown_admin_endpoint_and_wrong_method(sim: Simulator) -> None:
    assert admin(sim, "GET", "nothing").status_code == 404
    assert admin(sim, "GET", "reset").status_code == 405
    assert admin(sim, "DELETE", "config").status_code == 405
