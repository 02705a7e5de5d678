"""The local API Gateway: a REST API with Lambda proxy integrations (payload format 1.0).

It serves exactly the routes the template declares (the ``paths`` of its APIs' OpenAPI
``DefinitionBody``, read by ``provision.api_routes``), at the root
(``http://127.0.0.1:3000/v1/messages``) and under the stage name
(``http://127.0.0.1:3000/live/v1/messages``), and behaves as API Gateway does where a
client can tell:

- an unknown path, or a method the path does not declare: 403, response type
  ``MISSING_AUTHENTICATION_TOKEN`` ("Missing Authentication Token");
- any other method (``TRACE``, ``CONNECT``, ``FOO``...), too: 403
  ``MISSING_AUTHENTICATION_TOKEN``, never ``http.server``'s 501; a request ``http.server``
  cannot parse gets API Gateway's 4xx in the same shape (``DEFAULT_4XX``);
- a route with ``ApiKeyRequired`` and no or a wrong ``x-api-key``: 403,
  ``INVALID_API_KEY`` ("Forbidden"), the function is not invoked; with a right key (the
  API accepts several, each with its own id, as API Gateway's API keys) the event's
  ``requestContext.identity`` carries ``apiKey`` and that key's ``apiKeyId``;
- a body over 10 MB: 413, ``REQUEST_TOO_LARGE``; an event over Lambda's 6 MB limit for a
  synchronous invocation (a body of about 6 MB or more): 413 ``REQUEST_TOO_LARGE`` as well,
  the function is not invoked; a function error, timeout or malformed
  proxy response: 502, ``DEFAULT_5XX`` ("Internal server error"); no answer within the
  29-second integration timeout: 504, ``INTEGRATION_TIMEOUT``.

Those answers are API Gateway's "gateway responses": the body is API Gateway's default
``{"message": "..."}`` unless the API's OpenAPI body customises the response type in
``x-amazon-apigateway-gateway-responses`` (read from the template by
:func:`gateway_responses_of`), as API Gateway does: the type's own response, else the
``DEFAULT_4XX``/``DEFAULT_5XX`` one, else the default.

The event is the REST proxy event (``sam local generate-event apigateway aws-proxy``):
``path`` stays percent-encoded while path and query parameters are decoded, headers keep
the client's spelling, and the stage-less path is in ``path`` with the staged one in
``requestContext.path``.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import logging
import re
import secrets
import socket
import socketserver
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from smsgw_local.runtime import Invocation, RuntimeStopped
from smsgw_local.template import Context, TemplateError, resolve, resources_of_type

log = logging.getLogger("smsgw_local.api")

MAX_PAYLOAD_BYTES = 10 * 1024 * 1024  # API Gateway's limit for a request body
# Lambda's limit for a synchronous invocation's request: the whole event, as JSON.
LAMBDA_MAX_REQUEST_BYTES = 6 * 1024 * 1024
INTEGRATION_TIMEOUT_SECONDS = 29.0
# Headers about the client's connection, which API Gateway does not pass on.
_CONNECTION_HEADERS = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "expect",
    }
)
_PROXY_RESPONSE_KEYS = frozenset({"statusCode", "headers", "multiValueHeaders", "body", "isBase64Encoded"})


@dataclass(frozen=True)
class Route:
    method: str  # upper case, or ANY
    path: str  # the template's form: /v1/messages/{id}, /files/{proxy+}
    function: str  # logical id of the function behind it
    api_key_required: bool


@dataclass
class _Resource:
    path: str
    pattern: re.Pattern[str]
    names: tuple[str, ...]
    literal_segments: int
    greedy: bool
    methods: dict[str, Route] = field(default_factory=dict)

    def route_for(self, method: str) -> Route | None:
        return self.methods.get(method) or self.methods.get("ANY")


def _compile(path: str) -> tuple[re.Pattern[str], tuple[str, ...], int, bool]:
    parts: list[str] = []
    names: list[str] = []
    literal = 0
    greedy = False
    for segment in path.strip("/").split("/") if path != "/" else []:
        match = re.fullmatch(r"\{([A-Za-z0-9_.\-]+)(\+?)\}", segment)
        if match is None:
            parts.append(re.escape(segment))
            literal += 1
        elif match.group(2):
            parts.append("(.+)")
            names.append(match.group(1))
            greedy = True
        else:
            parts.append("([^/]+)")
            names.append(match.group(1))
    return re.compile("^/" + "/".join(parts) + "$"), tuple(names), literal, greedy


class RouteTable:
    """The API's resources, matched as API Gateway matches them: the most specific wins."""

    def __init__(self, routes: Iterable[Route]) -> None:
        resources: dict[str, _Resource] = {}
        for route in routes:
            resource = resources.get(route.path)
            if resource is None:
                pattern, names, literal, greedy = _compile(route.path)
                resource = resources[route.path] = _Resource(route.path, pattern, names, literal, greedy)
            if route.method in resource.methods:
                raise ValueError(f"two routes for {route.method} {route.path}")
            resource.methods[route.method] = route
        # Literal paths before parameters, parameters before greedy {proxy+}.
        self._resources = sorted(resources.values(), key=lambda r: (r.greedy, -r.literal_segments))

    def __bool__(self) -> bool:
        return bool(self._resources)

    @property
    def routes(self) -> list[Route]:
        return [route for resource in self._resources for route in resource.methods.values()]

    def resolve(self, path: str) -> tuple[_Resource, dict[str, str]] | None:
        for resource in self._resources:
            match = resource.pattern.match(path)
            if match is not None:
                values = {
                    name: unquote(value) for name, value in zip(resource.names, match.groups(), strict=True)
                }
                return resource, values
        return None


@dataclass(frozen=True)
class ApiSettings:
    """What the local API Gateway needs to know besides its routes."""

    stage: str
    api_key: str
    api_key_id: str = "local-api-key-id"
    # More keys the API accepts, each with its own id: key -> id (each its own caller).
    more_api_keys: Mapping[str, str] = field(default_factory=dict)
    api_id: str = "localapi00"
    account: str = "123456789012"
    region: str = "us-east-1"
    binary_media_types: tuple[str, ...] = ()
    # x-amazon-apigateway-gateway-responses: response type -> its customisation
    gateway_responses: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def key_id(self, given: str) -> str | None:
        """The id of the API key ``given``, or None when it is no key of this API. Every key
        is compared, each in constant time."""
        found = None
        for key, key_id in ((self.api_key, self.api_key_id), *self.more_api_keys.items()):
            if hmac.compare_digest(given.encode(), key.encode()):
                found = key_id
        return found


@dataclass(frozen=True)
class Request:
    method: str
    target: str  # path and query, as sent
    headers: tuple[tuple[str, str], ...]
    body: bytes
    source_ip: str


@dataclass(frozen=True)
class Reply:
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


@dataclass(frozen=True)
class GatewayError:
    """One of API Gateway's own answers, before its gateway response is applied."""

    response_type: str  # the gateway response type, e.g. INVALID_API_KEY
    status: int  # the status API Gateway answers when the response sets none
    message: str  # $context.error.message
    error_type: str | None = None  # the x-amzn-ErrorType header


MISSING_TOKEN = GatewayError(
    "MISSING_AUTHENTICATION_TOKEN", 403, "Missing Authentication Token", "MissingAuthenticationTokenException"
)
FORBIDDEN = GatewayError("INVALID_API_KEY", 403, "Forbidden", "ForbiddenException")
TOO_LARGE = GatewayError("REQUEST_TOO_LARGE", 413, "Request Too Long", "RequestTooLargeException")
INTERNAL_ERROR = GatewayError("DEFAULT_5XX", 502, "Internal server error", "InternalServerErrorException")
TIMED_OUT = GatewayError("INTEGRATION_TIMEOUT", 504, "Endpoint request timed out")
BAD_REQUEST = GatewayError("DEFAULT_4XX", 400, "Bad Request")

# API Gateway's body when a response type is not customised.
DEFAULT_RESPONSE_TEMPLATE = '{"message":$context.error.messageString}'
_TEMPLATE_VARIABLE = re.compile(r"\$([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)")
_HEADER_PARAMETER = "gatewayresponse.header."
# What a gateway response template may use here (API Gateway substitutes, no VTL).
_VARIABLES = frozenset(
    {
        "context.error.message",
        "context.error.messageString",
        "context.error.responseType",
        "context.requestId",
        "context.stage",
    }
)


class GatewayResponses:
    """API Gateway's gateway responses for one API: its customisations over the defaults.

    Only what API Gateway allows in a gateway response and the gateway's template can use is
    implemented: ``statusCode``, static header values (``'value'``) in ``responseParameters``
    and an ``application/json`` template using ``$context.error.*``, ``$context.requestId``
    and ``$context.stage``. Anything else raises :class:`TemplateError` at construction, so
    the template cannot grow a customisation the local stack would silently answer without.
    """

    def __init__(self, configured: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        self._configured = {str(kind): dict(spec) for kind, spec in (configured or {}).items()}
        for kind, spec in self._configured.items():
            self._check(kind, spec)

    @staticmethod
    def _check(kind: str, spec: Mapping[str, Any]) -> None:
        unknown = set(spec) - {"statusCode", "responseParameters", "responseTemplates"}
        if unknown:
            raise TemplateError(f"gateway response {kind}: unsupported {', '.join(sorted(unknown))}")
        status = spec.get("statusCode")
        if status is not None and not (str(status).isdigit() and 400 <= int(status) <= 599):
            raise TemplateError(f"gateway response {kind}: statusCode {status!r} is not a 4xx or 5xx")
        for name, value in (spec.get("responseParameters") or {}).items():
            if not str(name).startswith(_HEADER_PARAMETER) or not re.fullmatch(r"'[^']*'", str(value)):
                raise TemplateError(f"gateway response {kind}: only static headers are supported ({name})")
        templates = spec.get("responseTemplates") or {}
        if set(templates) - {"application/json"}:
            raise TemplateError(f"gateway response {kind}: only an application/json template is supported")
        for template in templates.values():
            for match in _TEMPLATE_VARIABLE.finditer(str(template)):
                if match.group(1) not in _VARIABLES:
                    raise TemplateError(f"gateway response {kind}: unsupported variable {match.group(0)}")

    def reply(self, error: GatewayError, *, request_id: str | None = None, stage: str = "") -> Reply:
        """What API Gateway answers for ``error``, as this API customises it: the type's own
        response, else the DEFAULT_4XX/DEFAULT_5XX one; a status set on the DEFAULT one
        applies to every type of its class that sets none."""
        fallback = self._configured.get("DEFAULT_5XX" if error.status >= 500 else "DEFAULT_4XX", {})
        response = self._configured.get(error.response_type, fallback)
        status = int(response.get("statusCode") or fallback.get("statusCode") or error.status)
        templates = response.get("responseTemplates") or {}
        template = templates.get("application/json", DEFAULT_RESPONSE_TEMPLATE)
        request_id = request_id or str(uuid.uuid4())
        values = {
            "context.error.message": error.message,
            "context.error.messageString": json.dumps(error.message),
            "context.error.responseType": error.response_type,
            "context.requestId": request_id,
            "context.stage": stage,
        }

        def substitute(match: re.Match[str]) -> str:
            return values[match.group(1)]

        body = _TEMPLATE_VARIABLE.sub(substitute, str(template))
        headers = [("Content-Type", "application/json")]
        if error.error_type:
            headers.append(("x-amzn-ErrorType", error.error_type))
        headers.append(("x-amzn-RequestId", request_id))
        for name, value in (response.get("responseParameters") or {}).items():
            headers.append((str(name)[len(_HEADER_PARAMETER) :], str(value)[1:-1]))
        return Reply(status, tuple(headers), body.encode("utf-8"))


def gateway_responses_of(template: Mapping[str, Any], ctx: Context) -> dict[str, dict[str, Any]]:
    """The gateway responses the template's APIs customise (their OpenAPI bodies'
    ``x-amazon-apigateway-gateway-responses``), resolved against ``ctx``."""
    found: dict[str, dict[str, Any]] = {}
    for logical, api in resources_of_type(template, "AWS::Serverless::Api").items():
        properties = api.get("Properties", {})
        if properties.get("GatewayResponses"):
            raise TemplateError(f"{logical}: write gateway responses in DefinitionBody, not GatewayResponses")
        body = properties.get("DefinitionBody", {})
        for kind, spec in resolve(body.get("x-amazon-apigateway-gateway-responses", {}), ctx).items():
            if kind in found and found[kind] != spec:
                raise TemplateError(f"two APIs customise {kind} differently; the local API is one API")
            found[kind] = spec
    GatewayResponses(found)  # refuse what the local API could not answer as API Gateway does
    return found


def _header(headers: Iterable[tuple[str, str]], name: str) -> str | None:
    found = None
    for key, value in headers:
        if key.lower() == name.lower():
            found = value
    return found


def _is_binary(content_type: str | None, binary_types: tuple[str, ...]) -> bool:
    if not content_type or not binary_types:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    for pattern in binary_types:
        wanted = pattern.replace("~1", "/").lower()
        if wanted in ("*/*", media) or (wanted.endswith("/*") and media.startswith(wanted[:-1])):
            return True
    return False


def _short_id(seed: str, length: int) -> str:
    return hashlib.sha256(seed.encode("utf-8")).hexdigest()[:length]


def build_proxy_event(
    settings: ApiSettings,
    route: Route,
    request: Request,
    *,
    path: str,
    path_parameters: Mapping[str, str],
    request_id: str,
    api_key: str | None,
    now: float | None = None,
    api_key_id: str | None = None,
) -> dict[str, Any]:
    """The event API Gateway (REST, Lambda proxy integration) sends for ``request``."""
    moment = time.time() if now is None else now
    query = urlsplit(request.target).query
    headers: dict[str, str] = {}
    multi_headers: dict[str, list[str]] = {}
    for name, value in request.headers:
        if name.lower() in _CONNECTION_HEADERS:
            continue
        headers[name] = value
        multi_headers.setdefault(name, []).append(value)
    host = _header(request.headers, "Host") or "127.0.0.1"
    added = {
        "X-Amzn-Trace-Id": f"Root=1-{int(moment):08x}-{secrets.token_hex(12)}",
        "X-Forwarded-For": request.source_ip,
        "X-Forwarded-Port": host.rsplit(":", 1)[1] if ":" in host else "80",
        "X-Forwarded-Proto": "http",
    }
    for name, value in added.items():
        if _header(request.headers, name) is None:
            headers[name] = value
            multi_headers[name] = [value]
    pairs = parse_qsl(query, keep_blank_values=True)
    single_query = dict(pairs)
    multi_query: dict[str, list[str]] = {}
    for key, value in pairs:
        multi_query.setdefault(key, []).append(value)
    binary = _is_binary(_header(request.headers, "Content-Type"), settings.binary_media_types)
    body: str | None
    if not request.body:
        body = None
    elif binary:
        body = base64.b64encode(request.body).decode("ascii")
    else:
        body = request.body.decode("utf-8", errors="replace")
    stamp = datetime.fromtimestamp(moment, UTC)
    domain = host
    identity: dict[str, Any] = {
        "cognitoIdentityPoolId": None,
        "accountId": None,
        "cognitoIdentityId": None,
        "caller": None,
        "accessKey": None,
        "sourceIp": request.source_ip,
        "principalOrgId": None,
        "cognitoAuthenticationType": None,
        "cognitoAuthenticationProvider": None,
        "userArn": None,
        "userAgent": _header(request.headers, "User-Agent"),
        "user": None,
    }
    if api_key is not None:
        identity["apiKey"] = api_key
        identity["apiKeyId"] = api_key_id or settings.key_id(api_key) or settings.api_key_id
    return {
        "resource": route.path,
        "path": path,
        "httpMethod": request.method,
        "headers": headers,
        "multiValueHeaders": multi_headers,
        "queryStringParameters": single_query or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": dict(path_parameters) or None,
        "stageVariables": None,
        "requestContext": {
            "resourceId": _short_id(route.path, 6),
            "resourcePath": route.path,
            "httpMethod": request.method,
            "extendedRequestId": base64.b64encode(secrets.token_bytes(10)).decode("ascii"),
            "requestTime": stamp.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "path": f"/{settings.stage}{path}",
            "accountId": settings.account,
            "protocol": "HTTP/1.1",
            "stage": settings.stage,
            "domainPrefix": domain.split(".", 1)[0],
            "requestTimeEpoch": int(moment * 1000),
            "requestId": request_id,
            "identity": identity,
            "domainName": domain,
            "deploymentId": _short_id(settings.api_id + settings.stage, 6),
            "apiId": settings.api_id,
        },
        "body": body,
        "isBase64Encoded": binary and body is not None,
    }


def _header_value(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str | int | float):
        return str(value)
    raise MalformedResponse("a header value is not a string or number")


class MalformedResponse(ValueError):
    """What API Gateway calls a "Malformed Lambda proxy response" (it answers 502)."""


def _status(result: Mapping[str, Any]) -> int:
    status = result.get("statusCode", 200)
    if isinstance(status, str) and status.isdigit():
        status = int(status)
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        raise MalformedResponse("statusCode is not an HTTP status")
    return status


def _body(result: Mapping[str, Any]) -> bytes:
    body = result.get("body")
    if body is not None and not isinstance(body, str):
        raise MalformedResponse("body is not a string")
    if not result.get("isBase64Encoded"):
        return (body or "").encode("utf-8")
    try:
        return base64.b64decode(body or "", validate=True)
    except ValueError as err:
        raise MalformedResponse("body is not base64 although isBase64Encoded is true") from err


def _response_headers(result: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``headers`` and ``multiValueHeaders`` merged; for a name in both, the multi values."""
    single = result.get("headers") or {}
    multi = result.get("multiValueHeaders") or {}
    if not isinstance(single, dict) or not isinstance(multi, dict):
        raise MalformedResponse("headers and multiValueHeaders must be objects")
    headers = [(str(name), _header_value(value)) for name, value in single.items() if name not in multi]
    for name, values in multi.items():
        if not isinstance(values, list):
            raise MalformedResponse("a multiValueHeaders entry is not a list")
        headers.extend((str(name), _header_value(value)) for value in values)
    if _header(headers, "Content-Type") is None:
        headers.append(("Content-Type", "application/json"))
    return headers


def reply_from_proxy_result(result: Any) -> Reply:
    """The HTTP answer for a proxy integration's result (:class:`MalformedResponse` when
    API Gateway would refuse it)."""
    if not isinstance(result, dict):
        raise MalformedResponse("the result is not a JSON object")
    unknown = set(result) - _PROXY_RESPONSE_KEYS
    if unknown:
        raise MalformedResponse(f"unexpected keys: {', '.join(sorted(unknown))}")
    return Reply(_status(result), tuple(_response_headers(result)), _body(result))


Invoker = Callable[[str, dict[str, Any]], Invocation]


@dataclass(frozen=True)
class Handled:
    reply: Reply
    resource: str | None = None  # the matched resource (route template), if any
    function: str | None = None  # the function invoked, if any


class LocalApiGateway:
    """Routes, keys and events: everything but the sockets (see :class:`ApiServer`)."""

    def __init__(
        self,
        settings: ApiSettings,
        routes: Iterable[Route],
        invoke: Invoker,
        function_timeouts: Mapping[str, float],
    ) -> None:
        self.settings = settings
        self.table = RouteTable(routes)
        self.responses = GatewayResponses(settings.gateway_responses)
        self._invoke = invoke
        self._timeouts = dict(function_timeouts)

    def refuse(self, error: GatewayError, request_id: str | None = None) -> Reply:
        """API Gateway's own answer for ``error``, with this API's gateway responses."""
        return self.responses.reply(error, request_id=request_id, stage=self.settings.stage)

    def _locate(self, raw_path: str) -> tuple[str, _Resource, dict[str, str]] | None:
        found = self.table.resolve(raw_path)
        if found is not None:
            return raw_path, *found
        prefix = f"/{self.settings.stage}"
        if raw_path.startswith(prefix + "/"):
            path = raw_path[len(prefix) :]
            found = self.table.resolve(path)
            if found is not None:
                return path, *found
        return None

    def handle(self, request: Request) -> Handled:
        """The answer to ``request``: what API Gateway would answer, and what it matched."""
        raw_path = urlsplit(request.target).path or "/"
        located = self._locate(raw_path)
        if located is None:
            return Handled(self.refuse(MISSING_TOKEN))
        path, resource, parameters = located
        route = resource.route_for(request.method)
        if route is None:
            return Handled(self.refuse(MISSING_TOKEN), resource.path)
        api_key: str | None = None
        api_key_id: str | None = None
        if route.api_key_required:
            given = _header(request.headers, "x-api-key")
            api_key_id = None if given is None else self.settings.key_id(given)
            if api_key_id is None:
                return Handled(self.refuse(FORBIDDEN), resource.path)
            api_key = given
        request_id = str(uuid.uuid4())
        event = build_proxy_event(
            self.settings,
            route,
            request,
            path=path,
            path_parameters=parameters,
            request_id=request_id,
            api_key=api_key,
            api_key_id=api_key_id,
        )
        if len(json.dumps(event, ensure_ascii=False).encode("utf-8")) > LAMBDA_MAX_REQUEST_BYTES:
            # Lambda refuses the invocation; API Gateway answers it as a request too large.
            return Handled(self.refuse(TOO_LARGE, request_id), resource.path)
        return Handled(self._integrate(route, event), resource.path, route.function)

    def _integrate(self, route: Route, event: dict[str, Any]) -> Reply:
        """Invoke the route's function with ``event``; its answer as API Gateway gives it."""
        request_id = event["requestContext"]["requestId"]
        invocation = self._call(route.function, event)
        if invocation is None:
            return self.refuse(TIMED_OUT, request_id)
        if not invocation.ok:
            return self.refuse(INTERNAL_ERROR, request_id)
        try:
            reply = reply_from_proxy_result(invocation.payload)
        except MalformedResponse as err:
            log.error("%s: malformed Lambda proxy response (%s)", route.function, err)
            return self.refuse(INTERNAL_ERROR, request_id)
        extra = (
            ("x-amzn-RequestId", request_id),
            ("x-amz-apigw-id", event["requestContext"]["extendedRequestId"]),
        )
        return Reply(reply.status, reply.headers + extra, reply.body)

    def _call(self, function: str, event: dict[str, Any]) -> Invocation | None:
        """Invoke; None when API Gateway's 29-second integration timeout hits first."""
        try:
            if self._timeouts.get(function, 0.0) <= INTEGRATION_TIMEOUT_SECONDS:
                return self._invoke(function, event)
            outcome: list[Invocation] = []
            thread = threading.Thread(
                target=lambda: outcome.append(self._invoke(function, event)), daemon=True
            )
            thread.start()
            thread.join(INTEGRATION_TIMEOUT_SECONDS)
            return outcome[0] if outcome else None
        except RuntimeStopped:
            return Invocation(function, "", ok=False, error={"errorType": "Local.Stopped"})


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128
    gateway: LocalApiGateway
    connections: set[socket.socket]
    connections_lock: threading.Lock

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks up the host's FQDN, a DNS query we do not need.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    timeout = 120  # an idle keep-alive connection is closed after this

    def setup(self) -> None:
        super().setup()
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            super().finish()
        with self.server.connections_lock:
            self.server.connections.discard(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass  # the request line holds the path, and the push route's path holds a secret

    def send_response(self, code: int, message: str | None = None) -> None:
        # Like API Gateway: a Date header, no "Server: BaseHTTP/..." header.
        self.log_request(code)
        self.send_response_only(code, message)
        self.send_header("Date", self.date_time_string())

    def handle_expect_100(self) -> bool:
        if self._declared_length() > MAX_PAYLOAD_BYTES:
            self._write(self.server.gateway.refuse(TOO_LARGE), close=True)
            return False
        return super().handle_expect_100()

    def _declared_length(self) -> int:
        try:
            return int(self.headers.get("Content-Length", "0"))
        except ValueError:
            return -1

    def _read_body(self) -> bytes | None:
        """The request body; None when it is over the limit (the connection is then closed)."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            total = 0
            while True:
                size = int(self.rfile.readline(1024).split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                total += size
                if total > MAX_PAYLOAD_BYTES:
                    return None
                chunks.append(self.rfile.read(size))
                self.rfile.readline(1024)
        length = self._declared_length()
        if length > MAX_PAYLOAD_BYTES:
            return None
        return self.rfile.read(length) if length > 0 else b""

    def _serve(self) -> None:
        started = time.perf_counter()
        if self._declared_length() < 0:
            self._write(self.server.gateway.refuse(BAD_REQUEST), close=True)
            return
        body = self._read_body()
        if body is None:
            self._write(self.server.gateway.refuse(TOO_LARGE), close=True)
            return
        request = Request(
            method=self.command,
            target=self.path,
            headers=tuple((str(k), str(v)) for k, v in self.headers.items()),
            body=body,
            source_ip=self.client_address[0],
        )
        handled = self.server.gateway.handle(request)
        self._write(handled.reply)
        # The resource, not the path, once one matched (as the template's access log does):
        # the push route's path holds its secret token.
        log.info(
            '"%s %s" %d%s %.0f ms',
            self.command,
            # An unrouted path is not logged either: a mistyped route may hold a number
            # ("/v1/opt-out/138...") or a token, and the cloud's access log has no path.
            handled.resource or "(no route)",
            handled.reply.status,
            f" {handled.function}" if handled.function else "",
            (time.perf_counter() - started) * 1000,
        )

    def _write(self, reply: Reply, *, close: bool = False) -> None:
        self.send_response(reply.status)
        for name, value in reply.headers:
            if name.lower() not in ("content-length", "connection", "transfer-encoding", "date"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(reply.body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve

    def __getattr__(self, name: str) -> Any:
        # http.server answers a method it has no do_<METHOD> for with its own 501; API
        # Gateway routes every method, and answers one the path does not declare with 403.
        if name.startswith("do_"):
            return self._serve
        raise AttributeError(name)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """``http.server``'s own refusals (a request line or headers it cannot read, a URI
        too long), in API Gateway's shape instead of an HTML page."""
        if not hasattr(self, "command") or self.command is None:
            self.command = ""
        # Unreadable, so answered in HTTP/1.1 (http.server would answer HTTP/0.9: no status
        # line), with the status's phrase only: its own message would echo the request line,
        # and the push route's path is a secret.
        self.request_version = self.protocol_version
        # Every one of them is about the client's request (505: an HTTP version nobody
        # speaks, 501: a method it cannot parse): a 4xx, never a 5xx for bad input.
        code = code if code < 500 else 400
        error = GatewayError("DEFAULT_4XX", code, self.responses.get(code, ("Bad Request",))[0])
        if hasattr(self.server, "gateway"):
            reply = self.server.gateway.refuse(error)
        else:
            reply = GatewayResponses().reply(error)
        self._write(reply, close=True)


class ApiServer:
    """The local API on a port: binds at construction, serves from :meth:`start`."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._server = _Server((host, port), _Handler, bind_and_activate=True)
        self._server.connections = set()
        self._server.connections_lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        host = str(self._server.server_address[0])
        return f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{self.port}"

    def start(self, gateway: LocalApiGateway) -> None:
        self._server.gateway = gateway
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="smsgw-local-api",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()
        with self._server.connections_lock:
            connections = list(self._server.connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
