"""The one HTTP client of the gateway's public API (v1), for the command line.

It speaks the public contract (v1): ``POST /v1/messages`` and ``GET /v1/messages/{id}``,
the key in ``x-api-key``. Every failure leaves as one of two
exceptions, so the caller maps it to an exit code in one place:

- ``ApiError``: the server answered with an error status (the gateway's own JSON error,
  or API Gateway's ``{"message": ...}``, or anything else a proxy may put in the way);
- ``Unreachable``: no usable answer (refused, unresolved, timed out, TLS, not JSON).

The API key is sent and never kept anywhere it could be printed (not in ``repr``, not in
an exception), and never follows a redirect: ``requests`` would carry a custom header
like ``x-api-key`` to whatever host a redirect names.
"""

from __future__ import annotations

import http.client
import re
import socket
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import requests
import requests.auth

USER_AGENT = "smsgw-cli/0.1"
MESSAGES_PATH = "/v1/messages"
SNIPPET = 200  # characters of a non-JSON error body worth showing
_TAG = re.compile(r"<[^>]*>")

# API Gateway's own answers carry their kind in this header. The template gives them the
# contract's envelope with these codes; a stack without those gateway responses (or a
# proxy in between) answers a bare {"message": ...}.
GATEWAY_ERROR_TYPE = "x-amzn-ErrorType"
MISSING_ROUTE_TYPE = "MissingAuthenticationTokenException"
MISSING_ROUTE_MESSAGE = "Missing Authentication Token"
MISSING_ROUTE_CODE = "missing_authentication_token"
KEY_REFUSED_CODES = frozenset({"invalid_api_key", "access_denied", "invalid_signature", "expired_token"})


# Exceptions are plain (not frozen) dataclasses: Python code such as contextlib assigns
# ``__traceback__`` on exceptions, which a frozen dataclass would refuse.
@dataclass(eq=False)
class ApiError(Exception):
    """The API answered ``status`` with an error.

    ``code`` is the contract's snake_case code. ``from_gateway`` marks an answer that is not
    the contract's envelope (API Gateway's own ``{"message": ...}``, or a proxy's page):
    its code is then ``http_<status>`` and ``gateway_type`` is what API Gateway called it.
    """

    status: int
    code: str
    message: str
    details: tuple[Mapping[str, Any], ...] = ()
    from_gateway: bool = False
    gateway_type: str | None = None
    retry_after: str | None = None

    @property
    def missing_route(self) -> bool:
        """API Gateway's 403 for a path or stage it does not know (not an auth failure)."""
        if self.code == MISSING_ROUTE_CODE:
            return True
        return self.from_gateway and (
            self.gateway_type == MISSING_ROUTE_TYPE or self.message == MISSING_ROUTE_MESSAGE
        )

    @property
    def key_refused(self) -> bool:
        """API Gateway refused the caller's key (or IAM signature) before the API ran."""
        if self.code in KEY_REFUSED_CODES:
            return True
        return self.status in (401, 403) and self.from_gateway and not self.missing_route

    def __str__(self) -> str:
        return f"{self.status} {self.code}: {self.message}"


class Failure(StrEnum):
    """Why there is no usable answer."""

    REFUSED = "connection refused"
    UNRESOLVED = "host name not resolved"
    NO_CONNECTION = "could not connect"
    TLS = "TLS handshake failed"
    SLOW = "no answer in time"  # the request went out
    DROPPED = "the connection dropped before an answer came"  # the request went out
    NOT_JSON = "the answer is not the API's JSON"  # the request was served by something
    REDIRECTED = "redirected"  # not followed: the key would go along


@dataclass(eq=False)
class Unreachable(Exception):
    """No usable answer from ``url``; ``detail`` says more than ``failure`` when it can."""

    url: str
    failure: Failure
    detail: str = ""

    @property
    def reason(self) -> str:
        return self.detail or self.failure.value

    @property
    def may_have_arrived(self) -> bool:
        """The request went out, so the server may have acted on it."""
        return self.failure in (Failure.SLOW, Failure.DROPPED, Failure.NOT_JSON)

    @property
    def local(self) -> bool:
        return is_local_url(self.url)

    def __str__(self) -> str:
        return f"{self.url}: {self.reason}"


@dataclass(frozen=True)
class Endpoint:
    """Where the API is and how to call it. ``api_key`` stays out of ``repr``. ``sigv4``:
    sign each request with AWS SigV4 (``ApiAuth=IAM``) instead of sending the key."""

    base_url: str
    api_key: str = field(repr=False)
    timeout: float = 10.0
    sigv4: bool = False
    region: str | None = None

    @classmethod
    def of(
        cls, url: str, api_key: str, timeout: float, *, sigv4: bool = False, region: str | None = None
    ) -> Endpoint:
        return cls(normalise_base_url(url), api_key, timeout, sigv4, region)


_EXECUTE_API_HOST = re.compile(r"^[a-z0-9]+\.execute-api\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?$")


def region_of(url: str) -> str | None:
    """The region in an API Gateway URL (``abc123.execute-api.cn-north-1.amazonaws.com.cn``)."""
    match = _EXECUTE_API_HOST.match(urlsplit(url).hostname or "")
    return match.group(1) if match else None


class SigV4(requests.auth.AuthBase):
    """Signs a request for API Gateway (``execute-api``) with the credentials of the AWS
    default chain (environment, profile, SSO, instance role), as ``aws`` itself would."""

    def __init__(self, region: str) -> None:
        import boto3  # noqa: PLC0415 - only with --sigv4
        from botocore.auth import SigV4Auth  # noqa: PLC0415

        credentials = boto3.session.Session().get_credentials()
        if credentials is None:
            raise Unreachable("aws", Failure.NO_CONNECTION, "--sigv4: no AWS credentials found")
        self._signer = SigV4Auth(credentials.get_frozen_credentials(), "execute-api", region)

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        from botocore.awsrequest import AWSRequest  # noqa: PLC0415

        body = request.body if request.body is not None else b""
        signed = AWSRequest(
            method=request.method, url=request.url, data=body, headers={"Content-Type": "application/json"}
        )
        if "Content-Type" in request.headers:
            signed.headers["Content-Type"] = request.headers["Content-Type"]
        self._signer.add_auth(signed)
        for name in ("Authorization", "X-Amz-Date", "X-Amz-Security-Token", "Content-Type"):
            if name in signed.headers:
                request.headers[name] = signed.headers[name]
        return request


def is_local_url(url: str) -> bool:
    """True for this machine (where ``make run`` serves the API)."""
    here = {"localhost", "127.0.0.1", "::1", "0.0.0.0"}  # noqa: S104 - compared with, never bound to
    return (urlsplit(url).hostname or "") in here


def normalise_base_url(url: str) -> str:
    """The API's base URL: no trailing slash, and the stack's ``MessagesEndpoint`` output
    (``…/live/v1/messages``) taken as well as its ``ApiUrl`` (``…/live``)."""
    base = url.strip().rstrip("/")
    if base.endswith(MESSAGES_PATH):
        base = base[: -len(MESSAGES_PATH)]
    return base


def display_url(url: str) -> str:
    """``url`` without any ``user:password@`` part, for messages."""
    parts = urlsplit(url)
    if parts.hostname is None or "@" not in parts.netloc:
        return url
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit(parts._replace(netloc=netloc))


def _chain(err: BaseException) -> Iterator[BaseException]:
    """``err`` and everything it wraps (urllib3 keeps the cause in ``reason`` or ``args``)."""
    seen: set[int] = set()
    todo: list[BaseException] = [err]
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        todo.extend(a for a in current.args if isinstance(a, BaseException))
        reason = getattr(current, "reason", None)
        if isinstance(reason, BaseException):
            todo.append(reason)
        todo.extend(e for e in (current.__cause__, current.__context__) if e is not None)


def _why_not_connected(err: requests.ConnectionError) -> Failure:
    causes = list(_chain(err))
    if any(isinstance(c, ConnectionRefusedError) for c in causes):
        return Failure.REFUSED
    if any(isinstance(c, socket.gaierror) for c in causes):
        return Failure.UNRESOLVED
    dropped = (ConnectionResetError, ConnectionAbortedError, http.client.RemoteDisconnected)
    if any(isinstance(c, dropped) for c in causes):
        return Failure.DROPPED
    return Failure.NO_CONNECTION


def _error_from(response: requests.Response) -> ApiError:
    status = response.status_code
    retry_after = response.headers.get("Retry-After")
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    envelope = body.get("error") if isinstance(body, dict) else None
    if isinstance(envelope, dict):
        details = envelope.get("details")
        return ApiError(
            status=status,
            code=str(envelope.get("code") or f"http_{status}"),
            message=str(envelope.get("message") or ""),
            details=tuple(d for d in details if isinstance(d, dict)) if isinstance(details, list) else (),
            retry_after=retry_after,
        )
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        message = body["message"]
    elif isinstance(body, str):
        message = body
    else:  # a proxy's or load balancer's page: its words, without the markup
        text = " ".join(_TAG.sub(" ", response.text).split())
        message = text[:SNIPPET] + ("…" if len(text) > SNIPPET else "") if text else response.reason or ""
    error_type = response.headers.get(GATEWAY_ERROR_TYPE)
    return ApiError(
        status=status,
        code=f"http_{status}",
        message=message,
        from_gateway=True,
        gateway_type=error_type.split(":")[0] if error_type else None,
        retry_after=retry_after,
    )


class GatewayClient:
    """Calls the API at ``endpoint``; one ``requests.Session`` (connection reuse while polling)."""

    def __init__(self, endpoint: Endpoint, session: requests.Session | None = None) -> None:
        self._endpoint = endpoint
        self._session = session or requests.Session()
        self._session.headers.update({"Accept": "application/json", "User-Agent": USER_AGENT})
        if endpoint.sigv4:
            region = region_of(endpoint.base_url) or endpoint.region
            if not region:
                raise Unreachable(
                    display_url(endpoint.base_url),
                    Failure.NO_CONNECTION,
                    "--sigv4: no region in the URL: set AWS_REGION",
                )
            self._session.auth = SigV4(region)
        else:
            self._session.headers["x-api-key"] = endpoint.api_key

    @property
    def base_url(self) -> str:
        return display_url(self._endpoint.base_url)

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> GatewayClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def send(self, body: Mapping[str, Any], *, idempotency_key: str | None = None) -> dict[str, Any]:
        """``POST /v1/messages``; the 202 reply."""
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        return self._call("POST", MESSAGES_PATH, json=dict(body), headers=headers)

    def status(self, request_id: str, *, cursor: str | None = None) -> dict[str, Any]:
        """``GET /v1/messages/{id}``: one page of recipients (``next_cursor`` for the next)."""
        params = {"cursor": cursor} if cursor is not None else None
        return self._call("GET", f"{MESSAGES_PATH}/{quote(request_id, safe='')}", params=params)

    def status_pages(self, request_id: str, *, cursor: str | None = None) -> Iterator[dict[str, Any]]:
        """The pages of a request's status from ``cursor`` on, following ``next_cursor``."""
        seen: set[str] = set()
        while True:
            page = self.status(request_id, cursor=cursor)
            yield page
            next_cursor = page.get("next_cursor")
            if next_cursor is None or str(next_cursor) in seen:  # a cursor that loops ends the walk
                return
            cursor = str(next_cursor)
            seen.add(cursor)

    def messages(self, **query: str) -> dict[str, Any]:
        """``GET /v1/messages``: one page of the caller's requests found by ``reference`` or ``to``."""
        return self._call("GET", MESSAGES_PATH, params=query)

    def message_pages(self, **query: str) -> Iterator[dict[str, Any]]:
        seen: set[str] = set()
        while True:
            page = self.messages(**query)
            yield page
            cursor = page.get("next_cursor")
            if not cursor or str(cursor) in seen:
                return
            query = {**query, "cursor": str(cursor)}
            seen.add(str(cursor))

    def cancel(self, request_id: str) -> dict[str, Any]:
        """``DELETE /v1/messages/{id}``."""
        return self._call("DELETE", f"{MESSAGES_PATH}/{quote(request_id, safe='')}")

    def opt_out(self, method: str, mobile: str) -> dict[str, Any]:
        """``GET|PUT|DELETE /v1/opt-outs/{mobile}`` (DELETE answers nothing: ``{}``)."""
        return self._call(method, f"/v1/opt-outs/{quote(mobile, safe='')}", empty_ok=method == "DELETE")

    def _call(
        self,
        method: str,
        path: str,
        *,
        json: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        empty_ok: bool = False,
    ) -> dict[str, Any]:
        url = self._endpoint.base_url + path
        shown = display_url(url)
        try:
            response = self._session.request(
                method,
                url,
                json=json,
                params=params,
                headers=headers,
                timeout=self._endpoint.timeout,
                allow_redirects=False,
            )
        except requests.ConnectTimeout as err:
            wait = f"no connection within {self._endpoint.timeout:g}s"
            raise Unreachable(shown, Failure.NO_CONNECTION, wait) from err
        except requests.ReadTimeout as err:
            raise Unreachable(shown, Failure.SLOW, f"no answer within {self._endpoint.timeout:g}s") from err
        except requests.exceptions.SSLError as err:
            raise Unreachable(shown, Failure.TLS) from err
        except requests.ConnectionError as err:
            raise Unreachable(shown, _why_not_connected(err)) from err
        except requests.RequestException as err:
            raise Unreachable(shown, Failure.NO_CONNECTION, f"request failed ({type(err).__name__})") from err
        if response.status_code >= 400:
            raise _error_from(response)
        if response.is_redirect:
            target = display_url(response.headers.get("Location", "?"))
            raise Unreachable(
                shown, Failure.REDIRECTED, f"answered {response.status_code}, redirecting to {target}"
            )
        if empty_ok and response.status_code == 204:
            return {}
        try:
            reply = response.json()
        except ValueError:
            reply = None
        if not isinstance(reply, dict):
            status = response.status_code
            raise Unreachable(
                shown, Failure.NOT_JSON, f"answered {status} with something other than a JSON object"
            )
        return reply
