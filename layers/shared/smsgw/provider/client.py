"""The one HTTP client of the Guodu platform.

One ``requests.Session`` per container, reused across invocations, with connect and read
timeouts. Every way a submit can end is turned into a ``SubmitResult`` whose ``outcome``
tells the worker what to do; nothing here retries on its own.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import requests
from urllib3.exceptions import NewConnectionError

from smsgw.provider.guodu import Credentials, Outcome, ReplyError, SubmitRequest, parse_reply

JSON_UTF8 = "application/json;charset=UTF-8"
# Statuses that say the request was not taken: 503 (unavailable) and 429 (slow down).
RETRIABLE_HTTP = frozenset({429, 503})


@dataclass(frozen=True)
class SubmitResult:
    outcome: Outcome
    # The platform's ResultCode, or what happened on the wire: http_503, read_timeout, ...
    code: str
    msg_id: str | None = None
    detail: str = ""
    seconds: float = 0.0  # how long the call to the platform took


@dataclass(frozen=True)
class PreparedSubmit:
    """A submit's body, built (credentials included): nothing left to do but send it."""

    body: bytes = field(repr=False)


# What requests raises before anything is sent: the request could not even be built.
_NOT_SENDABLE = (
    requests.exceptions.InvalidURL,
    requests.exceptions.InvalidHeader,
    requests.exceptions.MissingSchema,
    requests.exceptions.InvalidSchema,
    requests.exceptions.URLRequired,
)


def _never_sent(error: BaseException) -> bool:
    """True when the connection could not even be opened, so the platform saw nothing."""
    pending: list[BaseException] = [error]
    for _ in range(12):
        if not pending:
            return False
        current = pending.pop()
        if isinstance(current, NewConnectionError | requests.ConnectTimeout):
            return True
        reason = getattr(current, "reason", None)
        pending.extend(
            arg for arg in (*current.args, reason, current.__cause__) if isinstance(arg, BaseException)
        )
    return False


def _unanswered(err: requests.RequestException) -> SubmitResult:
    """No answer to read. Whether the platform may have the submit decides what comes next:
    never sent, retry it; sent (the answer timed out, was lost or broke off half-way), it
    may have been accepted, so never resend it blindly."""
    if isinstance(err, _NOT_SENDABLE):  # a malformed URL or header: a person must fix it
        outcome, code, detail = Outcome.ACCOUNT, "bad_request_setup", f"not sendable: {type(err).__name__}"
    elif isinstance(err, requests.ConnectTimeout):
        outcome, code, detail = Outcome.TRANSIENT, "connect_timeout", "could not connect in time"
    elif isinstance(err, requests.ReadTimeout):
        outcome, code, detail = Outcome.AMBIGUOUS, "read_timeout", "sent, no answer in time"
    elif _never_sent(err):
        outcome, code, detail = Outcome.TRANSIENT, "connect_error", "could not connect"
    elif isinstance(err, requests.ConnectionError):
        outcome, code, detail = Outcome.AMBIGUOUS, "connection_lost", "connection lost after sending"
    else:  # ChunkedEncodingError and the like
        outcome, code, detail = (
            Outcome.AMBIGUOUS,
            "broken_answer",
            f"the answer broke off: {type(err).__name__}",
        )
    return SubmitResult(outcome, code, detail=detail)


class GuoduClient:
    def __init__(
        self,
        submit_url: str,
        credentials: Callable[[], Credentials],
        *,
        session: requests.Session | None = None,
        connect_timeout: float = 3.05,
        read_timeout: float = 10.0,
        idle_reset_seconds: float = 4.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not submit_url.startswith(("http://", "https://")):
            raise ValueError("the Guodu submit URL must be an http(s) URL")
        self._url = submit_url
        self._credentials = credentials
        self._session = session or requests.Session()
        self._timeout = (connect_timeout, read_timeout)
        self._idle_reset = idle_reset_seconds
        self._clock = clock
        self._last_used: float | None = None

    def credentials(self) -> Credentials:
        """The account's credentials (cached by the secret's reader). A worker reads them
        before it claims a chunk, so that no unbounded call stands between a claim and its
        submit."""
        return self._credentials()

    def submit(self, request: SubmitRequest, credentials: Credentials | None = None) -> SubmitResult:
        """Submit ``request``; every way it can end is a ``SubmitResult``. Raises only
        before anything was sent (the body could not be built, no credentials)."""
        return self.send(self.prepare(request, credentials or self._credentials()))

    def prepare(self, request: SubmitRequest, credentials: Credentials) -> PreparedSubmit:
        """Everything a submit needs before it leaves, so that :meth:`send` is only the call."""
        self._drop_stale_connections()
        return PreparedSubmit(request.body(credentials))

    def send(self, prepared: PreparedSubmit) -> SubmitResult:
        """Send a prepared submit; every way it can end is a ``SubmitResult``."""
        body = prepared.body
        started = time.perf_counter()
        try:
            response = self._session.post(
                self._url, data=body, headers={"Content-Type": JSON_UTF8}, timeout=self._timeout
            )
        except requests.RequestException as err:
            result = _unanswered(err)
        except Exception as err:  # whatever broke, the request may have left
            result = SubmitResult(
                Outcome.AMBIGUOUS, "client_error", detail=f"the call broke: {type(err).__name__}"
            )
        else:
            result = self._read(response)
        finally:
            self._last_used = self._clock()
        return replace(result, seconds=time.perf_counter() - started)

    def _drop_stale_connections(self) -> None:
        """A keep-alive connection idle for long may have been closed by the platform; a
        request written into it would fail *after* leaving, which we could not tell apart
        from a lost answer. Lambda freezes between invocations, so start afresh instead."""
        if self._last_used is not None and self._clock() - self._last_used > self._idle_reset:
            self._session.close()

    @staticmethod
    def _read(response: requests.Response) -> SubmitResult:
        status = response.status_code
        if status in RETRIABLE_HTTP:
            return SubmitResult(Outcome.TRANSIENT, f"http_{status}", detail="platform unavailable")
        if status >= 500:
            # 500, 502, 504...: a proxy in front of the platform may answer so *after* the
            # platform took the request. Only ResendAmbiguous may send it again.
            return SubmitResult(
                Outcome.AMBIGUOUS, f"http_{status}", detail="platform error: may have been sent"
            )
        if status != 200:
            # 403, 404, 405...: the URL or the network path is wrong, which a person must fix.
            return SubmitResult(Outcome.ACCOUNT, f"http_{status}", detail="platform refused the call")
        try:
            reply = parse_reply(response.content)
        except ReplyError as err:
            return SubmitResult(Outcome.AMBIGUOUS, "bad_reply", detail=str(err))
        result = reply.result
        if result.outcome is Outcome.ACCEPTED and reply.msg_id is None:
            return SubmitResult(Outcome.ACCEPTED, reply.result_code, None, "accepted without a MsgId")
        return SubmitResult(result.outcome, reply.result_code, reply.msg_id, result.meaning)
