"""Two callers on one local gateway, over real sockets: ``SMSGW_API_KEYS=a,b make run``.

The stack runs as ``make run`` runs it (``python -m smsgw_local``), with two API keys;
each key is its own caller, as each API key is in the cloud.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from smsgw_local.stack import LocalGateway, StackError
from tests.conftest import wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The API URL of `SMSGW_API_KEYS=a,b make run`."""
    log = tmp_path_factory.mktemp("two-keys") / "run.log"
    env = {
        **os.environ,
        "SMSGW_API_KEYS": "a,b",
        "SMSGW_API_PORT": "0",
        "SMSGW_SIMULATOR_PORT": "0",
        "SMSGW_MOTO_PORT": "0",
    }
    for name in ("GUODU_SUBMIT_URL", "SMSGW_API_KEY"):
        env.pop(name, None)
    with log.open("w") as sink:
        command = [sys.executable, "-m", "smsgw_local"]
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, env=env, cwd=REPO_ROOT)
    try:
        banner = wait_until(lambda: "Ctrl-C" in log.read_text() and log.read_text(), timeout=90)
        found = re.search(r"API\s+(http://127\.0\.0\.1:\d+)", banner or "")
        assert found, log.read_text()[-3000:]
        yield found.group(1)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def send(api: str, key: str, *, idempotency_key: str | None = None) -> str:
    headers = {"x-api-key": key, **({"Idempotency-Key": idempotency_key} if idempotency_key else {})}
    body = {"to": ["13912345678"], "content": "【示例】您好", "reference": f"ref-{key}"}
    response = requests.post(f"{api}/v1/messages", json=body, headers=headers, timeout=30)
    assert response.status_code == 202, response.text
    request_id: str = response.json()["id"]
    return request_id


def read(api: str, key: str, request_id: str) -> requests.Response:
    return requests.get(f"{api}/v1/messages/{request_id}", headers={"x-api-key": key}, timeout=30)


def test_key_b_gets_404_for_as_request_and_a_reads_it(api: str) -> None:
    # Given a request sent with key a
    request_id = send(api, "a")
    # When key b asks for it, and for an id nobody used
    theirs, unknown = read(api, "b", request_id), read(api, "b", str(uuid.uuid4()))
    # Then b gets a 404, the very answer to an unknown id
    assert theirs.status_code == 404
    assert theirs.json() == unknown.json()
    assert theirs.json()["error"]["code"] == "not_found"
    # And a reads it
    mine = read(api, "a", request_id)
    assert mine.status_code == 200
    assert mine.json()["reference"] == "ref-a"
    # And a key that is neither is refused by the gateway itself
    assert read(api, "c", request_id).status_code == 403


def test_the_same_idempotency_key_is_each_callers_own(api: str) -> None:
    first_a = send(api, "a", idempotency_key="order-1")
    assert send(api, "a", idempotency_key="order-1") == first_a
    first_b = send(api, "b", idempotency_key="order-1")
    assert first_b != first_a
    assert read(api, "a", first_b).status_code == 404


def test_the_opt_out_list_is_shared_by_both_keys_and_names_who_changed_it(api: str) -> None:
    url = f"{api}/v1/opt-outs/13812340000"
    added = requests.put(url, headers={"x-api-key": "a"}, timeout=30)
    assert added.status_code in (200, 201), added.text
    seen = requests.get(url, headers={"x-api-key": "b"}, timeout=30)
    assert (seen.status_code, seen.json()["changed_by"]) == (200, "local-api-key-id")
    assert requests.delete(url, headers={"x-api-key": "b"}, timeout=30).status_code == 204
    assert requests.get(url, headers={"x-api-key": "a"}, timeout=30).status_code == 404


@pytest.mark.parametrize(
    ("env", "keys"),
    [
        ({}, ["local-dev-key"]),
        ({"SMSGW_API_KEY": "one"}, ["one"]),
        ({"SMSGW_API_KEYS": " a , b,c ", "SMSGW_API_KEY": "ignored"}, ["a", "b", "c"]),
    ],
)
def test_the_keys_come_from_smsgw_api_keys_else_smsgw_api_key(env: dict[str, str], keys: list[str]) -> None:
    stack = LocalGateway(env=env)
    assert stack.api_keys == keys
    assert stack.api_key == keys[0]


@pytest.mark.parametrize("listed", [",", "a,a", "a,k\u00e9y"])
def test_a_key_list_that_cannot_work_is_refused_at_start(listed: str) -> None:
    with pytest.raises(StackError):
        LocalGateway(env={"SMSGW_API_KEYS": listed})
