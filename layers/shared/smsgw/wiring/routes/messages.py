"""The gateway's authenticated API, the send API function's route table.

``POST|GET /v1/messages``, ``GET|DELETE /v1/messages/{id}``, ``GET /v1/inbound``,
``GET|PUT /v1/callback`` and ``GET|PUT|DELETE /v1/opt-outs/{mobile}``.
Routes translate HTTP into calls of the services; every error is turned into the
contract's JSON error by ``smsgw.api.errors``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types

from smsgw.api.errors import register_error_handlers
from smsgw.api.models import CallbackBody, InboundQuery, MessagesQuery, SendBody, to_command
from smsgw.domain import jsontext
from smsgw.domain.callbacks import SIGNATURE_HEADER, CallbackUrlError, check_url
from smsgw.domain.callers import CallerUnknown, caller_of
from smsgw.domain.errors import Forbidden, InputError
from smsgw.domain.model import SendCommand
from smsgw.observability import logger
from smsgw.services.send import fingerprint
from smsgw.services.status import DEFAULT_PAGE, MAX_PAGE

if TYPE_CHECKING:
    from smsgw.wiring.send_api import SendApi

# How far back a search reaches by default: as far as records are kept. Replies: a week,
# and at most a month at once (one index partition a day).
INBOUND_DEFAULT_DAYS = 7
INBOUND_MAX_DAYS = 31
MAX_IDEMPOTENCY_KEY = 255


def _json(status: int, body: Any) -> Response[str]:
    return Response(status, content_types.APPLICATION_JSON, json.dumps(body, ensure_ascii=False))


def register(app: APIGatewayRestResolver, graph: SendApi) -> None:  # noqa: PLR0915 - one route table
    """The routes of the send API on ``app``, over the services of ``graph``."""
    register_error_handlers(app)
    settings = graph.settings

    def _caller() -> str:
        """Who is calling: the API key's id, or the IAM role (principal) when SigV4 auth is used."""
        identity = app.current_event.request_context.identity
        try:
            return caller_of(identity.api_key_id, identity.user_arn)
        except CallerUnknown as err:
            logger.error("a request reached the API without an authenticated caller")
            raise Forbidden("forbidden") from err

    def _idempotency_key() -> str | None:
        headers = app.current_event.headers
        key = headers.get("Idempotency-Key") or headers.get("idempotency-key")
        if key is None:
            return None
        if not 0 < len(key) <= MAX_IDEMPOTENCY_KEY or not key.isascii() or not key.isprintable():
            raise InputError.of(
                "Idempotency-Key", f"must be 1 to {MAX_IDEMPOTENCY_KEY} printable ASCII characters"
            )
        return key

    def _json_body() -> Any:
        try:
            return jsontext.loads(app.current_event.body or "")
        except jsontext.NotText as err:
            raise InputError.of("body", str(err), code="invalid_json") from err
        except ValueError as err:
            raise InputError.of("body", "is not valid JSON", code="invalid_json") from err

    def _json_object() -> dict[str, Any]:
        raw = _json_body()
        if not isinstance(raw, dict):
            raise InputError.of("body", "must be a JSON object", code="invalid_json")
        return raw

    def _int_param(name: str, default: int, low: int, high: int) -> int:
        raw = app.current_event.get_query_string_value(name, None)
        if raw is None:
            return default
        if not (raw.isascii() and raw.isdigit()) or not low <= int(raw) <= high:
            raise InputError.of(name, f"must be an integer from {low} to {high}")
        return int(raw)

    def _query() -> dict[str, str]:
        return dict(app.current_event.query_string_parameters or {})

    def _range(
        since: datetime | None, until: datetime | None, default_days: int
    ) -> tuple[datetime, datetime]:
        end = until or datetime.now(UTC)
        start = since or end - timedelta(days=default_days)
        if start > end:
            raise InputError.of("from", "is after until")
        return start, end

    @app.post("/v1/messages")
    def send_messages() -> Response[str]:
        raw = _json_object()
        key = _idempotency_key()
        caller = _caller()
        request_id = graph.request_ids.new() if key is None else graph.request_ids.keyed(caller, key)

        def command(now: datetime) -> SendCommand:
            body = SendBody.model_validate(raw)
            return to_command(
                body,
                now=now,
                max_recipients=settings.max_recipients,
                account_prefix=settings.account_prefix(body.category),
                caller=caller,
                max_messages=settings.max_messages,
                max_capped_recipients=settings.max_capped_recipients,
                capped=graph.caps.categories,
                allow_loopback_callbacks=settings.callback_allow_loopback,
            )

        reply = graph.sender.send(
            command, request_id=request_id, body_fingerprint=fingerprint(raw), keyed=key is not None
        )
        return _json(202, reply)

    @app.get("/v1/messages/<request_id>")
    def get_message(request_id: str) -> Response[str]:
        cursor = _int_param("cursor", 0, 0, 99_999)
        limit = _int_param("limit", DEFAULT_PAGE, 1, MAX_PAGE)
        return _json(200, graph.statuses.status(request_id, caller=_caller(), cursor=cursor, limit=limit))

    @app.get("/v1/messages")
    def search_messages() -> Response[str]:
        query = MessagesQuery.model_validate(_query())
        if (query.reference is None) == (query.to is None):
            raise InputError.of("reference", "give either reference or to (not both)")
        since, until = _range(query.from_, query.until, settings.retention_days)
        found = graph.finder.messages(
            _caller(),
            reference=query.reference,
            to=query.to,
            since=since,
            until=until,
            limit=query.limit,
            cursor=query.cursor,
        )
        return _json(200, found)

    @app.delete("/v1/messages/<request_id>")
    def cancel_message(request_id: str) -> Response[str]:
        return _json(200, graph.cancels.cancel(request_id, caller=_caller()))

    @app.get("/v1/inbound")
    def search_inbound() -> Response[str]:
        query = InboundQuery.model_validate(_query())
        since, until = _range(query.from_, query.until, INBOUND_DEFAULT_DAYS)
        if until - since > timedelta(days=INBOUND_MAX_DAYS):
            raise InputError.of("from", f"reaches more than {INBOUND_MAX_DAYS} days before until")
        reply = graph.finder.inbound(
            _caller(), mobile=query.mobile, since=since, until=until, limit=query.limit, cursor=query.cursor
        )
        return _json(200, reply)

    def _callback_view(url: str | None, secret: str) -> dict[str, Any]:
        return {"url": url, "secret": secret, "signature_header": SIGNATURE_HEADER}

    @app.get("/v1/callback")
    def get_callback() -> Response[str]:
        found = graph.callers.ensure(_caller())
        return _json(200, _callback_view(found.url, found.secret))

    @app.put("/v1/callback")
    def put_callback() -> Response[str]:
        body = CallbackBody.model_validate(_json_object())
        if body.url is not None:
            try:
                check_url(body.url, allow_loopback=settings.callback_allow_loopback)
            except CallbackUrlError as err:
                raise InputError.of("url", str(err)) from err
        found = graph.callers.set_url(_caller(), body.url)
        return _json(200, _callback_view(found.url, found.secret))

    # API Gateway (REST) hands the path over as the client wrote it, percent-encoding included:
    # ``%2B8613800138000`` is ``+8613800138000``.

    @app.get("/v1/opt-outs/<mobile>")
    def get_opt_out(mobile: str) -> Response[str]:
        return _json(200, graph.opt_outs.get(unquote(mobile)))

    @app.put("/v1/opt-outs/<mobile>")
    def put_opt_out(mobile: str) -> Response[str]:
        created, view = graph.opt_outs.add(unquote(mobile), caller=_caller())
        return _json(201 if created else 200, view)

    @app.delete("/v1/opt-outs/<mobile>")
    def delete_opt_out(mobile: str) -> Response[str]:
        graph.opt_outs.remove(unquote(mobile), caller=_caller())
        return Response(204, content_types.APPLICATION_JSON, "")
