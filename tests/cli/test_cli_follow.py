"""The CLI's finding and following commands against a fake gateway (a real HTTP server):
``messages``, ``cancel``, ``opt-out``, ``--sigv4``, and the heartbeat of ``--watch``."""

from __future__ import annotations

import json

import pytest

from tests.cli.conftest import RunCli
from tests.cli.fake_gateway import FakeGateway

FOUND = {
    "messages": [
        {"id": "b-2", "status": "completed", "reference": "order-1", "category": "transactional",
         "created_at": "2026-11-24T10:00:00+08:00", "send_at": None, "completed_at": None, "recipients": 3},
        {"id": "a-1", "status": "submitted", "reference": "order-1", "category": "transactional",
         "created_at": "2026-11-24T09:00:00+08:00", "send_at": None, "completed_at": None, "recipients": 1},
    ],
    "next_cursor": None,
}  # fmt: skip


def test_messages_by_reference_lists_them_newest_first(smsgw: RunCli, gateway: FakeGateway) -> None:
    gateway.answer_next(200, FOUND)
    run = smsgw("messages", "--reference", "order-1", "--from", "2026-11-01")
    assert run.code == 0, run.all
    (call,) = gateway.calls("GET")
    assert (call.path, call.query) == ("/v1/messages", {"reference": ["order-1"], "from": ["2026-11-01"]})
    lines = run.out.splitlines()
    assert lines[0].split()[:3] == ["ID", "STATUS", "CREATED"]
    assert [line.split()[0] for line in lines[1:]] == ["b-2", "a-1"]


def test_messages_all_follows_every_page(smsgw: RunCli, gateway: FakeGateway) -> None:
    gateway.answer_next(200, {"messages": FOUND["messages"][:1], "next_cursor": "c1"})
    gateway.answer_next(200, {"messages": FOUND["messages"][1:], "next_cursor": None})
    run = smsgw("messages", "--to", "13800138000", "--all", "--json")
    assert run.code == 0, run.all
    assert [m["id"] for m in json.loads(run.out)["messages"]] == ["b-2", "a-1"]
    assert [c.query.get("cursor") for c in gateway.calls("GET")] == [None, ["c1"]]


def test_messages_wants_to_or_reference(smsgw: RunCli) -> None:
    assert smsgw("messages").code == 1


def test_cancel_says_what_was_cancelled_and_what_had_left(smsgw: RunCli, gateway: FakeGateway) -> None:
    gateway.answer_next(
        200, {"id": "r-1", "cancelled": 190, "already_left": 10, "already_final": 0, "total": 200}
    )
    run = smsgw("cancel", "r-1")
    assert run.code == 0, run.all
    assert gateway.calls("DELETE")[0].path == "/v1/messages/r-1"
    assert "190 recipients cancelled" in run.out
    assert "10 recipients had already left" in run.out


def test_cancel_of_an_unknown_request_is_refused(smsgw: RunCli, gateway: FakeGateway) -> None:
    gateway.answer_next(
        404, {"error": {"code": "not_found", "message": "no such message request", "details": []}}
    )
    run = smsgw("cancel", "nope")
    assert run.code == 1
    assert "not_found" in run.err


@pytest.mark.parametrize(("action", "method"), [("get", "GET"), ("add", "PUT"), ("remove", "DELETE")])
def test_opt_out_get_add_remove(smsgw: RunCli, gateway: FakeGateway, action: str, method: str) -> None:
    view = {"mobile": "13800138000", "opted_out": True, "keyword": "", "source": "api",
            "created_at": "2026-11-24T10:00:00+08:00", "changed_by": "k1"}  # fmt: skip
    gateway.answer_next(204 if method == "DELETE" else 200, None if method == "DELETE" else view)
    run = smsgw("opt-out", action, "+86 138-0013-8000")
    assert run.code == 0, run.all
    (call,) = gateway.calls(method)
    assert call.path == "/v1/opt-outs/%2B86%20138-0013-8000"
    assert ("removed" in run.out) if action == "remove" else ("source" in run.out and "api" in run.out)


def test_opt_out_get_of_a_number_not_on_the_list_says_so(smsgw: RunCli, gateway: FakeGateway) -> None:
    gateway.answer_next(404, {"error": {"code": "not_found", "message": "not opted out", "details": []}})
    run = smsgw("opt-out", "get", "13800138000")
    assert (run.code, run.out.strip()) == (0, "13800138000: not on the opt-out list")


def test_sigv4_signs_each_request_and_sends_no_key(
    smsgw: RunCli, gateway: FakeGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a stack deployed with ApiAuth=IAM, and AWS credentials in the environment
    gateway.sigv4 = True
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test-only-secret")
    monkeypatch.setenv("AWS_REGION", "cn-north-1")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    gateway.answer_next(200, FOUND)
    run = smsgw("--sigv4", "messages", "--reference", "order-1", api_key=None)
    assert run.code == 0, run.all
    (call,) = gateway.calls("GET")
    assert "x-api-key" not in call.headers
    authorization = call.headers["authorization"]
    assert authorization.startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert "/cn-north-1/execute-api/aws4_request" in authorization
    assert "x-amz-date" in call.headers


def test_watch_says_it_is_still_waiting_while_nothing_changes(smsgw: RunCli, gateway: FakeGateway) -> None:
    # Given a request that stays queued for many polls
    sent = smsgw("send", "--to", "13800138000", "--content", "x", "--json")
    request_id = json.loads(sent.out)["id"]
    gateway.queued_polls = 1_000
    # When it is watched with a short heartbeat
    run = smsgw(
        "status", request_id, "--watch", "--max-time", "0.6", "--interval", "0.05", "--heartbeat", "0.2"
    )
    # Then the wait is visible: heartbeat lines on stderr, saying what it waits for
    assert run.code == 3
    beats = [line for line in run.err.splitlines() if "still waiting" in line]
    assert len(beats) >= 2, run.err
    assert "queued" in beats[0]


def test_watch_ends_when_the_server_says_completed(smsgw: RunCli, gateway: FakeGateway) -> None:
    # A held send whose one number was skipped at release (opted out): counted in total and
    # in opted_out, and the request is completed; cancelled recipients are final too
    counts = {"total": 3, "queued": 0, "submitted": 0, "delivered": 1, "failed": 0, "unknown": 0,
              "expired": 0, "rejected": 0, "opted_out": 1, "cancelled": 1}  # fmt: skip
    reply = {"id": "r-9", "status": "completed", "reference": None, "category": "marketing",
             "created_at": None, "send_at": None, "segments": 1, "total_segments": 3, "counts": counts,
             "recipients": [], "rejected": [], "opted_out": [], "next_cursor": None}  # fmt: skip
    gateway.answer_next(200, reply)
    run = smsgw("status", "r-9", "--watch", "--max-time", "5", "--interval", "0.05")
    assert run.code == 0, run.all
    assert len(gateway.calls("GET")) == 1
