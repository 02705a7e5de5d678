"""MO (inbound) pushes triggered through ``POST /_sim/mo``."""

from __future__ import annotations

import re
from urllib.parse import unquote_plus

import requests
from sim_helpers import Receiver, make_config, mobiles, post_submit, submit_body

from guodu_simulator import Simulator

RECV_TIME = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")


def test_mo_is_pushed_in_the_guodu_format(pushing_sim: Simulator, receiver: Receiver) -> None:
    # Given a person replying "退订 TD" from 13800138000 to extension 01
    answer = requests.post(
        pushing_sim.base_url + "/_sim/mo",
        json={"mobile": "13800138000", "content": "退订 TD", "append_id": "01"},
        timeout=5,
    )
    assert answer.status_code == 202
    # When it is pushed, Then one item with SrcMobile, URL-encoded Content, RecvTime, AppendID
    [item] = receiver.wait_for_items(1)
    assert list(item) == ["SrcMobile", "Content", "RecvTime", "AppendID"]
    assert item["SrcMobile"] == "13800138000"
    assert item["Content"] == "%E9%80%80%E8%AE%A2+TD"
    assert unquote_plus(item["Content"]) == "退订 TD"
    assert RECV_TIME.fullmatch(item["RecvTime"])
    assert item["AppendID"] == "01"
    assert pushing_sim.pushes[0].kind == "mo"


def test_mo_is_pushed_in_the_lower_camel_format_when_configured(receiver: Receiver) -> None:
    # Given the camel-case MO format
    config = make_config(receiver.url)
    config.push.mo_format = "camel"
    with Simulator(config) as sim:
        # When an MO arrives (no append_id given)
        sim.send_mo("13800138000", "TD")
        [item] = receiver.wait_for_items(1)
    # Then mobile, content (plain text), moTime and appendId
    assert item["mobile"] == "13800138000"
    assert item["content"] == "TD"
    assert RECV_TIME.fullmatch(item["moTime"])
    assert item["appendId"] == ""


def test_mo_and_reports_never_share_a_packet(receiver: Receiver) -> None:
    # Given reports and an MO all due within one batching window
    config = make_config(receiver.url)
    config.push.batch_window_seconds = 0.3
    with Simulator(config) as sim:
        post_submit(sim, submit_body(DesMobile=mobiles(3)))
        sim.send_mo("13800138000", "TD")
        receiver.wait_for_items(4)
        assert sim.wait_for_pushes(5)
    # Then each packet holds one kind only
    for packet in receiver.snapshot():
        kinds = {"mo" if "SrcMobile" in item else "report" for item in packet.items}
        assert len(kinds) == 1
    assert len(receiver.items("SrcMobile")) == 1
    assert len(receiver.items("msgId")) == 3


def test_mo_without_a_push_url_is_refused(sim: Simulator) -> None:
    # Given no push URL, When an MO is asked for, Then 409 and an explanation
    answer = requests.post(
        sim.base_url + "/_sim/mo", json={"mobile": "13800138000", "content": "TD"}, timeout=5
    )
    assert answer.status_code == 409
    assert "push url" in answer.json()["error"]


def test_mo_with_a_bad_body_is_refused(pushing_sim: Simulator) -> None:
    for body in (b"nope", b"[]", b'{"mobile": "13800138000"}', b'{"mobile": 1, "content": "x"}'):
        answer = requests.post(pushing_sim.base_url + "/_sim/mo", data=body, timeout=5)
        assert answer.status_code == 400
