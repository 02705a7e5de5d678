"""Callers and the ids of their requests.

Every API key (or, with ``ApiAuth=IAM``, every IAM role) is a caller, and a caller sees
only its own requests. Two rules live here:

- **who the caller is**: the API key's id, else the IAM principal. An assumed-role session
  (``arn:aws:sts::ACCT:assumed-role/ROLE/SESSION``) is its role
  (``arn:aws:sts::ACCT:assumed-role/ROLE``): every session of a role is the same caller.
  The role's path is not in a session ARN, so the role is not rewritten as an ``iam`` ARN
  that might name another role.
- **what a request id is**: a UUID in its canonical form. A request sent with an
  ``Idempotency-Key`` gets an id derived from (caller, key), so that a retry lands on the
  same request: derived with HMAC-SHA256 under a server-side secret, so that nobody can
  compute another caller's ids from public values. Anything that is not a request id is
  answered "not found" without a read.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import uuid
from collections.abc import Callable

MIN_KEY_BYTES = 32
# Domain separation: the same secret could never derive anything else that collides.
_CONTEXT = b"smsgw/request-id/v1\n"
_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_ASSUMED_ROLE = re.compile(r"(arn:[a-z-]+:sts::\d{12}:assumed-role/[^/]+)/.+")


class CallerUnknown(LookupError):
    """The event names no caller: API Gateway authenticated nobody (a misconfigured route)."""


def caller_of(api_key_id: str | None, user_arn: str | None) -> str:
    """The caller an authenticated event comes from."""
    if api_key_id:
        return api_key_id
    if user_arn:
        return normalise_principal(user_arn)
    raise CallerUnknown("no API key and no IAM principal")


def normalise_principal(arn: str) -> str:
    """An assumed-role session ARN without its session; any other principal as it is."""
    match = _ASSUMED_ROLE.fullmatch(arn)
    return match.group(1) if match else arn


def same_caller(stored: str, caller: str) -> bool:
    """Whether a request stored with ``stored`` as its caller is ``caller``'s. Requests
    stored before callers were normalised name the session: normalised here too."""
    return hmac.compare_digest(normalise_principal(stored).encode(), caller.encode())


def is_request_id(text: str) -> bool:
    """Whether ``text`` can be a request id at all (a canonical, lower-case UUID)."""
    return _CANONICAL_UUID.fullmatch(text) is not None


class RequestIds:
    """New request ids, random or keyed. ``key`` gives the secret (read when first needed:
    only a request with an Idempotency-Key needs it). The secret must never change: a
    retry after a change would get another id, and send again."""

    def __init__(self, key: Callable[[], bytes]) -> None:
        self._key = key

    @staticmethod
    def new() -> str:
        return str(uuid.uuid4())

    def keyed(self, caller: str, idempotency_key: str) -> str:
        """The id of ``caller``'s request under ``idempotency_key``: the same pair always
        gives the same id; without the secret, no pair's id can be computed. UUID-shaped
        (version 8, "custom"), as every request id is."""
        secret = self._key()
        if len(secret) < MIN_KEY_BYTES:
            raise ValueError(f"the request-id secret must hold at least {MIN_KEY_BYTES} bytes")
        message = _CONTEXT + f"{caller}\n{idempotency_key}".encode()
        digest = bytearray(hmac.new(secret, message, hashlib.sha256).digest()[:16])
        digest[6] = (digest[6] & 0x0F) | 0x80  # version 8
        digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 9562 variant
        return str(uuid.UUID(bytes=bytes(digest)))


def caller_key(caller: str) -> str:
    """A short, stable name of a caller for the keys of its search entries (an IAM ARN is
    long, and may hold any character): the first 16 hex digits of its SHA-256."""
    return hashlib.sha256(normalise_principal(caller).encode("utf-8")).hexdigest()[:16]
