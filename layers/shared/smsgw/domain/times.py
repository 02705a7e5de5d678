"""Time in the gateway: Beijing time, and the one format of everything it shows.

The platform and its users live in Beijing time (UTC+8; China has had no daylight saving
time since 1991, so a fixed offset is exact and needs no tz database, which Lambda images
do not all carry). A send time is an aware ``datetime`` everywhere inside the gateway;
only ``provider.guodu`` writes it as the platform's ``SendTime`` text (``YYYYMMDDHHMMSS``).

Every timestamp the API answers and the events carry is ISO 8601 with its offset.

Every timestamp the API answers and the events carry is written the same way, in Beijing
time, where the platform and its users are: ``2026-11-24T20:00:05+08:00``. The platform's
own text (``reportTime``, an MO's time: Beijing time without a zone) is kept beside it
(``reported_at_raw``, ``received_at_raw``), so nothing it said is lost to a parse.

Items keep what they always kept (UTC ``...Z`` text, epoch seconds); the conversion
happens here, at the way out.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

BEIJING = timezone(timedelta(hours=8), "CST")
# The platform's report and MO times: Beijing time without a zone.
PLATFORM_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
# A send time this close to now is no schedule: the submit goes at once (no SendTime).
SEND_AT_ONCE_WITHIN = timedelta(minutes=1)


def in_beijing(moment: datetime) -> datetime:
    """``moment`` (naive: Beijing time already) as an aware Beijing time, to the second:
    the precision of the platform's SendTime, so a send time reads back as it was set."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=BEIJING)
    return aware.astimezone(BEIJING).replace(microsecond=0)


def from_epoch(epoch: float) -> datetime:
    """Epoch seconds as an aware Beijing time."""
    return datetime.fromtimestamp(epoch, BEIJING)


def platform_time(text: str | None) -> datetime | None:
    """The platform's ``YYYY-MM-DD HH:MM:SS`` (Beijing, no zone) as an aware datetime;
    None when it is not in that form."""
    if not text:
        return None
    try:
        return datetime.strptime(text.strip(), PLATFORM_TIME_FORMAT).replace(tzinfo=BEIJING)
    except ValueError:
        return None


def iso(epoch: float) -> str:
    """``epoch`` (seconds) as ISO 8601 with offset, Beijing time, to the second."""
    return datetime.fromtimestamp(int(epoch), BEIJING).isoformat()


def moment_iso(moment: datetime) -> str:
    """An aware (or Beijing, when naive) datetime as ISO 8601 with offset, Beijing time."""
    return in_beijing(moment).isoformat()


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
    moment = platform_time(text)
    return moment.isoformat() if moment else None


def parse_query_time(text: str) -> datetime:
    """A ``from``/``until`` query value: ISO 8601 (no zone = Beijing), a date, or Unix
    seconds. ``ValueError`` when it is none of them."""
    raw = text.strip()
    if raw.isascii() and raw.isdigit():
        return datetime.fromtimestamp(int(raw), UTC)
    moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=BEIJING)
