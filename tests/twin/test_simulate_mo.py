"""``smsgw simulate-mo``: a real Guodu simulator pushes the reply to a recording HTTP server
standing in for the gateway's push route."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote_plus

import pytest

from guodu_simulator import Simulator, SimulatorConfig
from smsgw_cli.main import main
from tests.cli.conftest import Run


class Recorder:
    """Keeps every JSON body POSTed to it and answers 200 ``success``, as the gateway does."""

    def __init__(self) -> None:
        self.packets: list[Any] = []
        self._lock = threading.Lock()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with recorder._lock:
                    recorder.packets.append(json.loads(body))
                self.send_response(200)
                self.send_header("Content-Length", "7")
                self.end_headers()
                self.wfile.write(b"success")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1/guodu/push/test-token"

    def wait_for_items(self, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                items = [item for packet in self.packets for item in packet]
            if len(items) >= count or time.monotonic() > deadline:
                return items
            time.sleep(0.01)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    receiving = Recorder()
    yield receiving
    receiving.stop()


@pytest.fixture
def simulator(recorder: Recorder) -> Iterator[Simulator]:
    """The simulator on an ephemeral port, pushing at once to the recorder."""
    config = SimulatorConfig()
    config.push.url = recorder.url
    config.push.batch_window_seconds = 0.01
    with Simulator(config) as sim:
        yield sim


def smsgw(capsys: pytest.CaptureFixture[str], *args: str) -> Run:
    capsys.readouterr()
    code = main(list(args))
    captured = capsys.readouterr()
    return Run(code, captured.out, captured.err)


def test_the_simulator_pushes_the_reply_to_the_push_url(
    capsys: pytest.CaptureFixture[str], simulator: Simulator, recorder: Recorder
) -> None:
    # Given the simulator pushing to the (recording) push route
    # When the user simulates a reply "退订 TD" from 13800138000 to extension 01
    run = smsgw(
        capsys,
        "simulate-mo",
        "13800138000",
        "退订 TD",
        "--append-id",
        "01",
        "--simulator-url",
        simulator.base_url,
    )
    # Then the command succeeds and shows the item it queued
    assert run.code == 0, run.err
    assert "queued: the simulator pushes this MO item" in run.out
    assert "SrcMobile  13800138000" in run.out
    # And the push route receives one MO item in the platform's format
    [item] = recorder.wait_for_items(1)
    assert item["SrcMobile"] == "13800138000"
    assert unquote_plus(item["Content"]) == "退订 TD"
    assert item["AppendID"] == "01"
    assert simulator.pushes[0].kind == "mo"


def test_the_default_simulator_url_uses_smsgw_simulator_port(
    capsys: pytest.CaptureFixture[str],
    simulator: Simulator,
    recorder: Recorder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given no --simulator-url, and SMSGW_SIMULATOR_PORT naming the simulator's port
    monkeypatch.setenv("SMSGW_SIMULATOR_PORT", str(simulator.port))
    # When the user simulates "TD" (the documented example), asking for JSON
    run = smsgw(capsys, "simulate-mo", "13800138000", "TD", "--json")
    # Then the simulator's reply is printed as JSON, and the reply is pushed
    assert run.code == 0, run.err
    assert json.loads(run.out)["queued"]["SrcMobile"] == "13800138000"
    [item] = recorder.wait_for_items(1)
    assert (item["SrcMobile"], item["Content"], item["AppendID"]) == ("13800138000", "TD", "")


def test_a_simulator_without_a_push_url_is_explained(capsys: pytest.CaptureFixture[str]) -> None:
    # Given a simulator that has nowhere to push
    with Simulator(SimulatorConfig()) as sim:
        # When the user simulates a reply
        run = smsgw(capsys, "simulate-mo", "13800138000", "TD", "--simulator-url", sim.base_url)
    # Then it is refused (exit 1) and the user learns why
    assert run.code == 1
    assert "no push url" in run.err
    assert "push URL" in run.err
    assert run.out == ""


def test_no_simulator_listening_exits_2_with_a_hint(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given nothing listening on the simulator port
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("SMSGW_SIMULATOR_PORT", str(port))
    # When the user simulates a reply
    run = smsgw(capsys, "simulate-mo", "13800138000", "TD")
    # Then exit 2, naming the simulator's URL and asking whether `make run` is up
    assert run.code == 2
    assert f"cannot reach the Guodu simulator at http://127.0.0.1:{port}" in run.err
    assert "is `make run` up" in run.err
