"""The gateway through the local twin, end to end: a message is accepted, readable at the
root and under the stage, submitted to the simulator and delivered; an unknown id gets the
contract's 404. (The twin's own mechanics are tested in ``tests/twin``.)"""

from __future__ import annotations

import pytest
import requests

from smsgw_local.stack import LocalGateway
from tests.conftest import wait_until
from tests.e2e.conftest import Gateway, mobile

pytestmark = pytest.mark.e2e


def test_a_message_is_accepted_then_readable_at_the_root_and_under_the_stage(
    local_stack: LocalGateway, gateway: Gateway
) -> None:
    # Given a recipient
    to = mobile()

    # When a message is posted with the right key
    response = gateway.post_messages({"to": [to, "123"], "content": "【测试】您好", "reference": "e2e-1"})

    # Then it is accepted with an id, and the bad number is reported back
    assert response.status_code == 202, response.text
    accepted = response.json()
    assert accepted["status"] == "accepted"
    assert accepted["recipients"] == 1
    assert accepted["rejected"] == [{"to": "123", "reason": "invalid_mobile"}]
    assert response.headers["Content-Type"].startswith("application/json")
    # And its status is readable at the root and under the stage name, with the path parameter decoded
    for base in (local_stack.api_url, f"{local_stack.api_url}/{local_stack.stage_name}"):
        status = gateway.get_message(accepted["id"], base=base)
        assert status.status_code == 200
        assert status.json()["id"] == accepted["id"]
        assert status.json()["reference"] == "e2e-1"


def test_an_unknown_id_gets_the_contracts_404(gateway: Gateway) -> None:
    # When a request that does not exist is read
    response = gateway.get_message("no-such-request")

    # Then the contract's error JSON comes back
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "not_found"
    assert isinstance(error["message"], str)
    assert error["details"] == []


def test_a_message_goes_from_queued_to_submitted_on_the_simulator(
    local_stack: LocalGateway, gateway: Gateway
) -> None:
    # Given a recipient
    to = mobile()

    # When a message is sent to it
    request_id = gateway.send(to)

    # Then the worker submits it to the simulator with the account the stack generated
    states = wait_until(lambda: gateway.recipient_states(request_id) & {"submitted", "delivered"}, 20)
    assert states, gateway.status(request_id)
    assert local_stack.simulator is not None
    submits = requests.get(f"{local_stack.simulator.base_url}/_sim/submits", timeout=10).json()["accepted"]
    mine = [submit for submit in submits if to in submit["mobiles"]]
    assert len(mine) == 1
    assert mine[0]["oper_id"] == local_stack.oper_id
    # And the delivery report the simulator pushes back reaches the status
    assert wait_until(lambda: gateway.recipient_states(request_id) == {"delivered"}, 20)
