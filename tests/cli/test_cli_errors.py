"""What the user sees when things go wrong, the exit codes, and where the CLI finds its
URL and key. The API key must never be printed."""

from __future__ import annotations

import socket

import pytest

from smsgw_cli.main import main
from tests.cli.conftest import RunCli
from tests.cli.fake_gateway import API_KEY, FakeGateway

SEND = ("send", "--to", "13800138000", "--content", "【示例】hi")


def closed_port() -> int:
    """A local port with nothing listening on it."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_connection_refused_hints_at_make_run(smsgw: RunCli) -> None:
    # Given no local stack listening
    url = f"http://127.0.0.1:{closed_port()}"
    # When the user sends
    run = smsgw(*SEND, url=url)
    # Then the CLI says it cannot reach the API, asks whether `make run` is up, exit 2
    assert run.code == 2
    assert f"cannot reach the API at {url}/v1/messages: connection refused" in run.err
    assert "is `make run` up?" in run.err
    assert run.out == ""


def test_the_default_url_is_the_local_stack_on_smsgw_api_port(
    smsgw: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given no --url and no SMSGW_URL, and a local API port with nothing on it
    port = closed_port()
    monkeypatch.setenv("SMSGW_API_PORT", str(port))
    # When the user asks for a status
    run = smsgw("status", "some-id", url=None)
    # Then the CLI tried 127.0.0.1 on that port
    assert run.code == 2
    assert f"http://127.0.0.1:{port}/v1/messages/some-id" in run.err


def test_url_and_key_come_from_the_environment(
    staged_gateway: FakeGateway, smsgw: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a deployed-style URL (with its stage; pasted as the MessagesEndpoint output)
    # and the key, both in the environment
    monkeypatch.setenv("SMSGW_URL", staged_gateway.url + "/v1/messages/")
    monkeypatch.setenv("SMSGW_API_KEY", API_KEY)
    # When the user sends without --url or --api-key
    run = smsgw(*SEND, url=None, api_key=None)
    # Then the request went under the stage, with the key from the environment
    assert run.code == 0, run.err
    [call] = staged_gateway.calls()
    assert call.path == "/live/v1/messages"
    assert call.headers["x-api-key"] == API_KEY


def test_a_refused_key_is_explained_and_never_printed(
    smsgw: RunCli, gateway: FakeGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a wrong key in the environment
    secret = "wrong-but-secret-key-7f3a"
    monkeypatch.setenv("SMSGW_API_KEY", secret)
    # When the user sends
    run = smsgw(*SEND, api_key=None)
    # Then API Gateway's 403 is shown with a hint about the key, exit 1
    assert gateway.calls()[0].headers["x-api-key"] == secret
    assert run.code == 1
    assert "error: 403 invalid_api_key: Forbidden" in run.err
    assert "the API key was refused" in run.err
    # And the key itself appears nowhere
    assert secret not in run.all


def test_a_refused_key_is_explained_by_a_stack_without_gateway_responses_too(
    smsgw: RunCli, gateway: FakeGateway
) -> None:
    # Given API Gateway's bare default body (an older stack, or a proxy's rewrite)
    gateway.gateway_defaults = True
    run = smsgw(*SEND, api_key="wrong-key")
    assert run.code == 1
    assert "error: 403: Forbidden" in run.err
    assert "the API key was refused" in run.err


def test_the_key_never_appears_in_any_output(
    smsgw: RunCli, gateway: FakeGateway, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the key in the environment
    monkeypatch.setenv("SMSGW_API_KEY", API_KEY)
    gateway.answer_next(503, {"error": {"code": "service_unavailable", "message": "down", "details": []}})
    # When the user asks for help, sends, fails, waits and reads statuses in every format
    outputs = [
        smsgw(*SEND, "--wait", "--interval", "0.01", api_key=None).all,
        smsgw(*SEND, "--json", api_key=None).all,
        smsgw("status", gateway.request_ids()[0], "--all", api_key=None).all,
        smsgw("--json", "status", gateway.request_ids()[0], api_key=None).all,
        smsgw("status", "missing", api_key=None).all,
    ]
    for args in (["--help"], ["send", "--help"], ["status", "--help"]):
        assert main(args) == 0
        captured = capsys.readouterr()
        outputs.append(captured.out + captured.err)
    # Then the key is in none of them
    assert len(gateway.calls()) >= 5
    assert all(API_KEY not in output for output in outputs)


def test_a_wrong_stage_gets_a_hint_about_the_url(staged_gateway: FakeGateway, smsgw: RunCli) -> None:
    # Given a deployed-style API and a URL without its stage
    url = staged_gateway.url.removesuffix("/live")
    # When the user asks for a status
    run = smsgw("status", "some-id", url=url)
    # Then API Gateway's "Missing Authentication Token" is explained as a URL problem, exit 1
    assert run.code == 1
    assert "missing_authentication_token: Missing Authentication Token" in run.err
    assert "check --url" in run.err
    assert "API key was refused" not in run.err


def test_a_wrong_stage_gets_the_hint_from_a_bare_gateway_body_too(
    staged_gateway: FakeGateway, smsgw: RunCli
) -> None:
    staged_gateway.gateway_defaults = True
    run = smsgw("status", "some-id", url=staged_gateway.url.removesuffix("/live"))
    assert run.code == 1
    assert "error: 403: Missing Authentication Token" in run.err
    assert "check --url" in run.err
    assert "API key was refused" not in run.err


def test_a_400_shows_the_code_message_and_field_details(smsgw: RunCli) -> None:
    # Given a send with no valid number
    # When the user sends it
    run = smsgw("send", "--to", "12345", "--to", "abc", "--content", "【示例】hi")
    # Then the API's code, message and each detail are on stderr, exit 1
    assert run.code == 1
    assert run.out == ""
    lines = run.err.splitlines()
    assert lines[0] == "error: 400 validation_failed: to: holds no valid Chinese mobile number"
    assert "  - 12345: invalid_mobile" in lines
    assert "  - abc: invalid_mobile" in lines


def test_a_reused_idempotency_key_is_a_409(smsgw: RunCli) -> None:
    # Given a key already used for one text
    assert smsgw(*SEND, "--idempotency-key", "k-1").code == 0
    # When the same key is sent with another text
    run = smsgw("send", "--to", "13800138000", "--content", "【示例】other", "--idempotency-key", "k-1")
    # Then the conflict is shown with what to do, exit 1
    assert run.code == 1
    assert "error: 409 idempotency_key_reused" in run.err
    assert "use a new key" in run.err


def test_the_same_key_and_body_is_a_harmless_replay(smsgw: RunCli, gateway: FakeGateway) -> None:
    # Given a send already made with a key
    first = smsgw(*SEND, "--idempotency-key", "k-2")
    # When the user repeats it exactly
    second = smsgw(*SEND, "--idempotency-key", "k-2")
    # Then the same request is shown again and nothing new was created
    assert (first.code, second.code) == (0, 0)
    assert first.out == second.out
    assert len(gateway.request_ids()) == 1


def test_a_503_on_send_says_how_to_retry_safely(smsgw: RunCli, gateway: FakeGateway) -> None:
    # Given a gateway whose storage is down
    gateway.answer_next(
        503,
        {"error": {"code": "service_unavailable", "message": "storage or queue unavailable", "details": []}},
        {"Retry-After": "5"},
    )
    # When the user sends
    run = smsgw(*SEND)
    # Then the error is shown, exit 2, with the exact key to repeat the send with
    key = gateway.calls()[0].headers["idempotency-key"]
    assert run.code == 2
    assert "error: 503 service_unavailable: storage or queue unavailable" in run.err
    assert "retry after 5s" in run.err
    assert f"--idempotency-key {key}" in run.err


def test_a_lost_reply_on_send_says_how_to_retry_safely(smsgw: RunCli, gateway: FakeGateway) -> None:
    # Given a gateway that does not answer in time
    gateway.stall_next()
    # When the user sends with a short timeout
    run = smsgw("--timeout", "0.2", *SEND, "--idempotency-key", "order-7")
    # Then the CLI says no answer came, that the send may have happened, and how to repeat it
    assert run.code == 2
    assert "no answer within 0.2s" in run.err
    assert "--idempotency-key order-7" in run.err


def test_a_5xx_on_status_is_exit_2(smsgw: RunCli, gateway: FakeGateway) -> None:
    # Given a gateway that fails unexpectedly
    gateway.answer_next(
        500, {"error": {"code": "internal_error", "message": "internal error", "details": []}}
    )
    # When the user asks for a status
    run = smsgw("status", "some-id")
    # Then the error is shown, exit 2, and there is no send-retry hint
    assert run.code == 2
    assert "error: 500 internal_error: internal error" in run.err
    assert "idempotency" not in run.err


def test_a_non_json_error_page_is_shown_briefly(smsgw: RunCli, gateway: FakeGateway) -> None:
    # Given something in front of the API answering with an HTML page
    gateway.answer_next(502, b"<html><head><title>502</title></head><body><h1>Bad Gateway</h1></body></html>")
    # When the user asks for a status
    run = smsgw("status", "some-id")
    # Then the status and the page's words are shown, exit 2
    assert run.code == 2
    assert run.err.splitlines()[0] == "error: 502: 502 Bad Gateway"


def test_usage_errors_exit_1_without_a_request(smsgw: RunCli, gateway: FakeGateway) -> None:
    # Given a send without its required --content, and an unknown category
    # When the user runs them
    missing = smsgw("send", "--to", "13800138000")
    wrong = smsgw(*SEND, "--category", "spam")
    # Then argparse explains, exit 1, and nothing reached the API
    assert (missing.code, wrong.code) == (1, 1)
    assert "--content" in missing.err
    assert "invalid choice: 'spam'" in wrong.err
    assert gateway.calls() == []


def test_a_url_that_is_not_http_is_refused(smsgw: RunCli) -> None:
    # Given a URL without a scheme
    # When the user runs a command
    run = smsgw("status", "x", url="127.0.0.1:3000")
    # Then the URL is refused before any request, exit 1
    assert run.code == 1
    assert "is not an http:// or https:// URL" in run.err


def test_a_slow_status_is_not_mistaken_for_a_stopped_stack(smsgw: RunCli, gateway: FakeGateway) -> None:
    # Given a local API that accepts the connection but does not answer in time
    gateway.stall_next()
    # When the user asks for a status with a short timeout
    run = smsgw("--timeout", "0.2", "status", "some-id")
    # Then the CLI says the API is slow (not that `make run` is down), exit 2
    assert run.code == 2
    assert "no answer within 0.2s" in run.err
    assert "larger --timeout" in run.err
    assert "make run" not in run.err


def test_a_url_that_is_not_the_api_is_named(smsgw: RunCli, gateway: FakeGateway) -> None:
    # Given a URL that answers 200 with a web page (not the gateway)
    gateway.answer_next(200, b"<html><body>Welcome</body></html>")
    # When the user asks for a status
    run = smsgw("status", "some-id")
    # Then the CLI says the answer was not the API's, exit 2
    assert run.code == 2
    assert "answered 200 with something other than a JSON object" in run.err
    assert "is --url the gateway's API?" in run.err


def test_a_redirect_is_not_followed_with_the_key(smsgw: RunCli, gateway: FakeGateway) -> None:
    # Given a URL that redirects elsewhere
    gateway.answer_next(302, {}, {"Location": "http://elsewhere.example/v1/messages/some-id"})
    # When the user asks for a status
    run = smsgw("status", "some-id")
    # Then the CLI does not follow it (the key would go along) and names the target, exit 2
    assert run.code == 2
    assert len(gateway.calls()) == 1
    assert "redirecting to http://elsewhere.example/v1/messages/some-id" in run.err
    assert "give the API's own URL as --url" in run.err
