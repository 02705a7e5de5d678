"""What the API answers, as models: the responses of ``docs/openapi.yaml``.

The handlers build their answers as plain dicts (no model on the hot path: cold start);
these models describe them, ``smsgw.api.openapi`` publishes them, and the contract fuzz
run (``tests/e2e/test_contract.py``) checks every answer of the running API against them.
They forbid extra fields, so an answer that grows a field the contract does not name
fails that run.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Time = str  # ISO 8601 with offset, e.g. 2026-11-24T20:00:05+08:00
RecipientState = Literal[
    "queued", "submitted", "delivered", "failed", "unknown", "expired", "rejected", "opted_out", "cancelled"
]
RequestState = Literal["accepting", "accepted", "submitted", "completed"]
CategoryName = Literal["verification", "transactional", "marketing"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Rejected(_Strict):
    to: str
    reason: str = Field(description="invalid_mobile, frequency_capped, ...")
    detail: str | None = None


class Accepted(_Strict):
    """202: the request is stored and will be sent."""

    id: str
    status: Literal["accepted"]
    recipients: int
    segments: int
    total_segments: int
    rejected: list[Rejected] = Field(description="the first 1,000")
    rejected_count: int | None = Field(default=None, description="all of them, when more than listed")
    opted_out: list[str] | None = None
    opted_out_count: int | None = None
    reference: str | None = None


class Counts(_Strict):
    total: int
    queued: int
    submitted: int
    delivered: int
    failed: int
    unknown: int
    expired: int
    rejected: int
    opted_out: int
    cancelled: int


class Recipient(_Strict):
    to: str
    status: RecipientState
    provider_msg_id: str | None
    provider_code: str | None
    detail: str | None
    reported_at: Time | None = Field(description="the delivery report's time, ISO 8601 with offset")
    reported_at_raw: str | None = Field(description="the report's time as the platform wrote it")
    updated_at: Time | None


class Message(_Strict):
    """One request and a page of its recipients."""

    id: str
    status: RequestState
    reference: str | None
    category: CategoryName
    created_at: Time | None
    send_at: Time | None
    completed_at: Time | None
    callback_url: str | None
    segments: int
    total_segments: int
    counts: Counts
    recipients: list[Recipient]
    rejected: list[Rejected]
    opted_out: list[str]
    next_cursor: str | None


class MessageSummary(_Strict):
    id: str
    status: RequestState
    reference: str | None
    category: CategoryName
    created_at: Time | None
    send_at: Time | None
    completed_at: Time | None
    recipients: int
    to: str | None = Field(default=None, description="the number searched for (search by to)")


class MessageList(_Strict):
    messages: list[MessageSummary] = Field(description="newest first")
    next_cursor: str | None = Field(description="pass as cursor for the next page; null on the last")


class Cancelled(_Strict):
    id: str
    cancelled: int = Field(description="recipients called off now or before")
    already_left: int = Field(
        description="recipients handed to the platform (or on their way): not cancelled"
    )
    already_final: int = Field(description="recipients that had failed or expired before")
    total: int


class InboundMessage(_Strict):
    mobile: str
    content: str
    received_at: Time | None
    received_at_raw: str
    append_id: str


class InboundList(_Strict):
    inbound: list[InboundMessage] = Field(description="newest first")
    next_cursor: str | None


class OptOut(_Strict):
    mobile: str
    opted_out: Literal[True]
    keyword: str
    source: str = Field(description="mo (the person replied) or api")
    created_at: Time | None
    changed_by: str | None


class CallbackSettings(_Strict):
    url: str | None = Field(description="the default callback URL of the caller's requests")
    secret: str = Field(description="the HMAC-SHA256 key of Smsgw-Signature (keep it secret)")
    signature_header: Literal["Smsgw-Signature"]


class ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="allow")

    field: str | None = None
    message: str | None = None


class ErrorBody(_Strict):
    code: str = Field(description="snake_case, stable: branch on it")
    message: str
    details: list[ErrorDetail | dict[str, Any]]


class Error(_Strict):
    error: ErrorBody
