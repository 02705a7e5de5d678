"""How a report is kept on its MsgId's item: small, and read back as it came."""

from __future__ import annotations

import pytest

from smsgw.adapters.links import pack_report, unpack_report
from smsgw.domain.reports import StoredReport


@pytest.mark.parametrize(
    ("report_time", "stored"),
    [
        ("2026-11-24 12:00:05", "0|261124120005|发送成功"),  # the document's form: packed
        ("20261124120005", "0|~20261124120005|发送成功"),  # another form: kept as it came
        ("", "0|~|发送成功"),
        ("12:00|05", "0|~12:00 05|发送成功"),  # the separator cannot sneak in
    ],
)
def test_a_report_is_packed_and_read_back(report_time: str, stored: str) -> None:
    report = StoredReport("13800138000", "0", "发送成功", report_time)
    assert pack_report(report) == stored
    back = unpack_report("13800138000", stored)
    assert (back.status, back.msg) == ("0", "发送成功")
    assert back.report_time == report_time.replace("|", " ")


def test_the_carriers_words_may_hold_the_separator() -> None:
    report = StoredReport("13800138000", "2", "MK:0001|retry", "2026-11-24 12:00:05")
    assert unpack_report("13800138000", pack_report(report)).msg == "MK:0001|retry"


def test_the_report_time_is_beijing_time() -> None:
    assert (
        StoredReport("13800138000", "0", "", "2026-11-24 12:00:05").reported_at_utc == "2026-11-24T04:00:05Z"
    )
    assert StoredReport("13800138000", "0", "", "soon").reported_at_utc is None
