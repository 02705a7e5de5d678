"""Callback URLs and signatures: what may be called, and how a receiver checks a POST."""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import pytest

from smsgw.adapters import webhook
from smsgw.domain.callbacks import CallbackUrlError, address_allowed, check_url, sign, verify


@pytest.mark.parametrize(
    "address",
    ["10.1.2.3", "172.16.0.1", "192.168.0.1", "127.0.0.1", "169.254.169.254", "100.64.0.1", "0.0.0.0",  # noqa: S104
     "224.0.0.1", "::1", "fe80::1", "fd00::1", "::ffff:10.0.0.1", "::ffff:127.0.0.1", "203.0.113.5"],
)  # fmt: skip
def test_no_address_inside_a_network_is_allowed(address: str) -> None:
    assert not address_allowed(ipaddress.ip_address(address))


def test_public_addresses_are_allowed_and_loopback_only_when_the_stack_says_so() -> None:
    assert address_allowed(ipaddress.ip_address("8.8.8.8"))
    assert address_allowed(ipaddress.ip_address("2606:4700::1111"))
    assert address_allowed(ipaddress.ip_address("127.0.0.1"), allow_loopback=True)
    assert not address_allowed(ipaddress.ip_address("10.0.0.1"), allow_loopback=True)


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("ftp://8.8.8.8/x", "http"),
        ("https:///nohost", "no host"),
        ("https://u:p@8.8.8.8/x", "user name"),
        ("http://10.0.0.1/x", "private"),
        ("http://localhost:8080/x", "localhost"),
        ("http://a.b/" + "x" * 3000, "longer"),
        ("http://a.b/ä", "ASCII"),
    ],
)
def test_a_url_that_may_not_be_called_says_why(url: str, why: str) -> None:
    with pytest.raises(CallbackUrlError, match=why):
        check_url(url)


def test_a_public_url_passes_and_loopback_passes_locally() -> None:
    assert check_url("https://hooks.example.com/smsgw?x=1") == "https://hooks.example.com/smsgw?x=1"
    assert check_url("http://127.0.0.1:9000/h", allow_loopback=True)


def test_a_signature_verifies_only_for_its_secret_body_and_time() -> None:
    body = b'{"type":"Request Completed"}'
    header = sign("whsec_a", 1_800_000_000, body)
    assert header.startswith("t=1800000000,v1=")
    assert verify("whsec_a", header, body, now=1_800_000_100)
    assert not verify("whsec_b", header, body, now=1_800_000_100)
    assert not verify("whsec_a", header, body + b" ", now=1_800_000_100)
    assert not verify("whsec_a", header, body, now=1_800_000_000 + 301)  # a replay, too late
    assert not verify("whsec_a", "v1=abc", body, now=1_800_000_000)
    assert not verify("whsec_a", "t=x,v1=abc", body, now=1_800_000_000)


def test_a_forbidden_address_is_refused_before_any_connection_is_made(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a poster whose every socket connection is recorded (and refused)
    attempts: list[Any] = []

    def connect(address: Any, *args: Any, **kwargs: Any) -> socket.socket:
        attempts.append(address)
        raise ConnectionRefusedError

    monkeypatch.setattr(webhook.connection, "create_connection", connect)
    poster = webhook.WebhookPoster()
    # When callbacks go to addresses inside the network, literal or resolved
    for url in ("http://10.0.0.1/x", "http://169.254.169.254/x", "http://localhost:1/x", "http://[::1]:1/x"):
        answer = poster.post(url, b"{}", {})
        # Then none is delivered, and not one connection was even tried
        assert (answer.status, answer.reason) == (None, "forbidden address")
    assert attempts == []


def test_a_host_resolving_to_any_inside_address_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    # A name with a public and a private address (a rebinding trick): refused whole
    def resolve(host: str, port: int, **_: Any) -> list[Any]:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in ("8.8.8.8", "10.0.0.5")]

    monkeypatch.setattr(webhook.socket, "getaddrinfo", resolve)
    with pytest.raises(PermissionError):
        webhook.allowed_addresses("hooks.example.com", 443, allow_loopback=False)
