"""Starting, configuring and stopping the simulator: in-process, from the environment, CLI."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import requests
from sim_helpers import OPER_ID, OPER_PASS, make_config, post_submit, result_code, submit_body, wait_until

from guodu_simulator import ConfigError, Simulator, config_from_env


def _sim_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("guodu-sim") and t.is_alive()]


def test_stop_is_clean_even_with_open_connections_and_sleeping_faults() -> None:
    # Given a simulator with a kept-alive client connection and a timeout fault in progress
    sim = Simulator(make_config())
    sim.start()
    port = sim.port
    session = requests.Session()
    assert result_code(session.post(sim.submit_url, json=submit_body(), timeout=5)) == "03"
    sim.configure({"faults": {"timeout_rate": 1.0, "timeout_seconds": 60}})
    hanging = threading.Thread(target=lambda: _swallow(lambda: post_submit(sim, timeout=30)), daemon=True)
    hanging.start()
    assert wait_until(lambda: len(sim.refused) == 1)
    # When it is stopped
    started = time.monotonic()
    sim.stop()
    # Then it stops promptly, the port is closed, and its threads are gone
    assert time.monotonic() - started < 3
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass
    assert wait_until(lambda: not _sim_threads(), timeout=3), _sim_threads()
    hanging.join(5)
    assert not hanging.is_alive()
    # And stopping twice is harmless
    sim.stop()
    session.close()


def _swallow(call: Callable[[], object]) -> None:
    with contextlib.suppress(requests.RequestException):
        call()


def test_context_manager_starts_and_stops(sim: Simulator) -> None:
    # Given the fixture's `with Simulator(...)`, Then it runs on an ephemeral port
    assert sim.running
    assert sim.port > 0
    assert sim.submit_url == f"http://127.0.0.1:{sim.port}/HttpQuickProcess/submitJson"


def test_config_from_environment_variables(tmp_path: Path) -> None:
    # Given the local stack's variables, the password in a file
    secret = tmp_path / "pass"
    secret.write_text("env-test-password\n", encoding="utf-8")
    env = {
        "GUODU_SIM_OPER_ID": "env-user",
        "GUODU_SIM_OPER_PASS_FILE": str(secret),
        "GUODU_SIM_ACCOUNT_CODE": "77",
        "GUODU_SIM_BALANCE": "500",
        "GUODU_SIM_PUSH_URL": "http://127.0.0.1:1/push",
        "GUODU_SIM_REPORT_DELAY": "0.1-0.3",
        "GUODU_SIM_LATENCY_MS": "5-10",
        "GUODU_SIM_FAULTS": '{"code_rates": {"-1": 0.1}}',
        "GUODU_SIM_PUSH_FAULTS": '{"duplicate_rate": 0.2}',
        "GUODU_SIM_SEED": "3",
    }
    # When the config is read
    config = config_from_env(env)
    # Then every setting is there
    account = config.accounts["env-user"]
    assert (account.password, account.account_code, account.balance) == ("env-test-password", "77", 500)
    assert (config.push.delay_min_seconds, config.push.delay_max_seconds) == (0.1, 0.3)
    assert (config.latency_ms, config.latency_max_ms) == (5, 10)
    assert config.faults.code_rates == {"-1": 0.1}
    assert config.push.duplicate_rate == 0.2
    assert config.seed == 3
    # And a simulator built from it accepts that account
    with Simulator.from_env({**env, "GUODU_SIM_LATENCY_MS": "0", "GUODU_SIM_FAULTS": ""}) as sim:
        body = submit_body(OperID="env-user", OperPass="env-test-password")
        assert result_code(post_submit(sim, body)) == "03"


def test_an_account_needs_both_id_and_password() -> None:
    # Given an OperID without a password, Then the config is refused (no default password)
    with pytest.raises(ConfigError):
        config_from_env({"GUODU_SIM_OPER_ID": "someone"})
    assert config_from_env({}).accounts == {}


def test_submit_log_line_masks_numbers_and_never_shows_the_password(caplog: pytest.LogCaptureFixture) -> None:
    # Given logging of submits on
    config = make_config()
    config.log_submits = True
    with caplog.at_level(logging.INFO, logger="guodu_simulator"), Simulator(config) as sim:
        # When a submit is accepted and another refused
        post_submit(sim, submit_body(DesMobile="13800138000,13900139000"))
        post_submit(sim, submit_body(OperPass="wrong-" + OPER_PASS))
    text = caplog.text
    # Then one line each, numbers masked, password nowhere
    assert "138****8000" in text
    assert "139****9000" in text
    assert "13800138000" not in text
    assert OPER_PASS not in text
    assert "code=05" in text


def test_cli_runs_until_sigterm() -> None:
    # Given the CLI started on a free port with the account from the environment
    env = {
        **os.environ,
        "GUODU_SIM_OPER_ID": OPER_ID,
        "GUODU_SIM_OPER_PASS": OPER_PASS,
        "PYTHONUNBUFFERED": "1",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "guodu_simulator", "--port", "0", "--latency-ms", "1"],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        assert "listening on" in line, line
        base_url = line.strip().rsplit(" ", 1)[-1]
        # When a client submits to it
        answer = requests.post(base_url + "/HttpQuickProcess/submitJson", json=submit_body(), timeout=5)
        assert answer.json()["ResultCode"] == "03"
        # Then SIGTERM stops it cleanly, and its log masked the number
        process.send_signal(signal.SIGTERM)
        _, rest = process.communicate(timeout=10)
        assert process.returncode == 0
        assert "138****8000" in rest
        assert OPER_PASS not in line + rest
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
