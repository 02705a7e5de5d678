"""The ``submitJson`` protocol, exactly as the provider's document describes it.

Pure functions and records: building the request body, reading the reply, and the one
table that says what every ``ResultCode`` means for us. No network, no AWS.
The document is the platform's 企信通 HTTP interface description (``submitJson``,
section 3.1; pushes, section 3.2); where it is unclear, the choice made is noted here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote_plus

from smsgw.domain.model import SubmitVerdict
from smsgw.domain.times import BEIJING, in_beijing

SEND_TIME_FORMAT = "%Y%m%d%H%M%S"
# The document says 500 in one place and 200 in another ("more is an illegal packet and
# is dropped"); public clients cap at 200. 200 is the safe reading (the domain's
# MAX_NUMBERS_PER_CHUNK is the same number).
MAX_NUMBERS_PER_SUBMIT = 200
# "spnumber + account id + AppendID" may not exceed 20 digits.
MAX_SENDER_DIGITS = 20


class ProtocolError(ValueError):
    """A value that the provider's document does not allow."""


def java_urlencode(text: str) -> str:
    """``URLEncoder.encode(text, "UTF-8")`` as in the document's Java sample.

    Java keeps ``A-Z a-z 0-9 . - * _``, turns a space into ``+`` and percent-encodes the
    UTF-8 bytes of everything else (``~`` included, unlike Python's default).
    """
    return quote_plus(text, safe="*", encoding="utf-8").replace("~", "%7E")


def format_send_time(moment: datetime | None) -> str:
    """``SendTime``: ``YYYYMMDDHHMMSS`` in Beijing time (naive datetimes are Beijing time);
    empty for None: send at once."""
    if moment is None:
        return ""
    return in_beijing(moment).strftime(SEND_TIME_FORMAT)


def parse_send_time(text: str) -> datetime | None:
    """A ``SendTime`` text back as an aware Beijing time; None for an empty one."""
    if not text:
        return None
    return datetime.strptime(text, SEND_TIME_FORMAT).replace(tzinfo=BEIJING)


def check_append_id(append_id: str, account_prefix: str = "") -> str:
    """``AppendID`` is digits; with the account's prefix (spnumber + account id) <= 20 digits."""
    if append_id and not (append_id.isascii() and append_id.isdigit()):
        raise ProtocolError("AppendID must be digits")
    if len(account_prefix) + len(append_id) > MAX_SENDER_DIGITS:
        room = MAX_SENDER_DIGITS - len(account_prefix)
        raise ProtocolError(f"AppendID may have at most {room} digits on this account")
    return append_id


@dataclass(frozen=True)
class Credentials:
    oper_id: str
    oper_pass: str = field(repr=False)


@dataclass(frozen=True)
class SubmitRequest:
    """One ``submitJson`` call: one content to at most 200 numbers."""

    mobiles: tuple[str, ...]
    content: str
    send_time: str = ""
    append_id: str = ""

    def __post_init__(self) -> None:
        if not self.mobiles:
            raise ProtocolError("DesMobile must not be empty")
        if len(self.mobiles) > MAX_NUMBERS_PER_SUBMIT:
            raise ProtocolError(f"DesMobile holds at most {MAX_NUMBERS_PER_SUBMIT} numbers")
        if not self.content:
            raise ProtocolError("Content must not be empty")

    def body(self, credentials: Credentials) -> bytes:
        """The request body: a UTF-8 JSON object of strings, ``Content`` URL-encoded."""
        payload = {
            "OperID": credentials.oper_id,
            "OperPass": credentials.oper_pass,
            "SendTime": self.send_time,
            "AppendID": self.append_id,
            "DesMobile": ",".join(self.mobiles),
            "Content": java_urlencode(self.content),
        }
        return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


@dataclass(frozen=True)
class ResultCode:
    code: str
    meaning: str
    verdict: SubmitVerdict


# Every ResultCode in one table (document section 3.1.4, and 11 from the older code table).
RESULT_CODES: dict[str, ResultCode] = {
    rc.code: rc
    for rc in (
        ResultCode("00", "批量短信提交成功 batch accepted", SubmitVerdict.ACCEPTED),
        ResultCode("01", "个性短信提交成功 personalised batch accepted", SubmitVerdict.ACCEPTED),
        ResultCode("03", "单条短信提交成功 single message accepted", SubmitVerdict.ACCEPTED),
        ResultCode("02", "IP验证失败 source IP not allowed", SubmitVerdict.ACCOUNT),
        ResultCode("04", "用户名错误 unknown account", SubmitVerdict.ACCOUNT),
        ResultCode("05", "密码错误 wrong password", SubmitVerdict.ACCOUNT),
        ResultCode("06", "参数有误 bad parameters", SubmitVerdict.REJECTED),
        ResultCode("07", "SendTime格式错误 bad SendTime", SubmitVerdict.REJECTED),
        ResultCode("08", "短信内容为空 empty content", SubmitVerdict.REJECTED),
        ResultCode("09", "手机号码为空 empty mobile", SubmitVerdict.REJECTED),
        ResultCode("10", "AppendID格式错误 bad AppendID", SubmitVerdict.REJECTED),
        ResultCode("11", "余额不足 insufficient balance", SubmitVerdict.ACCOUNT),
        ResultCode("-1", "提交异常 submit exception on the platform", SubmitVerdict.TRANSIENT),
    )
}


def classify(code: str) -> ResultCode:
    return RESULT_CODES.get(code) or ResultCode(code, "unknown result code", SubmitVerdict.UNKNOWN)


@dataclass(frozen=True)
class SubmitReply:
    result_code: str
    msg_id: str | None = None

    @property
    def result(self) -> ResultCode:
        return classify(self.result_code)


class ReplyError(ValueError):
    """The platform answered something that is not a ``submitJson`` reply."""


def _normalise_code(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        raise ReplyError("ResultCode missing")
    if isinstance(value, int):
        return str(value) if value < 0 else f"{value:02d}"
    code = str(value).strip()
    if not code:
        raise ReplyError("ResultCode empty")
    return code


def parse_reply(body: bytes) -> SubmitReply:
    """``{"ResultCode": "00", "MsgId": "..."}`` on success, ``{"ResultCode": "06"}`` on failure."""
    try:
        data = json.loads(body.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ReplyError("reply is not UTF-8 JSON") from err
    if not isinstance(data, dict) or "ResultCode" not in data:
        raise ReplyError("reply has no ResultCode")
    msg_id = data.get("MsgId")
    msg_id = str(msg_id).strip() if msg_id not in (None, "") else None
    return SubmitReply(result_code=_normalise_code(data["ResultCode"]), msg_id=msg_id)
