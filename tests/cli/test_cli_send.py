"""``smsgw send``: the request it makes, what it prints, and ``--wait``."""

from __future__ import annotations

import io
import json
import re
import time
import uuid
from pathlib import Path

import pytest

from smsgw.domain.model import Category
from smsgw_cli.main import main
from tests.cli.conftest import RunCli
from tests.cli.fake_gateway import API_KEY, FakeGateway

FAST = ("--interval", "0.01")


def test_send_posts_the_numbers_and_fields_as_given(
    smsgw: RunCli, gateway: FakeGateway, tmp_path: Path
) -> None:
    # Given numbers on the command line and in a file (one a line and comma-separated)
    numbers = tmp_path / "numbers.txt"
    numbers.write_text("13700137000\n13600136000, 13500135000\n\n", encoding="utf-8")
    # When the user sends with every optional field
    run = smsgw(
        "send",
        "--to", "13800138000",
        "--to", "+86 139-0013-9000",
        "--to-file", str(numbers),
        "--content", "【示例】您好",
        "--send-at", "2026-12-01T09:30:00+08:00",
        "--extension", "01",
        "--reference", "order-42",
        "--category", "marketing",
        "--idempotency-key", "order-42-sms",
    )  # fmt: skip
    # Then one POST went to /v1/messages with the key headers and the fields as given
    assert run.code == 0, run.err
    [call] = gateway.calls()
    assert (call.method, call.path) == ("POST", "/v1/messages")
    assert call.headers["x-api-key"] == API_KEY
    assert call.headers["idempotency-key"] == "order-42-sms"
    assert call.headers["content-type"] == "application/json"
    assert call.body == {
        "to": ["13800138000", "+86 139-0013-9000", "13700137000", "13600136000", "13500135000"],
        "content": "【示例】您好",
        "send_at": "2026-12-01T09:30:00+08:00",
        "extension": "01",
        "reference": "order-42",
        "category": "marketing",
    }
    # And the user sees the id, the counts and how to follow it
    [stored_id] = gateway.request_ids()
    assert f"id          {stored_id}" in run.out
    assert "recipients  5" in run.out
    assert "segments    1 per message, 5 in total" in run.out
    assert "reference   order-42" in run.out
    assert f"smsgw status {stored_id} --watch" in run.out


def test_send_leaves_out_the_fields_not_given(smsgw: RunCli, gateway: FakeGateway) -> None:
    # Given only numbers (comma-separated in one --to) and a text
    # When the user sends
    run = smsgw("send", "--to", "13800138000,13900139000", "--content", "【示例】hi")
    # Then the body holds just those, the numbers split as the API would split them
    assert run.code == 0, run.err
    assert gateway.calls()[0].body == {"to": ["13800138000", "13900139000"], "content": "【示例】hi"}


@pytest.mark.parametrize("category", [c.value for c in Category])
def test_every_category_the_api_accepts_can_be_sent(
    smsgw: RunCli, gateway: FakeGateway, category: str
) -> None:
    # Given a category of the API's model
    # When the user sends with it
    run = smsgw("send", "--to", "13800138000", "--content", "【示例】验证码 123456", "--category", category)
    # Then the CLI takes it and passes it on as given
    assert run.code == 0, run.err
    assert gateway.calls()[0].body["category"] == category


def test_send_help_lists_exactly_the_apis_categories(capsys: pytest.CaptureFixture[str]) -> None:
    # When the user reads `smsgw send --help`
    assert main(["send", "--help"]) == 0
    # Then --category offers every category the API accepts, and no other
    offered = re.search(r"--category \{([a-z_,]+)\}", capsys.readouterr().out)
    assert offered is not None
    assert set(offered.group(1).split(",")) == {c.value for c in Category}


def test_send_shows_the_rejected_numbers_and_still_succeeds(smsgw: RunCli) -> None:
    # Given one good number and one that is not a Chinese mobile
    # When the user sends
    run = smsgw("send", "--to", "13800138000", "--to", "12345", "--content", "【示例】hi")
    # Then the send is accepted for the good one and the bad one is listed with its reason
    assert run.code == 0
    assert "recipients  1" in run.out
    assert "rejected 1 number:" in run.out
    assert "12345  invalid_mobile" in run.out


def test_every_send_carries_a_fresh_idempotency_key(smsgw: RunCli, gateway: FakeGateway) -> None:
    # Given no --idempotency-key
    # When the user sends the same thing twice
    smsgw("send", "--to", "13800138000", "--content", "【示例】hi")
    smsgw("send", "--to", "13800138000", "--content", "【示例】hi")
    # Then each went out with its own UUID key, so two sends are two sends
    keys = [call.headers["idempotency-key"] for call in gateway.calls("POST")]
    assert len(set(keys)) == 2
    assert all(uuid.UUID(key) for key in keys)
    assert len(gateway.request_ids()) == 2


def test_numbers_come_from_stdin(
    smsgw: RunCli, gateway: FakeGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given numbers piped in, with a BOM and a comment line, as a spreadsheet export might
    data = "\ufeff# 客户名单\n13800138000\r\n13900139000\n".encode()
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(data)))
    # When the user sends to '-'
    run = smsgw("send", "--to-file", "-", "--content", "【示例】hi")
    # Then those numbers are sent
    assert run.code == 0, run.err
    assert gateway.calls()[0].body["to"] == ["13800138000", "13900139000"]


def test_a_gbk_number_file_is_read(smsgw: RunCli, gateway: FakeGateway, tmp_path: Path) -> None:
    # Given a number file saved in GBK with a Chinese comment (common for exports in China)
    numbers = tmp_path / "gbk.txt"
    numbers.write_bytes("# 会员\n13800138000，13900139000\n".encode("gbk"))
    # When the user sends to it
    run = smsgw("send", "--to-file", str(numbers), "--content", "【示例】hi")
    # Then the numbers are read (full-width comma included)
    assert run.code == 0, run.err
    assert gateway.calls()[0].body["to"] == ["13800138000", "13900139000"]


def test_send_without_recipients_is_refused_locally(smsgw: RunCli, gateway: FakeGateway) -> None:
    # Given no --to and no --to-file
    # When the user sends
    run = smsgw("send", "--content", "【示例】hi")
    # Then nothing is sent and the user is told why, exit 1
    assert run.code == 1
    assert "no recipients" in run.err
    assert gateway.calls() == []


def test_a_missing_number_file_is_refused_locally(
    smsgw: RunCli, gateway: FakeGateway, tmp_path: Path
) -> None:
    # Given a --to-file that does not exist
    # When the user sends
    run = smsgw("send", "--to-file", str(tmp_path / "nope.txt"), "--content", "【示例】hi")
    # Then the file is named, nothing is sent, exit 1
    assert run.code == 1
    assert "nope.txt" in run.err
    assert gateway.calls() == []


def test_send_json_prints_the_202_reply(smsgw: RunCli, gateway: FakeGateway) -> None:
    # Given --json
    # When the user sends
    run = smsgw("--json", "send", "--to", "13800138000", "--to", "x", "--content", "【示例】hi")
    # Then stdout is exactly the API's reply
    assert run.code == 0
    reply = json.loads(run.out)
    [stored_id] = gateway.request_ids()
    assert reply == {
        "id": stored_id,
        "status": "accepted",
        "recipients": 1,
        "segments": 1,
        "total_segments": 1,
        "rejected": [{"to": "x", "reason": "invalid_mobile"}],
    }


def test_wait_polls_until_nothing_is_queued(smsgw: RunCli, gateway: FakeGateway) -> None:
    # Given a gateway where the request stays queued for two polls
    gateway.queued_polls = 2
    # When the user sends with --wait
    run = smsgw(
        "send", "--to", "13800138000", "--to", "13900139000", "--content", "【示例】hi", "--wait", *FAST
    )
    # Then the CLI polled until nothing was queued, then stopped and showed the result
    assert run.code == 0, run.err
    [stored_id] = gateway.request_ids()
    gets = gateway.calls("GET")
    assert [g.path for g in gets] == [f"/v1/messages/{stored_id}"] * 3
    assert all(g.headers["x-api-key"] == API_KEY for g in gets)
    assert "status     submitted" in run.out
    assert "queued 0" in run.out
    assert "13800138000  submitted  0" in run.out
    # And the progress went to stderr, with how to follow the delivery reports
    assert "queued 2" in run.err
    assert "submitted 2" in run.err
    assert f"follow delivery: smsgw status {stored_id} --watch" in run.err
    assert "13800138000  delivered" not in run.out


def test_wait_gives_up_when_the_time_is_up(smsgw: RunCli, gateway: FakeGateway) -> None:
    # Given a request that stays queued
    gateway.queued_polls = 10_000
    # When the user waits at most 0.2 s
    started = time.monotonic()
    run = smsgw(
        "send", "--to", "13800138000", "--content", "【示例】hi", "--wait", "0.2", "--interval", "0.05"
    )
    # Then the CLI stops in time, shows the status, says what is left, and exits 3
    assert time.monotonic() - started < 2
    assert run.code == 3
    assert "status     accepted" in run.out
    assert "still 1 queued after 0.2s" in run.err
    assert len(gateway.calls("GET")) >= 2


def test_wait_with_json_prints_the_final_status(smsgw: RunCli, gateway: FakeGateway) -> None:
    # Given --json and --wait
    # When the user sends
    run = smsgw("--json", "send", "--to", "13800138000", "--content", "【示例】hi", "--wait", *FAST)
    # Then stdout is one JSON document: the final status
    assert run.code == 0, run.err
    status = json.loads(run.out)
    assert status["counts"]["queued"] == 0
    assert status["recipients"][0]["status"] == "submitted"
