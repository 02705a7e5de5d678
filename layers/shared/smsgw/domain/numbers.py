"""Chinese mobile numbers: normalisation, validation and masking.

A mobile number is 11 digits starting with 1 and a second digit 3-9. Clients write them
in many ways (``+86 139-0013-9000``, ``0086 13800138000``, full-width digits); the
provider accepts only the bare 11 digits.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

_MOBILE = re.compile(r"1[3-9][0-9]{9}")
# Spaces, hyphens and dashes of every kind, brackets and dots that people put in numbers.
_SEPARATORS = re.compile(r"[\s\-\u2010-\u2015\u2212()（）.]")
# The country prefixes the normaliser takes off (a bare "86" only before exactly 11 digits).
COUNTRY_PREFIXES = ("+86", "0086", "86")

INVALID_MOBILE = "invalid_mobile"


def fold(raw: str) -> str:
    """What the normaliser reads in ``raw``: its NFKC form (full-width digits and signs
    become ASCII), with every separator taken out."""
    return _SEPARATORS.sub("", unicodedata.normalize("NFKC", raw))


def normalise_mobile(raw: str) -> str | None:
    """Return the bare 11-digit number, or None when ``raw`` is not a Chinese mobile."""
    text = fold(raw)
    plus, zeros, bare = COUNTRY_PREFIXES
    if text.startswith(plus):
        text = text[len(plus) :]
    elif text.startswith(zeros):
        text = text[len(zeros) :]
    elif len(text) == 13 and text.startswith(bare):
        text = text[len(bare) :]
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


# The masker reads text as the normaliser does, one character at a time: each character
# becomes its NFKC form in which a digit or "+" stays itself, a separator becomes " " and
# anything else "x". A mobile is then 11 digits (after an optional country prefix) with
# separators anywhere between them, not glued to further digits: a longer number, such as
# a 21-digit MsgId, is not a phone number, whatever mobile-like run it holds.
_SEP = " *"
_DIGIT = "[0-9]"
_MOBILE_IN_FOLDED = re.compile(
    "(?<![0-9])(?:"
    + "|".join(_SEP.join(re.escape(ch) for ch in prefix) + _SEP for prefix in COUNTRY_PREFIXES)
    + ")?"
    + f"(?P<head>1{_SEP}[3-9]{_SEP}{_DIGIT}){_SEP}"
    + f"(?P<middle>{_SEP.join([_DIGIT] * 4)}){_SEP}"
    + f"(?P<tail>{_SEP.join([_DIGIT] * 4)})"
    + "(?![0-9])"
)
_ASCII_FOLD = str.maketrans(
    {
        chr(code): (
            chr(code)
            if chr(code).isdigit() or chr(code) == "+"
            else " "
            if _SEPARATORS.fullmatch(chr(code))
            else "x"
        )
        for code in range(128)
    }
)


@functools.lru_cache(maxsize=4096)
def _fold_char(char: str) -> str:
    out = []
    for part in unicodedata.normalize("NFKC", char):
        if part.isascii():
            out.append(part.translate(_ASCII_FOLD))
        else:
            out.append(" " if _SEPARATORS.fullmatch(part) else "x")
    return "".join(out)


def mask_mobiles_in_text(text: str) -> str:
    """Mask every mobile number in free text, in every form ``normalise_mobile`` accepts
    (``+86 138-0013-8000``, ``008613800138000``, full-width digits...): each becomes
    ``138****8000``, whatever its spelling. Defence in depth for logs."""
    if text.isascii():
        folded = text.translate(_ASCII_FOLD)
        owners: list[int] | None = None
    else:
        parts = [_fold_char(char) for char in text]
        folded = "".join(parts)
        owners = [index for index, part in enumerate(parts) for _ in part]
    spans: list[tuple[int, int, str]] = []
    for match in _MOBILE_IN_FOLDED.finditer(folded):
        start, end = match.span()
        digits = "".join(ch for ch in match.group("head") + match.group("tail") if ch != " ")
        if owners is not None:
            start, end = owners[start], owners[end - 1] + 1
        spans.append((start, end, f"{digits[:3]}****{digits[3:]}"))
    if not spans:
        return text
    out, done = [], 0
    for start, end, masked in spans:
        out += [text[done:start], masked]
        done = end
    out.append(text[done:])
    return "".join(out)
