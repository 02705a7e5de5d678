"""Fixtures for the local twin's own tests (``local/``: the API Gateway stand-in, the SQS
event source, the function runtimes, schedules, injected AWS faults, moto's fidelity, the
Guodu simulator and the ``simulate-mo`` developer command).

The stacks are the e2e suite's, imported so that both suites start them the same way
(each module that uses one starts its own, as in ``tests/e2e``).
"""

from __future__ import annotations

import pytest

from smsgw_local.provision import Provisioned
from tests.e2e.conftest import failing_gateway, failing_stack, gateway, local_stack
from tests.integration.conftest import make_stack

__all__ = ["failing_gateway", "failing_stack", "gateway", "local_stack"]


@pytest.fixture
def stack(aws: None) -> Provisioned:
    """template.yaml's tables, queues and secrets in in-process moto."""
    return make_stack()
