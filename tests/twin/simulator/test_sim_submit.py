"""submitJson as the document defines it: every ResultCode and what triggers it."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
import requests
from sim_helpers import OPER_ID, OPER_PASS, make_config, mobiles, post_submit, result_code, submit_body

from guodu_simulator import Simulator
from guodu_simulator.protocol import BEIJING


def test_single_number_is_accepted_with_03_and_a_msgid(sim: Simulator) -> None:
    # Given a valid submit to one number
    # When it is posted
    response = post_submit(sim)
    # Then the answer is the document's success shape, 03 for a single message
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    data = response.json()
    assert set(data) == {"ResultCode", "MsgId"}
    assert data["ResultCode"] == "03"
    assert data["MsgId"].isdigit()
    # And the simulator recorded it with that MsgId
    assert [record.msg_id for record in sim.accepted] == [data["MsgId"]]


def test_several_numbers_are_accepted_with_00(sim: Simulator) -> None:
    # Given a batch of three numbers, When posted, Then 00 (batch accepted)
    response = post_submit(sim, submit_body(DesMobile=mobiles(3)))
    assert result_code(response) == "00"
    assert sim.accepted[0].mobiles == mobiles(3).split(",")


def test_failure_answer_holds_only_the_result_code(sim: Simulator) -> None:
    # Given a wrong password, When posted, Then the failure shape: ResultCode only
    response = post_submit(sim, submit_body(OperPass="wrong"))
    assert response.json() == {"ResultCode": "05"}


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"not json", id="not-json"),
        pytest.param(b"", id="empty-body"),
        pytest.param(b'["OperID"]', id="json-array"),
        pytest.param(b'"text"', id="json-string"),
        pytest.param(
            json.dumps(submit_body(Extra="中文"), ensure_ascii=False).encode("gbk"),
            id="gbk-not-utf8",
        ),
    ],
)
def test_body_that_is_not_a_utf8_json_object_gets_06(sim: Simulator, raw: bytes) -> None:
    # Given a body that is not a UTF-8 JSON object, When posted, Then 06 and nothing accepted
    assert result_code(post_submit(sim, raw=raw)) == "06"
    assert sim.accepted == []


@pytest.mark.parametrize("field", ["OperID", "OperPass", "DesMobile", "Content", "SendTime", "AppendID"])
def test_field_that_is_not_a_string_gets_06(sim: Simulator, field: str) -> None:
    # Given a document field holding a number instead of a string
    body = submit_body(**{field: 13800138000})
    # When posted, Then 06 (the document's fields are strings)
    assert result_code(post_submit(sim, body)) == "06"


@pytest.mark.parametrize("oper_id", [None, "", "someone-else"])
def test_missing_or_unknown_account_gets_04(sim: Simulator, oper_id: str | None) -> None:
    # Given no OperID, an empty one or one the platform does not know
    body = submit_body(OperID=oper_id) if oper_id is not None else submit_body(OperID=None)
    # When posted, Then 04
    assert result_code(post_submit(sim, body)) == "04"


@pytest.mark.parametrize("password", [None, "", "wrong-password", OPER_PASS + " "])
def test_wrong_or_missing_password_gets_05(sim: Simulator, password: str | None) -> None:
    # Given the right account with a wrong or missing password, When posted, Then 05
    assert result_code(post_submit(sim, submit_body(OperPass=password))) == "05"


def test_source_ip_outside_the_allow_list_gets_02() -> None:
    # Given an account that only accepts 10.0.0.0/8
    with Simulator(make_config(allowed_ips=["10.0.0.0/8"])) as sim:
        # When a valid submit comes from 127.0.0.1, Then 02
        assert result_code(post_submit(sim)) == "02"
    # And given an allow-list holding the loopback, the same submit is accepted
    with Simulator(make_config(allowed_ips=["192.0.2.1", "127.0.0.1"])) as sim:
        assert result_code(post_submit(sim)) == "03"


@pytest.mark.parametrize("des_mobile", [None, ""])
def test_empty_des_mobile_gets_09(sim: Simulator, des_mobile: str | None) -> None:
    assert result_code(post_submit(sim, submit_body(DesMobile=des_mobile))) == "09"


@pytest.mark.parametrize("content", [None, ""])
def test_empty_content_gets_08(sim: Simulator, content: str | None) -> None:
    assert result_code(post_submit(sim, submit_body(Content=content))) == "08"


@pytest.mark.parametrize(
    "send_time",
    [
        "2026-12-01 09:30:00",
        "202612010930",
        "202612010930000",
        "20261301093000",
        "20260230093000",
        "2026120109300x",
    ],
)
def test_malformed_send_time_gets_07(sim: Simulator, send_time: str) -> None:
    # Given a SendTime that is not a real YYYYMMDDHHMMSS, When posted, Then 07
    assert result_code(post_submit(sim, submit_body(SendTime=send_time))) == "07"


def test_valid_send_time_is_accepted_and_recorded(sim: Simulator) -> None:
    # Given a SendTime one hour ahead in Beijing time
    send_time = (datetime.now(BEIJING) + timedelta(hours=1)).strftime("%Y%m%d%H%M%S")
    # When posted, Then accepted and the SendTime kept as sent
    assert result_code(post_submit(sim, submit_body(SendTime=send_time))) == "03"
    assert sim.accepted[0].send_time == send_time


def test_append_id_rule_of_twenty_digits(sim: Simulator) -> None:
    # Given sp_number 106900 (6 digits) and account code 13 (2 digits): 12 digits of AppendID fit
    assert result_code(post_submit(sim, submit_body(AppendID="1" * 12))) == "03"
    assert sim.accepted[0].append_id == "1" * 12
    # When the AppendID has 13 digits (21 in all), Then 10
    assert result_code(post_submit(sim, submit_body(AppendID="1" * 13))) == "10"


@pytest.mark.parametrize("append_id", ["12a", "-1", " 01", "０１"])
def test_append_id_that_is_not_ascii_digits_gets_10(sim: Simulator, append_id: str) -> None:
    assert result_code(post_submit(sim, submit_body(AppendID=append_id))) == "10"


def test_two_hundred_numbers_accepted_and_two_hundred_and_one_refused(sim: Simulator) -> None:
    # Given the document's cap of 200 numbers per packet
    assert result_code(post_submit(sim, submit_body(DesMobile=mobiles(200)))) == "00"
    # When 201 numbers are sent, Then 06 (an illegal packet) and nothing more is accepted
    assert result_code(post_submit(sim, submit_body(DesMobile=mobiles(201)))) == "06"
    assert len(sim.accepted) == 1


@pytest.mark.parametrize(
    "des_mobile",
    [
        "1380013800",  # 10 digits
        "138001380001",  # 12 digits
        "23800138000",  # not starting with 1
        "+8613800138000",
        "13800138000,",  # an empty item
        "13800138000, 13900139000",  # a space
        "13800138000;13900139000",
        "1380013800a",
    ],
)
def test_number_that_is_not_eleven_digits_gets_06(sim: Simulator, des_mobile: str) -> None:
    assert result_code(post_submit(sim, submit_body(DesMobile=des_mobile))) == "06"


def test_content_of_500_characters_accepted_and_501_refused(sim: Simulator) -> None:
    # Given the document's limit of 500 characters (counted after URL-decoding)
    assert result_code(post_submit(sim, submit_body(text="测" * 500))) == "03"
    # When the text has 501, Then 06
    assert result_code(post_submit(sim, submit_body(text="测" * 501))) == "06"


def test_insufficient_balance_gets_11_and_costs_nothing() -> None:
    # Given an account with 3 messages left
    with Simulator(make_config(balance=3)) as sim:
        # When 4 numbers are sent, Then 11 (insufficient balance) and the balance is untouched
        assert result_code(post_submit(sim, submit_body(DesMobile=mobiles(4)))) == "11"
        assert sim.balance(OPER_ID) == 3
        # And 3 numbers still go through, leaving 0
        assert result_code(post_submit(sim, submit_body(DesMobile=mobiles(3)))) == "00"
        assert sim.balance(OPER_ID) == 0


def test_validation_order_follows_the_documented_table(sim: Simulator) -> None:
    # Given requests that break several rules at once, Then the first rule of the table decides
    everything_wrong = submit_body(OperPass="bad", DesMobile="", Content="", SendTime="x", AppendID="x")
    assert result_code(post_submit(sim, everything_wrong)) == "05"
    assert result_code(post_submit(sim, submit_body(DesMobile="", Content=""))) == "09"
    assert result_code(post_submit(sim, submit_body(Content="", SendTime="x"))) == "08"
    assert result_code(post_submit(sim, submit_body(SendTime="x", AppendID="x"))) == "07"
    assert result_code(post_submit(sim, submit_body(AppendID="x", DesMobile="123"))) == "10"
    assert result_code(post_submit(sim, submit_body(DesMobile="123", text="测" * 501))) == "06"


def test_refused_submits_are_recorded_with_their_code(sim: Simulator) -> None:
    # Given two refused submits, Then both are listed with their code and the OperID when known
    post_submit(sim, submit_body(OperPass="bad"))
    post_submit(sim, raw=b"{")
    assert [(r.result_code, r.oper_id, r.fault) for r in sim.refused] == [
        ("05", OPER_ID, None),
        ("06", None, None),
    ]


def test_extra_unknown_fields_are_ignored(sim: Simulator) -> None:
    # Given a body with a field the document does not name, When posted, Then still accepted
    assert result_code(post_submit(sim, submit_body(Extra="x"))) == "03"


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
def test_other_methods_than_post_get_405(sim: Simulator, method: str) -> None:
    # Given the document's rule "the method must be POST", When another method is used, Then 405
    response = requests.request(method, sim.submit_url, json=submit_body(), timeout=5)
    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"
    assert sim.accepted == []


def test_unknown_path_gets_404(sim: Simulator) -> None:
    response = requests.post(sim.base_url + "/HttpQuickProcess/submitjson", json=submit_body(), timeout=5)
    assert response.status_code == 404


def test_keep_alive_serves_many_requests_on_one_connection(sim: Simulator) -> None:
    # Given one HTTP/1.1 connection (a requests Session)
    with requests.Session() as session:
        adapter = requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=1)
        session.mount("http://", adapter)
        answers = [session.post(sim.submit_url, json=submit_body(), timeout=5) for _ in range(20)]
    # When twenty submits are made, Then all are answered, each with an exact Content-Length
    assert [a.json()["ResultCode"] for a in answers] == ["03"] * 20
    assert all(int(a.headers["Content-Length"]) == len(a.content) for a in answers)
    assert all(a.headers.get("Connection", "").lower() != "close" for a in answers)
