"""How many SMS a text costs, counted the way Chinese carriers count it.

One SMS holds 70 characters, Chinese and Latin alike. A longer text is sent as a long
SMS whose parts carry 67 characters each (the rest of each part is the long-SMS header).
Characters are counted in UTF-16 code units: an emoji outside the BMP takes two.
"""

from __future__ import annotations

SINGLE_SMS_UNITS = 70
MULTIPART_SMS_UNITS = 67
# The provider's document: "短信内容最长不允许超过500个字". Counted in UTF-16 units to be safe.
MAX_CONTENT_UNITS = 500


def utf16_units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def count_segments(text: str) -> int:
    units = utf16_units(text)
    if units == 0:
        return 0
    if units <= SINGLE_SMS_UNITS:
        return 1
    return -(-units // MULTIPART_SMS_UNITS)
