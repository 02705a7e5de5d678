"""Chinese mobile numbers: what clients write, what the provider gets."""

from __future__ import annotations

import functools
import io
import json
import logging
import sys
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from smsgw.domain.numbers import (
    COUNTRY_PREFIXES,
    fold,
    mask_mobile,
    mask_mobiles_in_text,
    normalise_mobile,
    normalise_recipients,
    split_recipients,
)
from smsgw.observability import MaskingFormatter


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("13800138000", "13800138000"),
        ("+8613800138000", "13800138000"),
        ("+86 138 0013 8000", "13800138000"),
        ("+86 139-0013-9000", "13900139000"),
        ("008613800138000", "13800138000"),
        ("0086 138-0013-8000", "13800138000"),
        ("8613800138000", "13800138000"),
        ("(138) 0013 8000", "13800138000"),
        ("１３８００１３８０００", "13800138000"),  # full-width digits from a Chinese IME
        ("+８６ １９９—１２３４—５６７８", "19912345678"),  # full-width plus and an em dash
        (" 17012345678 ", "17012345678"),
    ],
)
def test_written_forms_normalise_to_eleven_digits(written: str, expected: str) -> None:
    # Given a number as a person might type it / Then the provider gets 11 bare digits
    assert normalise_mobile(written) == expected


@pytest.mark.parametrize(
    "junk",
    [
        "12345",
        "",
        "1380013800",  # 10 digits
        "138001380000",  # 12 digits
        "12800138000",  # second digit 2: not a mobile prefix
        "02112345678",  # a Shanghai landline
        "+1 415 555 0100",  # not Chinese
        "+85291234567",  # Hong Kong
        "1380013800a",
        "١٣٨٠٠١٣٨٠٠٠",  # Arabic-Indic digits are digits to Python, not to the provider
        "8613800138000x",
    ],
)
def test_junk_is_not_a_mobile(junk: str) -> None:
    assert normalise_mobile(junk) is None


def test_recipients_are_deduplicated_in_order_and_junk_is_listed() -> None:
    # Given a list with duplicates in several spellings and two junk entries
    raw = ["+86 139-0013-9000", "13800138000", "13900139000", "12345", "0086 13800138000", "abc"]
    # When it is normalised
    result = normalise_recipients(raw)
    # Then each number appears once, first-seen order, and the junk is reported as given
    assert result.valid == ("13900139000", "13800138000")
    assert [(r.to, r.reason) for r in result.rejected] == [
        ("12345", "invalid_mobile"),
        ("abc", "invalid_mobile"),
    ]


def test_comma_separated_strings_split_on_ascii_and_full_width_commas() -> None:
    assert split_recipients("13800138000, 13900139000，13700137000,,") == [
        "13800138000",
        " 13900139000",
        "13700137000",
    ]
    assert split_recipients(["13800138000"]) == ["13800138000"]


def test_masking_keeps_prefix_and_last_four() -> None:
    assert mask_mobile("13800138000") == "138****8000"
    assert mask_mobile("123") == "***"


def test_masking_in_free_text_hides_every_number_but_not_longer_ids() -> None:
    text = "failed for 13800138000 and +8613900139000; msgId 261124138001380001234 at 1764000000000"
    masked = mask_mobiles_in_text(text)
    assert masked.startswith("failed for 138****8000 and 139****9000;")
    # A 21-digit MsgId that contains a mobile-like run is not a phone number: left alone.
    assert "261124138001380001234" in masked


@given(st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True))
def test_any_valid_mobile_survives_every_prefix_form(number: str) -> None:
    for form in (
        number,
        f"+86{number}",
        f"0086{number}",
        f"86{number}",
        f"+86 {number[:3]}-{number[3:7]}-{number[7:]}",
    ):
        assert normalise_mobile(form) == number


# ---------------------------------------------------------------- masking by normalisation


@functools.cache
def glyphs() -> dict[str, tuple[str, ...]]:
    """Every character, by what the normaliser reads in it (``fold``): a digit, "+", a run
    of digits (``⒒`` is "11."), or nothing at all (a separator: spaces, dashes, brackets...)."""
    found: dict[str, list[str]] = {}
    for code in range(sys.maxunicode + 1):
        if 0xD800 <= code <= 0xDFFF:
            continue
        char = chr(code)
        read = fold(char)
        if read == "" or (len(read) <= 3 and all(c in "0123456789+" for c in read)):
            found.setdefault(read, []).append(char)
    return {read: tuple(chars) for read, chars in found.items()}


@st.composite
def written_mobiles(draw: st.DrawFn) -> tuple[str, str]:
    """(a number, a spelling of it that ``normalise_mobile`` accepts), drawn from the
    normaliser's own reading: its country prefixes, every character it reads as a digit or
    "+" (alone or in runs), and its separators anywhere."""
    number = draw(st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True))
    plain = draw(st.sampled_from(("", *COUNTRY_PREFIXES))) + number
    table = glyphs()
    separators = st.lists(st.sampled_from(table[""]), max_size=2).map("".join)
    written, at = [draw(separators)], 0
    while at < len(plain):
        runs = [n for n in (3, 2, 1) if plain[at : at + n] in table and at + n <= len(plain)]
        size = draw(st.sampled_from(runs))
        written += [draw(st.sampled_from(table[plain[at : at + size]])), draw(separators)]
        at += size
    text = "".join(written)
    assume(normalise_mobile(text) == number)
    return number, text


# Text around a number in a log line: no digits in it, so only the number can be found.
CONTEXTS = st.sampled_from(["", "to=", "failed for ", '{"to": "', "号码：", "x", "(", ", "])


def shows(number: str, text: str) -> bool:
    """True when ``text`` holds ``number`` in any form the normaliser would accept."""
    return number in fold(text)


@pytest.mark.parametrize(
    "written",
    [
        "008613800138000",
        "+86 138 0013 8000",
        "138-0013-8000",
        "１３８００１３８０００",
        "+8613800138000",
        "86 138 0013 8000",
        "(138) 0013-8000",
        "138.0013.8000",
        "＋８６－１３８－００１３－８０００",
        "1 3 8 0 0 1 3 8 0 0 0",
    ],
)
def test_every_form_the_gateway_accepts_is_masked_in_logs(written: str) -> None:
    # Given a number in a form the gateway accepts, inside a log text
    assert normalise_mobile(written) == "13800138000"
    # When it is masked / Then the number is gone, and the masked form is the usual one
    masked = mask_mobiles_in_text(f"sending to {written} now")
    assert not shows("13800138000", masked), masked
    assert "138****8000" in masked


def test_a_number_followed_or_led_by_a_separated_digit_is_still_masked() -> None:
    # "2 13800138000" is a count and a number, not a 12-digit id
    assert mask_mobiles_in_text("sent 2 13800138000 3") == "sent 2 138****8000 3"
    # but digits grouped into a longer id are no phone number
    assert mask_mobiles_in_text("id 2611 2413 8001 3800 01234") == "id 2611 2413 8001 3800 01234"


@given(written_mobiles(), CONTEXTS, CONTEXTS)
def test_any_spelling_the_normaliser_accepts_is_masked(
    mobile: tuple[str, str], before: str, after: str
) -> None:
    # Given a number written in any form the normaliser accepts, in a text
    number, written = mobile
    # When the text is masked
    masked = mask_mobiles_in_text(before + written + after)
    # Then no form of the number is left, and its masked form is there
    assert not shows(number, masked), (written, masked)
    assert f"{number[:3]}****{number[-4:]}" in masked


def _log_line(message: str, **extra: Any) -> str:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(MaskingFormatter())
    log = logging.getLogger(f"masking-test-{id(stream)}")
    log.addHandler(handler)
    log.propagate = False
    try:
        raise ValueError(f"no route for {message}")
    except ValueError:
        log.exception(message, extra=extra)
    log.removeHandler(handler)
    return stream.getvalue()


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (k, *_strings(v))]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return [str(value)]


@given(written_mobiles())
def test_a_log_line_holds_no_form_of_a_number_raw_or_decoded(mobile: tuple[str, str]) -> None:
    # Given a number in any accepted form in a log message, its extra fields and an exception
    number, written = mobile
    # When the gateway's formatter writes the line
    line = _log_line(f"failed for {written}", to=written, numbers=[written], nested={"m": written})
    # Then neither the line as written nor any value a log viewer decodes from it shows the number
    assert not shows(number, line), line
    for value in _strings(json.loads(line)):
        assert not shows(number, value), (written, value)
