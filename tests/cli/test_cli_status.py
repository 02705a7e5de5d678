"""``smsgw status ID``: the request, its counts, its recipients; ``--all`` and ``--watch``."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

from smsgw_cli.main import main
from tests.cli.conftest import RunCli
from tests.cli.fake_gateway import API_KEY, FakeGateway, Request

REQUEST_ID = "0b9f6a1e-5d7c-4b1a-9e2f-3c4d5e6f7a80"
MOBILES = ["13800138000", "13900139000", "13700137000", "13600136000", "13500135000"]


def seeded(
    gateway: FakeGateway, *, polls: int = 0, mobiles: list[str] = MOBILES, send_at: str | None = None
) -> Request:
    request = Request(
        id=REQUEST_ID,
        reference="order-42",
        category="transactional",
        send_at=send_at,
        segments=2,
        mobiles=list(mobiles),
        rejected=[{"to": "12345", "reason": "invalid_mobile"}],
        polls=polls,
    )
    gateway.seed(request)
    return request


def test_status_shows_the_request_its_counts_and_each_recipient(smsgw: RunCli, gateway: FakeGateway) -> None:
    # Given a request whose recipients were all delivered
    seeded(gateway, polls=10, mobiles=MOBILES[:2])
    # When the user asks for its status
    run = smsgw("status", REQUEST_ID)
    # Then one GET went to /v1/messages/{id} with the key
    assert run.code == 0, run.err
    [call] = gateway.calls()
    assert (call.method, call.path, call.query) == ("GET", f"/v1/messages/{REQUEST_ID}", {})
    assert call.headers["x-api-key"] == API_KEY
    # And the user sees the request, the counts, the numbers as given, and the rejected one
    assert f"id         {REQUEST_ID}" in run.out
    assert "status     submitted" in run.out
    assert "reference  order-42" in run.out
    assert "send at    now" in run.out
    assert "segments   2 per message, 4 in total" in run.out
    assert "counts     total 2, queued 0, submitted 0, delivered 2, failed 0" in run.out
    lines = run.out.splitlines()
    header = next(line for line in lines if line.startswith("TO"))
    assert header.split() == ["TO", "STATUS", "CODE", "PROVIDER", "MSG", "ID", "UPDATED", "DETAIL"]
    assert "13800138000  delivered  0     MSG0000          2026-11-25T08:00:00Z  发送成功" in lines
    assert "13900139000  delivered  0     MSG0001          2026-11-25T08:00:00Z  发送成功" in lines
    assert "  12345  invalid_mobile" in lines
    assert "--all" not in run.out


def test_a_scheduled_request_shows_when_it_is_sent(smsgw: RunCli, gateway: FakeGateway) -> None:
    seeded(gateway, send_at="2026-12-01T09:30:00+08:00")
    run = smsgw("status", REQUEST_ID)
    assert "send at    2026-12-01T09:30:00+08:00" in run.out


def test_without_all_only_the_first_page_is_shown(smsgw: RunCli, gateway: FakeGateway) -> None:
    # Given a request with more recipients than fit a page
    gateway.page_size = 2
    seeded(gateway, polls=10)
    # When the user asks for its status without --all
    run = smsgw("status", REQUEST_ID)
    # Then one page is fetched and shown, and the user learns how to see the rest
    assert run.code == 0
    assert len(gateway.calls()) == 1
    assert "13900139000" in run.out
    assert "13700137000" not in run.out
    assert f"more recipients than shown: smsgw status {REQUEST_ID} --all" in run.out


def test_all_follows_next_cursor_to_the_last_page(smsgw: RunCli, gateway: FakeGateway) -> None:
    # Given five recipients, two a page
    gateway.page_size = 2
    seeded(gateway, polls=10)
    # When the user asks for --all
    run = smsgw("status", REQUEST_ID, "--all")
    # Then the CLI followed each next_cursor once, and shows every recipient
    assert run.code == 0, run.err
    assert [c.query.get("cursor") for c in gateway.calls()] == [None, ["2"], ["4"]]
    for mobile in MOBILES:
        assert f"{mobile}  delivered" in run.out
    assert "more recipients" not in run.out


def test_all_with_json_prints_one_merged_document(smsgw: RunCli, gateway: FakeGateway) -> None:
    # Given five recipients, two a page
    gateway.page_size = 2
    seeded(gateway, polls=10)
    # When the user asks for --all --json (global option after the subcommand)
    run = smsgw("status", REQUEST_ID, "--all", "--json")
    # Then stdout is one reply with every recipient and no cursor left
    assert run.code == 0, run.err
    reply = json.loads(run.out)
    assert [r["to"] for r in reply["recipients"]] == MOBILES
    assert reply["next_cursor"] is None
    assert reply["counts"]["delivered"] == 5


def test_watch_follows_the_request_past_submitted_until_delivered(
    smsgw: RunCli, gateway: FakeGateway
) -> None:
    # Given a request queued for two polls, then submitted for three (no report yet)
    gateway.queued_polls = 2
    gateway.submitted_polls = 3
    seeded(gateway, mobiles=MOBILES[:1])
    # When the user watches it
    run = smsgw("status", REQUEST_ID, "--watch", "--interval", "0.01")
    # Then the CLI kept polling through submitted until the delivery report, and showed the
    # final state once
    assert run.code == 0, run.err
    assert len(gateway.calls()) == 6
    assert run.out.count(f"id         {REQUEST_ID}") == 1
    assert "13800138000  delivered  0" in run.out
    # And each change was reported on stderr (not each poll)
    progress = [line for line in run.err.splitlines() if line.startswith("[")]
    assert len(progress) == 3
    assert "accepted: total 1, queued 1" in progress[0]
    assert "submitted: total 1, submitted 1, rejected 1" in progress[1]
    assert "submitted: total 1, delivered 1, rejected 1" in progress[2]


@pytest.mark.parametrize("outcome", ["failed", "unknown", "expired"])
def test_watch_stops_at_any_final_state(smsgw: RunCli, gateway: FakeGateway, outcome: str) -> None:
    # Given a request whose recipients end in a final state other than delivered
    gateway.outcome = outcome
    seeded(gateway, mobiles=MOBILES[:2])
    # When the user watches it
    run = smsgw("status", REQUEST_ID, "--watch", "--interval", "0.01")
    # Then the watch ends there, exit 0: the request has nothing more to report
    assert run.code == 0, run.err
    assert len(gateway.calls()) == 3
    assert f"13800138000  {outcome}" in run.out


def test_watch_gives_up_after_max_time(smsgw: RunCli, gateway: FakeGateway) -> None:
    # Given a request submitted long ago whose delivery report never comes
    gateway.submitted_polls = 10_000
    seeded(gateway, polls=5, mobiles=MOBILES[:1])
    # When the user watches it for at most 0.2 s
    started = time.monotonic()
    run = smsgw("status", REQUEST_ID, "--watch", "--max-time", "0.2", "--interval", "0.05")
    # Then the CLI stops in time, shows the status, says what is still pending, and exits 3
    assert time.monotonic() - started < 2
    assert run.code == 3
    assert "13800138000  submitted" in run.out
    assert "still 1 submitted after 0.2s" in run.err
    assert len(gateway.calls()) >= 2


def test_max_time_without_watch_is_a_usage_error(smsgw: RunCli, gateway: FakeGateway) -> None:
    # Given --max-time without --watch
    # When the user asks for a status
    run = smsgw("status", REQUEST_ID, "--max-time", "5")
    # Then nothing is fetched and the user is told why, exit 1
    assert run.code == 1
    assert "--max-time" in run.err
    assert gateway.calls() == []


def test_ctrl_c_stops_a_watch_cleanly_with_exit_130(gateway: FakeGateway) -> None:
    # Given a request whose delivery report never comes, watched by the real command
    gateway.submitted_polls = 10_000
    seeded(gateway, mobiles=MOBILES[:1])
    command = ["status", REQUEST_ID, "--watch", "--interval", "0.05"]
    watcher = subprocess.Popen(
        [sys.executable, "-m", "smsgw_cli.main", "--url", gateway.url, "--api-key", API_KEY, *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while len(gateway.calls()) < 3 and time.monotonic() < deadline:  # it is watching
            time.sleep(0.02)
        # When the user presses Ctrl-C
        watcher.send_signal(signal.SIGINT)
        _, err = watcher.communicate(timeout=10)
    finally:
        watcher.kill()
    # Then it stops at once with exit 130 and says so, without a traceback
    assert watcher.returncode == 130, err
    assert err.splitlines()[-1] == "interrupted"
    assert "Traceback" not in err
    assert "submitted: total 1, submitted 1" in err


def test_status_help_says_what_watch_waits_for(capsys: pytest.CaptureFixture[str]) -> None:
    # When the user reads `smsgw status --help`
    assert main(["status", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    # Then it says --watch follows the request to its final states, and how it stops
    assert "until every recipient is in a final state" in text
    assert "delivered, failed, unknown, expired" in text
    assert "--max-time" in text
    assert "Ctrl-C" in text


def test_an_unknown_id_is_a_404_with_exit_1(smsgw: RunCli) -> None:
    # Given no such request
    # When the user asks for its status
    run = smsgw("status", "no-such-id")
    # Then the API's code and message are shown on stderr, exit 1
    assert run.code == 1
    assert run.out == ""
    assert "error: 404 not_found: no message request no-such-id" in run.err


def test_an_id_is_sent_as_one_path_segment(smsgw: RunCli, gateway: FakeGateway) -> None:
    # Given an id pasted with a slash in it
    # When the user asks for its status
    smsgw("status", "a/b")
    # Then it stays one path segment (no other route is reached)
    assert gateway.calls()[0].path == "/v1/messages/a%2Fb"
