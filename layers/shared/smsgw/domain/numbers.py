"""Chinese mobile numbers: normalisation, validation and masking.

A mobile number is 11 digits starting with 1 and a second digit 3-9. Clients write them
in many ways (``+86 139-0013-9000``, ``0086 13800138000``, full-width digits); the
provider accepts only the bare 11 digits.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

_MOBILE = re.compile(r"1[3-9][0-9]{9}")
# Spaces, hyphens and dashes of every kind, brackets and dots that people put in numbers.
_SEPARATORS = re.compile(r"[\s\-\u2010-\u2015\u2212()（）.]")
# Anything that looks like a mainland mobile inside a longer text (for log masking).
_MOBILE_IN_TEXT = re.compile(r"(?<![0-9])(?:\+?86)?(1[3-9][0-9])([0-9]{4})([0-9]{4})(?![0-9])")

INVALID_MOBILE = "invalid_mobile"


def normalise_mobile(raw: str) -> str | None:
    """Return the bare 11-digit number, or None when ``raw`` is not a Chinese mobile."""
    text = _SEPARATORS.sub("", unicodedata.normalize("NFKC", raw))
    if text.startswith("+86"):
        text = text[3:]
    elif text.startswith("0086"):
        text = text[4:]
    elif len(text) == 13 and text.startswith("86"):
        text = text[2:]
    return text if _MOBILE.fullmatch(text) else None


def is_mobile(value: str) -> bool:
    """True for a bare, already normalised 11-digit mobile number."""
    return _MOBILE.fullmatch(value) is not None


def split_recipients(value: str | Iterable[str]) -> list[str]:
    """Accept a list or a comma-separated string (ASCII or full-width commas)."""
    if isinstance(value, str):
        return [part for part in unicodedata.normalize("NFKC", value).split(",") if part.strip()]
    return list(value)


@dataclass(frozen=True)
class Rejection:
    to: str
    reason: str = INVALID_MOBILE
    detail: str | None = None

    def as_dict(self) -> dict[str, str]:
        out = {"to": self.to, "reason": self.reason}
        if self.detail:
            out["detail"] = self.detail
        return out


@dataclass(frozen=True)
class RecipientList:
    """Normalised, de-duplicated numbers in their first-seen order, and what was refused."""

    valid: tuple[str, ...]
    rejected: tuple[Rejection, ...]


def normalise_recipients(raw: Iterable[str]) -> RecipientList:
    seen: dict[str, None] = {}
    rejected: list[Rejection] = []
    for item in raw:
        number = normalise_mobile(item)
        if number is None:
            rejected.append(Rejection(to=item))
        else:
            seen.setdefault(number, None)
    return RecipientList(valid=tuple(seen), rejected=tuple(rejected))


def mask_mobile(number: str) -> str:
    """``13800138000`` -> ``138****8000``; anything shorter is masked whole."""
    return f"{number[:3]}****{number[-4:]}" if len(number) >= 11 else "*" * len(number)


def mask_mobiles_in_text(text: str) -> str:
    """Mask every mobile-looking run of digits in free text (defence in depth for logs)."""
    return _MOBILE_IN_TEXT.sub(lambda m: f"{m.group(1)}****{m.group(3)}", text)
