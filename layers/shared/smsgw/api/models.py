"""The send request as clients write it, and its translation into a ``SendCommand``.

Pydantic checks the shape and types (and names the field when they are wrong); the
domain rules (numbers, content length, send time, AppendID) are applied in
``to_command`` so they can say which field broke which rule.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StrictStr, WithJsonSchema

from smsgw.domain.callbacks import MAX_URL_LENGTH, CallbackUrlError, check_url
from smsgw.domain.errors import FieldProblem, InputError
from smsgw.domain.model import Category, MessageGroup, SendCommand
from smsgw.domain.numbers import Rejection, normalise_mobile, normalise_recipients, split_recipients
from smsgw.domain.segments import MAX_CONTENT_UNITS, count_segments, utf16_units
from smsgw.domain.times import SEND_AT_ONCE_WITHIN, in_beijing, parse_query_time
from smsgw.provider.guodu import ProtocolError, check_append_id

# A send_at a little in the past (clock skew) is sent at once, as is one within a minute.
PAST_TOLERANCE = timedelta(minutes=5)
MAX_SCHEDULE_AHEAD = timedelta(days=90)
# A request with more junk than this is refused whole: it is a broken client, and the
# rejected list is echoed in replies and stored with the request.
MAX_REJECTED = 1_000

Reference = Annotated[str, Field(min_length=1, max_length=128)]
Extension = Annotated[str, Field(min_length=1, max_length=20, pattern=r"^[0-9]+$")]
ValidFor = Annotated[timedelta, Field(ge=timedelta(minutes=1), le=timedelta(days=3))]


# A number as written by a client (with +86, spaces, dashes...) is never this long; a
# longer entry is refused rather than stored and echoed back in the rejected list.
Recipient = Annotated[StrictStr, Field(max_length=64)]


class PersonalMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to: Recipient
    content: StrictStr


class SendBody(BaseModel):
    """``POST /v1/messages``: either ``to`` + ``content``, or ``messages``."""

    model_config = ConfigDict(extra="forbid")

    to: list[Recipient] | StrictStr | None = None
    content: StrictStr | None = None
    messages: list[PersonalMessage] | None = Field(default=None, min_length=1)
    send_at: datetime | None = None
    extension: Extension | None = None
    reference: Reference | None = None
    category: Category = Category.TRANSACTIONAL
    # Seconds (or an ISO 8601 duration such as PT2H) a send may wait to go out; after
    # that it ends "expired" rather than late. Default: the gateway's (10 hours).
    valid_for: ValidFor | None = None
    # Where the request's events are POSTed, signed (else the caller's default, if any).
    callback_url: Annotated[StrictStr, Field(min_length=1, max_length=MAX_URL_LENGTH)] | None = None


def _content_problem(field: str, content: str) -> FieldProblem | None:
    if not content.strip():
        return FieldProblem(field, "must not be empty")
    if utf16_units(content) > MAX_CONTENT_UNITS:
        return FieldProblem(field, f"is longer than {MAX_CONTENT_UNITS} characters")
    if "\ufffd" in content:
        # What a decoder puts for bytes that are not UTF-8: the text was lost on the way.
        return FieldProblem(field, "holds U+FFFD, the mark of bytes that were not UTF-8")
    return None


def _send_time(send_at: datetime | None, now: datetime) -> datetime | None:
    """When the platform is to send it (Beijing time, to the second); None: at once."""
    if send_at is None:
        return None
    moment = in_beijing(send_at)
    if moment < now - PAST_TOLERANCE:
        raise InputError.of("send_at", "is in the past")
    if moment > now + MAX_SCHEDULE_AHEAD:
        raise InputError.of("send_at", f"is more than {MAX_SCHEDULE_AHEAD.days} days ahead")
    return None if moment <= now + SEND_AT_ONCE_WITHIN else moment


def _groups(body: SendBody) -> tuple[list[tuple[str, list[str]]], list[FieldProblem]]:
    """(content, raw numbers) pairs, equal contents merged, and the shape problems found."""
    problems: list[FieldProblem] = []
    if body.messages is not None:
        if body.to is not None or body.content is not None:
            problems.append(FieldProblem("messages", "send either to + content, or messages, not both"))
        merged: dict[str, list[str]] = {}
        for i, message in enumerate(body.messages):
            problem = _content_problem(f"messages[{i}].content", message.content)
            if problem:
                problems.append(problem)
            merged.setdefault(message.content, []).append(message.to)
        return list(merged.items()), problems
    if body.to is None:
        problems.append(FieldProblem("to", "is required (or use messages)"))
    if body.content is None:
        problems.append(FieldProblem("content", "is required (or use messages)"))
    elif problem := _content_problem("content", body.content):
        problems.append(problem)
    if problems or body.to is None or body.content is None:
        return [], problems
    return [(body.content, split_recipients(body.to))], problems


def to_command(
    body: SendBody,
    *,
    now: datetime,
    max_recipients: int,
    account_prefix: str = "",
    caller: str = "",
    max_messages: int = 1_000,
    max_capped_recipients: int = 1_000,
    capped: frozenset[Category] = frozenset(),
    allow_loopback_callbacks: bool = False,
) -> SendCommand:
    """The command for ``body``, or ``InputError`` naming each field that breaks a rule.

    The limits keep every admissible request's intake to seconds: ``max_messages``
    personalised messages (each content is its own submit, stored and queued one by one),
    and ``max_capped_recipients`` in a category with frequency caps (``capped``: each
    number is one conditional write)."""
    if body.messages is not None and len(body.messages) > max_messages:
        raise InputError.of(
            "messages", f"holds {len(body.messages)} messages; at most {max_messages} per request"
        )
    raw_groups, problems = _groups(body)
    if problems:
        raise InputError(problems)
    groups: list[MessageGroup] = []
    rejected: list[Rejection] = []
    for content, numbers in raw_groups:
        recipients = normalise_recipients(number[:64] for number in numbers)
        rejected.extend(recipients.rejected)
        if recipients.valid:
            groups.append(MessageGroup(content, recipients.valid, count_segments(content)))
    field = "messages" if body.messages is not None else "to"
    total = sum(len(g.mobiles) for g in groups)
    if len(rejected) > MAX_REJECTED:
        raise InputError.of(
            field, f"more than {MAX_REJECTED} numbers are not Chinese mobiles", code="too_many_invalid"
        )
    if total == 0:
        raise InputError(
            [FieldProblem(field, "holds no valid Chinese mobile number")]
            + [FieldProblem(field, "not a Chinese mobile number", r.to) for r in rejected]
        )
    if total > max_recipients:
        raise InputError.of(field, f"holds {total} recipients; at most {max_recipients} per request")
    if body.category in capped and total > max_capped_recipients:
        raise InputError.of(
            field,
            f"holds {total} recipients; at most {max_capped_recipients} per {body.category.value}"
            " request (each number is counted against its frequency caps)",
        )
    try:
        append_id = check_append_id(body.extension or "", account_prefix)
    except ProtocolError as err:
        raise InputError.of("extension", str(err)) from err
    callback_url = None
    if body.callback_url is not None:
        try:
            callback_url = check_url(body.callback_url, allow_loopback=allow_loopback_callbacks)
        except CallbackUrlError as err:
            raise InputError.of("callback_url", str(err)) from err
    return SendCommand(
        groups=tuple(groups),
        rejected=tuple(rejected),
        send_time=_send_time(body.send_at, now),
        append_id=append_id,
        reference=body.reference,
        category=body.category,
        caller=caller,
        valid_for=int(body.valid_for.total_seconds()) if body.valid_for else 0,
        callback_url=callback_url,
    )


# -- queries and the other bodies ------------------------------------------------------


def _query_time(value: object) -> datetime:
    if not isinstance(value, str) or len(value) > 40:
        raise ValueError("must be ISO 8601 (no zone = Beijing time), a date, or Unix seconds")
    try:
        moment = parse_query_time(value)
    except (ValueError, OverflowError, OSError) as err:
        raise ValueError("must be ISO 8601 (no zone = Beijing time), a date, or Unix seconds") from err
    if not 2000 <= moment.year <= 2100:
        raise ValueError("must lie between the years 2000 and 2100")
    return moment


def _mobile(text: str) -> str:
    mobile = normalise_mobile(text)
    if mobile is None:
        raise ValueError("is not a Chinese mobile number")
    return mobile


QueryTime = Annotated[
    datetime,
    BeforeValidator(_query_time),
    WithJsonSchema(
        {
            "type": "string",
            "maxLength": 40,
            "description": "ISO 8601 (no zone = Beijing time), a date, or Unix seconds",
        }
    ),
]
Mobile = Annotated[str, Field(max_length=64, description="a Chinese mobile number"), AfterValidator(_mobile)]
Cursor = Annotated[str, Field(min_length=1, max_length=4096, description="next_cursor of the page before")]
MAX_SEARCH_PAGE = 100


class MessagesQuery(BaseModel):
    """``GET /v1/messages``: the caller's requests with a ``reference``, or sent ``to`` a number."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    reference: Reference | None = None
    to: Mobile | None = None
    from_: QueryTime | None = Field(default=None, alias="from")
    until: QueryTime | None = None
    limit: int = Field(default=50, ge=1, le=MAX_SEARCH_PAGE)
    cursor: Cursor | None = None


class InboundQuery(BaseModel):
    """``GET /v1/inbound``: replies in a time range (at most 31 days), of one number or all."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    mobile: Mobile | None = None
    from_: QueryTime | None = Field(default=None, alias="from")
    until: QueryTime | None = None
    limit: int = Field(default=50, ge=1, le=MAX_SEARCH_PAGE)
    cursor: Cursor | None = None


class CallbackBody(BaseModel):
    """``PUT /v1/callback``: the caller's default callback URL (null removes it)."""

    model_config = ConfigDict(extra="forbid")

    url: Annotated[StrictStr, Field(min_length=1, max_length=MAX_URL_LENGTH)] | None
