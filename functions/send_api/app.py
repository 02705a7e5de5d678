"""Lambda: the gateway's authenticated API.

``POST|GET /v1/messages``, ``GET|DELETE /v1/messages/{id}``, ``GET /v1/inbound``,
``GET|PUT /v1/callback`` and ``GET|PUT|DELETE /v1/opt-outs/{mobile}``.
Routes translate HTTP into calls of the services; every error is turned into the
contract's JSON error by ``smsgw.api.errors``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.parameters import SecretsProvider
from aws_lambda_powertools.utilities.typing import LambdaContext

from smsgw.adapters.aws import client
from smsgw.adapters.callers import CallerStore
from smsgw.adapters.events import EventPublisher
from smsgw.adapters.frequency import FrequencyStore
from smsgw.adapters.optouts import OptOutStore
from smsgw.adapters.queue import LaneQueues
from smsgw.adapters.search import SearchStore
from smsgw.adapters.secrets import RequestIdKey
from smsgw.adapters.table import MessageTable
from smsgw.api.errors import register_error_handlers
from smsgw.api.models import CallbackBody, InboundQuery, MessagesQuery, SendBody, to_command
from smsgw.domain import jsontext
from smsgw.domain.callbacks import SIGNATURE_HEADER, CallbackUrlError, check_url
from smsgw.domain.callers import CallerUnknown, RequestIds, caller_of
from smsgw.domain.caps import FrequencyCaps
from smsgw.domain.errors import Forbidden, InputError
from smsgw.observability import logger, metrics
from smsgw.services.announce import SOURCE
from smsgw.services.cancel import CancelService
from smsgw.services.optouts import OptOutService
from smsgw.services.search import SearchService
from smsgw.services.send import SendService, fingerprint
from smsgw.services.status import DEFAULT_PAGE, MAX_PAGE, StatusService
from smsgw.settings import Settings

settings = Settings.from_env()
settings.require("send_queue_url", "request_id_secret_name", "event_bus_name")
dynamodb = client("dynamodb", settings.aws_limits)
sqs = client("sqs", settings.aws_limits)
request_ids = RequestIds(
    RequestIdKey(
        lambda: SecretsProvider(boto3_client=client("secretsmanager", settings.aws_limits)),
        settings.request_id_secret_name,
    )
)
store = MessageTable(
    dynamodb,
    settings.messages_table,
    retention_days=settings.retention_days,
    accepting_grace_seconds=settings.intake_grace_seconds,
)
opt_out_list = OptOutStore(dynamodb, settings.messages_table, retention_days=settings.retention_days)
search = SearchStore(dynamodb, settings.messages_table)
caps = FrequencyCaps.parse(
    verification=settings.frequency_caps_verification,
    transactional=settings.frequency_caps_transactional,
    marketing=settings.frequency_caps_marketing,
)
sender = SendService(
    store,
    LaneQueues.of_urls(sqs, {c: lane.queue_url for c, lane in settings.lanes().items()}),
    opt_out_list,
    FrequencyStore(dynamodb, settings.messages_table),
    caps=caps,
    per_submit=settings.numbers_per_submit,
    default_validity_seconds=settings.default_validity_seconds,
    search=search,
    hold_after_seconds=settings.scheduled_hold_seconds,
    release_lead_seconds=settings.scheduled_release_lead_seconds,
)
statuses = StatusService(store)
opt_outs = OptOutService(opt_out_list)
finder = SearchService(store, search)
cancels = CancelService(
    store, EventPublisher(client("events", settings.aws_limits), settings.event_bus_name, source=SOURCE)
)
callers = CallerStore(dynamodb, settings.messages_table)
# How far back a search reaches by default: as far as records are kept. Replies: a week,
# and at most a month at once (one index partition a day).
INBOUND_DEFAULT_DAYS = 7
INBOUND_MAX_DAYS = 31

app = APIGatewayRestResolver()
register_error_handlers(app)

MAX_IDEMPOTENCY_KEY = 255


def _json(status: int, body: Any) -> Response[str]:
    return Response(status, content_types.APPLICATION_JSON, json.dumps(body, ensure_ascii=False))


def _caller() -> str:
    """Who is calling: the API key's id, or the IAM role (principal) when SigV4 auth is used."""
    identity = app.current_event.request_context.identity
    try:
        return caller_of(identity.api_key_id, identity.user_arn)
    except CallerUnknown as err:
        logger.error("a request reached the API without an authenticated caller")
        raise Forbidden("forbidden") from err


def _idempotency_key() -> str | None:
    key = app.current_event.headers.get("Idempotency-Key") or app.current_event.headers.get("idempotency-key")
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


def _int_param(name: str, default: int, low: int, high: int) -> int:
    raw = app.current_event.get_query_string_value(name, None)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()) or not low <= int(raw) <= high:
        raise InputError.of(name, f"must be an integer from {low} to {high}")
    return int(raw)


@app.post("/v1/messages")
def send_messages() -> Response[str]:
    raw = _json_body()
    if not isinstance(raw, dict):
        raise InputError.of("body", "must be a JSON object", code="invalid_json")
    key = _idempotency_key()
    caller = _caller()
    request_id = request_ids.new() if key is None else request_ids.keyed(caller, key)
    body_fingerprint = fingerprint(raw)
    # The same key again gets the first reply before the body is judged afresh: a send_at
    # that has passed since, or a cap the first send used up, must not turn it into a 400.
    if key is not None and (reply := sender.replay(request_id, body_fingerprint)) is not None:
        return _json(202, reply)
    body = SendBody.model_validate(raw)
    command = to_command(
        body,
        now=datetime.now(UTC),
        max_recipients=settings.max_recipients,
        account_prefix=settings.account_prefix(body.category),
        caller=caller,
        max_messages=settings.max_messages,
        max_capped_recipients=settings.max_capped_recipients,
        capped=caps.categories,
        allow_loopback_callbacks=settings.callback_allow_loopback,
    )
    reply = sender.accept(
        command, request_id=request_id, body_fingerprint=body_fingerprint, keyed=key is not None
    )
    return _json(202, reply)


@app.get("/v1/messages/<request_id>")
def get_message(request_id: str) -> Response[str]:
    cursor = _int_param("cursor", 0, 0, 99_999)
    limit = _int_param("limit", DEFAULT_PAGE, 1, MAX_PAGE)
    return _json(200, statuses.status(request_id, caller=_caller(), cursor=cursor, limit=limit))


def _query() -> dict[str, str]:
    return dict(app.current_event.query_string_parameters or {})


def _range(since: datetime | None, until: datetime | None, default_days: int) -> tuple[datetime, datetime]:
    end = until or datetime.now(UTC)
    start = since or end - timedelta(days=default_days)
    if start > end:
        raise InputError.of("from", "is after until")
    return start, end


@app.get("/v1/messages")
def search_messages() -> Response[str]:
    query = MessagesQuery.model_validate(_query())
    if (query.reference is None) == (query.to is None):
        raise InputError.of("reference", "give either reference or to (not both)")
    since, until = _range(query.from_, query.until, settings.retention_days)
    return _json(
        200,
        finder.messages(
            _caller(),
            reference=query.reference,
            to=query.to,
            since=since,
            until=until,
            limit=query.limit,
            cursor=query.cursor,
        ),
    )


@app.delete("/v1/messages/<request_id>")
def cancel_message(request_id: str) -> Response[str]:
    return _json(200, cancels.cancel(request_id, caller=_caller()))


@app.get("/v1/inbound")
def search_inbound() -> Response[str]:
    query = InboundQuery.model_validate(_query())
    since, until = _range(query.from_, query.until, INBOUND_DEFAULT_DAYS)
    if until - since > timedelta(days=INBOUND_MAX_DAYS):
        raise InputError.of("from", f"reaches more than {INBOUND_MAX_DAYS} days before until")
    reply = finder.inbound(
        _caller(), mobile=query.mobile, since=since, until=until, limit=query.limit, cursor=query.cursor
    )
    return _json(200, reply)


def _callback_view(url: str | None, secret: str) -> dict[str, Any]:
    return {"url": url, "secret": secret, "signature_header": SIGNATURE_HEADER}


@app.get("/v1/callback")
def get_callback() -> Response[str]:
    found = callers.ensure(_caller())
    return _json(200, _callback_view(found.url, found.secret))


@app.put("/v1/callback")
def put_callback() -> Response[str]:
    raw = _json_body()
    if not isinstance(raw, dict):
        raise InputError.of("body", "must be a JSON object", code="invalid_json")
    body = CallbackBody.model_validate(raw)
    if body.url is not None:
        try:
            check_url(body.url, allow_loopback=settings.callback_allow_loopback)
        except CallbackUrlError as err:
            raise InputError.of("url", str(err)) from err
    found = callers.set_url(_caller(), body.url)
    return _json(200, _callback_view(found.url, found.secret))


# API Gateway (REST) hands the path over as the client wrote it, percent-encoding included:
# ``%2B8613800138000`` is ``+8613800138000``.


@app.get("/v1/opt-outs/<mobile>")
def get_opt_out(mobile: str) -> Response[str]:
    return _json(200, opt_outs.get(unquote(mobile)))


@app.put("/v1/opt-outs/<mobile>")
def put_opt_out(mobile: str) -> Response[str]:
    created, view = opt_outs.add(unquote(mobile), caller=_caller())
    return _json(201 if created else 200, view)


@app.delete("/v1/opt-outs/<mobile>")
def delete_opt_out(mobile: str) -> Response[str]:
    opt_outs.remove(unquote(mobile), caller=_caller())
    return Response(204, content_types.APPLICATION_JSON, "")


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
