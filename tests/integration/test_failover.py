"""Failover between the platform's addresses: the worker against real sockets (a closed
port, a full listen queue, a name that does not resolve, HTTPS to a plain HTTP port) and
the simulator; moto for AWS.

A submit moves to the next address only when it provably never left; an address that
keeps failing so is benched; an ambiguous failure never moves (that could send twice).
"""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import Callable, Iterator

import pytest

from guodu_simulator import Simulator, SimulatorConfig
from smsgw.domain.model import SubmitVerdict
from smsgw.provider.client import Addresses, FailoverPolicy, GuoduClient
from smsgw.provider.guodu import Credentials, SubmitRequest
from smsgw_local.provision import Provisioned
from tests.integration.conftest import PROVIDER_PASSWORD, Api, Worker, make_stack

PATH = "/HttpQuickProcess/submitJson"


def closed_port_url() -> str:
    """An address where nothing listens: the connection is refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}{PATH}"


@pytest.fixture
def unanswered_port() -> Iterator[str]:
    """An address whose listen queue is full: a connection is never accepted (connect timeout)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            filler.connect(("127.0.0.1", port))
        fillers.append(filler)
    time.sleep(0.1)
    yield f"http://127.0.0.1:{port}{PATH}"
    for filler in fillers:
        filler.close()
    server.close()


def metrics_of(out: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.splitlines() if line.startswith("{") and '"_aws"' in line]


def address_counts(out: str, name: str) -> dict[str, float]:
    counts: dict[str, float] = {}
    for line in metrics_of(out):
        if name in line and "address" in line:
            counts[str(line["address"])] = counts.get(str(line["address"]), 0) + sum(line[name])  # type: ignore[arg-type]
    return counts


@pytest.fixture
def stack(aws: None, simulator: Simulator) -> Provisioned:
    return make_stack(simulator.submit_url)


def test_with_the_first_address_refusing_sends_go_through_the_second_once_and_it_is_benched(
    stack: Provisioned,
    api: Api,
    load_worker: Callable[..., Worker],
    simulator: Simulator,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given the platform's first address refusing connections and the second answering
    first = closed_port_url()
    worker = load_worker(stack, GUODU_SUBMIT_URLS=f"{first},{simulator.submit_url}")
    # When five requests are sent one after another
    ids = []
    for n in range(5):
        ids.append(api.post({"to": [f"1380013{n:04d}"], "content": "【示例】您好"})[1]["id"])
        worker.drain()
    # Then each went out exactly once, through the second address
    assert sorted(m for s in simulator.accepted for m in s.mobiles) == [f"1380013{n:04d}" for n in range(5)]
    for request_id in ids:
        assert api.get(request_id)[1]["recipients"][0]["status"] == "submitted"
    # And the first address was tried only until it was benched (twice), not for every send
    out = capsys.readouterr().out
    first_address = first.split("/")[2]
    assert address_counts(out, "AddressUnreachable") == {first_address: 2}
    assert address_counts(out, "AddressRequests") == {simulator.submit_url.split("/")[2]: 5}
    # And the alarm's metric says the first address is benched
    benched = [m for m in metrics_of(out) if "PrimaryAddressBenched" in m]
    assert len(benched) >= 4  # from the submit that benched it on


def test_a_name_that_does_not_resolve_and_a_failed_tls_handshake_move_on_too(
    stack: Provisioned, api: Api, load_worker: Callable[..., Worker], simulator: Simulator
) -> None:
    # Given a first address that does not resolve, and a second speaking plain HTTP where
    # HTTPS is asked (the handshake fails before any byte of the request)
    plain = simulator.submit_url.replace("http://", "https://")
    urls = f"http://guodu-primary.invalid{PATH},{plain},{simulator.submit_url}"
    worker = load_worker(stack, GUODU_SUBMIT_URLS=urls)
    _, reply = api.post({"to": ["13800138000"], "content": "【示例】您好"})
    worker.drain()
    # Then it went out once, through the third address
    assert [s.mobiles for s in simulator.accepted] == [["13800138000"]]
    assert api.get(reply["id"])[1]["recipients"][0]["status"] == "submitted"


def test_a_connect_timeout_moves_on_at_once(
    stack: Provisioned,
    api: Api,
    load_worker: Callable[..., Worker],
    simulator: Simulator,
    unanswered_port: str,
) -> None:
    worker = load_worker(
        stack, GUODU_SUBMIT_URLS=f"{unanswered_port},{simulator.submit_url}", GUODU_CONNECT_TIMEOUT="0.5"
    )
    _, reply = api.post({"to": ["13800138000"], "content": "【示例】您好"})
    began = time.monotonic()
    worker.drain()
    assert [s.mobiles for s in simulator.accepted] == [["13800138000"]]
    assert time.monotonic() - began < 5  # one connect timeout, then the next address
    assert api.get(reply["id"])[1]["recipients"][0]["status"] == "submitted"


@pytest.mark.parametrize("fault", ["accept_then_drop", "http_500"])
def test_an_ambiguous_failure_never_moves_to_another_address(
    fault: str, stack: Provisioned, api: Api, load_worker: Callable[..., Worker], simulator: Simulator
) -> None:
    # Given two simulated data centres, the first taking the submit and then failing to
    # answer (or answering 500, as a proxy may after the platform took it)
    config = SimulatorConfig().add_account("acct", PROVIDER_PASSWORD, balance=1_000_000)
    with Simulator(config) as second:
        simulator.queue_faults(fault)
        worker = load_worker(stack, GUODU_SUBMIT_URLS=f"{simulator.submit_url},{second.submit_url}")
        _, reply = api.post({"to": ["13800138000"], "content": "【示例】您好"})
        worker.drain()
        # Then the second never saw it (it may have been sent: no duplicate), and the
        # recipient is unknown, truthfully
        assert second.accepted == []
        assert second.refused == []
        assert api.get(reply["id"])[1]["recipients"][0]["status"] == "unknown"


def test_a_benched_address_is_tried_again_first_once_its_time_is_over() -> None:
    # Given two addresses and a clock the test controls
    now = [0.0]
    addresses = Addresses(
        ["http://a/x", "http://b/x"],
        FailoverPolicy(bench_after=2, bench_seconds=30, max_bench_seconds=300),
        clock=lambda: now[0],
    )
    first = addresses.order()[0][0]
    # When the first fails twice without the request leaving
    assert addresses.never_sent(first) is False
    assert addresses.never_sent(first) is True
    # Then the second is tried first while it is benched
    order, skipped = addresses.order()
    assert ([a.url for a in order], skipped) == (["http://b/x", "http://a/x"], (0,))
    # And once its time is over it comes first again; failing again benches it twice as long
    now[0] = 31
    assert addresses.order()[0][0].url == "http://a/x"
    assert addresses.never_sent(first) is True
    now[0] = 31 + 59
    assert addresses.order()[0][0].url == "http://b/x"
    now[0] = 31 + 61
    assert addresses.order()[0][0].url == "http://a/x"
    # And a request that reaches it takes it off the bench for good
    addresses.reached(first)
    assert addresses.never_sent(first) is False


def test_every_address_failing_is_a_transient_failure_never_sent(simulator: Simulator) -> None:
    client = GuoduClient([closed_port_url(), closed_port_url()], lambda: Credentials("acct", "x"))
    result = client.submit(SubmitRequest(("13800138000",), "x"))
    assert (result.verdict, result.code) == (SubmitVerdict.TRANSIENT, "connect_error")
    assert [t.reached for t in result.tries] == [False, False]
