"""Quiet hours: when marketing may not go out (default 21:00-08:00 Beijing time).

Marketing caught by quiet hours is held until they end, never dropped. Transactional
messages (one-time codes, notices) are not affected.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta

from smsgw.domain.times import BEIJING


class QuietHoursError(ValueError):
    """A quiet-hours setting that is not ``HH:MM-HH:MM``."""


@dataclass(frozen=True)
class QuietHours:
    start: time
    end: time

    @classmethod
    def parse(cls, setting: str) -> QuietHours | None:
        """``21:00-08:00`` (Beijing time); empty or ``off`` disables them."""
        setting = setting.strip()
        if setting.lower() in {"", "off", "none"}:
            return None
        try:
            start, end = (time.fromisoformat(part.strip()) for part in setting.split("-"))
        except ValueError as err:
            raise QuietHoursError(f"quiet hours must look like 21:00-08:00, got {setting!r}") from err
        if start == end:
            raise QuietHoursError("quiet hours must not start and end at the same time")
        return cls(start, end)

    def contains(self, moment: datetime) -> bool:
        local = moment.astimezone(BEIJING).time()
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end  # across midnight

    def end_after(self, moment: datetime) -> datetime:
        """When the quiet period holding ``moment`` is over (``moment`` itself if none does)."""
        if not self.contains(moment):
            return moment
        local = moment.astimezone(BEIJING)
        end = local.replace(hour=self.end.hour, minute=self.end.minute, second=0, microsecond=0)
        if end <= local:
            end += timedelta(days=1)
        return end
