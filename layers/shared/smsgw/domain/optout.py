"""Opt-out keywords: a reply such as ``TD`` or ``退订`` puts the number on the opt-out list.

Chinese carriers require marketing messages to carry an opt-out hint (``退订回T``) and
senders to honour the reply. Matching is on the whole message, trimmed of spaces and
punctuation, case-insensitive; the keywords are configurable.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

DEFAULT_KEYWORDS = ("T", "TD", "R", "N", "退订", "取消", "0000", "STOP")
_TRIM = " \t\r\n\u3000.,;:!?。，；：！？、'\"“”‘’()（）[]【】"


def _canonical(text: str) -> str:
    return unicodedata.normalize("NFKC", text).strip(_TRIM).casefold()


class OptOutKeywords:
    def __init__(self, keywords: Iterable[str] = DEFAULT_KEYWORDS) -> None:
        self._keywords = frozenset(_canonical(k) for k in keywords if _canonical(k))

    @classmethod
    def parse(cls, setting: str) -> OptOutKeywords:
        """From a comma-separated setting; empty means the defaults."""
        words = [w for w in setting.split(",") if w.strip()]
        return cls(words or DEFAULT_KEYWORDS)

    def matches(self, content: str) -> str | None:
        """The keyword the message is, or None."""
        canonical = _canonical(content)
        return canonical if canonical in self._keywords else None
