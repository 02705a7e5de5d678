"""The provider side of ``submitJson``: decoding and validating a request, by the document.

Pure functions, no I/O, no state: :func:`validate_submit` turns the bytes of a request
body into either an :class:`Accepted` (the decoded request, ready to be recorded) or a
:class:`Refused` carrying the ``ResultCode`` the platform answers. The gateway's own
protocol code is deliberately *not* imported: this is an independent reading of the
provider's interface document, so a bug there cannot hide behind the same bug here.

Validation order (the first failing check decides the code):

====  =====================================================================  ====
step  check                                                                  code
====  =====================================================================  ====
1     body is UTF-8 and parses as a JSON object                              06
2     every one of the six document fields that is present is a JSON string  06
3     ``OperID`` present and a configured account                            04
4     ``OperPass`` equals the account's password (missing counts as wrong)   05
5     source IP in the account's allow-list (when one is configured)         02
6     ``DesMobile`` present and not ``""``                                   09
7     ``Content`` present and not ``""``                                     08
8     ``SendTime`` empty/absent, or exactly ``YYYYMMDDHHMMSS`` and a real    07
      date-time (a time in the past means "send now")
9     ``AppendID`` empty/absent, or ASCII digits with                        10
      ``len(sp_number + account_code + AppendID) <= 20``
10    ``DesMobile`` holds at most 200 comma-separated items                  06
11    each item is 11 ASCII digits starting with ``1`` (no spaces, no        06
      empty items; duplicates are allowed and each is sent)
12    ``Content`` is what ``URLEncoder.encode(text, "UTF-8")`` can produce:  06
      only ``A-Z a-z 0-9 . - * _ +`` and ``%XX`` (hex, either case, as
      ``URLDecoder`` accepts), decoding to valid UTF-8
13    decoded ``Content`` is at most 500 characters (code points: the       06
      document says 500 "字")
14    balance >= numbers x segments (segments: 1 if <= 70 UTF-16 units,      11
      else ceil(units / 67))
--    accepted: ``03`` for one number, ``00`` for several                    03/00
====  =====================================================================  ====

Unknown extra fields are ignored. ``01`` (personalised batch) and ``-1`` (platform
exception) are never produced by validation; only fault injection answers them.
"""

from __future__ import annotations

import hmac
import ipaddress
import itertools
import json
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Protocol

BEIJING = timezone(timedelta(hours=8), "CST")
SEND_TIME_FORMAT = "%Y%m%d%H%M%S"
REPORT_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"

MAX_MOBILES = 200
MAX_CONTENT_CHARS = 500
MAX_SENDER_DIGITS = 20
SINGLE_SMS_UNITS = 70
MULTIPART_SMS_UNITS = 67

# The codes of the document's table (3.1.4) and 11 from the older code table.
BATCH_OK = "00"
PERSONALISED_OK = "01"
IP_REFUSED = "02"
SINGLE_OK = "03"
UNKNOWN_ACCOUNT = "04"
WRONG_PASSWORD = "05"  # noqa: S105 - a result code, not a password
BAD_PARAMETERS = "06"
BAD_SEND_TIME = "07"
EMPTY_CONTENT = "08"
EMPTY_MOBILE = "09"
BAD_APPEND_ID = "10"
LOW_BALANCE = "11"
SUBMIT_EXCEPTION = "-1"
SUCCESS_CODES = frozenset({BATCH_OK, PERSONALISED_OK, SINGLE_OK})
KNOWN_CODES = frozenset(
    {
        BATCH_OK,
        PERSONALISED_OK,
        IP_REFUSED,
        SINGLE_OK,
        UNKNOWN_ACCOUNT,
        WRONG_PASSWORD,
        BAD_PARAMETERS,
        BAD_SEND_TIME,
        EMPTY_CONTENT,
        EMPTY_MOBILE,
        BAD_APPEND_ID,
        LOW_BALANCE,
        SUBMIT_EXCEPTION,
    }
)

_FIELDS = ("OperID", "OperPass", "SendTime", "AppendID", "DesMobile", "Content")
_MOBILE = re.compile(r"1[0-9]{10}")
_DIGITS = re.compile(r"[0-9]+")
_SEND_TIME = re.compile(r"[0-9]{14}")
# Everything java.net.URLEncoder.encode(s, "UTF-8") can output, URLDecoder-style hex case.
_JAVA_URLENCODED = re.compile(r"(?:[A-Za-z0-9.\-*_+]|%[0-9A-Fa-f]{2})*")
_JAVA_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.-*_")


class AccountView(Protocol):
    """What validation needs to know about one account (the config's ``Account`` has it)."""

    @property
    def password(self) -> str: ...
    @property
    def account_code(self) -> str: ...
    @property
    def balance(self) -> int: ...
    @property
    def allowed_ips(self) -> Sequence[str]: ...


@dataclass(frozen=True)
class Accepted:
    oper_id: str
    mobiles: tuple[str, ...]
    content: str
    raw_content: str
    send_time: str
    append_id: str
    segments: int
    result_code: str

    @property
    def cost(self) -> int:
        return len(self.mobiles) * self.segments


@dataclass(frozen=True)
class Refused:
    result_code: str
    reason: str
    oper_id: str | None = None


def java_url_encode(text: str) -> str:
    """``URLEncoder.encode(text, "UTF-8")``: ``+`` for space, ``%XX`` for other unsafe bytes."""
    out: list[str] = []
    for byte in text.encode("utf-8"):
        if byte in _JAVA_SAFE:
            out.append(chr(byte))
        elif byte == 0x20:
            out.append("+")
        else:
            out.append(f"%{byte:02X}")
    return "".join(out)


def java_url_decode(encoded: str) -> str:
    """Decode what a Java ``URLEncoder`` produced; :class:`ValueError` for anything else."""
    if _JAVA_URLENCODED.fullmatch(encoded) is None:
        raise ValueError("not URL-encoded: raw characters that URLEncoder never outputs")
    raw = bytearray()
    i = 0
    n = len(encoded)
    while i < n:
        char = encoded[i]
        if char == "%":
            raw.append(int(encoded[i + 1 : i + 3], 16))
            i += 3
        else:
            raw.append(0x20 if char == "+" else ord(char))
            i += 1
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ValueError("URL-encoded bytes are not UTF-8") from err


def utf16_units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def count_segments(text: str) -> int:
    """1 if the text fits 70 UTF-16 units, else one per 67 units, rounded up."""
    units = utf16_units(text)
    if units <= SINGLE_SMS_UNITS:
        return 1
    return -(-units // MULTIPART_SMS_UNITS)


def parse_send_time(value: str) -> datetime | None:
    """``YYYYMMDDHHMMSS`` in Beijing time as an aware datetime; None when not valid."""
    if _SEND_TIME.fullmatch(value) is None:
        return None
    try:
        return datetime.strptime(value, SEND_TIME_FORMAT).replace(tzinfo=BEIJING)
    except ValueError:
        return None


def beijing_now_text(now: float | None = None) -> str:
    """``YYYY-MM-DD HH:MM:SS`` Beijing time, the format of ``reportTime``."""
    moment = datetime.fromtimestamp(time.time() if now is None else now, tz=UTC)
    return moment.astimezone(BEIJING).strftime(REPORT_TIME_FORMAT)


def mask_mobile(mobile: str) -> str:
    """``13800138000`` → ``138****8000``; anything shorter is masked whole."""
    if len(mobile) >= 8:
        return f"{mobile[:3]}****{mobile[-4:]}"
    return "*" * len(mobile)


def ip_allowed(source_ip: str, allowed: Sequence[str]) -> bool:
    """True when no allow-list is set, or the address is in one of its addresses/networks."""
    if not allowed:
        return True
    try:
        address = ipaddress.ip_address(source_ip)
    except ValueError:
        return False
    for entry in allowed:
        try:
            if address in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue
    return False


class MsgIdGenerator:
    """Digit-only MsgIds: 12 digits of Beijing time at creation + an 8-digit counter.

    One generator is shared by every simulator of a process (:data:`MSG_IDS`), so ids
    never repeat within a process, not even across ``reset`` or between two simulators;
    two processes started in different seconds never collide either.
    """

    def __init__(self, now: float | None = None) -> None:
        moment = datetime.fromtimestamp(time.time() if now is None else now, tz=UTC)
        self._prefix = moment.astimezone(BEIJING).strftime("%y%m%d%H%M%S")
        self._counter = itertools.count(1)  # next() on itertools.count is atomic in CPython

    def __call__(self) -> str:
        return f"{self._prefix}{next(self._counter):08d}"


MSG_IDS = MsgIdGenerator()


def _text_field(body: dict[str, object], name: str) -> str:
    value = body.get(name, "")
    return value if isinstance(value, str) else ""


def decode_body(raw: bytes) -> dict[str, object] | Refused:
    """Steps 1 and 2: a UTF-8 JSON object whose document fields are strings."""
    try:
        body = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return Refused(BAD_PARAMETERS, "body is not UTF-8 JSON")
    if not isinstance(body, dict):
        return Refused(BAD_PARAMETERS, "body is not a JSON object")
    for name in _FIELDS:
        if name in body and not isinstance(body[name], str):
            return Refused(BAD_PARAMETERS, f"{name} is not a string")
    return body


def validate_submit(
    raw: bytes,
    *,
    accounts: Mapping[str, AccountView],
    sp_number: str,
    source_ip: str,
    max_mobiles: int = MAX_MOBILES,
    max_content_chars: int = MAX_CONTENT_CHARS,
) -> Accepted | Refused:
    """Every check of the module docstring's table, in that order."""
    body = decode_body(raw)
    if isinstance(body, Refused):
        return body
    oper_id = _text_field(body, "OperID")
    mobiles = tuple(_text_field(body, "DesMobile").split(","))
    refused = (
        _check_account(body, oper_id, accounts, source_ip)
        # reached only once the account is known to exist
        or _check_presence_and_formats(body, oper_id, sp_number + accounts[oper_id].account_code)
        or _check_mobiles(mobiles, oper_id, max_mobiles)
    )
    if refused is not None:
        return refused
    account = accounts[oper_id]
    raw_content = _text_field(body, "Content")
    content = _decode_content(raw_content, oper_id, max_content_chars)
    if isinstance(content, Refused):
        return content

    segments = count_segments(content)
    cost = len(mobiles) * segments
    if cost > account.balance:
        return Refused(LOW_BALANCE, f"balance {account.balance} < {cost} messages", oper_id)
    return Accepted(
        oper_id=oper_id,
        mobiles=mobiles,
        content=content,
        raw_content=raw_content,
        send_time=_text_field(body, "SendTime"),
        append_id=_text_field(body, "AppendID"),
        segments=segments,
        result_code=SINGLE_OK if len(mobiles) == 1 else BATCH_OK,
    )


def _check_account(
    body: dict[str, object], oper_id: str, accounts: Mapping[str, AccountView], source_ip: str
) -> Refused | None:
    """Steps 3-5: account, password, source IP."""
    account = accounts.get(oper_id) if oper_id else None
    if account is None:
        return Refused(UNKNOWN_ACCOUNT, "OperID missing or unknown")
    password = _text_field(body, "OperPass")
    if not hmac.compare_digest(password.encode("utf-8"), account.password.encode("utf-8")):
        return Refused(WRONG_PASSWORD, "OperPass wrong", oper_id)
    if not ip_allowed(source_ip, account.allowed_ips):
        return Refused(IP_REFUSED, f"source IP {source_ip} not in the allow-list", oper_id)
    return None


def _check_presence_and_formats(body: dict[str, object], oper_id: str, sender_prefix: str) -> Refused | None:
    """Steps 6-9: DesMobile and Content present, SendTime and AppendID well-formed."""
    if not _text_field(body, "DesMobile"):
        return Refused(EMPTY_MOBILE, "DesMobile empty", oper_id)
    if not _text_field(body, "Content"):
        return Refused(EMPTY_CONTENT, "Content empty", oper_id)
    send_time = _text_field(body, "SendTime")
    if send_time and parse_send_time(send_time) is None:
        return Refused(BAD_SEND_TIME, "SendTime is not a valid YYYYMMDDHHMMSS", oper_id)
    append_id = _text_field(body, "AppendID")
    if append_id and _DIGITS.fullmatch(append_id) is None:
        return Refused(BAD_APPEND_ID, "AppendID is not digits", oper_id)
    if len(sender_prefix) + len(append_id) > MAX_SENDER_DIGITS:
        return Refused(BAD_APPEND_ID, "sp_number + account code + AppendID exceeds 20 digits", oper_id)
    return None


def _check_mobiles(mobiles: tuple[str, ...], oper_id: str, max_mobiles: int) -> Refused | None:
    """Steps 10-11: at most ``max_mobiles`` numbers, each 11 digits starting with 1."""
    if len(mobiles) > max_mobiles:
        return Refused(BAD_PARAMETERS, f"DesMobile holds {len(mobiles)} numbers (max {max_mobiles})", oper_id)
    for index, mobile in enumerate(mobiles):
        if _MOBILE.fullmatch(mobile) is None:
            return Refused(BAD_PARAMETERS, f"DesMobile item {index} is not an 11-digit mobile", oper_id)
    return None


def _decode_content(raw_content: str, oper_id: str, max_chars: int) -> str | Refused:
    """Steps 12-13: Java URL-encoding of UTF-8, at most ``max_chars`` characters."""
    try:
        content = java_url_decode(raw_content)
    except ValueError as err:
        return Refused(BAD_PARAMETERS, f"Content {err}", oper_id)
    if len(content) > max_chars:
        return Refused(BAD_PARAMETERS, f"Content has {len(content)} characters (max {max_chars})", oper_id)
    return content
