"""Helpers for the Guodu simulator's tests: a real push receiver, request builders, polling.

Everything runs over real sockets on 127.0.0.1 with ephemeral ports.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests

from guodu_simulator import Simulator, SimulatorConfig, java_url_encode

OPER_ID = "test-user"
# An obviously fake value that exists only in these tests.
OPER_PASS = "test-only-password"
ACCOUNT_CODE = "13"
SP_NUMBER = "106900"


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0, interval: float = 0.01) -> bool:
    """Poll ``predicate`` until it holds or ``timeout`` passes (no fixed sleeps in tests)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


@dataclass
class Packet:
    items: Any
    headers: dict[str, str]
    raw: bytes
    received_at: float


@dataclass
class Receiver:
    """A tiny real HTTP server standing in for the gateway's push endpoint."""

    server: ThreadingHTTPServer
    packets: list[Packet] = field(default_factory=list)
    statuses: deque[int] = field(default_factory=deque)  # answers to give, then 200
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1/guodu/push/test-token"

    def snapshot(self) -> list[Packet]:
        with self.lock:
            return list(self.packets)

    def items(self, key: str | None = None) -> list[dict[str, Any]]:
        """Every item of every packet, optionally only those having ``key``."""
        out = [item for packet in self.snapshot() for item in packet.items]
        return [item for item in out if key is None or key in item]

    def wait_for_items(
        self, count: int, key: str | None = None, timeout: float = 5.0
    ) -> list[dict[str, Any]]:
        assert wait_until(lambda: len(self.items(key)) >= count, timeout), (
            f"expected {count} pushed items, got {len(self.items(key))}"
        )
        return self.items(key)


def _receiver_handler(receiver_ref: list[Receiver]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # else headers and body wait on a delayed ACK (40 ms)

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            receiver = receiver_ref[0]
            raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with receiver.lock:
                status = receiver.statuses.popleft() if receiver.statuses else 200
                if status == 200:
                    receiver.packets.append(
                        Packet(
                            json.loads(raw.decode("utf-8")), dict(self.headers.items()), raw, time.monotonic()
                        )
                    )
            body = b"ok" if status == 200 else b"busy"
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


def start_receiver() -> Receiver:
    ref: list[Receiver] = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _receiver_handler(ref))
    server.daemon_threads = True
    ref.append(Receiver(server))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    return ref[0]


def stop_receiver(receiver: Receiver) -> None:
    receiver.server.shutdown()
    receiver.server.server_close()


def make_config(push_url: str | None = None, **account: Any) -> SimulatorConfig:
    """One account, fast deterministic pushes, a fixed seed."""
    config = SimulatorConfig(sp_number=SP_NUMBER, seed=7, log_submits=False)
    config.add_account(
        OPER_ID, OPER_PASS, account_code=ACCOUNT_CODE, balance=account.pop("balance", 1_000_000)
    )
    for key, value in account.items():
        setattr(config.accounts[OPER_ID], key, value)
    config.push.url = push_url
    config.push.delivery_ratio = 1.0
    config.push.delay_min_seconds = 0.0
    config.push.delay_max_seconds = 0.02
    config.push.batch_window_seconds = 0.02
    config.push.retry_base_seconds = 0.05
    config.push.timeout_seconds = 2.0
    return config


def submit_body(**overrides: Any) -> dict[str, Any]:
    """A valid submitJson body (one number, plain text), with fields replaced or removed.

    ``text=`` sets Content through the Java-style encoder; a value of ``None`` removes
    the field.
    """
    body: dict[str, Any] = {
        "OperID": OPER_ID,
        "OperPass": OPER_PASS,
        "SendTime": "",
        "AppendID": "",
        "DesMobile": "13800138000",
        "Content": java_url_encode("【测试】您的验证码是123456"),
    }
    if "text" in overrides:
        body["Content"] = java_url_encode(overrides.pop("text"))
    for key, value in overrides.items():
        if value is None:
            body.pop(key, None)
        else:
            body[key] = value
    return body


def post_submit(
    simulator: Simulator, body: Any = None, *, raw: bytes | None = None, **kw: Any
) -> requests.Response:
    """POST a submit the way a client would: UTF-8 JSON (or exactly ``raw``)."""
    if raw is None:
        raw = json.dumps(submit_body() if body is None else body, ensure_ascii=False).encode("utf-8")
    return requests.post(
        simulator.submit_url,
        data=raw,
        headers={"Content-Type": "application/json;charset=UTF-8"},
        timeout=kw.pop("timeout", 5),
        **kw,
    )


def result_code(response: requests.Response) -> str:
    assert response.status_code == 200
    data = response.json()
    assert isinstance(data["ResultCode"], str)
    return str(data["ResultCode"])


def mobiles(count: int, start: int = 0) -> str:
    return ",".join(f"139{start + i:08d}" for i in range(count))
