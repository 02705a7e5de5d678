"""Chinese mobile numbers: what clients write, what the provider gets."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smsgw.domain.numbers import (
    mask_mobile,
    mask_mobiles_in_text,
    normalise_mobile,
    normalise_recipients,
    split_recipients,
)


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
