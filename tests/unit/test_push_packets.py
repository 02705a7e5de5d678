"""Reading what the platform pushes: report packets, MO packets, and junk."""

from __future__ import annotations

import json

import pytest

from smsgw.domain.optout import OptOutKeywords
from smsgw.provider.push import PacketError, PacketKind, TooManyItems, decode_content, parse_packet


def test_the_documents_report_sample_is_read() -> None:
    # Document section 3.2, with the masked number filled in
    body = (
        '[{"msg":"发送成功","mobile":"13300000000","msgId":"12345678",'
        '"reportTime":"2022-12-12 12:00:00","status":0}]'
    )
    packet = parse_packet(body.encode())
    assert packet.kind is PacketKind.REPORTS
    (report,) = packet.reports
    assert (report.msg_id, report.mobile, report.status, report.delivered) == (
        "12345678",
        "13300000000",
        "0",
        True,
    )
    assert (report.msg, report.report_time) == ("发送成功", "2022-12-12 12:00:00")


def test_status_as_a_string_and_numbers_as_numbers_are_tolerated() -> None:
    body = json.dumps([{"msgId": 12345678, "mobile": "+8613300000000", "status": "2", "msg": "UNDELIV"}])
    (report,) = parse_packet(body.encode()).reports
    assert (report.msg_id, report.mobile, report.status, report.delivered) == (
        "12345678",
        "13300000000",
        "2",
        False,
    )


def test_unreadable_items_are_counted_not_fatal() -> None:
    body = json.dumps(
        [{"msgId": "1", "mobile": "13300000000", "status": 0}, {"msgId": "", "mobile": "x", "status": 0}]
    )
    packet = parse_packet(body.encode())
    assert (len(packet.reports), packet.skipped) == (1, 1)


@pytest.mark.parametrize(
    "body",
    [b"", b"  ", b"{not json", b"[]", b'"x"', b"[1]", b'[{"a": 1}]', b"\xff\xfe\xfa"],
)
def test_what_is_not_a_packet_is_refused(body: bytes) -> None:
    with pytest.raises(PacketError):
        parse_packet(body)


def test_reports_and_mo_never_share_a_packet() -> None:
    body = json.dumps(
        [{"msgId": "1", "mobile": "13300000000", "status": 0}, {"SrcMobile": "13300000000", "Content": "hi"}]
    )
    with pytest.raises(PacketError, match="never share"):
        parse_packet(body.encode())


def test_250_items_is_the_most_a_packet_holds() -> None:
    items = [{"msgId": "1", "mobile": "13300000000", "status": 0}] * 250
    assert len(parse_packet(json.dumps(items).encode()).reports) == 250
    with pytest.raises(TooManyItems):
        parse_packet(json.dumps([*items, items[0]]).encode())


def test_a_gbk_body_is_read() -> None:
    body = json.dumps([{"SrcMobile": "13300000000", "Content": "退订"}], ensure_ascii=False).encode("gbk")
    (message,) = parse_packet(body).inbound
    assert message.content == "退订"


@pytest.mark.parametrize(
    ("raw", "encoded", "text"),
    [
        ("%E9%80%80%E8%AE%A2", False, "退订"),
        ("+td+", True, " td "),  # the older interface's Content is always URL-encoded
        ("1+1", False, "1+1"),  # without an escape, plain text keeps its '+'
        ("TD", False, "TD"),
        ("100%", False, "100%"),
        ("%E9%80", False, "%E9%80"),  # broken UTF-8: kept as it came
    ],
)
def test_mo_content_is_decoded_only_when_it_is_url_encoding(raw: str, encoded: bool, text: str) -> None:
    assert decode_content(raw, encoded=encoded) == text


@pytest.mark.parametrize(
    "reply", ["T", "td", " TD ", "ＴＤ", "退订", "退订。", "取消", "0000", "stop", "R", "n"]
)
def test_opt_out_keywords_match_the_whole_reply(reply: str) -> None:
    assert OptOutKeywords().matches(reply)


@pytest.mark.parametrize("reply", ["TD please", "请不要退订", "好的", "", "00000", "STOPP"])
def test_other_replies_are_not_opt_outs(reply: str) -> None:
    assert OptOutKeywords().matches(reply) is None


def test_keywords_are_configurable() -> None:
    keywords = OptOutKeywords.parse("QUIT, 不要再发")
    assert keywords.matches("quit") == "quit"
    assert keywords.matches("T") is None
    assert OptOutKeywords.parse("").matches("TD") == "td"


def test_a_body_nested_beyond_recursion_is_a_malformed_packet() -> None:
    with pytest.raises(PacketError, match="nested too deeply"):
        parse_packet(b"[" * 100_000 + b"]" * 100_000)


def test_half_a_character_is_a_malformed_packet() -> None:
    with pytest.raises(PacketError, match="surrogate"):
        parse_packet(b'[{"SrcMobile": "13000000000", "Content": "\\ud800"}]')


def test_fields_beyond_what_can_be_stored_are_cut_or_the_item_skipped() -> None:
    items = [
        {"msgId": "1" * 3000, "mobile": "13300000000", "status": 0},  # no MsgId is that long
        {"msgId": "7", "mobile": "13300000001", "status": 2, "msg": "x" * 500_000, "reportTime": "t" * 2000},
    ]
    packet = parse_packet(json.dumps(items).encode())
    (report,) = packet.reports
    assert packet.skipped == 1
    assert (len(report.msg), len(report.report_time)) == (256, 32)


GOOD_REPORT = {
    "msg": "发送成功",
    "mobile": "13300000000",
    "msgId": "1",
    "reportTime": "2022-12-12 12:00:00",
    "status": 0,
}


@pytest.mark.parametrize(
    "bad",
    [
        {"msgId": None},
        {"status": None},
        {"msgId": None, "status": None},
        {"msgId": {"id": 1}},
        {"msgId": None, "status": None, "reportTime": None},
    ],
    ids=["null msgId", "null status", "both null", "msgId an object", "all report keys null"],
)
def test_one_unreadable_report_is_skipped_not_the_whole_packet(bad: dict[str, object]) -> None:
    # Refusing the packet (400) would lose the good reports, and the resend fails the same way.
    items = [GOOD_REPORT, GOOD_REPORT | bad, GOOD_REPORT | {"msgId": "2"}]
    packet = parse_packet(json.dumps(items).encode())
    assert packet.kind is PacketKind.REPORTS
    assert ([r.msg_id for r in packet.reports], packet.skipped) == (["1", "2"], 1)


def test_a_report_without_its_msg_id_or_status_is_never_read_as_an_inbound_message() -> None:
    # "msg" is also an MO content key: read as MO, this would be an inbound "UNDELIV".
    body = b'[{"msg":"UNDELIV","mobile":"13800138000","msgId":null,"status":2}]'
    packet = parse_packet(body)
    assert packet.kind is PacketKind.REPORTS
    assert (packet.reports, packet.inbound, packet.skipped) == ((), (), 1)


def test_a_report_time_alone_makes_an_item_look_like_a_report() -> None:
    body = json.dumps([{"msg": "TD", "mobile": "13800138000", "reportTime": "2022-12-12 12:00:00"}])
    packet = parse_packet(body.encode())
    assert (packet.kind, packet.inbound, packet.skipped) == (PacketKind.REPORTS, (), 1)


def test_a_null_report_among_mo_messages_still_means_a_mixed_packet() -> None:
    body = json.dumps(
        [{"SrcMobile": "13300000000", "Content": "hi"}, {"msgId": None, "status": None, "mobile": "133"}]
    )
    with pytest.raises(PacketError, match="never share"):
        parse_packet(body.encode())


def test_an_mo_with_an_id_of_its_own_is_still_an_mo() -> None:
    # A MsgId alone does not make a report: an inbound message may carry an id too
    body = json.dumps([{"SrcMobile": "13300000000", "Content": "TD", "msgId": "mo-1"}])
    packet = parse_packet(body.encode())
    assert (packet.kind, [m.content for m in packet.inbound]) == (PacketKind.INBOUND, ["TD"])


@pytest.mark.parametrize("msg_id", ["AB.12:34#5", "a/b+c=d", "{}~!@$%^&*()", "x" * 64, " 12345678 "])
def test_a_msg_id_may_be_any_printable_ascii_up_to_64_characters(msg_id: str) -> None:
    # The document gives no MsgId format; the submit reply takes any MsgId, so must we.
    body = json.dumps([GOOD_REPORT | {"msgId": msg_id}])
    (report,) = parse_packet(body.encode()).reports
    assert report.msg_id == msg_id.strip()


@pytest.mark.parametrize("msg_id", ["a b", "a\tb", "消息1", "é1", "x" * 65, "", "\x7f"])
def test_a_msg_id_with_whitespace_non_ascii_or_over_64_characters_is_skipped(msg_id: str) -> None:
    packet = parse_packet(json.dumps([GOOD_REPORT | {"msgId": msg_id}]).encode())
    assert (packet.kind, packet.reports, packet.skipped) == (PacketKind.REPORTS, (), 1)


def test_the_documents_sample_body_with_its_trailing_semicolon_is_read() -> None:
    # Document section 3.2 shows the body as written in code, ending "];".
    body = """[
        {"msg": "发送成功", "mobile": "13300000000", "msgId": "12345678",
         "reportTime": "2022-12-12 12:00:00", "status": 0}
    ];
"""
    (report,) = parse_packet(body.encode()).reports
    assert (report.msg_id, report.status) == ("12345678", "0")


@pytest.mark.parametrize(
    "body", [b'[{"msgId": "1", "mobile": "13300000000", "status": 0}];;', b";", b"; [1]"]
)
def test_only_one_trailing_semicolon_is_forgiven(body: bytes) -> None:
    with pytest.raises(PacketError):
        parse_packet(body)
