"""The one time format of everything the gateway shows: ISO 8601 with its offset.

Every timestamp the API answers and the events carry is written the same way, in Beijing
time, where the platform and its users are: ``2026-11-24T20:00:05+08:00``. The platform's
own text (``reportTime``, an MO's time: Beijing time without a zone) is kept beside it
(``reported_at_raw``, ``received_at_raw``), so nothing it said is lost to a parse.

Items keep what they always kept (UTC ``...Z`` text, epoch seconds); the conversion
happens here, at the way out.
"""

from __future__ import annotations

from datetime import UTC, datetime

from smsgw.provider.guodu import BEIJING

PLATFORM_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def iso(epoch: float) -> str:
    """``epoch`` (seconds) as ISO 8601 with offset, Beijing time, to the second."""
    return datetime.fromtimestamp(int(epoch), BEIJING).isoformat()


def moment_iso(moment: datetime) -> str:
    """An aware (or Beijing, when naive) datetime as ISO 8601 with offset, Beijing time."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=BEIJING)
    return aware.astimezone(BEIJING).replace(microsecond=0).isoformat()


def public(stored: str | None) -> str | None:
    """A stored ISO 8601 time (UTC ``Z`` or any offset) as the API shows it; text that is
    no such time is returned as it is (never dropped), None stays None."""
    if not stored:
        return None
    try:
        moment = datetime.fromisoformat(stored.replace("Z", "+00:00"))
    except ValueError:
        return stored
    return moment_iso(moment if moment.tzinfo else moment.replace(tzinfo=UTC))


def from_platform(text: str | None) -> str | None:
    """The platform's ``YYYY-MM-DD HH:MM:SS`` (Beijing, no zone) as ISO 8601 with offset;
    None when it is not in that form (the raw text is shown beside it anyway)."""
    if not text:
        return None
    try:
        return datetime.strptime(text.strip(), PLATFORM_TIME_FORMAT).replace(tzinfo=BEIJING).isoformat()
    except ValueError:
        return None


def parse_query_time(text: str) -> datetime:
    """A ``from``/``until`` query value: ISO 8601 (no zone = Beijing), a date, or Unix
    seconds. ``ValueError`` when it is none of them."""
    raw = text.strip()
    if raw.isascii() and raw.isdigit():
        return datetime.fromtimestamp(int(raw), UTC)
    moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=BEIJING)
