"""The one HTTP client of the Guodu platform.

One ``requests.Session`` per container, reused across invocations, with connect and read
timeouts. Every way a submit can end is turned into a ``SubmitResult`` whose ``verdict``
tells the worker what to do; nothing here retries on its own, with one exception:

**Failover.** The platform has several addresses for the same interface (the document
names the domain ``qxtsms.guodulink.net`` and two data centres). The client takes them as
an ordered list. When a request *provably never left* (the connection was refused, the
name did not resolve, the TLS handshake failed, or the connection could not be opened in
time), the next address is tried at once: the platform saw nothing, so this cannot send
twice. Anything else, including a timeout or a broken connection after the request was
written and an HTTP 5xx, ends the submit on that address: moving on could send twice.

An address that fails that way ``bench_after`` times in a row is *benched*: the others
are tried first, and it is tried again (first, as its rank says) once its time on the
bench is over, doubling while it keeps failing. The bench is kept per container, not in
DynamoDB: a never-sent failure costs a container little (a refused connection is
answered at once; only a connect timeout costs ``connect_timeout``), the failover itself
never depends on a shared store that may be failing too, and a container learns in one
or two submits. Every submit reports the addresses it tried (``SubmitResult.tries``), for
per-address metrics and the alarm on a benched first address.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from smsgw.domain.model import SubmitVerdict
from smsgw.provider.guodu import Credentials, ReplyError, SubmitRequest, parse_reply

JSON_UTF8 = "application/json;charset=UTF-8"
# Statuses that say the request was not taken: 503 (unavailable) and 429 (slow down).
RETRIABLE_HTTP = frozenset({429, 503})


@dataclass(frozen=True)
class Try:
    """One address tried by a submit: it answered (or the answer was lost: ``reached``),
    or the request provably never left (``reached`` False)."""

    address: str  # host:port, for metrics and logs (never a path or credentials)
    rank: int  # 0: the first address of the list
    reached: bool
    benched: bool = False  # this failure put the address on the bench
    skipped_benched: tuple[int, ...] = ()  # ranks passed over because they were benched


@dataclass(frozen=True)
class SubmitResult:
    verdict: SubmitVerdict
    # The platform's ResultCode, or what happened on the wire: http_503, read_timeout, ...
    code: str
    msg_id: str | None = None
    detail: str = ""
    seconds: float = 0.0  # how long the call to the platform took
    tries: tuple[Try, ...] = field(default=())


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


class TlsHandshakeFailed(NewConnectionError):
    """The TLS handshake failed (or timed out): no byte of the request was sent."""


class GateRefused(Exception):
    """``before_send`` refused (no rate-limit slot): not a byte of the request was written."""

    def __init__(self, reason: Exception) -> None:
        super().__init__(f"not sent: {type(reason).__name__}")
        self.reason = reason


# What the connection calls right before it writes the request (set around each try).
_before_write: ContextVar[Callable[[], None] | None] = ContextVar("guodu_before_write", default=None)


class _GatedConnection(HTTPConnection):
    """A connection that opens first and then, right before it writes the request, calls
    the try's ``before_send`` (the rate limit's slot): what the platform sees is as close
    to the slot as the wire allows, whatever connecting and building the request took."""

    def request(self, *args: Any, **kwargs: Any) -> None:
        gate = _before_write.get()
        if gate is not None:
            if self.sock is None:
                self.connect()
            try:
                gate()
            except Exception as err:
                raise GateRefused(err) from err
        super().request(*args, **kwargs)


class _HandshakeMarkedConnection(_GatedConnection, HTTPSConnection):
    """An HTTPS connection whose handshake failures read as "never connected": urllib3
    would report them as SSL errors or read timeouts, which could also happen after the
    request left."""

    def connect(self) -> None:
        try:
            super().connect()
        except (NewConnectionError, ConnectTimeoutError):
            raise
        except Exception as err:  # the TCP connection is open, the request not yet written
            raise TlsHandshakeFailed(self, f"TLS handshake failed: {type(err).__name__}") from err


class _GatedPool(HTTPConnectionPool):
    ConnectionCls = _GatedConnection


class _HandshakeMarkedPool(HTTPSConnectionPool):
    ConnectionCls = _HandshakeMarkedConnection


class NeverSentAdapter(HTTPAdapter):
    """requests' adapter, with connections that call ``before_send`` at the last moment and
    HTTPS connections that tell a failed handshake apart."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _GatedPool, "https": _HandshakeMarkedPool}


def platform_session() -> requests.Session:
    """A session for the platform: keep-alive, the slot taken at the last moment, and HTTPS
    handshakes told apart."""
    made = requests.Session()
    made.mount("http://", NeverSentAdapter())
    made.mount("https://", NeverSentAdapter())
    return made


def _unanswered(err: requests.RequestException) -> SubmitResult:
    """No answer to read. Whether the platform may have the submit decides what comes next:
    never sent, retry it; sent (the answer timed out, was lost or broke off half-way), it
    may have been accepted, so never resend it blindly."""
    if isinstance(err, _NOT_SENDABLE):  # a malformed URL or header: a person must fix it
        verdict, code, detail = (
            SubmitVerdict.ACCOUNT,
            "bad_request_setup",
            f"not sendable: {type(err).__name__}",
        )
    elif isinstance(err, requests.ConnectTimeout):
        verdict, code, detail = SubmitVerdict.TRANSIENT, "connect_timeout", "could not connect in time"
    elif isinstance(err, requests.ReadTimeout):
        verdict, code, detail = SubmitVerdict.AMBIGUOUS, "read_timeout", "sent, no answer in time"
    elif _never_sent(err):
        verdict, code, detail = SubmitVerdict.TRANSIENT, "connect_error", "could not connect"
    elif isinstance(err, requests.ConnectionError):
        verdict, code, detail = SubmitVerdict.AMBIGUOUS, "connection_lost", "connection lost after sending"
    else:  # ChunkedEncodingError and the like
        verdict, code, detail = (
            SubmitVerdict.AMBIGUOUS,
            "broken_answer",
            f"the answer broke off: {type(err).__name__}",
        )
    return SubmitResult(verdict, code, detail=detail)


# The codes of ``_unanswered`` for a request that provably never left.
NEVER_SENT_CODES = frozenset({"connect_timeout", "connect_error"})


def address_of(url: str) -> str:
    """host:port of a URL, as metrics and logs name an address."""
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:  # a URL requests will refuse ("not sendable"): name it as given
        return url.split("://", 1)[-1].split("/", 1)[0].rsplit("@", 1)[-1]
    return f"{parts.hostname}:{port}"


@dataclass(frozen=True)
class FailoverPolicy:
    bench_after: int = 2  # never-sent failures in a row that bench an address
    bench_seconds: float = 30.0  # its first time on the bench, doubling while it keeps failing
    max_bench_seconds: float = 300.0


@dataclass
class _Address:
    url: str
    rank: int
    failures: int = 0  # never-sent failures in a row
    benched_until: float = 0.0
    bench_step: int = 0


class Addresses:
    """The platform's addresses in order of preference, with their bench (per container)."""

    def __init__(
        self,
        urls: Sequence[str],
        policy: FailoverPolicy | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not urls:
            raise ValueError("at least one Guodu submit URL is needed")
        for url in urls:
            if not url.startswith(("http://", "https://")):
                raise ValueError("a Guodu submit URL must be an http(s) URL")
        self._addresses = [_Address(url, rank) for rank, url in enumerate(urls)]
        self._policy = policy or FailoverPolicy()
        self._clock = clock

    @property
    def urls(self) -> tuple[str, ...]:
        return tuple(a.url for a in self._addresses)

    def order(self) -> tuple[list[_Address], tuple[int, ...]]:
        """The addresses to try, in order: those not benched by rank, then the benched ones
        (whose bench ends soonest first: never give up while an address is left). Also the
        ranks passed over because they are benched."""
        now = self._clock()
        ready = [a for a in self._addresses if a.benched_until <= now]
        benched = sorted((a for a in self._addresses if a.benched_until > now), key=lambda a: a.benched_until)
        return ready + benched, tuple(a.rank for a in benched)

    def never_sent(self, address: _Address) -> bool:
        """Count a failure of ``address`` that never left; True when it benches it."""
        address.failures += 1
        if address.failures < self._policy.bench_after:
            return False
        seconds = min(self._policy.max_bench_seconds, self._policy.bench_seconds * 2**address.bench_step)
        address.benched_until = self._clock() + seconds
        address.bench_step += 1
        return True

    def reached(self, address: _Address) -> None:
        """The address took the request (whatever it answered): it is off the bench."""
        address.failures = 0
        address.bench_step = 0
        address.benched_until = 0.0


class GuoduClient:
    def __init__(
        self,
        submit_urls: str | Sequence[str],
        credentials: Callable[[], Credentials],
        *,
        session: requests.Session | None = None,
        connect_timeout: float = 3.05,
        read_timeout: float = 10.0,
        idle_reset_seconds: float = 4.0,
        clock: Callable[[], float] = time.monotonic,
        failover: FailoverPolicy | None = None,
    ) -> None:
        urls = [submit_urls] if isinstance(submit_urls, str) else list(submit_urls)
        self._addresses = Addresses(urls, failover, clock=clock)
        self._credentials = credentials
        self._session = session or platform_session()
        self._timeout = (connect_timeout, read_timeout)
        self._idle_reset = idle_reset_seconds
        self._clock = clock
        self._last_used: float | None = None

    @property
    def submit_urls(self) -> tuple[str, ...]:
        return self._addresses.urls

    def credentials(self) -> Credentials:
        """The account's credentials (cached by the secret's reader). A worker reads them
        before it claims a chunk, so that no unbounded call stands between a claim and its
        submit."""
        return self._credentials()

    def submit(
        self,
        request: SubmitRequest,
        credentials: Credentials | None = None,
        *,
        before_send: Callable[[], None] | None = None,
    ) -> SubmitResult:
        """Submit ``request`` (see :meth:`send`). Raises only before anything was sent:
        the body could not be built, no credentials, or ``before_send`` refused."""
        return self.send(self.prepare(request, credentials or self._credentials()), before_send=before_send)

    def prepare(self, request: SubmitRequest, credentials: Credentials) -> PreparedSubmit:
        """Everything a submit needs before it leaves, so that :meth:`send` is only the call."""
        self._drop_stale_connections()
        return PreparedSubmit(request.body(credentials))

    def send(
        self, prepared: PreparedSubmit, *, before_send: Callable[[], None] | None = None
    ) -> SubmitResult:
        """Send a prepared submit, failing over to the next address while a try provably
        never left; every way it can end is a ``SubmitResult``. ``before_send`` is called
        right before each try (the rate limit's slot: a failed-over try needs one of its
        own when the first has passed). Raises only when ``before_send`` refused before
        the first try (nothing was sent)."""
        body = prepared.body
        started = time.perf_counter()
        addresses, skipped = self._addresses.order()
        tries: list[Try] = []
        result = SubmitResult(SubmitVerdict.TRANSIENT, "connect_error", detail="no address tried")
        for position, address in enumerate(addresses):
            try:
                result = self._post(address.url, body, before_send)
            except GateRefused as refused:
                if position == 0:
                    raise refused.reason from None  # nothing was sent at all
                break  # no slot for the next address: this submit ends as the last try did
            never_sent = result.code in NEVER_SENT_CODES and result.verdict is SubmitVerdict.TRANSIENT
            if not never_sent:
                self._addresses.reached(address)
                tries.append(Try(address_of(address.url), address.rank, True, skipped_benched=skipped))
                break
            benched = self._addresses.never_sent(address)
            tries.append(Try(address_of(address.url), address.rank, False, benched, skipped))
        return replace(result, seconds=time.perf_counter() - started, tries=tuple(tries))

    def _post(self, url: str, body: bytes, before_send: Callable[[], None] | None = None) -> SubmitResult:
        """One try. Raises ``GateRefused`` when ``before_send`` refused (nothing sent)."""
        self._drop_stale_connections()
        gated = isinstance(self._session.get_adapter(url), NeverSentAdapter)
        if before_send is not None and not gated:  # a session of the caller's: before the request
            try:
                before_send()
            except Exception as err:
                raise GateRefused(err) from err
        token = _before_write.set(before_send if gated else None)
        try:
            response = self._session.post(
                url, data=body, headers={"Content-Type": JSON_UTF8}, timeout=self._timeout
            )
        except GateRefused:
            raise
        except requests.RequestException as err:
            result = _unanswered(err)
        except Exception as err:  # whatever broke, the request may have left
            result = SubmitResult(
                SubmitVerdict.AMBIGUOUS, "client_error", detail=f"the call broke: {type(err).__name__}"
            )
        else:
            result = self._read(response)
        finally:
            _before_write.reset(token)
            self._last_used = self._clock()
        return result

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
            return SubmitResult(SubmitVerdict.TRANSIENT, f"http_{status}", detail="platform unavailable")
        if status >= 500:
            # 500, 502, 504...: a proxy in front of the platform may answer so *after* the
            # platform took the request. Only ResendAmbiguous may send it again.
            return SubmitResult(
                SubmitVerdict.AMBIGUOUS, f"http_{status}", detail="platform error: may have been sent"
            )
        if status != 200:
            # 403, 404, 405...: the URL or the network path is wrong, which a person must fix.
            return SubmitResult(SubmitVerdict.ACCOUNT, f"http_{status}", detail="platform refused the call")
        try:
            reply = parse_reply(response.content)
        except ReplyError as err:
            return SubmitResult(SubmitVerdict.AMBIGUOUS, "bad_reply", detail=str(err))
        result = reply.result
        if result.verdict is SubmitVerdict.ACCEPTED and reply.msg_id is None:
            return SubmitResult(SubmitVerdict.ACCEPTED, reply.result_code, None, "accepted without a MsgId")
        return SubmitResult(result.verdict, reply.result_code, reply.msg_id, result.meaning)
