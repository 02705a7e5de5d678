"""On the local stack (worker processes, moto server, the simulator over HTTP): reports
end as the simulator reported them, and the rate limit holds across workers."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import datetime

import pytest

from guodu_simulator import SimulatorConfig
from smsgw_local.stack import LocalGateway
from tests.conftest import wait_until
from tests.e2e.conftest import Gateway, mobile

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def paced_stack() -> Iterator[LocalGateway]:
    """A platform allowing 4 submits a second, half the messages failing on the handset."""
    config = SimulatorConfig(seed=7)
    config.push.delivery_ratio = 0.5
    config.push.delay_min_seconds = 0.0
    config.push.delay_max_seconds = 0.2
    config.push.batch_window_seconds = 0.05
    with LocalGateway(
        api_port=0,
        simulator_port=0,
        moto_port=0,
        env={},
        simulator=config,
        parameters={"GuoduMaxSubmitsPerSecond": 4, "SubmitBatchSize": 2, "SubmitMaxConcurrency": 5},
    ) as stack:
        yield stack


def test_recipients_end_delivered_and_failed_exactly_as_the_simulator_reported(
    paced_stack: LocalGateway,
) -> None:
    gateway = Gateway(paced_stack)
    assert paced_stack.simulator is not None
    # Given 60 recipients, of which the simulator will report about half failed
    numbers = [mobile() for _ in range(60)]
    request_id = gateway.send(*numbers, content="【测试】您好")
    # When every report has been pushed and stored
    view = wait_until(
        lambda: (v := gateway.status(request_id))["counts"]["delivered"] + v["counts"]["failed"] == 60 and v,
        timeout=60,
    )
    # Then each recipient shows what the simulator pushed for it, with the carrier's words
    pushed = {
        item["mobile"]: item
        for packet in paced_stack.simulator.pushes
        if packet.kind == "report"
        for item in packet.items
    }
    shown = {r["to"]: r for r in view["recipients"]}
    assert set(shown) == set(numbers)
    for number in numbers:
        report = pushed[number]
        expected = "delivered" if report["status"] == 0 else "failed"
        assert (shown[number]["status"], shown[number]["detail"]) == (expected, report["msg"])
        assert shown[number]["provider_msg_id"] == report["msgId"]
    assert 0 < view["counts"]["failed"] < 60


def test_the_rate_limit_holds_across_worker_processes(paced_stack: LocalGateway) -> None:
    gateway = Gateway(paced_stack)
    assert paced_stack.simulator is not None
    before = len(paced_stack.simulator.accepted)
    # Given 24 different contents (24 chunks) queued at once, and five worker processes
    response = gateway.post_messages(
        {"messages": [{"to": mobile(), "content": f"通知 {i}"} for i in range(24)]}
    )
    assert response.status_code == 202
    # When they are all submitted
    wait_until(lambda: len(paced_stack.simulator.accepted) - before >= 24, timeout=60)  # type: ignore[union-attr]
    submits = paced_stack.simulator.accepted[before:]
    # Then the platform never saw more than 4 submits in one second
    per_second = Counter(int(datetime.fromisoformat(s.received_at).timestamp()) for s in submits)
    assert max(per_second.values()) <= 4, per_second
    assert len(per_second) >= 6  # 24 submits at 4 a second take at least six seconds
