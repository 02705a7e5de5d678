"""What the platform pushes to us: status-report packets and MO (inbound) packets.

The document (section 3.2) defines the report item::

    {"msg": "发送成功", "mobile": "133********", "msgId": "12345678",
     "reportTime": "2022-12-12 12:00:00", "status": 0}

Its sample body ends ``];``: one trailing ``;`` is forgiven. It gives no MsgId format, so,
as the submit reply does, we take any printable ASCII without whitespace (1 to 64
characters). Reports and MO messages never share a packet; a packet holds at most 250
items. An item with a status or a report time (whatever their values: fields an MO has no
use for) is a report: one with a null MsgId is an unreadable report, never an MO. A MsgId
alone does not decide, as an MO may well carry an id of its own. The MO
format is not documented: we accept the field names public receivers read (``SrcMobile``,
``Content``, ``RecvTime``, ``AppendID``), their lower-camel forms, JSON or form-encoded, with
URL-encoded or plain content. An item we cannot read is skipped (and counted), never
fatal: the raw packet is stored before parsing, so nothing the platform sent is lost.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import parse_qsl, unquote_plus

from smsgw.domain import jsontext
from smsgw.domain.inbound import Inbound
from smsgw.domain.numbers import normalise_mobile
from smsgw.domain.reports import Report

MAX_ITEMS = 250
# What we keep of an item's fields. The raw packet keeps everything; these bounds keep a
# MsgId's item (up to 200 reports) and an MO item far inside DynamoDB's limits. A MsgId is
# only ever a key's text (``MSG#<id>``) or a JSON value, so any printable character is safe.
_MSG_ID = re.compile(r"^[\x21-\x7e]{1,64}$")
_STATUS = re.compile(r"^[A-Za-z0-9:_-]{1,16}$")
MAX_DETAIL = 256
MAX_TIME = 32
MAX_MO_CONTENT = 2_000
MAX_APPEND_ID = 20

_MSG_ID_KEYS = ("msgId", "msgid", "MsgId", "MsgID", "msg_id")
_STATUS_KEYS = ("status", "Status", "stat")
_REPORT_TIME_KEYS = ("reportTime", "ReportTime")
_REPORT_KEYS = (*_STATUS_KEYS, *_REPORT_TIME_KEYS)
_REPORT_MOBILE_KEYS = ("mobile", "Mobile", "phone", "DesMobile")
_MO_MOBILE_KEYS = ("SrcMobile", "srcMobile", "mobile", "Mobile", "phone")
_MO_CONTENT_KEYS = ("Content", "content", "msg", "Msg", "text")
_MO_TIME_KEYS = ("RecvTime", "recvTime", "moTime", "MoTime", "time", "receiveTime")
_MO_APPEND_KEYS = ("AppendID", "appendId", "appendID", "AppendId", "extno", "ext")
# Only what java.net.URLEncoder can output, with at least one escape in it.
_URL_ENCODED = re.compile(r"^[A-Za-z0-9.*_+%-]*%[0-9A-Fa-f]{2}[A-Za-z0-9.*_+%-]*$")
_URL_ALPHABET = re.compile(r"^(?:[A-Za-z0-9.*_+-]|%[0-9A-Fa-f]{2})*$")


class PacketError(ValueError):
    """The body is not a push packet at all (HTTP 400)."""


class TooManyItems(PacketError):
    """More items than the document allows in one packet (HTTP 413)."""


class PacketKind(StrEnum):
    REPORTS = "reports"
    INBOUND = "inbound"


@dataclass(frozen=True)
class Packet:
    kind: PacketKind
    reports: tuple[Report, ...] = ()
    inbound: tuple[Inbound, ...] = ()
    skipped: int = 0  # items present but unreadable; kept in the raw packet


def _first(item: Mapping[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        if key in item and item[key] is not None:
            return item[key]
    return None


def _text(value: Any) -> str:
    if value is None or isinstance(value, dict | list):
        return ""
    return str(value).strip()


def decode_content(raw: str, *, encoded: bool = False) -> str:
    """MO content may come URL-encoded (UTF-8, as we send ours) or plain.

    ``encoded``: the field is known to be URL-encoded (the older interface's ``Content``),
    so a ``+`` is a space even without any ``%XX`` escape. Otherwise only text that is
    plainly URL-encoding (holds an escape, nothing a URLEncoder would not output) is decoded.
    """
    if (encoded and _URL_ALPHABET.match(raw)) or _URL_ENCODED.match(raw):
        try:
            return unquote_plus(raw, encoding="utf-8", errors="strict")
        except UnicodeDecodeError:
            return raw
    return raw


def _decode_body(body: bytes) -> str:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return body.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise PacketError("the body is neither UTF-8 nor GBK text")


def _without_trailing_semicolon(text: str) -> str:
    """The document's sample body ends ``];``, as if copied from code: a platform built
    from it may send that. One ``;`` is forgiven; anything more is still not JSON."""
    return text.removesuffix(";")


def _items(body: bytes, content_type: str) -> list[Mapping[str, Any]]:
    text = _decode_body(body).strip()
    if not text:
        raise PacketError("the body is empty")
    if "x-www-form-urlencoded" in content_type.lower() and not text.startswith(("[", "{")):
        # The older interface posts one MO as a form; keep its values as they came.
        form = dict(parse_qsl(text, keep_blank_values=True, encoding="utf-8"))
        if not all(jsontext.is_text(v) for v in form.values()):
            raise PacketError("the form holds bytes that are not UTF-8 text")
        return [form]
    try:
        data = jsontext.loads(_without_trailing_semicolon(text))
    except jsontext.NotText as err:
        raise PacketError(str(err)) from err
    except ValueError as err:
        raise PacketError("the body is not JSON") from err
    items = [data] if isinstance(data, dict) else data
    if not isinstance(items, list) or not items:
        raise PacketError("a packet is a non-empty JSON array of objects")
    if len(items) > MAX_ITEMS:
        raise TooManyItems(f"{len(items)} items; a packet holds at most {MAX_ITEMS}")
    if not all(isinstance(item, dict) for item in items):
        raise PacketError("every item of a packet must be a JSON object")
    return items


def _is_report(item: Mapping[str, Any]) -> bool:
    """A status or a report time makes a report, whatever its value: a report with a null
    MsgId or status is an unreadable report (skipped), not an MO whose content is its
    ``msg``, nor a reason to refuse the good reports it came with."""
    return any(key in item for key in _REPORT_KEYS)


def _report(item: Mapping[str, Any]) -> Report | None:
    mobile = normalise_mobile(_text(_first(item, _REPORT_MOBILE_KEYS)))
    msg_id = _text(_first(item, _MSG_ID_KEYS))
    status = _text(_first(item, _STATUS_KEYS))
    if mobile is None or not _MSG_ID.match(msg_id) or not _STATUS.match(status):
        return None
    return Report(
        msg_id=msg_id,
        mobile=mobile,
        status=status,
        msg=_text(item.get("msg", item.get("Msg")))[:MAX_DETAIL],
        report_time=_text(_first(item, _REPORT_TIME_KEYS))[:MAX_TIME],
    )


def _inbound(item: Mapping[str, Any]) -> Inbound | None:
    mobile = normalise_mobile(_text(_first(item, _MO_MOBILE_KEYS)))
    content = _first(item, _MO_CONTENT_KEYS)
    if mobile is None or content is None:
        return None
    return Inbound(
        mobile=mobile,
        content=decode_content(str(content), encoded="Content" in item)[:MAX_MO_CONTENT],
        received_time=_text(_first(item, _MO_TIME_KEYS))[:MAX_TIME],
        append_id=_text(_first(item, _MO_APPEND_KEYS))[:MAX_APPEND_ID],
    )


def parse_packet(body: bytes, content_type: str = "application/json") -> Packet:
    items = _items(body, content_type)
    report_like = [_is_report(item) for item in items]
    if all(report_like):
        reports = [_report(item) for item in items]
        kept = tuple(r for r in reports if r is not None)
        return Packet(PacketKind.REPORTS, reports=kept, skipped=len(items) - len(kept))
    if any(report_like):
        raise PacketError("reports and MO messages never share a packet")
    inbound = [_inbound(item) for item in items]
    kept_mo = tuple(m for m in inbound if m is not None)
    if not kept_mo:
        raise PacketError("no item is a status report or an MO message")
    return Packet(PacketKind.INBOUND, inbound=kept_mo, skipped=len(items) - len(kept_mo))
