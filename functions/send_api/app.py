"""Lambda: the gateway's authenticated API.

``POST /v1/messages``, ``GET /v1/messages/{id}`` and ``GET|PUT|DELETE /v1/opt-outs/{mobile}``.
Routes translate HTTP into calls of the services; every error is turned into the
contract's JSON error by ``smsgw.api.errors``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.parameters import SecretsProvider
from aws_lambda_powertools.utilities.typing import LambdaContext

from smsgw.adapters.aws import client
from smsgw.adapters.frequency import FrequencyStore
from smsgw.adapters.inbound import InboundStore
from smsgw.adapters.queue import SendQueue
from smsgw.adapters.secrets import RequestIdKey
from smsgw.adapters.store import MessageStore
from smsgw.api.errors import register_error_handlers
from smsgw.api.models import SendBody, to_command
from smsgw.domain import jsontext
from smsgw.domain.callers import CallerUnknown, RequestIds, caller_of
from smsgw.domain.caps import FrequencyCaps
from smsgw.domain.errors import Forbidden, InputError
from smsgw.observability import logger, metrics
from smsgw.services.optouts import OptOutService
from smsgw.services.send import SendService, fingerprint
from smsgw.services.status import DEFAULT_PAGE, MAX_PAGE, StatusService
from smsgw.settings import Settings

settings = Settings.from_env()
settings.require("send_queue_url", "request_id_secret_name")
dynamodb = client("dynamodb", settings.aws_limits)
request_ids = RequestIds(
    RequestIdKey(
        lambda: SecretsProvider(boto3_client=client("secretsmanager", settings.aws_limits)),
        settings.request_id_secret_name,
    )
)
store = MessageStore(
    dynamodb,
    settings.messages_table,
    retention_days=settings.retention_days,
    accepting_grace_seconds=settings.intake_grace_seconds,
)
inbound = InboundStore(dynamodb, settings.messages_table, retention_days=settings.retention_days)
caps = FrequencyCaps.parse(
    verification=settings.frequency_caps_verification,
    transactional=settings.frequency_caps_transactional,
    marketing=settings.frequency_caps_marketing,
)
sender = SendService(
    store,
    SendQueue(client("sqs", settings.aws_limits), settings.send_queue_url),
    inbound,
    FrequencyStore(dynamodb, settings.messages_table),
    caps=caps,
    per_submit=settings.numbers_per_submit,
    default_validity_seconds=settings.default_validity_seconds,
)
statuses = StatusService(store)
opt_outs = OptOutService(inbound)

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
    command = to_command(
        SendBody.model_validate(raw),
        now=datetime.now(UTC),
        max_recipients=settings.max_recipients,
        account_prefix=settings.guodu_account_prefix,
        caller=caller,
        max_messages=settings.max_messages,
        max_capped_recipients=settings.max_capped_recipients,
        capped=caps.categories,
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
