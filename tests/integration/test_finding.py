"""Finding messages and replies: caller-scoped, newest first, paged; bad input is a 400.

The real send API and push receiver handlers against moto (tables from template.yaml).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from tests.conftest import rewire
from tests.integration.conftest import Api, Pusher

A, B = "caller-a", "caller-b"


def send(api: Api, caller: str, to: list[str], **extra: Any) -> str:
    status, reply = api.post({"to": to, "content": "【示例】您好", **extra}, caller=caller)
    assert status == 202, reply
    request_id: str = reply["id"]
    return request_id


def ids(reply: dict[str, Any]) -> list[str]:
    return [m["id"] for m in reply["messages"]]


def test_a_reference_finds_the_callers_own_requests_newest_first_in_pages(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given three requests of caller A with one reference (a second apart), and one of B with it
    made = []
    now = [""]
    rewire(api.module, clock=lambda: datetime.fromisoformat(now[0]))
    for second in range(3):
        now[0] = f"2026-11-24T0{second}:00:00+00:00"
        made.append(send(api, A, ["13800138000"], reference="order-9"))
    theirs = send(api, B, ["13800138000"], reference="order-9")
    # When A searches by the reference, two at a time
    status, first = api.search(reference="order-9", limit="2", caller=A, **{"from": "2026-11-01"})
    assert status == 200
    _, second = api.search(
        reference="order-9", limit="2", cursor=first["next_cursor"], caller=A, **{"from": "2026-11-01"}
    )
    # Then A gets its three, newest first, over two pages, and never B's
    assert ids(first) + ids(second) == made[::-1]
    assert second["next_cursor"] is None
    assert theirs not in ids(first) + ids(second)
    assert first["messages"][0]["reference"] == "order-9"
    assert first["messages"][0]["created_at"] == "2026-11-24T10:00:00+08:00"
    # And B finds only its own
    _, found = api.search(reference="order-9", caller=B, **{"from": "2026-11-01"})
    assert ids(found) == [theirs]


def test_a_number_finds_what_was_sent_to_it_newest_first_within_the_range(api: Api) -> None:
    # Given requests of A to a number (among others), and one of B to the same number
    number = "13912345678"
    mine = [send(api, A, [number, f"1380013{i:04d}"]) for i in range(3)]
    send(api, A, ["13700137000"])
    send(api, B, [number])
    # When A searches by the number (as a client may write it), one a page
    pages, cursor = [], None
    for _ in range(5):
        query = {"to": "+86 139-1234-5678", "limit": "1"} | ({"cursor": cursor} if cursor else {})
        status, page = api.search(caller=A, **query)
        assert status == 200, page
        pages.append(page)
        cursor = page["next_cursor"]
        if cursor is None:
            break
    found = [m for page in pages for m in page["messages"]]
    # Then A gets exactly its three requests to it, newest first, each naming the number
    assert sorted(m["id"] for m in found) == sorted(mine)
    assert [m["created_at"] for m in found] == sorted((m["created_at"] for m in found), reverse=True)
    assert {m["to"] for m in found} == {number}
    # And nothing before the range
    _, none = api.search(caller=A, to=number, until="2020-01-01T00:00:00+08:00", **{"from": "2019-01-01"})
    assert none["messages"] == []


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({}, "reference"),
        ({"reference": "r", "to": "13800138000"}, "reference"),
        ({"to": "12345"}, "to"),
        ({"reference": "r", "limit": "0"}, "limit"),
        ({"reference": "r", "limit": "many"}, "limit"),
        ({"reference": "r", "from": "yesterday"}, "from"),
        ({"reference": "r", "from": "2026-11-02", "until": "2026-11-01"}, "from"),
        ({"reference": "r", "cursor": "!!"}, "cursor"),
        ({"reference": "r", "cursor": "eyJ4IjoxfQ"}, "cursor"),
        ({"reference": "r", "colour": "red"}, "colour"),
    ],
)
def test_a_search_that_cannot_be_made_is_a_400_naming_the_field(
    api: Api, query: dict[str, str], field: str
) -> None:
    status, reply = api.search(**query)
    assert status == 400, reply
    assert field in {d["field"] for d in reply["error"]["details"]}


def test_a_cursor_of_another_callers_search_is_refused(api: Api) -> None:
    for _ in range(2):
        send(api, A, ["13800138000"], reference="shared")
    _, page = api.search(reference="shared", limit="1", caller=A)
    status, reply = api.search(reference="shared", cursor=page["next_cursor"], caller=B)
    assert status == 400
    assert reply["error"]["details"][0]["field"] == "cursor"


def mo(mobile: str, content: str, at: str, ext: str = "") -> list[dict[str, Any]]:
    return [{"SrcMobile": mobile, "Content": content, "RecvTime": at, "AppendID": ext}]


def test_replies_are_found_by_time_and_number_and_scoped_by_extension(api: Api, pusher: Pusher) -> None:
    # Given A sends with extension 7; replies to it, to the bare number, and to extension 8
    send(api, A, ["13800138000"], extension="7")
    pusher.push(mo("13800138000", "好的", "2026-11-24 10:00:00", "7"), content_type="application/json")
    pusher.push(mo("13900139000", "收到", "2026-11-24 11:00:00"), content_type="application/json")
    pusher.push(mo("13700137000", "嗯", "2026-11-24 12:00:00", "8"), content_type="application/json")
    window = {"from": "2026-11-24T00:00:00+08:00", "until": "2026-11-25T00:00:00+08:00"}
    # When A and B list the day's replies
    _, mine = api.inbound(caller=A, **window)
    _, theirs = api.inbound(caller=B, **window)
    # Then A sees its extension's reply and the bare number's, newest first; B the bare one
    assert [r["content"] for r in mine["inbound"]] == ["收到", "好的"]
    assert [r["content"] for r in theirs["inbound"]] == ["收到"]
    reply = mine["inbound"][1]
    assert (reply["received_at"], reply["received_at_raw"], reply["append_id"]) == (
        "2026-11-24T10:00:00+08:00",
        "2026-11-24 10:00:00",
        "7",
    )
    # And one number's replies, paged one at a time
    _, one = api.inbound(caller=A, mobile="13800138000", limit="1", **window)
    assert [r["mobile"] for r in one["inbound"]] == ["13800138000"]
    # And a range of more than 31 days is refused, naming it
    status, refused = api.inbound(caller=A, **{"from": "2026-01-01", "until": "2026-11-01"})
    assert (status, refused["error"]["details"][0]["field"]) == (400, "from")
