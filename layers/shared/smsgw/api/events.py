"""The events on the bus as models: what ``docs/events.md`` promises, one model per type.

The JSON Schemas in ``events/schemas/`` are generated from these models (``python -m
smsgw.api.schemas``); a test fails when they drift, validates every sample of
``events/bus/`` against its schema, and validates what the code really publishes against
the same schemas. The code that publishes never imports this module (cold start).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from smsgw.api.contract import Counts  # a request's counts per state: the API's and the events' are one

Time = str  # ISO 8601 with offset, e.g. 2026-11-24T20:00:05+08:00


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Envelope(_Strict):
    version: Literal["1"] = Field(description="schema version of detail")
    event_id: str = Field(description="stable: the same fact always gets the same id; drop duplicates by it")
    occurred_at: Time = Field(description="when the gateway published it (ISO 8601 with offset)")


class ReportedRecipient(_Strict):
    to: str
    provider_msg_id: str
    provider_status: str = Field(description='the report\'s status as the platform sent it ("0" delivered)')
    detail: str = Field(description="the carrier's words: 发送成功, UNDELIV, EXPIRED, ...")
    reported_at: Time | None = Field(description="the report time, ISO 8601 with offset (null: unreadable)")
    reported_at_raw: str = Field(description="the report time as the platform wrote it (Beijing, no zone)")


class Recipient(_Strict):
    to: str
    provider_msg_id: str | None = Field(description="the MsgId of the submit that carried it, if any")


class SkippedRecipient(_Strict):
    to: str
    reason: str = Field(description="opted_out, or frequency_capped")


class _RequestEvent(Envelope):
    request_id: str | None = Field(description="the id POST /v1/messages answered")
    reference: str | None = Field(description="the request's reference, if it had one")


class RecipientsDelivered(_RequestEvent):
    stage: Literal["report"]
    count: int
    recipients: list[ReportedRecipient] = Field(max_length=250)


class RecipientsFailedByReport(_RequestEvent):
    stage: Literal["report"]
    count: int
    recipients: list[ReportedRecipient] = Field(max_length=250)


class RecipientsFailedAtSubmit(_RequestEvent):
    stage: Literal["submit"]
    count: int
    provider_code: str = Field(description="the platform's ResultCode (06-10), or 'invalid'")
    detail: str
    recipients: list[Recipient] = Field(max_length=200)


class RecipientsUnknown(_RequestEvent):
    count: int
    reason: Literal["no_report", "ambiguous"]
    provider_code: str | None
    detail: str | None
    recipients: list[Recipient] = Field(max_length=200)


class RecipientsExpired(_RequestEvent):
    count: int
    reason: Literal["expired"]
    provider_code: str | None
    detail: str | None
    recipients: list[Recipient] = Field(max_length=200)


class RecipientsCancelled(_RequestEvent):
    count: int
    reason: Literal["cancelled"]
    provider_code: None
    detail: str | None
    recipients: list[Recipient] = Field(max_length=200)


class RecipientsSkipped(_RequestEvent):
    count: int
    recipients: list[SkippedRecipient] = Field(max_length=200)


class RecipientsDeadLettered(_RequestEvent):
    count: int
    provider_code: str
    detail: str
    attempts: int
    recipients: list[Recipient] = Field(max_length=200)


class RequestSubmitted(_RequestEvent):
    recipients: int
    chunks: int


class RequestCompleted(_RequestEvent):
    status: Literal["completed"]
    counts: Counts
    completed_at: Time


class InboundMessageReceived(Envelope):
    mobile: str
    content: str
    received_at: Time | None
    received_at_raw: str
    append_id: str


class RecipientOptedOut(Envelope):
    mobile: str
    keyword: str


# detail-type -> the models its detail may match (file name of the schema: the type's
# name in snake case).
EVENT_TYPES: dict[str, tuple[type[BaseModel], ...]] = {
    "Recipients Delivered": (RecipientsDelivered,),
    "Recipients Failed": (RecipientsFailedByReport, RecipientsFailedAtSubmit),
    "Recipients Unknown": (RecipientsUnknown,),
    "Recipients Expired": (RecipientsExpired,),
    "Recipients Cancelled": (RecipientsCancelled,),
    "Recipients Skipped": (RecipientsSkipped,),
    "Recipients Dead-Lettered": (RecipientsDeadLettered,),
    "Request Submitted": (RequestSubmitted,),
    "Request Completed": (RequestCompleted,),
    "Inbound Message Received": (InboundMessageReceived,),
    "Recipient Opted Out": (RecipientOptedOut,),
}
