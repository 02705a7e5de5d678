"""The simulator: an HTTP server playing the Guodu platform, and its admin API.

Routes (paths are exact and case-sensitive, query strings ignored unless stated):

- ``POST /HttpQuickProcess/submitJson``: the document's submit (any other method: 405).
- ``GET|POST /QxtSms_surplus/surplus?OperID=..&OperPass=..``: the balance, GBK XML
  ``<resRoot><rcode>N</rcode></resRoot>``; N is the number of messages left, ``-1`` for a
  missing/unknown OperID or a wrong password, ``-2`` for a source IP not allowed.
- ``/_sim/...``: the admin API (JSON), see :class:`Simulator` and README.md.

A submit goes through, in order: (1) the fault draw, which consumes one entry of the
``faults.next`` queue if there is one, else draws the rates (drop, http_500, timeout,
accept_then_drop, accept_then_truncate, slow, then one cumulative draw over ``code_rates``); (2) the latency
(plus ``slow_seconds`` for a slow answer); (3) the fault itself or the validation of
:mod:`guodu_simulator.protocol`; (4) the answer. An injected failure code, HTTP 500,
a drop or a timeout never records an accepted submit (they are listed with the refused
ones, ``fault`` set). An injected success code (00/01/03), ``accept_then_drop`` and
``accept_then_truncate`` apply only to a request that validates: it is accepted as usual
(MsgId, balance, reports), then answered with the injected code, not answered at all, or
answered with half its body before the connection closes; a request that does not
validate gets its normal refusal.
"""

from __future__ import annotations

import contextlib
import copy
import hmac
import json
import logging
import random
import socket
import socketserver
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal, cast
from urllib.parse import parse_qs, urlsplit

from guodu_simulator import protocol
from guodu_simulator.config import (
    ACCEPTING_FAULTS,
    TRANSPORT_FAULTS,
    ConfigError,
    SimulatorConfig,
    apply_patch,
    config_from_env,
    public_view,
    validate,
)
from guodu_simulator.protocol import (
    MSG_IDS,
    SUCCESS_CODES,
    Accepted,
    Refused,
    beijing_now_text,
    decode_body,
    ip_allowed,
    java_url_encode,
    mask_mobile,
    parse_send_time,
    validate_submit,
)
from guodu_simulator.pusher import Pusher
from guodu_simulator.state import PushRecord, RefusedRecord, SubmitRecord, iso_now

log = logging.getLogger("guodu_simulator")

SUBMIT_PATH = "/HttpQuickProcess/submitJson"
SURPLUS_PATH = "/QxtSms_surplus/surplus"
ADMIN_PREFIX = "/_sim/"
MAX_BODY_BYTES = 1 << 20
JSON_TYPE = "application/json;charset=UTF-8"
SURPLUS_BAD_CREDENTIALS = -1
SURPLUS_IP_REFUSED = -2


@dataclass(frozen=True)
class Answer:
    """What the handler does with a request: answer it, or close without an answer."""

    action: Literal["answer", "drop", "timeout", "truncate"]
    status: int = 200
    body: bytes = b""
    content_type: str = JSON_TYPE


def _json_bytes(data: Any) -> bytes:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _json_answer(data: Any, status: int = 200) -> Answer:
    return Answer("answer", status, _json_bytes(data))


def _html_error(status: int, text: str) -> Answer:
    return Answer("answer", status, f"<html><body>{status} {text}</body></html>".encode(), "text/html")


# What a platform (or a proxy in front of it) answers for the faults that are HTTP errors.
HTTP_ERRORS = {
    "http_500": _html_error(500, "Internal Server Error"),
    "http_503": _html_error(503, "Service Unavailable"),
    "accept_then_502": _html_error(502, "Bad Gateway"),
}


class Simulator:
    """The Guodu platform on a local port.

    >>> config = SimulatorConfig().add_account("test-user", "test-only-password")
    >>> with Simulator(config) as sim:  # doctest: +SKIP
    ...     requests.post(sim.submit_url, json={...})

    ``config`` is copied; the copy is what ``reset`` restores. Everything recorded is
    readable in-process (:attr:`accepted`, :attr:`refused`, :attr:`pushes`) and over
    HTTP (``/_sim/submits``, ``/_sim/pushes``).
    """

    def __init__(self, config: SimulatorConfig | None = None) -> None:
        initial = copy.deepcopy(config) if config is not None else SimulatorConfig()
        validate(initial)
        self._defaults = initial
        self._config = copy.deepcopy(initial)
        self._lock = threading.RLock()
        self._rng = random.Random(initial.seed)
        self._accepted: list[SubmitRecord] = []
        self._refused: list[RefusedRecord] = []
        self._stopping = threading.Event()
        self._pusher = Pusher(lambda: self._config.push, self._rng)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Simulator:
        """A simulator configured from the ``GUODU_SIM_*`` environment variables."""
        return cls(config_from_env(environ))

    # -- life cycle -------------------------------------------------------------------
    def start(self) -> str:
        """Bind (port 0: an ephemeral port), serve from a background thread; the base URL."""
        if self._server is not None:
            return self.base_url
        self._stopping.clear()
        server_class = _Server6 if ":" in self._config.host else _Server
        self._server = server_class((self._config.host, self._config.port), _Handler)
        self._server.simulator = self
        self._pusher.start()
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.01},  # how long stop() may wait for the loop
            name="guodu-sim-http",
            daemon=True,
        )
        self._thread.start()
        log.info("guodu simulator listening on %s", self.base_url)
        return self.base_url

    def stop(self) -> None:
        """Stop serving, close open connections, end sleeping faults, stop the pushes."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._pusher.stop()
        log.info("guodu simulator stopped")

    def __enter__(self) -> Simulator:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the simulator is not started")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        host = self._config.host
        if host in ("0.0.0.0", ""):
            host = "127.0.0.1"
        elif ":" in host:
            host = "[::1]" if host == "::" else f"[{host}]"
        return f"http://{host}:{self.port}"

    @property
    def submit_url(self) -> str:
        return self.base_url + SUBMIT_PATH

    @property
    def surplus_url(self) -> str:
        return self.base_url + SURPLUS_PATH

    # -- control ----------------------------------------------------------------------
    @property
    def config(self) -> SimulatorConfig:
        """A copy of the effective config (passwords included: in-process use only)."""
        with self._lock:
            return copy.deepcopy(self._config)

    def configure(self, patch: Mapping[str, Any]) -> dict[str, Any]:
        """Apply a partial update (see :func:`guodu_simulator.config.apply_patch`)."""
        with self._lock:
            self._config = apply_patch(self._config, patch)
            if "seed" in patch:
                self._rng.seed(self._config.seed)
            return public_view(self._config)

    def queue_faults(self, *entries: str) -> None:
        """The next submits answer these, one each: ResultCodes or transport fault names."""
        with self._lock:
            self._config = apply_patch(
                self._config, {"faults": {"next": [*self._config.faults.next, *entries]}}
            )

    def reset(self) -> None:
        """Forget every submit, push and queued fault; restore the constructor's config."""
        with self._lock:
            self._config = copy.deepcopy(self._defaults)
            self._rng.seed(self._defaults.seed)
            self._accepted.clear()
            self._refused.clear()
        self._pusher.clear()

    def balance(self, oper_id: str) -> int:
        with self._lock:
            return self._config.accounts[oper_id].balance

    @property
    def accepted(self) -> list[SubmitRecord]:
        with self._lock:
            return list(self._accepted)

    @property
    def refused(self) -> list[RefusedRecord]:
        with self._lock:
            return list(self._refused)

    @property
    def pushes(self) -> list[PushRecord]:
        return self._pusher.records

    def pending_pushes(self) -> int:
        return self._pusher.pending()

    def wait_for_pushes(self, timeout: float = 10.0) -> bool:
        """Block until every scheduled report/MO is pushed or failed; False on timeout."""
        return self._pusher.wait_idle(timeout)

    def send_mo(self, mobile: str, content: str, append_id: str = "") -> dict[str, Any]:
        """Queue an MO (uplink) message for the push URL; the item as it will be pushed."""
        if not self._config.push.url:
            raise ConfigError("no push url configured")
        now = beijing_now_text()
        item: dict[str, Any]
        if self._config.push.mo_format == "camel":
            item = {"mobile": mobile, "content": content, "moTime": now, "appendId": append_id}
        else:
            item = {
                "SrcMobile": mobile,
                "Content": java_url_encode(content),
                "RecvTime": now,
                "AppendID": append_id,
            }
        self._pusher.schedule("mo", [(0.0, item)])
        return item

    # -- submitJson -------------------------------------------------------------------
    def _draw_fault(self) -> str | None:
        with self._lock:
            faults = self._config.faults
            if faults.next:
                return faults.next.pop(0)
            rng = self._rng
            for name in (
                "drop",
                "http_500",
                "http_503",
                "timeout",
                "accept_then_drop",
                "accept_then_truncate",
                "accept_then_502",
                "slow",
            ):
                rate = cast(float, getattr(faults, f"{name}_rate"))
                if rate and rng.random() < rate:
                    return name
            if faults.code_rates:
                draw = rng.random()
                cumulative = 0.0
                for code, rate in faults.code_rates.items():
                    cumulative += rate
                    if draw < cumulative:
                        return code
        return None

    def _latency_seconds(self, fault: str | None) -> float:
        config = self._config
        low, high = config.latency_ms, config.latency_max_ms
        millis = self._rng.uniform(low, high) if high > low else low
        seconds = millis / 1000.0
        if fault == "slow":
            seconds += config.faults.slow_seconds
        return seconds

    def handle_submit(self, raw: bytes, source_ip: str, received: float | None = None) -> Answer:
        """One ``submitJson`` request body from ``source_ip``: what to answer. ``received``:
        when its headers arrived (epoch seconds), the moment it is stamped with, as the
        platform's own rate limit would count it (default: now)."""
        received = time.time() if received is None else received
        fault = self._draw_fault()
        delay = self._latency_seconds(fault)
        if delay > 0:
            self._stopping.wait(delay)
        if fault in ("drop", "timeout", "http_500", "http_503"):
            self._record_refusal(Refused("", f"fault {fault}", _oper_id_of(raw)), source_ip, fault)
            return HTTP_ERRORS.get(fault) or Answer(cast(Literal["drop", "timeout"], fault))
        if fault is not None and fault not in TRANSPORT_FAULTS and fault not in SUCCESS_CODES:
            self._record_refusal(Refused(fault, "injected result code", _oper_id_of(raw)), source_ip, "code")
            return _json_answer({"ResultCode": fault})

        config = self._config
        outcome = validate_submit(
            raw,
            accounts=config.accounts,
            sp_number=config.sp_number,
            source_ip=source_ip,
            max_mobiles=config.max_mobiles,
            max_content_chars=config.max_content_chars,
        )
        if isinstance(outcome, Accepted):
            record_or_refusal = self._accept(outcome, source_ip, fault, received)
            if isinstance(record_or_refusal, SubmitRecord):
                record = record_or_refusal
                answer = _json_answer({"ResultCode": record.result_code, "MsgId": record.msg_id})
                if fault in HTTP_ERRORS:
                    return HTTP_ERRORS[fault]
                if fault in ACCEPTING_FAULTS:
                    answer = Answer("drop" if fault == "accept_then_drop" else "truncate", 200, answer.body)
                return answer
            outcome = record_or_refusal
        self._record_refusal(outcome, source_ip, None)
        return _json_answer({"ResultCode": outcome.result_code})

    def _accept(
        self, accepted: Accepted, source_ip: str, fault: str | None, received: float
    ) -> SubmitRecord | Refused:
        with self._lock:
            account = self._config.accounts.get(accepted.oper_id)
            if account is None:
                return Refused(protocol.UNKNOWN_ACCOUNT, "OperID unknown", accepted.oper_id)
            if account.balance < accepted.cost:  # re-checked under the lock: no overdraft
                return Refused(protocol.LOW_BALANCE, "balance too low", accepted.oper_id)
            account.balance -= accepted.cost
            push = self._config.push
            early = bool(push.url) and push.early_rate > 0 and self._rng.random() < push.early_rate
            record = SubmitRecord(
                msg_id=MSG_IDS(),
                oper_id=accepted.oper_id,
                mobiles=list(accepted.mobiles),
                content=accepted.content,
                raw_content=accepted.raw_content,
                send_time=accepted.send_time,
                append_id=accepted.append_id,
                result_code=fault if fault in SUCCESS_CODES else accepted.result_code,
                segments=accepted.segments,
                source_ip=source_ip,
                fault=fault if fault in ACCEPTING_FAULTS else None,
                early_reports=early,
                received_at=iso_now(received),
            )
            self._accepted.append(record)
            log_submits = self._config.log_submits
        if log_submits:
            log.info(
                "submit accepted oper=%s code=%s msg_id=%s numbers=%d to=%s segments=%d%s",
                record.oper_id,
                record.result_code,
                record.msg_id,
                len(record.mobiles),
                _masked_list(record.mobiles),
                record.segments,
                f" fault={fault}" if fault else "",
            )
        if push.url:
            self._schedule_reports(record, early)
        return record

    def _schedule_reports(self, record: SubmitRecord, early: bool) -> None:
        push = self._config.push
        rng = self._rng
        items: list[dict[str, Any]] = []
        for mobile in record.mobiles:
            if push.loss_rate and rng.random() < push.loss_rate:
                continue
            delivered = rng.random() < push.delivery_ratio
            items.append(
                {
                    "msg": push.success_msg if delivered else rng.choice(push.failure_msgs),
                    "mobile": mobile,
                    "msgId": record.msg_id,
                    "status": 0 if delivered else push.failure_status,
                }
            )
        if early:
            self._pusher.push_now("report", items, early=True)
            return
        hold = 0.0
        send_at = parse_send_time(record.send_time) if record.send_time else None
        if send_at is not None:
            hold = max(0.0, send_at.timestamp() - time.time())
        low, high = push.delay_min_seconds, push.delay_max_seconds
        self._pusher.schedule("report", [(hold + rng.uniform(low, high), item) for item in items])

    def _record_refusal(self, refused: Refused, source_ip: str, fault: str | None) -> None:
        code = refused.result_code or None
        with self._lock:
            self._refused.append(RefusedRecord(code, refused.reason, refused.oper_id, source_ip, fault=fault))
            log_submits = self._config.log_submits
        if log_submits:
            log.info(
                "submit refused oper=%s code=%s reason=%s%s",
                refused.oper_id or "-",
                code or "-",
                refused.reason if fault is None else "injected",
                f" fault={fault}" if fault else "",
            )

    # -- surplus ----------------------------------------------------------------------
    def handle_surplus(self, params: Mapping[str, list[str]], source_ip: str) -> Answer:
        oper_id = (params.get("OperID") or [""])[0]
        password = (params.get("OperPass") or [""])[0]
        with self._lock:
            account = self._config.accounts.get(oper_id)
            if account is None or not _same_secret(password, account.password):
                rcode = SURPLUS_BAD_CREDENTIALS
            elif not ip_allowed(source_ip, account.allowed_ips):
                rcode = SURPLUS_IP_REFUSED
            else:
                rcode = account.balance
        xml = f'<?xml version="1.0" encoding="GBK"?><resRoot><rcode>{rcode}</rcode></resRoot>'
        return Answer("answer", 200, xml.encode("gbk"), "text/xml;charset=GBK")

    # -- admin ------------------------------------------------------------------------
    def handle_admin(self, method: str, name: str, raw: bytes) -> Answer:
        routes: dict[tuple[str, str], Callable[[bytes], Answer]] = {
            ("GET", "health"): self._admin_health,
            ("GET", "submits"): self._admin_submits,
            ("GET", "pushes"): self._admin_pushes,
            ("GET", "config"): lambda _: _json_answer(self.public_config()),
            ("POST", "config"): self._admin_configure,
            ("POST", "reset"): self._admin_reset,
            ("POST", "mo"): self._admin_mo,
        }
        route = routes.get((method, name))
        if route is not None:
            return route(raw)
        if any(path == name for _, path in routes):
            return _json_answer({"error": f"method {method} not allowed"}, 405)
        return _json_answer({"error": f"no admin endpoint {name!r}"}, 404)

    def public_config(self) -> dict[str, Any]:
        with self._lock:
            return public_view(self._config)

    def _admin_health(self, _: bytes) -> Answer:
        with self._lock:
            accepted, refused = len(self._accepted), len(self._refused)
        return _json_answer(
            {
                "status": "ok",
                "base_url": self.base_url,
                "accepted": accepted,
                "refused": refused,
                "pending_pushes": self._pusher.pending(),
            }
        )

    def _admin_submits(self, _: bytes) -> Answer:
        with self._lock:
            data = {
                "accepted": [record.to_json() for record in self._accepted],
                "refused": [record.to_json() for record in self._refused],
            }
        return _json_answer(data)

    def _admin_pushes(self, _: bytes) -> Answer:
        records = self._pusher.records
        packets = [record.to_json() for record in records]
        return _json_answer(
            {
                "packets": packets,
                "delivered": sum(1 for record in records if record.outcome == "delivered"),
                "failed": sum(1 for record in records if record.outcome == "failed"),
                "pending": self._pusher.pending(),
            }
        )

    def _admin_configure(self, raw: bytes) -> Answer:
        try:
            patch = json.loads(raw.decode("utf-8")) if raw.strip() else {}
            return _json_answer(self.configure(patch))
        except (UnicodeDecodeError, ValueError) as err:  # ConfigError is a ValueError
            message = str(err) if isinstance(err, ConfigError) else "body is not a JSON object"
            return _json_answer({"error": message}, 400)

    def _admin_reset(self, _: bytes) -> Answer:
        self.reset()
        return _json_answer({"status": "reset", "config": self.public_config()})

    def _admin_mo(self, raw: bytes) -> Answer:
        try:
            body = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return _json_answer({"error": "body is not a JSON object"}, 400)
        if not isinstance(body, dict):
            return _json_answer({"error": "body is not a JSON object"}, 400)
        mobile, content, append_id = body.get("mobile"), body.get("content"), body.get("append_id", "")
        if not (
            isinstance(mobile, str) and mobile and isinstance(content, str) and isinstance(append_id, str)
        ):
            return _json_answer({"error": "mobile and content are required strings; append_id a string"}, 400)
        try:
            item = self.send_mo(mobile, content, append_id)
        except ConfigError as err:
            return _json_answer({"error": str(err)}, 409)
        return _json_answer({"queued": item}, 202)

    # -- connections ------------------------------------------------------------------
    def _track(self, conn: socket.socket, open_: bool) -> None:
        with self._lock:
            if open_:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def _wait_timeout_fault(self) -> None:
        self._stopping.wait(self._config.faults.timeout_seconds)


def _oper_id_of(raw: bytes) -> str | None:
    body = decode_body(raw)
    if isinstance(body, Refused):
        return None
    oper_id = body.get("OperID")
    return oper_id if isinstance(oper_id, str) and oper_id else None


def _same_secret(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def _masked_list(mobiles: list[str]) -> str:
    shown = ",".join(mask_mobile(mobile) for mobile in mobiles[:3])
    return shown + (f",+{len(mobiles) - 3} more" if len(mobiles) > 3 else "")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024  # a burst of new connections must not wait for SYN retries
    simulator: Simulator

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host's FQDN, a DNS look-up we do not need.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    server_version = "GuoduSimulator/1.0"
    sys_version = ""
    disable_nagle_algorithm = True  # headers and body leave at once, no delayed-ACK stall
    wbufsize = 1 << 16  # one write per answer; BaseHTTPRequestHandler flushes after each
    timeout = 120  # idle keep-alive connections are closed after this

    @property
    def sim(self) -> Simulator:
        return cast(_Server, self.server).simulator

    def setup(self) -> None:
        super().setup()
        self.sim._track(self.connection, True)

    def finish(self) -> None:
        try:
            with contextlib.suppress(OSError):
                super().finish()
        finally:
            self.sim._track(self.connection, False)

    def log_message(self, format: str, *args: Any) -> None:
        """Silenced: the simulator logs one line per submit itself."""

    # -- plumbing ---------------------------------------------------------------------
    def _read_body(self) -> bytes | None:
        """The request body, or None after an error answer was sent."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        length_text = self.headers.get("Content-Length")
        if length_text is None:
            return b""
        try:
            length = int(length_text)
        except ValueError:
            length = -1
        if length < 0:
            self._send(Answer("answer", 400, b"bad Content-Length", "text/plain"), close=True)
            return None
        if length > MAX_BODY_BYTES:
            self._send(Answer("answer", 413, b"body too large", "text/plain"), close=True)
            return None
        return self.rfile.read(length) if length else b""

    def _read_chunked(self) -> bytes | None:
        chunks: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                self._send(Answer("answer", 400, b"bad chunk", "text/plain"), close=True)
                return None
            if size == 0:
                while self.rfile.readline(1024).strip():  # trailers
                    pass
                return b"".join(chunks)
            total += size
            if total > MAX_BODY_BYTES:
                self._send(Answer("answer", 413, b"body too large", "text/plain"), close=True)
                return None
            chunks.append(self.rfile.read(size))
            self.rfile.readline(1024)

    def _send(
        self,
        answer: Answer,
        *,
        close: bool = False,
        headers: Mapping[str, str] | None = None,
        upto: int | None = None,
    ) -> None:
        self.send_response(answer.status)
        self.send_header("Content-Type", answer.content_type)
        self.send_header("Content-Length", str(len(answer.body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if close:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(answer.body[:upto])

    def _not_allowed(self, allow: str) -> None:
        body = _json_bytes({"error": f"method {self.command} not allowed; use {allow}"})
        self._send(Answer("answer", HTTPStatus.METHOD_NOT_ALLOWED, body), headers={"Allow": allow})

    # -- dispatch ---------------------------------------------------------------------
    def _dispatch(self) -> None:
        received = time.time()  # the request line and headers are in
        raw = self._read_body()
        if raw is None:
            return
        url = urlsplit(self.path)
        path = url.path
        source_ip = self.client_address[0]
        if source_ip.startswith("::ffff:"):
            source_ip = source_ip[7:]
        if path == SUBMIT_PATH:
            if self.command != "POST":
                self._not_allowed("POST")
                return
            answer = self.sim.handle_submit(raw, source_ip, received)
        elif path == SURPLUS_PATH:
            if self.command == "GET":
                params = parse_qs(url.query, keep_blank_values=True)
            elif self.command == "POST":
                params = parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True)
            else:
                self._not_allowed("GET, POST")
                return
            answer = self.sim.handle_surplus(params, source_ip)
        elif path.startswith(ADMIN_PREFIX):
            answer = self.sim.handle_admin(self.command, path[len(ADMIN_PREFIX) :], raw)
        else:
            answer = _json_answer({"error": f"no such path {path}"}, 404)
        if answer.action == "answer":
            self._send(answer)
        else:
            self._spoil(answer)

    def _spoil(self, answer: Answer) -> None:
        """A transport fault: no HTTP answer at all (after the timeout, for ``timeout``), or
        the answer's head and half its body (``truncate``); then the connection closes."""
        if answer.action == "timeout":
            self.sim._wait_timeout_fault()
        self.close_connection = True
        if answer.action == "truncate":
            self._send(Answer("answer", answer.status, answer.body), upto=len(answer.body) // 2)
            return
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _dispatch
