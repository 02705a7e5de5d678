"""Fixtures for the CLI's tests: a fake gateway on an ephemeral port, and a runner that
calls ``smsgw`` as a user would and keeps what it printed."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from smsgw_cli.main import main
from tests.cli.fake_gateway import API_KEY, FakeGateway


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str

    @property
    def all(self) -> str:
        return self.out + self.err


RunCli = Callable[..., Run]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's shell must not choose the URL or the key of a test."""
    for name in ("SMSGW_URL", "SMSGW_API_KEY", "SMSGW_API_PORT"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def gateway() -> Iterator[FakeGateway]:
    fake = FakeGateway().start()
    yield fake
    fake.stop()


@pytest.fixture
def staged_gateway() -> Iterator[FakeGateway]:
    """Served under a stage, like a deployed stack's ApiUrl (``…/live``)."""
    fake = FakeGateway(stage="/live").start()
    yield fake
    fake.stop()


@pytest.fixture
def smsgw(gateway: FakeGateway, capsys: pytest.CaptureFixture[str]) -> RunCli:
    """``smsgw(*args)`` runs the CLI against the fake gateway with the right key,
    unless ``url=`` / ``api_key=`` say otherwise (``None``: leave the option out)."""

    def run(*args: str, url: str | None = gateway.url, api_key: str | None = API_KEY) -> Run:
        options = [*(["--url", url] if url is not None else []), *(["--api-key", api_key] if api_key else [])]
        capsys.readouterr()
        code = main([*options, *args])
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return run
