"""A full local run leaks no phone number and no secret into its logs or answers.

The gateway runs as `make run` runs it (``python -m smsgw_local``), at DEBUG level, while
messages are sent (in several number spellings), delivered, failed, refused, replied to
and opted out; everything it prints is captured and searched.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import boto3
import pytest
import requests

from smsgw.domain.numbers import fold

REPO_ROOT = Path(__file__).resolve().parents[2]
API_KEY = "privacy-key-0a1b2c3d"
PUSH_TOKEN = "privacy-token-4e5f6a7b"
NUMBERS = ["13812345678", "13987654321", "15011112222", "18600001111", "17733334444"]
MO_NUMBER = "13655556666"
# Sent in other spellings the gateway accepts, and used in opt-out paths.
SPELLED = {
    "13511112233": "１３５１１１１２２３３",  # full-width digits
    "15822223344": "+86 (158) 2222.3344",
    "18933334455": "0086-189-3333-4455",
    "13344445566": "86 133 4444 5566",
}
OPT_OUT_PATHS = {"18877776666": "%EF%BC%8B86%20188%207777%206666", "13766665555": "137-6666-5555"}
# Mistyped routes holding a number (no function ever sees them).
UNROUTED = {"15977778888": "/v1/opt-out/15977778888", "18655554444": "/live/v1/numbers/0086-186-5555-4444"}
# The README's example number appears in the start-up banner's curl on purpose.
BANNER_EXAMPLE = "13800138000"

pytestmark = pytest.mark.e2e
T = TypeVar("T")


def wait_for(predicate: Callable[[], T], timeout: float = 30.0) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("timed out")


def test_a_full_local_run_logs_no_number_and_no_secret(tmp_path: Path) -> None:
    # Given the local stack, started as `make run` starts it, logging at DEBUG
    log = tmp_path / "run.log"
    env = {
        **os.environ,
        "SMSGW_API_PORT": "0",
        "SMSGW_SIMULATOR_PORT": "0",
        "SMSGW_MOTO_PORT": "0",
        "SMSGW_API_KEY": API_KEY,
        "SMSGW_PUSH_TOKEN": PUSH_TOKEN,
        "SMSGW_LOG_LEVEL": "DEBUG",
        "SMSGW_PARAM_LogLevel": "DEBUG",
    }
    env.pop("GUODU_SUBMIT_URL", None)
    with log.open("w") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "smsgw_local"],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=REPO_ROOT,
        )
    answers: list[str] = []
    try:
        banner = wait_for(lambda: "Ctrl-C" in log.read_text() and log.read_text(), timeout=60)
        api = re.search(r"API\s+(http://127\.0\.0\.1:\d+)", banner)
        simulator = re.search(r"Simulator\s+(http://127\.0\.0\.1:\d+)", banner)
        moto = re.search(r"Moto\s+(http://127\.0\.0\.1:\d+)", banner)
        assert api, banner
        assert simulator, banner
        assert moto, banner
        base, headers = api.group(1), {"x-api-key": API_KEY}

        # When messages go through every path: sent in several spellings, some failing on
        # the platform, refused at intake, replied to, opted out, and read back
        # Seeded, so the same numbers fail on every run (some must, to log their reasons)
        settings = {"seed": 11, "push": {"delivery_ratio": 0.3}}
        requests.post(f"{simulator.group(1)}/_sim/config", json=settings, timeout=10)
        spelled = [
            "+86 138-1234-5678",
            "0086 13987654321",
            "150 1111 2222",
            "18600001111",
            "17733334444",
            "12345",
        ]
        sent = requests.post(
            f"{base}/v1/messages",
            headers=headers,
            json={"to": spelled, "content": "【示例】您好", "reference": "p"},
            timeout=30,
        )
        answers.append(sent.text)
        request_id = sent.json()["id"]
        for bad in (
            {"to": NUMBERS[:1], "content": ""},
            {"to": "13812345678", "content": "x", "send_at": "yesterday"},
        ):
            answers.append(requests.post(f"{base}/v1/messages", headers=headers, json=bad, timeout=30).text)
        answers.append(
            requests.post(f"{base}/v1/messages", headers={"x-api-key": "wrong"}, json={}, timeout=30).text
        )
        answers.append(
            requests.post(f"{base}/v1/guodu/push/not-the-token", json=[{"msgId": "1"}], timeout=30).text
        )
        requests.post(
            f"{simulator.group(1)}/_sim/mo", json={"mobile": MO_NUMBER, "content": "TD"}, timeout=10
        )
        answers.append(
            requests.post(
                f"{base}/v1/messages",
                headers=headers,
                json={"to": ",".join(SPELLED.values()), "content": "【示例】您好", "reference": "q"},
                timeout=30,
            ).text
        )
        for path in OPT_OUT_PATHS.values():
            for method in ("PUT", "GET", "DELETE", "GET"):
                answers.append(
                    requests.request(method, f"{base}/v1/opt-outs/{path}", headers=headers, timeout=30).text
                )
        for path in UNROUTED.values():
            answers.append(requests.get(f"{base}{path}", headers=headers, timeout=30).text)
        answers.append(requests.post(f"{base}/v1/guodu/push/{PUSH_TOKEN}/x", json=[], timeout=30).text)
        marketing = requests.post(
            f"{base}/v1/messages",
            headers=headers,
            json={"to": [MO_NUMBER, NUMBERS[0]], "content": "大促，退订回T", "category": "marketing"},
            timeout=30,
        )
        answers.append(marketing.text)
        settled = wait_for(
            lambda: (
                (
                    view := requests.get(
                        f"{base}/v1/messages/{request_id}", headers=headers, timeout=30
                    ).json()
                )["counts"]["delivered"]
                + view["counts"]["failed"]
                == len(NUMBERS)
                and view
            )
        )
        assert settled["counts"]["failed"] > 0  # some failed: their reasons were handled too
        answers.append(requests.get(f"{base}/v1/opt-outs/{MO_NUMBER}", headers=headers, timeout=30).text)
        answers.append(requests.get(f"{base}/v1/messages/no-such-id", headers=headers, timeout=30).text)
        secrets = boto3.client(
            "secretsmanager",
            endpoint_url=moto.group(1),
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        provider = json.loads(
            next(
                secrets.get_secret_value(SecretId=s["ARN"])["SecretString"]
                for s in secrets.list_secrets()["SecretList"]
                if s["Name"].endswith("/guodu")
            )
        )
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    # Then, past the start-up banner, the logs hold no complete number in any spelling,
    # and no secret at all; the answers hold no secret either
    output = log.read_text()
    banner_end = output.index("Ctrl-C")
    logs = output[banner_end:]
    for function in ("SendApi", "SubmitWorker", "PushReceiver"):
        assert function in logs, f"{function} did log"
    assert len(logs.splitlines()) > 50
    # (read as the number normaliser reads text: every form it accepts folds to the digits)
    readable = fold(logs)
    for number in [*NUMBERS, MO_NUMBER, *SPELLED, *OPT_OUT_PATHS, *UNROUTED]:
        assert number not in readable, f"{number[:3]}****{number[-4:]} appears in the logs"
    assert BANNER_EXAMPLE not in logs
    assert provider["oper_pass"] not in output  # not even in the banner
    for secret in (API_KEY, PUSH_TOKEN, provider["oper_pass"]):
        assert secret not in logs
        for answer in answers:
            assert secret not in answer
