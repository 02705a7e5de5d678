"""Fixtures for the Guodu simulator's tests: a started simulator and a real push receiver."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sim_helpers import Receiver, make_config, start_receiver, stop_receiver

from guodu_simulator import Simulator


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A real HTTP server on an ephemeral port recording every packet pushed to it."""
    server = start_receiver()
    yield server
    stop_receiver(server)


@pytest.fixture
def sim() -> Iterator[Simulator]:
    """A running simulator with one account and no push URL."""
    with Simulator(make_config()) as simulator:
        yield simulator


@pytest.fixture
def pushing_sim(receiver: Receiver) -> Iterator[Simulator]:
    """A running simulator pushing to ``receiver``; every number delivered."""
    with Simulator(make_config(receiver.url)) as simulator:
        yield simulator
