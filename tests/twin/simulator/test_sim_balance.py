"""MsgIds, balance bookkeeping and the GBK balance query."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor

import requests
from sim_helpers import OPER_ID, OPER_PASS, make_config, mobiles, post_submit, result_code, submit_body

from guodu_simulator import Simulator


def test_msgids_are_unique_digit_strings_even_under_concurrency(sim: Simulator) -> None:
    # Given 8 clients submitting 200 requests at once
    def one(_: int) -> str:
        response = post_submit(sim)
        assert result_code(response) == "03"
        return str(response.json()["MsgId"])

    with ThreadPoolExecutor(max_workers=8) as pool:
        ids = list(pool.map(one, range(200)))
    # Then every MsgId is a distinct string of digits
    assert all(msg_id.isdigit() for msg_id in ids)
    assert len(set(ids)) == 200


def test_msgids_stay_unique_across_reset_and_simulators(sim: Simulator) -> None:
    # Given a submit, a reset, a second simulator in the same process
    first = post_submit(sim).json()["MsgId"]
    sim.reset()
    second = post_submit(sim).json()["MsgId"]
    with Simulator(make_config()) as other:
        third = post_submit(other).json()["MsgId"]
    # Then no MsgId repeats
    assert len({first, second, third}) == 3


def test_balance_decrements_by_numbers_times_segments() -> None:
    # Given 100 messages and a 71-character text (2 segments) to 3 numbers
    with Simulator(make_config(balance=100)) as sim:
        assert result_code(post_submit(sim, submit_body(DesMobile=mobiles(3), text="测" * 71))) == "00"
        # Then 6 messages are charged
        assert sim.balance(OPER_ID) == 94
        assert sim.accepted[0].segments == 2
        # And a refused submit charges nothing
        post_submit(sim, submit_body(DesMobile="123"))
        assert sim.balance(OPER_ID) == 94


def test_surplus_answers_gbk_xml_with_messages_left() -> None:
    # Given 50 messages, of which 2 are spent
    with Simulator(make_config(balance=50)) as sim:
        post_submit(sim, submit_body(DesMobile=mobiles(2)))
        # When the balance is queried the older interface's way
        response = requests.get(sim.surplus_url, params={"OperID": OPER_ID, "OperPass": OPER_PASS}, timeout=5)
    # Then GBK XML with rcode 48
    assert response.status_code == 200
    assert "GBK" in response.headers["Content-Type"]
    text = response.content.decode("gbk")
    assert text.startswith('<?xml version="1.0" encoding="GBK"?>')
    assert re.search(r"<resRoot><rcode>48</rcode></resRoot>", text)


def test_surplus_with_wrong_credentials_or_ip_answers_negative_codes(sim: Simulator) -> None:
    # Given a wrong password or an unknown account, Then rcode -1
    for params in ({"OperID": OPER_ID, "OperPass": "wrong"}, {"OperID": "nobody", "OperPass": "x"}, {}):
        response = requests.get(sim.surplus_url, params=params, timeout=5)
        assert "<rcode>-1</rcode>" in response.content.decode("gbk")
    # And given an allow-list without the loopback, Then rcode -2
    with Simulator(make_config(allowed_ips=["10.1.1.1"])) as strict:
        response = requests.get(
            strict.surplus_url, params={"OperID": OPER_ID, "OperPass": OPER_PASS}, timeout=5
        )
        assert "<rcode>-2</rcode>" in response.content.decode("gbk")


def test_surplus_also_takes_a_form_post(sim: Simulator) -> None:
    # Given the form-encoded POST some public clients use, Then the same answer
    response = requests.post(sim.surplus_url, data={"OperID": OPER_ID, "OperPass": OPER_PASS}, timeout=5)
    assert "<rcode>1000000</rcode>" in response.content.decode("gbk")
