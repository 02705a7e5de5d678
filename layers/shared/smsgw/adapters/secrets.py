"""Provider credentials from Secrets Manager, through Powertools parameters (cached).

The secret is a JSON object ``{"oper_id": "...", "oper_pass": "..."}``. The value is
cached for ``max_age`` seconds per container, so a rotated password is picked up without
a deployment and Secrets Manager is called once per container and period, not per submit.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.parameters import SecretsProvider
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

from smsgw.provider.guodu import Credentials


class CredentialsError(RuntimeError):
    """The secret exists but does not hold usable provider credentials."""


class ProviderCredentials:
    def __init__(self, provider: SecretsProvider, secret_name: str, *, max_age: int = 300) -> None:
        self._provider = provider
        self._name = secret_name
        self._max_age = max_age

    def __call__(self) -> Credentials:
        value: Any = self._provider.get(self._name, transform="json", max_age=self._max_age)
        if not isinstance(value, dict):
            raise CredentialsError("the provider secret must be a JSON object")
        oper_id, oper_pass = value.get("oper_id"), value.get("oper_pass")
        if not isinstance(oper_id, str) or not isinstance(oper_pass, str) or not oper_id or not oper_pass:
            raise CredentialsError("the provider secret needs non-empty oper_id and oper_pass")
        return Credentials(oper_id=oper_id, oper_pass=oper_pass)


class PushTokens:
    """The push token now, and the one before it while the secret has a previous version
    (a rotation: the platform may still push to the old URL for a while). Both cached.

    Two providers, because Powertools caches by secret name alone: asked through one
    provider, the previous version would come back as the cached current one. A secret
    never rotated has no previous version; Powertools does not cache that miss, so it is
    remembered here for the same time, or every push would pay a failing call."""

    def __init__(
        self,
        client: Any,
        secret_name: str,
        *,
        max_age: int = 300,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._current = SecretsProvider(boto3_client=client)
        self._previous = SecretsProvider(boto3_client=client)
        self._name = secret_name
        self._max_age = max_age
        self._clock = clock
        self._no_previous_until = 0.0

    def __call__(self) -> list[str]:
        tokens = [str(self._current.get(self._name, max_age=self._max_age))]
        if self._clock() >= self._no_previous_until:
            try:
                tokens.append(
                    str(self._previous.get(self._name, max_age=self._max_age, VersionStage="AWSPREVIOUS"))
                )
            except GetParameterError:
                self._no_previous_until = self._clock() + self._max_age
        return tokens


class RequestIdKey:
    """The secret keyed request ids are derived with (``domain.callers.RequestIds``), read
    from Secrets Manager once per container, when first needed, and kept: it never
    changes (a changed key would give a retried request another id). ``provider`` makes
    the Secrets Manager provider then too: a container that never sees an
    Idempotency-Key never pays for the client at cold start."""

    def __init__(self, provider: Callable[[], SecretsProvider], secret_name: str) -> None:
        self._provider = provider
        self._name = secret_name
        self._value: bytes | None = None

    def __call__(self) -> bytes:
        if self._value is None:
            value = self._provider().get(self._name)
            if not isinstance(value, str) or not value:
                raise CredentialsError("the request-id secret must be a non-empty string")
            self._value = value.encode("utf-8")
        return self._value
