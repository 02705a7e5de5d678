"""Callers and request ids: who is calling, and ids nobody else can compute."""

from __future__ import annotations

import uuid

import pytest

from smsgw.domain.callers import (
    CallerUnknown,
    RequestIds,
    caller_of,
    is_request_id,
    normalise_principal,
    same_caller,
)

SECRET = b"k" * 64


@pytest.mark.parametrize(
    ("user_arn", "caller"),
    [
        (
            "arn:aws:sts::123456789012:assumed-role/OrderService/i-0abc",
            "arn:aws:sts::123456789012:assumed-role/OrderService",
        ),
        (
            "arn:aws-cn:sts::123456789012:assumed-role/order-svc/botocore-session-1712345678",
            "arn:aws-cn:sts::123456789012:assumed-role/order-svc",
        ),
        ("arn:aws:iam::123456789012:user/ops", "arn:aws:iam::123456789012:user/ops"),
        ("arn:aws:sts::123456789012:federated-user/alice", "arn:aws:sts::123456789012:federated-user/alice"),
    ],
)
def test_an_iam_caller_is_its_role_never_its_session(user_arn: str, caller: str) -> None:
    assert caller_of(None, user_arn) == caller


def test_every_session_of_a_role_is_the_same_caller_and_another_role_is_not() -> None:
    first = caller_of(None, "arn:aws:sts::123456789012:assumed-role/OrderService/session-1")
    second = caller_of(None, "arn:aws:sts::123456789012:assumed-role/OrderService/session-2")
    other = caller_of(None, "arn:aws:sts::123456789012:assumed-role/OrderServiceX/session-1")
    assert first == second != other
    # A request stored under a session before callers were normalised is still the role's
    assert same_caller("arn:aws:sts::123456789012:assumed-role/OrderService/old-session", first)
    assert not same_caller("arn:aws:sts::123456789012:assumed-role/OrderServiceX/s", first)


def test_the_api_key_id_is_the_caller_and_nobody_is_no_caller() -> None:
    assert caller_of("k1a2b3c4d5", None) == "k1a2b3c4d5"
    with pytest.raises(CallerUnknown):
        caller_of(None, None)
    assert normalise_principal("k1a2b3c4d5") == "k1a2b3c4d5"


def test_keyed_ids_are_stable_per_caller_and_key_and_uuid_shaped() -> None:
    ids = RequestIds(lambda: SECRET)
    first = ids.keyed("caller-a", "order-42")
    # Given the same caller and key / Then the same id (a retry lands on the same request)
    assert ids.keyed("caller-a", "order-42") == first
    # Another caller or another key: another id
    assert len({first, ids.keyed("caller-b", "order-42"), ids.keyed("caller-a", "order-43")}) == 3
    # UUID-shaped like every request id (version 8: derived, not random)
    assert is_request_id(first)
    assert uuid.UUID(first).version == 8


def test_a_keyed_id_cannot_be_computed_from_public_values() -> None:
    # Without the secret (another secret stands for any guess) the id comes out different,
    ours = RequestIds(lambda: SECRET).keyed("caller-a", "order-42")
    assert RequestIds(lambda: b"x" * 64).keyed("caller-a", "order-42") != ours
    # and it is not the uuid5 of the public namespace the gateway used to derive it with
    legacy = uuid.uuid5(uuid.UUID("6b1f4c3e-2f55-4d8e-9a41-5c0e4d9b7a10"), "caller-a\norder-42")
    assert ours != str(legacy)


def test_a_short_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 32 bytes"):
        RequestIds(lambda: b"short").keyed("caller-a", "order-42")


def test_the_secret_is_read_only_when_a_keyed_id_is_made() -> None:
    reads: list[int] = []

    def key() -> bytes:
        reads.append(1)
        return SECRET

    ids = RequestIds(key)
    assert is_request_id(ids.new())
    assert reads == []
    ids.keyed("caller-a", "k")
    assert reads == [1]


@pytest.mark.parametrize(
    "text",
    [
        "no-such-id",
        "",
        "0B4F6C1E-8D2A-4F7E-9C11-2A6F5E3D9B01",  # upper case: not how the gateway writes them
        "{0b4f6c1e-8d2a-4f7e-9c11-2a6f5e3d9b01}",
        "0b4f6c1e8d2a4f7e9c112a6f5e3d9b01",
        "0b4f6c1e-8d2a-4f7e-9c11-2a6f5e3d9b01 ",
        "x" * 5000,
        "13800138000",
    ],
)
def test_anything_but_a_canonical_uuid_is_no_request_id(text: str) -> None:
    assert not is_request_id(text)


def test_every_id_the_gateway_makes_is_a_request_id() -> None:
    ids = RequestIds(lambda: SECRET)
    assert is_request_id(ids.new())
    assert is_request_id(ids.keyed("c", "k"))
    assert is_request_id(str(uuid.uuid5(uuid.NAMESPACE_URL, "made before HMAC ids")))


def test_the_secret_and_its_client_are_fetched_once_and_only_when_needed() -> None:
    from typing import Any, cast

    from smsgw.adapters.secrets import RequestIdKey

    made: list[str] = []

    class Provider:
        def get(self, name: str) -> str:
            made.append(f"get {name}")
            return "s" * 64

    def provider() -> Any:
        made.append("client")
        return Provider()

    key = RequestIdKey(cast(Any, provider), "stack/request-id-key")
    # Given a container that has not needed a keyed id yet: no client was made
    assert made == []
    # When two keyed ids are made / Then one client, one read
    ids = RequestIds(key)
    ids.keyed("a", "1")
    ids.keyed("a", "2")
    assert made == ["client", "get stack/request-id-key"]
