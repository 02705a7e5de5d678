"""Per-number frequency caps, e.g. one-time codes: at most 1 a minute, 5 an hour, 10 a day.

A cap is ``N/W``: at most N messages to one number in each window of W (``60s``, ``5m``,
``1h``, ``1d``). Windows are fixed and aligned to the Beijing day, so W must divide a
day. Caps are set per category; a number over a cap is rejected with a reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from smsgw.domain.model import Category

DAY = 86_400
_UNITS = {"s": 1, "m": 60, "h": 3_600, "d": DAY}
_CAP = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*([smhd])\s*$")
FREQUENCY_CAPPED = "frequency_capped"


class CapsError(ValueError):
    """A caps setting that cannot be read."""


@dataclass(frozen=True)
class Cap:
    limit: int
    window_seconds: int

    def describe(self) -> str:
        for unit, size in (("d", DAY), ("h", 3_600), ("m", 60)):
            if self.window_seconds % size == 0:
                return f"at most {self.limit} per {self.window_seconds // size}{unit}"
        return f"at most {self.limit} per {self.window_seconds}s"


def parse_caps(setting: str) -> tuple[Cap, ...]:
    """``1/1m,5/1h,10/1d``; empty means no cap."""
    caps: list[Cap] = []
    for part in filter(None, (p.strip() for p in setting.split(","))):
        match = _CAP.match(part)
        if not match:
            raise CapsError(f"a cap looks like 5/1h, got {part!r}")
        limit, size, unit = int(match.group(1)), int(match.group(2)), match.group(3)
        window = size * _UNITS[unit]
        if limit < 1 or window < 1 or DAY % window:
            raise CapsError(f"{part!r}: the limit must be positive and the window divide a day")
        caps.append(Cap(limit, window))
    return tuple(sorted(caps, key=lambda c: c.window_seconds))


@dataclass(frozen=True)
class FrequencyCaps:
    by_category: dict[Category, tuple[Cap, ...]]

    @classmethod
    def parse(cls, *, verification: str, transactional: str, marketing: str) -> FrequencyCaps:
        return cls(
            {
                Category.VERIFICATION: parse_caps(verification),
                Category.TRANSACTIONAL: parse_caps(transactional),
                Category.MARKETING: parse_caps(marketing),
            }
        )

    def for_category(self, category: Category) -> tuple[Cap, ...]:
        return self.by_category.get(category, ())

    @property
    def categories(self) -> frozenset[Category]:
        """The categories that have caps."""
        return frozenset(c for c, caps in self.by_category.items() if caps)
