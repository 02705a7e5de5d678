"""Segment counting: 70 characters for one SMS, 67 a part beyond, in UTF-16 units."""

from __future__ import annotations

import pytest

from smsgw.domain.segments import count_segments, utf16_units


@pytest.mark.parametrize(
    ("length", "segments"),
    [(0, 0), (1, 1), (70, 1), (71, 2), (134, 2), (135, 3), (201, 3), (202, 4), (500, 8)],
)
def test_chinese_and_latin_count_alike(length: int, segments: int) -> None:
    assert count_segments("短" * length) == segments
    assert count_segments("a" * length) == segments


def test_signature_brackets_count_toward_the_length() -> None:
    # Given 66 characters of text and a 4-character signature 【示例】
    text = "【示例】" + "好" * 66
    # Then it is exactly 70: one SMS; one more character makes it two
    assert utf16_units(text) == 70
    assert count_segments(text) == 1
    assert count_segments(text + "。") == 2


def test_an_emoji_outside_the_bmp_takes_two_units() -> None:
    # 69 characters plus one emoji: 71 UTF-16 units, so a long SMS of two parts
    text = "好" * 69 + "😀"
    assert len(text) == 70
    assert utf16_units(text) == 71
    assert count_segments(text) == 2
