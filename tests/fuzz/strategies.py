"""Inputs for the fuzz tests: near-valid requests and packets, and hostile ones.

Near-valid input is a well-formed request with one or more fields swapped for something
else, so the fuzzer spends its examples past the JSON parser, in the validation and
storage code; hostile input is everything a broken or malicious client can put in a body:
wrong JSON types, huge, empty, emoji, control-character and half-surrogate strings,
numbers in every format, nested junk, duplicate keys, deep nesting, non-UTF-8 and GBK
bytes, form-encoded bodies.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote, quote_plus, urlencode

from hypothesis import strategies as st

from tests.integration.conftest import PUSH_TOKEN

# -- building blocks ------------------------------------------------------------------

# Every kind of character, half surrogates included (a client that cuts a UTF-16 string
# in the middle of an emoji sends "\ud83d" in its JSON).
any_text = st.text(st.characters(codec=None, exclude_categories=()), max_size=40)
control_text = st.text(st.characters(categories=["Cc", "Cf", "Zl", "Zp"]), min_size=1, max_size=10)
half_surrogates = st.text(st.characters(categories=["Cs"]), min_size=1, max_size=3)
emoji = st.sampled_from(["😀", "👍🏽", "👨‍👩‍👧", "🇨🇳", "\U0001f9ff" * 3])
# (character, count): built when drawn, so that the strategy's repr stays short.
huge_text = st.sampled_from([("字", 501), ("a", 10_000), ("短", 70), ("短", 71), ("x", 135)]).map(
    lambda spec: spec[0] * spec[1]
)
numbers_any = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, -1, 1e308, 5e-324, 10**30]),
)
json_scalars = st.one_of(st.none(), st.booleans(), numbers_any, any_text)
json_junk = st.recursive(
    json_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(any_text, inner, max_size=4)),
    max_leaves=12,
)
hostile_text = st.one_of(
    any_text, control_text, half_surrogates, emoji, huge_text, st.just(""), st.just(" \t\n")
)


@st.composite
def mobiles(draw: st.DrawFn) -> str:
    """A valid mainland mobile, bare."""
    second = draw(st.sampled_from("3456789"))
    return f"1{second}{draw(st.integers(0, 10**9 - 1)):09d}"


@st.composite
def written_mobiles(draw: st.DrawFn) -> str:
    """A valid mobile the way people write them: +86, 0086, dashes, full-width digits..."""
    number = draw(mobiles())
    return draw(
        st.sampled_from(
            [
                number,
                f"+86 {number}",
                f"0086{number}",
                f"86{number}",
                f"{number[:3]}-{number[3:7]}-{number[7:]}",
                f"({number[:3]}) {number[3:7]} {number[7:]}",
                number.translate({ord(d): ord(d) + 0xFEE0 for d in "0123456789"}),  # full-width
                f" {number} ",
            ]
        )
    )


junk_numbers = st.one_of(
    st.sampled_from(["12345", "", "1" * 12, "12800138000", "1380013800", "+1 415 555 0100", "١٣٨٠٠١٣٨٠٠٠"]),
    st.from_regex(r"\A[0-9+\- ]{0,16}\Z"),
    hostile_text,
)
mobile_like = st.one_of(written_mobiles(), written_mobiles(), junk_numbers)

valid_contents = st.sampled_from(
    [
        "【测试】您的验证码是123456，5分钟内有效。",
        "【测试】Your code is 4321",
        "【测试】新品上市，全场八折。退订回T",
        "【测试】" + "长" * 100,
    ]
)
contents = st.one_of(
    valid_contents, valid_contents, hostile_text, st.builds(lambda a, b: a + b, valid_contents, emoji)
)

iso_times = st.one_of(
    st.datetimes().map(lambda d: d.isoformat()),
    st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()),
    st.sampled_from(
        [
            "2026-02-30T00:00:00",
            "2026-12-01",
            "2026-12-01T09:30:00+08:00",
            "9999-12-31T23:59:59-14:00",
            "0001-01-01T00:00:00+14:00",
            "20261201093000",
            "tomorrow",
            "",
        ]
    ),
)
durations = st.one_of(
    st.integers(-100, 400_000),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["PT2H", "P4D", "PT59S", "P1DT1S", "PT-1H", "1:00:00", "P99999999999Y", ""]),
)
categories = st.one_of(st.sampled_from(["verification", "transactional", "marketing"]), hostile_text)


def weighted(*choices: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """One of the strategies, each drawn with its weight (shrinking towards the first)."""
    table = [strategy for weight, strategy in choices for _ in range(weight)]
    return st.integers(0, len(table) - 1).flatmap(lambda index: table[index])


def json_or_junk(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly the field's own kind of value; sometimes any JSON at all."""
    return weighted((4, strategy), (1, json_junk))


# -- the send API -----------------------------------------------------------------------

recipient_lists = st.one_of(
    st.lists(mobile_like, max_size=12),
    st.lists(mobile_like, min_size=1, max_size=6).map(",".join),
    st.lists(mobile_like, min_size=1, max_size=6).map("，".join),
    st.lists(st.integers(13_000_000_000, 19_999_999_999), max_size=3),
    st.integers(1000, 1001).map(lambda n: ["x"] * n),
)
personal_messages = st.lists(
    st.fixed_dictionaries(
        {"to": json_or_junk(mobile_like), "content": json_or_junk(contents)},
        optional={"extra": json_junk},
    ),
    max_size=5,
)
send_bodies = st.fixed_dictionaries(
    {},
    optional={
        "to": json_or_junk(recipient_lists),
        "content": json_or_junk(contents),
        "messages": json_or_junk(personal_messages),
        "send_at": json_or_junk(iso_times),
        "extension": json_or_junk(st.from_regex(r"\A[0-9]{0,22}\Z") | hostile_text),
        "reference": json_or_junk(hostile_text),
        "category": json_or_junk(categories),
        "valid_for": json_or_junk(durations),
        "unexpected": json_junk,
    },
)
valid_send_bodies = st.fixed_dictionaries(
    {"to": st.lists(written_mobiles(), min_size=1, max_size=5), "content": valid_contents},
    optional={"reference": st.text(min_size=1, max_size=20), "category": categories},
)


@st.composite
def serialised(draw: st.DrawFn, values: st.SearchStrategy[Any]) -> str:
    """A JSON value written as a client might: plain, ASCII-escaped, with a key twice,
    cut short, buried deep, or with a BOM."""
    value = draw(values)
    text = json.dumps(value, ensure_ascii=draw(st.booleans()))
    how = draw(st.sampled_from(["plain", "plain", "plain", "duplicate", "truncated", "nested", "bom"]))
    if how == "duplicate" and isinstance(value, dict) and value:
        first = next(iter(value))
        text = "{" + json.dumps(first) + ": " + json.dumps(draw(json_junk)) + ", " + text[1:]
    elif how == "truncated" and text:
        text = text[: draw(st.integers(0, len(text) - 1))]
    elif how == "nested":
        depth = draw(st.sampled_from([3, 100, 100_000]))
        text = "[" * depth + text + "]" * depth
    elif how == "bom":
        text = "\ufeff" + text
    return text


def _form(value: Any) -> str:
    if isinstance(value, dict):
        fields = {str(k): json.dumps(v) if not isinstance(v, str) else v for k, v in value.items()}
        return urlencode(fields, errors="surrogatepass")
    return quote(json.dumps(value))


send_body_texts = weighted(
    (2, serialised(valid_send_bodies)),
    (5, serialised(send_bodies)),
    (1, serialised(json_junk)),
    (1, any_text),
    (1, send_bodies.map(_form)),
    # GBK bytes read as if they were Latin-1 text (what a mis-declared charset gives); a
    # lone surrogate (which valid bodies may carry in a field that is not checked first)
    # has no GBK form: "?" stands in for it, as for the push bodies below.
    (1, serialised(valid_send_bodies).map(lambda t: t.encode("gb18030", "replace").decode("latin-1"))),
)
idempotency_keys = st.one_of(
    st.none(),
    st.none(),
    st.sampled_from(["order-1", "order-2", "order-3"]),  # reused: same or different bodies
    st.text(max_size=300),
    st.just("k" * 256),
)
content_types = st.sampled_from(
    ["application/json", "application/json; charset=utf-8", "application/x-www-form-urlencoded", "text/plain"]
)


# -- the push receiver -------------------------------------------------------------------

msg_ids = st.one_of(
    st.from_regex(r"\A[0-9]{1,20}\Z"),
    st.integers(min_value=-(2**64), max_value=2**64),
    hostile_text,
    st.just("9" * 3000),
)
report_statuses = st.one_of(st.sampled_from([0, 2, "0", "2", "DELIVRD", -1, 1.5]), json_scalars)
report_msgs = st.sampled_from(["发送成功", "UNDELIV", "MK:0001"]) | hostile_text
report_times = st.sampled_from(["2026-11-24 12:00:00"]) | hostile_text
# Mostly items the receiver can read, one field at a time gone wrong; sometimes any shape.
reports = st.one_of(
    st.fixed_dictionaries(
        {
            "msgId": json_or_junk(msg_ids),
            "mobile": json_or_junk(mobile_like),
            "status": report_statuses,
        },
        optional={"msg": json_or_junk(report_msgs), "reportTime": json_or_junk(report_times)},
    ),
    st.fixed_dictionaries(
        {"msgId": st.from_regex(r"\A[0-9]{20}\Z"), "mobile": mobiles(), "status": st.sampled_from([0, 2])},
        optional={"msg": report_msgs, "reportTime": report_times},
    ),
    st.fixed_dictionaries(
        {},
        optional={
            "msgId": json_or_junk(msg_ids),
            "mobile": json_or_junk(mobile_like),
            "status": report_statuses,
            "msg": json_or_junk(report_msgs),
            "reportTime": json_or_junk(report_times),
        },
    ),
)
mo_contents = st.one_of(
    hostile_text,
    hostile_text.map(lambda t: quote_plus(t.encode("utf-8", "surrogatepass"))),
    st.just("%C4%E3%BA%C3"),  # GBK, URL-encoded: not UTF-8
    st.sampled_from(["TD", "退订", "T", "STOP"]),
)
mo_times = st.sampled_from(["2026-11-24 12:00:00"]) | hostile_text
inbound_items = st.one_of(
    st.fixed_dictionaries(
        {"SrcMobile": json_or_junk(mobile_like), "Content": json_or_junk(mo_contents)},
        optional={
            "RecvTime": json_or_junk(mo_times),
            "AppendID": json_or_junk(st.from_regex(r"\A[0-9]{0,6}\Z")),
        },
    ),
    st.fixed_dictionaries(
        {"mobile": json_or_junk(mobile_like), "content": json_or_junk(mo_contents)},
        optional={"moTime": mo_times, "appendId": hostile_text},
    ),
    st.fixed_dictionaries(
        {},
        optional={
            "SrcMobile": json_or_junk(mobile_like),
            "Content": json_or_junk(mo_contents),
            "RecvTime": json_or_junk(mo_times),
            "AppendID": hostile_text,
        },
    ),
)
packets = weighted(
    (6, st.lists(reports, min_size=1, max_size=6)),
    (3, st.lists(inbound_items, min_size=1, max_size=4)),
    (1, st.lists(st.one_of(reports, inbound_items), min_size=1, max_size=5)),
    (1, st.one_of(reports, inbound_items)),
    (1, st.lists(json_junk, max_size=4) | json_junk),
    # At the document's limit and one past it.
    (1, st.builds(lambda item, n: [item] * n, reports, st.sampled_from([249, 250, 251]))),
)


@st.composite
def push_bodies(draw: st.DrawFn) -> tuple[bytes, str | None]:
    """(body bytes, Content-Type) as the platform, or something pretending to be it, sends."""
    form = draw(st.sampled_from(["json"] * 10 + ["gbk", "bom", "form", "form", "bytes", "text", "empty"]))
    if form in ("json", "gbk", "bom"):
        text = draw(serialised(packets))
        if form == "gbk":
            return text.encode("gb18030", "replace"), "application/json;charset=GBK"
        encoded = text.encode("utf-8", "surrogatepass")
        return (b"\xef\xbb\xbf" + encoded if form == "bom" else encoded), "application/json;charset=UTF-8"
    if form == "form":
        item = draw(inbound_items)
        fields = {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in item.items()}
        body = "&".join(
            f"{quote_plus(k)}={quote_plus(v.encode('utf-8', 'surrogatepass'))}" for k, v in fields.items()
        )
        return body.encode("ascii"), "application/x-www-form-urlencoded"
    if form == "bytes":
        return draw(st.binary(max_size=200)), draw(st.sampled_from([None, "application/octet-stream"]))
    if form == "text":
        return draw(any_text).encode("utf-8", "surrogatepass"), "text/plain"
    return b"", "application/json"


# Wrong tokens are written with what a URL path segment holds (the route takes any).
push_tokens = weighted(
    (8, st.just(PUSH_TOKEN)),
    (1, st.sampled_from(["wrong", PUSH_TOKEN + "-", "-" + PUSH_TOKEN, PUSH_TOKEN.upper(), PUSH_TOKEN[:-1]])),
    (1, st.from_regex(r"\A[\w\-.~]{1,60}\Z")),
)
