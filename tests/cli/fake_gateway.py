"""A small fake of the gateway's public API, over real HTTP, for the CLI's tests.

It answers like the public contract (``docs/openapi.yaml``) and like API Gateway in front
of it, with the template's gateway responses: 202 with the accepted reply, 400/404/409
with the error envelope, 403 ``invalid_api_key`` for a wrong key and
``missing_authentication_token`` for an unknown route (``gateway_defaults``: API
Gateway's bare ``{"message": ...}`` instead, as a stack without those responses answers),
and whatever a test queues up (a 503, a slow answer). Every request is recorded as it
arrived.

A request's status moves on each first-page GET: ``queued_polls`` answers with every
recipient queued, then ``submitted_polls`` with every recipient submitted, then every one
in the final state ``outcome`` (delivered, unless a test says otherwise). Pages hold ``page_size`` recipients;
the cursor is opaque to the client (here: the index of the next recipient).
"""

from __future__ import annotations

import json
import math
import re
import threading
import uuid
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

API_KEY = "test-only-key-5d1e0b"
_MOBILE = re.compile(r"1[3-9][0-9]{9}")


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # names in lower case
    body: Any


@dataclass
class Canned:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)
    delay: threading.Event | None = None  # answer only once this is set


@dataclass
class Request:
    id: str
    reference: str | None
    category: str
    send_at: str | None
    segments: int
    mobiles: list[str]
    rejected: list[dict[str, str]]
    polls: int = 0


def _error(status: int, code: str, message: str, details: list[dict[str, Any]] | None = None) -> Canned:
    return Canned(status, {"error": {"code": code, "message": message, "details": details or []}})


def _normalise(raw: str) -> str | None:
    text = re.sub(r"[\s\-]", "", raw)
    for prefix in ("+86", "0086"):
        if text.startswith(prefix):
            text = text[len(prefix) :]
    return text if _MOBILE.fullmatch(text) else None


class FakeGateway:
    def __init__(self, *, stage: str = "", api_key: str = API_KEY) -> None:
        self.stage = stage
        self.api_key = api_key
        self.requests: list[Recorded] = []
        self.queued: deque[Canned] = deque()  # answered instead of the next request
        self.queued_polls = 1
        self.submitted_polls = 1
        self.outcome = "delivered"
        self.page_size = 1_000
        self.gateway_defaults = False  # True: API Gateway's bare {"message": ...} refusals
        self.sigv4 = False  # True: a SigV4-signed request is let in (ApiAuth=IAM), not a key
        self._store: dict[str, Request] = {}
        self._keys: dict[str, tuple[Any, dict[str, Any]]] = {}
        self._stalls: list[threading.Event] = []
        self._lock = threading.Lock()
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

            def do_PUT(self) -> None:
                self._serve("PUT")

            def do_DELETE(self) -> None:
                self._serve("DELETE")

            def _serve(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode("utf-8", "replace")
                parts = urlsplit(self.path)
                recorded = Recorded(
                    method,
                    parts.path,
                    parse_qs(parts.query),
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                )
                answer = gateway.answer(recorded)
                if answer.delay is not None:
                    answer.delay.wait(5)
                if answer.status == 204:
                    payload, content_type = b"", "application/json"
                elif isinstance(answer.body, bytes):  # not from the API: some page in front of it
                    payload, content_type = answer.body, "text/html"
                else:
                    payload = json.dumps(answer.body, ensure_ascii=False).encode("utf-8")
                    content_type = "application/json"
                try:
                    self.send_response(answer.status)
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(payload)))
                    for name, value in answer.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up waiting
                    pass

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)

    @property
    def url(self) -> str:
        """The base URL a client is given (with the stage, like a stack's ApiUrl)."""
        return f"http://127.0.0.1:{self._server.server_port}{self.stage}"

    def start(self) -> FakeGateway:
        self._thread.start()
        return self

    def stop(self) -> None:
        for stall in self._stalls:
            stall.set()
        self._server.shutdown()
        self._server.server_close()

    # what the tests arrange and look at

    def answer_next(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        """The next request (with the right key) gets this answer."""
        self.queued.append(Canned(status, body, headers or {}))

    def stall_next(self) -> None:
        """The next request gets no answer until the test ends (a lost reply)."""
        stall = threading.Event()
        self._stalls.append(stall)
        self.queued.append(Canned(503, {"message": "too late"}, delay=stall))

    def calls(self, method: str | None = None) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if method is None or r.method == method]

    def request_ids(self) -> list[str]:
        with self._lock:
            return list(self._store)

    def seed(self, request: Request) -> None:
        """A request that exists already (as if sent earlier)."""
        with self._lock:
            self._store[request.id] = request

    # the API

    def answer(self, request: Recorded) -> Canned:
        with self._lock:
            self.requests.append(request)
            signed = request.headers.get("authorization", "").startswith("AWS4-HMAC-SHA256 ")
            if (self.sigv4 and not signed) or (
                not self.sigv4 and request.headers.get("x-api-key") != self.api_key
            ):
                return self._gateway(403, "invalid_api_key", "Forbidden", "ForbiddenException")
            if self.queued:
                return self.queued.popleft()
            path = request.path.removeprefix(self.stage) if request.path.startswith(self.stage) else ""
            if request.method == "POST" and path == "/v1/messages":
                return self._send(request)
            if request.method == "GET" and path.startswith("/v1/messages/") and path.count("/") == 3:
                return self._status(path.rsplit("/", 1)[1], request.query.get("cursor", [None])[0])
            return self._gateway(
                403,
                "missing_authentication_token",
                "Missing Authentication Token",
                "MissingAuthenticationTokenException",
            )

    def _gateway(self, status: int, code: str, message: str, error_type: str) -> Canned:
        """An answer of API Gateway itself, before any function runs."""
        body: dict[str, Any] = (
            {"message": message}
            if self.gateway_defaults
            else {"error": {"code": code, "message": message, "details": []}}
        )
        return Canned(status, body, {"x-amzn-ErrorType": error_type})

    def _send(self, request: Recorded) -> Canned:
        body = request.body
        if not isinstance(body, dict):
            return _error(400, "invalid_json", "body: must be a JSON object", [{"field": "body"}])
        key = request.headers.get("idempotency-key")
        if key is not None and key in self._keys:
            first_body, first_reply = self._keys[key]
            if first_body != body:
                return _error(
                    409,
                    "idempotency_key_reused",
                    "this Idempotency-Key was used with a different request body",
                )
            return Canned(202, first_reply)
        content = body.get("content")
        if not isinstance(content, str) or not content.strip():
            return _error(
                400,
                "validation_failed",
                "content: must not be empty",
                [{"field": "content", "message": "must not be empty"}],
            )
        to = body.get("to")
        numbers = to.split(",") if isinstance(to, str) else list(to or [])
        mobiles: dict[str, None] = {}
        rejected: list[dict[str, str]] = []
        for number in numbers:
            mobile = _normalise(number)
            if mobile is None:
                rejected.append({"to": number, "reason": "invalid_mobile"})
            else:
                mobiles.setdefault(mobile, None)
        if not mobiles:
            return _error(
                400,
                "validation_failed",
                "to: holds no valid Chinese mobile number",
                [{"field": "to", "message": "holds no valid Chinese mobile number"}, *rejected],
            )
        segments = 1 if len(content) <= 70 else math.ceil(len(content) / 67)
        stored = Request(
            id=str(uuid.uuid4()),
            reference=body.get("reference"),
            category=body.get("category", "transactional"),
            send_at=body.get("send_at"),
            segments=segments,
            mobiles=list(mobiles),
            rejected=rejected,
        )
        self._store[stored.id] = stored
        reply: dict[str, Any] = {
            "id": stored.id,
            "status": "accepted",
            "recipients": len(mobiles),
            "segments": segments,
            "total_segments": segments * len(mobiles),
            "rejected": rejected,
        }
        if stored.reference is not None:
            reply["reference"] = stored.reference
        if key is not None:
            self._keys[key] = (body, reply)
        return Canned(202, reply)

    def _status(self, request_id: str, cursor: str | None) -> Canned:
        stored = self._store.get(request_id)
        if stored is None:
            return _error(404, "not_found", f"no message request {request_id}")
        if cursor is None:
            stored.polls += 1
        answered = stored.polls - 1  # first-page answers before this one
        if answered < self.queued_polls:
            state = "queued"
        elif answered < self.queued_polls + self.submitted_polls:
            state = "submitted"
        else:
            state = self.outcome

        def recipient(i: int, mobile: str) -> dict[str, Any]:
            has_msg_id = state in ("submitted", "delivered", "failed")
            return {
                "to": mobile,
                "status": state,
                "provider_msg_id": f"MSG{i:04d}" if has_msg_id else None,
                "provider_code": "0" if has_msg_id else None,
                "detail": "发送成功" if state == "delivered" else None,
                "updated_at": "2026-11-25T08:00:00Z",
            }

        start = int(cursor or 0)
        end = start + self.page_size
        n = len(stored.mobiles)
        counts = dict.fromkeys(("queued", "submitted", "delivered", "failed", "unknown", "expired"), 0)
        counts[state] = n
        reply = {
            "id": stored.id,
            "status": "accepted" if state == "queued" else "submitted",
            "reference": stored.reference,
            "category": stored.category,
            "created_at": "2026-11-25T07:59:59Z",
            "send_at": stored.send_at,
            "segments": stored.segments,
            "total_segments": stored.segments * n,
            "counts": {"total": n, **counts, "rejected": len(stored.rejected), "opted_out": 0},
            "recipients": [recipient(i, m) for i, m in enumerate(stored.mobiles) if start <= i < end],
            "rejected": stored.rejected,
            "next_cursor": str(end) if end < n else None,
        }
        return Canned(200, reply)
