"""The public API over real HTTP: the local stack (``make run``) against anything a client sends.

Methods routed and not (TRACE, CONNECT, made up), every route under the root and the
stage, ids that are and are not request ids, numbers in every spelling in the opt-out
path, right, wrong and missing keys, the push route with the right or a wrong token, and
bodies from the send and push strategies. With the "fuzz" profile's fixed seed (the
same requests every run). Whatever is sent: never a 5xx, and every refusal is the
contract's JSON error.
"""

from __future__ import annotations

import http.client
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

import pytest
from hypothesis import event, example, given, settings
from hypothesis import strategies as st

from smsgw_local.stack import LocalGateway
from tests.e2e.conftest import fast_simulator
from tests.fuzz.strategies import (
    any_text,
    content_types,
    idempotency_keys,
    mobile_like,
    push_bodies,
    send_body_texts,
    weighted,
)

KEYS = ["fuzz-key-a", "fuzz-key-b"]
PUSH_TOKEN = "fuzz-push-token-0123"

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalGateway]:
    with LocalGateway(
        api_port=0,
        simulator_port=0,
        moto_port=0,
        env={},
        simulator=fast_simulator(),
        api_keys=KEYS,
        push_token=PUSH_TOKEN,
    ) as running:
        yield running


@dataclass(frozen=True)
class Sent:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes


def _segment(text: str) -> str:
    return quote(text.encode("utf-8", "surrogatepass"), safe="")


ids = st.one_of(
    st.uuids(version=4).map(str),
    st.uuids().map(lambda u: str(u).upper()),
    st.sampled_from(["no-such-id", "0", "..", "%2e%2e", "00000000-0000-0000-0000-000000000000"]),
    st.integers(min_value=1, max_value=5000).map(lambda n: "x" * n),
    any_text.filter(bool).map(_segment),
)
tokens = weighted(
    (3, st.just(PUSH_TOKEN)), (1, st.sampled_from([PUSH_TOKEN + "x", "wrong", PUSH_TOKEN.upper()]))
)
odd_paths = st.sampled_from(
    ["/", "/v1", "/v1/", "/v1/messages/", "/v1/guodu/push/", "/live", "/Stage/v1/messages"]
)
opt_out_paths = mobile_like.map(lambda m: f"/v1/opt-outs/{_segment(m) or '%20'}")
paths = st.one_of(
    st.just("/v1/messages"),
    ids.map(lambda i: f"/v1/messages/{i}"),
    opt_out_paths,
    tokens.map(lambda t: f"/v1/guodu/push/{t}"),
    odd_paths,
    any_text.map(lambda t: "/" + _segment(t)),
)
queries = st.one_of(
    st.just(""),
    st.fixed_dictionaries(
        {},
        optional={
            "limit": st.sampled_from(["1", "0", "5000", "5001", "-1", "²", "x", ""]),
            "cursor": st.sampled_from(["0", "1", "99999", "100000", "-1", "x"]),
        },
    ).map(lambda q: "?" + "&".join(f"{k}={_segment(v)}" for k, v in q.items()) if q else ""),
)
methods = st.sampled_from(
    ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE", "CONNECT", "FOO"]
)
# Mostly a route the API declares, so that most requests reach a function; else any
# method on any path.
routes = weighted(
    (5, st.tuples(st.just("POST"), st.just("/v1/messages"))),
    (3, st.tuples(st.just("GET"), ids.map(lambda i: f"/v1/messages/{i}"))),
    (2, st.tuples(st.sampled_from(["GET", "PUT", "DELETE"]), opt_out_paths)),
    (3, st.tuples(st.just("POST"), tokens.map(lambda t: f"/v1/guodu/push/{t}"))),
    (3, st.tuples(methods, paths)),
)
header_safe = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=300)


@st.composite
def requests_(draw: st.DrawFn) -> Sent:
    method, path = draw(routes)
    if draw(st.integers(0, 5)) == 0:
        path = "/live" + path  # the stage's URLs, as in the cloud
    headers: dict[str, str] = {}
    key = draw(st.sampled_from([*KEYS, *KEYS, *KEYS, "not-a-key", None]))
    if key is not None:
        headers["x-api-key"] = key
    idempotency = draw(idempotency_keys)
    if idempotency is not None and idempotency.isascii() and idempotency.isprintable():
        headers["Idempotency-Key"] = idempotency
    body = b""
    if "/push/" in path:
        body, content_type = draw(push_bodies())
        if content_type:
            headers["Content-Type"] = content_type
    elif method in ("POST", "PUT", "PATCH", "DELETE") and draw(st.integers(0, 9)) > 0:
        body = draw(send_body_texts).encode("utf-8", "surrogatepass")
        headers["Content-Type"] = draw(content_types)
    elif draw(st.integers(0, 9)) == 0:
        headers["X-Anything"] = draw(header_safe)
    return Sent(method, path + draw(queries), headers, body)


def send(stack: LocalGateway, sent: Sent) -> tuple[int, bytes]:
    parts = urlsplit(stack.api_url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=40)
    try:
        connection.putrequest(sent.method, sent.target, skip_accept_encoding=True)
        for name, value in {**sent.headers, "Content-Length": str(len(sent.body))}.items():
            connection.putheader(name, value)
        connection.endheaders(sent.body)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def problems(sent: Sent, status: int, body: bytes) -> list[str]:
    found = []
    if status >= 500:
        found.append(f"HTTP {status}")
    if status >= 400 and sent.method != "HEAD":
        try:
            error = json.loads(body)["error"]
        except (ValueError, KeyError, TypeError):
            return [*found, f"HTTP {status} without the contract's error body: {body[:200]!r}"]
        if not (isinstance(error.get("code"), str) and isinstance(error.get("message"), str)):
            found.append(f"an error without a code or message: {body[:200]!r}")
        if not isinstance(error.get("details"), list):
            found.append(f"an error without a details list: {body[:200]!r}")
    return found


@settings(settings.get_profile("fuzz"), max_examples=300)
@given(sent=requests_())
@example(sent=Sent("TRACE", "/v1/messages", {"x-api-key": KEYS[0]}, b""))
@example(sent=Sent("PATCH", "/v1/messages/" + str(uuid.uuid4()), {"x-api-key": KEYS[0]}, b"{}"))
@example(sent=Sent("CONNECT", "/v1/messages", {}, b""))
@example(sent=Sent("GET", "/v1/messages/" + "x" * 4000, {"x-api-key": KEYS[1]}, b""))
@example(sent=Sent("GET", "/v1/messages/NO-SUCH-ID?limit=0", {"x-api-key": KEYS[1]}, b""))
@example(sent=Sent("PUT", "/v1/opt-outs/%EF%BC%8B86%20138-0013-8000", {"x-api-key": KEYS[0]}, b""))
@example(sent=Sent("POST", f"/live/v1/guodu/push/{PUSH_TOKEN}", {}, b"\xff\xfe not a packet"))
def test_no_request_gets_a_5xx_and_every_refusal_is_the_contracts_error(
    stack: LocalGateway, sent: Sent
) -> None:
    """Given any request a client (or anyone) can send, when it reaches the local API over
    HTTP, then the answer is never a 5xx and every 4xx is the contract's JSON error."""
    status, body = send(stack, sent)

    event(f"{sent.method if sent.method in ('GET', 'POST') else 'other'} HTTP {status}")
    found = problems(sent, status, body)
    assert not found, f"{sent.method} {sent.target[:200]} -> " + "; ".join(found)
