"""The one error-to-HTTP mapping of the public API.

Every error leaves as ``{"error": {"code", "message", "details"}}``. Client mistakes get a
4xx that names the field; AWS trouble gets a 503 the client may retry (with the same
Idempotency-Key); anything unexpected a 500 without internals. Nothing else in the code
base decides an HTTP status for an error.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from botocore.exceptions import BotoCoreError, ClientError

from smsgw.adapters.dynamo import StoreUnavailable
from smsgw.adapters.events import EventsUnavailable
from smsgw.adapters.queue import QueueUnavailable
from smsgw.adapters.search import BadCursor
from smsgw.domain.errors import (
    Forbidden,
    FrequencyCapped,
    IdempotencyConflict,
    InputError,
    NotFound,
    PayloadTooLarge,
)
from smsgw.observability import logger
from smsgw.provider.push import PacketError, TooManyItems

if TYPE_CHECKING:
    from pydantic import ValidationError


def error_response(
    status: int,
    code: str,
    message: str,
    details: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response[str]:
    body = {"error": {"code": code, "message": message, "details": details or []}}
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps(body, ensure_ascii=False),
        headers=headers,
    )


def _field_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "body"


def validation_details(err: ValidationError) -> list[dict[str, Any]]:
    details: list[dict[str, Any]] = []
    for problem in err.errors(include_url=False, include_input=False):
        # Drop pydantic's union-branch tags (e.g. "list[str]", "str") from the path.
        loc = tuple(p for p in problem["loc"] if not (isinstance(p, str) and ("[" in p or p == "str")))
        details.append({"field": _field_path(loc), "message": problem["msg"]})
    return details


def _input(err: InputError) -> Response[str]:
    status = 429 if isinstance(err, FrequencyCapped) else 400
    return error_response(status, err.code, str(err), [p.as_dict() for p in err.problems])


def _validation(err: ValidationError) -> Response[str]:
    details = validation_details(err)
    return error_response(
        400, "validation_failed", "; ".join(f"{d['field']}: {d['message']}" for d in details), details
    )


def _not_found(err: NotFound) -> Response[str]:
    return error_response(404, "not_found", str(err) or "no such resource")


def _conflict(err: IdempotencyConflict) -> Response[str]:
    return error_response(409, "idempotency_key_reused", str(err))


def _forbidden(_: Forbidden) -> Response[str]:
    return error_response(403, "forbidden", "forbidden")


def _too_large(err: Exception) -> Response[str]:
    code = "too_many_items" if isinstance(err, TooManyItems) else "payload_too_large"
    return error_response(413, code, str(err) or "payload too large")


def _bad_cursor(err: BadCursor) -> Response[str]:
    return error_response(
        400, "validation_failed", f"cursor: {err}", [{"field": "cursor", "message": str(err)}]
    )


def _malformed_packet(err: PacketError) -> Response[str]:
    return error_response(400, "malformed_packet", str(err))


def _aws_unavailable(_: Exception) -> Response[str]:
    logger.exception("AWS call failed")
    return error_response(
        503,
        "service_unavailable",
        "temporarily unavailable; retry later (a send retried with the same Idempotency-Key resumes safely)",
        headers={"Retry-After": "5"},
    )


def _unexpected(_: Exception) -> Response[str]:
    logger.exception("unexpected error")
    return error_response(500, "internal_error", "internal error")


def _no_route(_: Exception) -> Response[str]:
    return error_response(404, "not_found", "no such route")


HANDLERS: list[tuple[type[Exception], Callable[[Any], Response[str]]]] = [
    (InputError, _input),
    (NotFound, _not_found),
    (IdempotencyConflict, _conflict),
    (Forbidden, _forbidden),
    (PayloadTooLarge, _too_large),
    (TooManyItems, _too_large),
    (PacketError, _malformed_packet),
    (BadCursor, _bad_cursor),
    (EventsUnavailable, _aws_unavailable),
    (StoreUnavailable, _aws_unavailable),
    (QueueUnavailable, _aws_unavailable),
    (BotoCoreError, _aws_unavailable),
    (ClientError, _aws_unavailable),
    (Exception, _unexpected),
]


def register_error_handlers(app: APIGatewayRestResolver, *, request_models: bool = True) -> None:
    """The mapping on ``app``. ``request_models``: its routes validate with pydantic models,
    whose errors are mapped too (a route table without them need not import pydantic)."""
    for exc_type, handle in HANDLERS:
        app.exception_handler(exc_type)(handle)
    if request_models:
        from pydantic import ValidationError  # noqa: PLC0415 - only where the routes use models

        app.exception_handler(ValidationError)(_validation)
    app.not_found(_no_route)
