"""Content: URL-encoded UTF-8 exactly as Java's URLEncoder produces it, decoded back."""

from __future__ import annotations

import json
from urllib.parse import quote_plus

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sim_helpers import OPER_ID, OPER_PASS, SP_NUMBER, post_submit, result_code, submit_body

from guodu_simulator import Account, Simulator, java_url_decode, java_url_encode, validate_submit
from guodu_simulator.protocol import Accepted, Refused, count_segments


@pytest.mark.parametrize(
    "text",
    [
        "中文短信abc",
        "【测试】验证码 123456，5分钟内有效。退订回T",
        "emoji 😀 and 𠀋",
        "a b  c",
        "tilde~star*dot.dash-under_",
        "100% sure & <ok>? +1 #tag /path =x",
        "line\nbreak\ttab",
    ],
)
def test_encoded_text_round_trips_through_submit(sim: Simulator, text: str) -> None:
    # Given a text encoded as URLEncoder.encode(text, "UTF-8") would
    body = submit_body(text=text)
    # When submitted
    assert result_code(post_submit(sim, body)) == "03"
    # Then the simulator decoded exactly the text, and kept the raw Content as received
    record = sim.accepted[-1]
    assert record.content == text
    assert record.raw_content == body["Content"]


def test_java_encoding_of_the_document_sample() -> None:
    # Given the document's sample "测试消息1" → %E6%B5%8B%E8%AF%95%E6%B6%88%E6%81%AF1
    assert java_url_encode("测试消息1") == "%E6%B5%8B%E8%AF%95%E6%B6%88%E6%81%AF1"
    # And Java's particular choices: space is '+', '*' stays, '~' is encoded
    assert java_url_encode("a b*~") == "a+b*%7E"
    assert java_url_decode("a+b*%7E") == "a b*~"


def test_lowercase_hex_is_accepted_as_urldecoder_does(sim: Simulator) -> None:
    # Given %e6%b5%8b (lowercase hex, which URLDecoder accepts), When submitted, Then decoded
    assert result_code(post_submit(sim, submit_body(Content="%e6%b5%8b"))) == "03"
    assert sim.accepted[-1].content == "测"


@pytest.mark.parametrize(
    "raw_content",
    [
        pytest.param("中文短信abc", id="raw-chinese"),
        pytest.param("hello world", id="raw-space"),
        pytest.param("100%", id="percent-at-end"),
        pytest.param("%E6%B5", id="truncated-utf8"),
        pytest.param("%ZZ", id="percent-not-hex"),
        pytest.param("%E6%B5%8", id="percent-one-digit"),
        pytest.param("%FF%FE", id="not-utf8-bytes"),
        pytest.param("a~b", id="raw-tilde"),
        pytest.param("hi!", id="raw-exclamation"),
        pytest.param("a/b", id="raw-slash"),
        pytest.param("a&b=c", id="raw-ampersand"),
    ],
)
def test_content_that_java_urlencoder_could_not_produce_gets_06(sim: Simulator, raw_content: str) -> None:
    # Given a Content a Java URLEncoder would never output, When submitted, Then 06
    assert result_code(post_submit(sim, submit_body(Content=raw_content))) == "06"
    assert sim.accepted == []


def test_encoder_agrees_with_an_independent_reference() -> None:
    # Given Python's quote_plus made Java-like ('*' kept, '~' encoded), Then the two agree
    text = "【示例】 ~!*'()@#$%^&+=;:,/?[]{}|\\\"<>中文😀"
    assert java_url_encode(text) == quote_plus(text, safe="*").replace("~", "%7E")


@given(st.text(max_size=200))
def test_any_text_encoded_the_java_way_is_accepted_and_decoded_exactly(text: str) -> None:
    # Given any text (surrogates excluded: they are not UTF-8), encoded the Java way
    if not text or any(0xD800 <= ord(c) <= 0xDFFF for c in text):
        return
    body = submit_body(text=text)
    account = Account(OPER_ID, OPER_PASS)
    raw = json.dumps(body, ensure_ascii=False).encode("utf-8")
    # When validated, Then accepted with exactly that text
    outcome = validate_submit(raw, accounts={OPER_ID: account}, sp_number=SP_NUMBER, source_ip="127.0.0.1")
    assert isinstance(outcome, Accepted), outcome
    assert outcome.content == text


@pytest.mark.parametrize(
    ("text", "segments"),
    [
        ("a", 1),
        ("测" * 70, 1),
        ("测" * 71, 2),
        ("测" * 134, 2),
        ("测" * 135, 3),
        ("😀" * 35, 1),
        ("😀" * 36, 2),
    ],
)
def test_segments_count_utf16_units(text: str, segments: int) -> None:
    # Given the carriers' rule (70 units, else 67 per part; an emoji is two units)
    assert count_segments(text) == segments


def test_refusal_reason_never_holds_the_numbers() -> None:
    # Given a bad number, Then the recorded reason names its position, not the number
    account = Account(OPER_ID, OPER_PASS)
    raw = json.dumps(submit_body(DesMobile="13800138000,1234")).encode()
    outcome = validate_submit(raw, accounts={OPER_ID: account}, sp_number=SP_NUMBER, source_ip="127.0.0.1")
    assert isinstance(outcome, Refused)
    assert outcome.result_code == "06"
    assert "1234" not in outcome.reason
