"""The submitJson protocol, checked against the provider's document (spec/ section 3.1)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from urllib.parse import unquote_plus

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smsgw.domain.model import SubmitVerdict
from smsgw.provider.guodu import (
    RESULT_CODES,
    Credentials,
    ProtocolError,
    ReplyError,
    SubmitRequest,
    check_append_id,
    classify,
    format_send_time,
    java_urlencode,
    parse_reply,
)

CREDS = Credentials("acct", "not-a-real-password")


def test_content_encoding_matches_the_documents_sample() -> None:
    # The document: Content "%E6%B5%8B%E8%AF%95%E6%B6%88%E6%81%AF1" is 测试消息1, and its
    # Java sample URLEncoder.encode("中文短信abc", "UTF-8").
    assert java_urlencode("测试消息1") == "%E6%B5%8B%E8%AF%95%E6%B6%88%E6%81%AF1"
    assert java_urlencode("中文短信abc") == "%E4%B8%AD%E6%96%87%E7%9F%AD%E4%BF%A1abc"


@pytest.mark.parametrize(
    ("text", "java"),
    [
        ("a b", "a+b"),  # Java turns a space into '+'
        ("~", "%7E"),  # Java encodes '~' (Python's quote would not)
        ("*-._", "*-._"),  # Java's unreserved set
        ("!'()", "%21%27%28%29"),
        ("【示例】", "%E3%80%90%E7%A4%BA%E4%BE%8B%E3%80%91"),
        ("😀", "%F0%9F%98%80"),
        ("50%+", "50%25%2B"),
    ],
)
def test_content_encoding_is_javas_urlencoder(text: str, java: str) -> None:
    assert java_urlencode(text) == java


@given(st.text(min_size=1))
def test_encoded_content_decodes_to_the_original_text(text: str) -> None:
    # Any text (Chinese, emoji, spaces, '+', '%') survives the round trip the platform makes
    encoded = java_urlencode(text)
    assert encoded.isascii()
    assert unquote_plus(encoded, encoding="utf-8", errors="strict") == text


def test_request_body_is_utf8_json_with_the_documents_fields() -> None:
    # Given a submit to two numbers with a send time and an extension
    request = SubmitRequest(("13800138000", "13900139000"), "【示例】您好 world", "20261201093000", "01")
    # When its body is built
    body = json.loads(request.body(CREDS).decode("utf-8"))
    # Then every field has the document's spelling, every value is a string
    assert body == {
        "OperID": "acct",
        "OperPass": "not-a-real-password",
        "SendTime": "20261201093000",
        "AppendID": "01",
        "DesMobile": "13800138000,13900139000",
        "Content": java_urlencode("【示例】您好 world"),
    }
    assert unquote_plus(body["Content"]) == "【示例】您好 world"


def test_optional_fields_are_sent_empty_for_an_immediate_send() -> None:
    body = json.loads(SubmitRequest(("13800138000",), "hi").body(CREDS))
    assert body["SendTime"] == ""
    assert body["AppendID"] == ""


def test_the_password_never_shows_in_a_repr() -> None:
    assert "not-a-real-password" not in repr(CREDS)


def test_at_most_200_numbers_per_submit() -> None:
    numbers = tuple(f"138{i:08d}" for i in range(201))
    assert len(SubmitRequest(numbers[:200], "x").mobiles) == 200
    with pytest.raises(ProtocolError, match="200"):
        SubmitRequest(numbers, "x")
    with pytest.raises(ProtocolError):
        SubmitRequest((), "x")
    with pytest.raises(ProtocolError):
        SubmitRequest(("13800138000",), "")


@pytest.mark.parametrize(
    ("moment", "send_time"),
    [
        (datetime(2026, 12, 1, 9, 30, tzinfo=timezone(timedelta(hours=8))), "20261201093000"),
        (datetime(2026, 12, 1, 1, 30, tzinfo=UTC), "20261201093000"),
        (datetime(2026, 11, 30, 20, 30, tzinfo=timezone(timedelta(hours=-5))), "20261201093000"),
        (datetime(2026, 12, 1, 9, 30), "20261201093000"),  # naive: Beijing time
        (datetime(2026, 12, 31, 16, 0, 1, tzinfo=UTC), "20270101000001"),  # crosses the year
    ],
)
def test_send_time_is_beijing_time(moment: datetime, send_time: str) -> None:
    assert format_send_time(moment) == send_time


def test_append_id_is_digits_within_the_20_digit_sender_limit() -> None:
    assert check_append_id("0000") == "0000"
    assert check_append_id("") == ""
    # spnumber 106900 + account id 13 = 8 digits: 12 left for the extension
    assert check_append_id("1" * 12, "10690013") == "1" * 12
    with pytest.raises(ProtocolError, match="at most 12"):
        check_append_id("1" * 13, "10690013")
    with pytest.raises(ProtocolError, match="digits"):
        check_append_id("12a")
    with pytest.raises(ProtocolError, match="digits"):
        check_append_id("１２")  # full-width digits are not digits to the platform


@pytest.mark.parametrize(
    ("code", "outcome"),
    [
        ("00", SubmitVerdict.ACCEPTED),
        ("01", SubmitVerdict.ACCEPTED),
        ("03", SubmitVerdict.ACCEPTED),
        ("02", SubmitVerdict.ACCOUNT),
        ("04", SubmitVerdict.ACCOUNT),
        ("05", SubmitVerdict.ACCOUNT),
        ("11", SubmitVerdict.ACCOUNT),
        ("06", SubmitVerdict.REJECTED),
        ("07", SubmitVerdict.REJECTED),
        ("08", SubmitVerdict.REJECTED),
        ("09", SubmitVerdict.REJECTED),
        ("10", SubmitVerdict.REJECTED),
        ("-1", SubmitVerdict.TRANSIENT),
        ("99", SubmitVerdict.UNKNOWN),
        ("", SubmitVerdict.UNKNOWN),
    ],
)
def test_every_result_code_has_one_treatment(code: str, outcome: SubmitVerdict) -> None:
    assert classify(code).verdict is outcome


def test_the_table_holds_every_code_of_the_document() -> None:
    documented = {"00", "01", "03", "02", "04", "05", "06", "07", "08", "09", "10", "-1"}
    assert documented <= set(RESULT_CODES)


@pytest.mark.parametrize(
    ("body", "code", "msg_id"),
    [
        (b'{"ResultCode":"00","MsgId":"26112412000012345"}', "00", "26112412000012345"),
        (b'{"ResultCode":"06"}', "06", None),
        (b'\xef\xbb\xbf{"ResultCode":"03","MsgId":"1"}', "03", "1"),  # a BOM
        (b'{"ResultCode":0,"MsgId":12345}', "00", "12345"),  # numbers instead of strings
        (b'{"ResultCode":-1}', "-1", None),
        (b'{"ResultCode":"00","MsgId":""}', "00", None),
    ],
)
def test_replies_are_read_tolerantly(body: bytes, code: str, msg_id: str | None) -> None:
    reply = parse_reply(body)
    assert (reply.result_code, reply.msg_id) == (code, msg_id)


@pytest.mark.parametrize(
    "body", [b"", b"<html>502</html>", b"[]", b'{"Result":"00"}', b"\xff\xfe", b'{"ResultCode":null}']
)
def test_a_reply_that_is_not_a_submit_reply_is_an_error(body: bytes) -> None:
    with pytest.raises(ReplyError):
        parse_reply(body)
